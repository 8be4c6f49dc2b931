"""DP-SGD with true per-example clipping at near plain-training cost, as a Keras `train_step`.

Abadi et al. (CCS 2016), one step on a batch B of examples:

    g_i  = grad_theta loss(x_i, y_i)                      (never materialised)
    c_i  = min(1, C / ||g_i||)
    g    = (sum_{i in B} c_i g_i + N(0, sigma^2 C^2 I)) / b

with b the batch size (the *expected* batch size q n under Poisson sampling, so the
denominator does not depend on the data). The norms ||g_i|| come from one forward
pass through the layer registry of `per_example_norms` (ghost / direct norms of
Conv2D, DepthwiseConv2D, Dense, GroupNorm, LayerNorm: Li et al. 2022, Bu et al.
2022) and the clipped sum from a second backward pass of `sum_i c_i loss_i`
(the "ghost clipping" trick): no per-example gradient is ever stored.

Pieces of tensorflow-privacy used: `clip_grads.compute_gradient_norms` (forward
pass over the functional graph with the registry), `clip_grads.compute_clip_weights`
(c_i) and `gradient_clipping_utils.add_aggregate_noise`. Its DP model classes
(`DPModel`, `make_dp_model_class`) are not: they only take the fast path for
`tf.keras` (Keras 3) models, which tf_keras models are not, and fall back to
per-example Jacobians (~100x a plain step on LeNet-5).
"""

from typing import Optional

import tensorflow as tf

from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras
from mcmia_tf.privacy import per_example_norms

__all__ = ["DPSGDModel", "noisy_average"]


def noisy_average(clipped_sum, l2_norm_clip: float, noise_multiplier: float, denominator):
    """`(sum_i c_i g_i + N(0, sigma^2 C^2)) / denominator`, for every variable's gradient."""
    utils = import_tf_privacy("privacy.fast_gradient_clipping.gradient_clipping_utils")
    noised = clipped_sum
    if noise_multiplier > 0:
        # "sum": the noise's standard deviation is sigma * C on the sum, not divided by b.
        noised = utils.add_aggregate_noise(clipped_sum, denominator, l2_norm_clip,
                                           noise_multiplier, loss_reduction="sum")
    return [g / tf.cast(denominator, g.dtype) for g in noised]


def _check_positive(value, argument: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
            value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"Invalid value for argument `{argument}`. Expected a float {bound}. "
                         f"Received: {argument}={value!r}")
    return float(value)


@keras.utils.register_keras_serializable(package="mcmia_tf")
class DPSGDModel(keras.Model):
    """A classifier trained by DP-SGD with per-example clipping (see module docstring).

    ```python
    model = DPSGDModel(build_model("lenet5", (28, 28, 1), 10, norm="group"),
                       l2_norm_clip=1.0, noise_multiplier=1.1, expected_batch_size=128)
    model.compile(keras.optimizers.SGD(0.5, momentum=0.9))
    model.fit(poisson_batches(x, y, 128, seed=0), steps_per_epoch=steps_per_epoch(len(x), 128),
              epochs=30)
    model.classifier.save("private.keras")
    ```

    Args:
      classifier: a functional or Sequential tf_keras model with logit outputs, whose
        trainable layers all have a per-example norm function (BatchNormalization
        is refused: it mixes examples).
      l2_norm_clip: C > 0.
      noise_multiplier: sigma >= 0 (0: clipping only, no privacy).
      expected_batch_size: the denominator b under Poisson sampling; None divides by
        each batch's own size (shuffled fixed-size batches).
      conv_mode: "auto", "direct" or "ghost" norms for Conv2D layers.
      **kwargs: passed to `keras.Model`.
    """

    def __init__(self, classifier: keras.Model, *, l2_norm_clip: float,
                 noise_multiplier: float, expected_batch_size: Optional[int] = None,
                 conv_mode: str = "auto", **kwargs):
        super().__init__(**kwargs)
        self.classifier = ensure_tf_keras_model(classifier, "classifier")
        self.l2_norm_clip = _check_positive(l2_norm_clip, "l2_norm_clip")
        self.noise_multiplier = _check_positive(noise_multiplier, "noise_multiplier",
                                                allow_zero=True)
        if expected_batch_size is not None and (
                isinstance(expected_batch_size, bool) or not isinstance(expected_batch_size, int)
                or expected_batch_size < 1):
            raise ValueError("Invalid value for argument `expected_batch_size`. Expected None "
                             "or an integer >= 1. Received: "
                             f"expected_batch_size={expected_batch_size!r}")
        self.expected_batch_size = expected_batch_size
        self.conv_mode = conv_mode
        self._registry = per_example_norms.make_layer_registry(conv_mode)
        missing = per_example_norms.check_dp_compatible(self.classifier, self._registry)
        if missing:
            raise ValueError(
                f"Invalid value for argument `classifier`. Layers {missing} have no per-example "
                "gradient-norm function, so their gradients could not be clipped per example. "
                "Use Conv2D, DepthwiseConv2D, Dense, GroupNormalization, LayerNormalization "
                "(and parameter-free layers).")
        self._loss_tracker = keras.metrics.Mean(name="loss")
        self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    def compile(self, optimizer="sgd", loss=None, **kwargs):
        """Configures the optimizer and the per-example task loss (default: CE on logits).

        `metrics` is not supported: the model reports `loss` (the unclipped mean task
        loss) and `accuracy`.
        """
        if "metrics" in kwargs:
            raise ValueError("DPSGDModel reports its own metrics (loss, accuracy); remove the "
                             "`metrics` argument.")
        super().compile(optimizer=optimizer, **kwargs)
        loss = keras.losses.get(loss or keras.losses.SparseCategoricalCrossentropy(
            from_logits=True))
        if not isinstance(loss, keras.losses.Loss):
            raise ValueError("Invalid value for argument `loss`. Expected a `keras.losses.Loss` "
                             f"instance (its reduction is replaced by 'none'). Received: {loss!r}")
        # Per-example losses: the clipping reweights every example's loss separately.
        self.task_loss = type(loss).from_config({**loss.get_config(), "reduction": "none"})

    @property
    def metrics(self):
        return [self._loss_tracker, self._accuracy]

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    def train_step(self, data):
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        if replicas > 1:
            raise ValueError(
                f"DPSGDModel does not support training on {replicas} replicas: each replica "
                "would add its own noise to its share of the batch. Train it without a "
                "tf.distribute strategy (shard reference models across workers instead).")
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("DPSGDModel does not support sample weights: they would change "
                             "each example's clipping bound.")
        clip_grads = import_tf_privacy("privacy.fast_gradient_clipping.clip_grads")
        variables = self.classifier.trainable_variables
        norms = clip_grads.compute_gradient_norms(
            self.classifier, self._registry, x, y,
            per_example_loss_fn=lambda y_true, y_pred, _: self.task_loss(y_true, y_pred),
            trainable_vars=variables)
        clip_weights = tf.stop_gradient(clip_grads.compute_clip_weights(self.l2_norm_clip, norms))
        with tf.GradientTape() as tape:
            logits = self.classifier(x, training=True)
            losses = self.task_loss(y, logits)
            clipped_loss = tf.reduce_sum(clip_weights * losses)
        clipped_sum = tape.gradient(clipped_loss, variables,
                                    unconnected_gradients=tf.UnconnectedGradients.ZERO)
        denominator = (self.expected_batch_size if self.expected_batch_size is not None
                       else tf.shape(y)[0])
        gradients = noisy_average(clipped_sum, self.l2_norm_clip, self.noise_multiplier,
                                  denominator)
        if self.classifier.losses:
            # Weight decay and similar terms do not depend on the data: no clipping needed.
            with tf.GradientTape() as tape:
                regularization = tf.add_n(self.classifier.losses)
            extra = tape.gradient(regularization, variables,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO)
            gradients = [g + r for g, r in zip(gradients, extra)]
        self.optimizer.apply_gradients(zip(gradients, variables))
        self._loss_tracker.update_state(tf.reduce_mean(losses))
        self._accuracy.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        logits = self.classifier(x, training=False)
        self._loss_tracker.update_state(tf.reduce_mean(self.task_loss(y, logits)))
        self._accuracy.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {"classifier": keras.saving.serialize_keras_object(self.classifier),
                "l2_norm_clip": self.l2_norm_clip, "noise_multiplier": self.noise_multiplier,
                "expected_batch_size": self.expected_batch_size, "conv_mode": self.conv_mode,
                "name": self.name}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["classifier"] = keras.saving.deserialize_keras_object(
            config["classifier"], custom_objects=custom_objects)
        return cls(**config)
