"""DP-SGD with true per-example clipping at near plain-training cost, as a Keras `train_step`.

Abadi et al. (CCS 2016), one step on a batch B of examples:

    g_i  = grad_theta loss(x_i, y_i)                      (never materialised)
    c_i  = min(1, C / ||g_i||)
    g    = (sum_{i in B} c_i g_i + N(0, sigma^2 C^2 I)) / b

with b the batch size (the *expected* batch size q n under Poisson sampling, so the
denominator does not depend on the data).

One forward and one backward pass (`clipped_gradient_sum`): the forward pass runs
through the layer registry of `per_example_norms`, which records every trainable
layer's pre-activation output s_l; one backward pass of the summed loss gives
G_l = dL/ds_l, from which the registry's ghost / direct norms give ||g_i|| (Li et
al. 2022, Bu et al. 2022) and so c_i. The clipped sum is then, layer by layer,

    sum_i c_i g_i[W_l] = (ds_l / dW_l)^T (c * G_l),

a vector-Jacobian product of that layer alone on the same tape: the gradient of
sum_i c_i loss_i, i.e. the second backward pass of ghost clipping, without running
the network's forward and backward passes again ("book-keeping", Bu, Wang, Zha &
Karypis, ICML 2023). No per-example gradient is ever stored.

Pieces of tensorflow-privacy used: `gradient_clipping_utils.model_forward_pass` (the
forward pass over the functional graph with a generator per layer, the same one
`clip_grads.compute_gradient_norms` runs), the registry functions' format,
`clip_grads.compute_clip_weights` (c_i) and `gradient_clipping_utils.
add_aggregate_noise`. Its DP model classes (`DPModel`, `make_dp_model_class`) are
not: they only take the fast path for `tf.keras` (Keras 3) models, which tf_keras
models are not, and fall back to per-example Jacobians (~100x a plain step on LeNet-5).
"""

from typing import Optional

import tensorflow as tf

from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import has_layer_graph
from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras
from mcmia_tf.privacy import per_example_norms

__all__ = ["DPSGDModel", "clipped_gradient_sum", "noisy_average"]


def noisy_average(clipped_sum, l2_norm_clip: float, noise_multiplier: float, denominator):
    """`(sum_i c_i g_i + N(0, sigma^2 C^2)) / denominator`, for every variable's gradient."""
    utils = import_tf_privacy("privacy.fast_gradient_clipping.gradient_clipping_utils")
    noised = clipped_sum
    if noise_multiplier > 0:
        # "sum": the noise's standard deviation is sigma * C on the sum, not divided by b.
        noised = utils.add_aggregate_noise(clipped_sum, denominator, l2_norm_clip,
                                           noise_multiplier, loss_reduction="sum")
    return [g / tf.cast(denominator, g.dtype) for g in noised]


def clipped_gradient_sum(model, registry, x, y, loss_fn, l2_norm_clip: float):
    """sum_i c_i g_i for every trainable variable, in one forward and one backward pass.

    See the module docstring for the method.

    Args:
      model: a functional or Sequential tf_keras model (sub-models are followed).
      registry: from `per_example_norms.make_layer_registry`.
      x, y: a batch of inputs and labels.
      loss_fn: `loss_fn(y_true, y_pred)` -> (batch,) per-example losses.
      l2_norm_clip: C.

    Returns:
      (clipped_sum, losses, outputs, norms): the clipped gradient sums in the order
      of `model.trainable_variables`, the (batch,) losses, the model's outputs and
      the (batch,) per-example gradient norms ||g_i||.

    Raises:
      NotImplementedError: a trainable layer has no registry function.
    """
    utils = import_tf_privacy("privacy.fast_gradient_clipping.gradient_clipping_utils")
    clip_grads = import_tf_privacy("privacy.fast_gradient_clipping.clip_grads")
    tape = tf.GradientTape(persistent=True, watch_accessed_variables=False)
    records = []  # (pre-activation output s_l, its squared-norm function, layer weights)

    def generator(layer, args, kwargs):
        if has_layer_graph(layer):
            # Recurse here, so that every record is one layer (tensorflow-privacy only
            # recurses into Keras 3 sub-models).
            outputs, _ = utils.model_forward_pass(layer, args[0] if len(args) == 1 else args,
                                                  generator)
            return outputs, None
        # Layers called one by one see no enclosing `model(x, training=True)`: say it
        # (Dropout would otherwise run in inference mode); layers without the argument
        # drop it, and a `training=` fixed when the model was built is kept.
        kwargs = {"training": True, **kwargs}
        if not layer.trainable_variables:
            return layer(*args, **kwargs), None
        if not registry.is_elem(layer):
            raise NotImplementedError(
                f"Layer {layer.name} ({type(layer).__name__}) has no per-example gradient-norm "
                "function in the registry.")
        base_vars, outputs, sqr_norm_fn = registry.lookup(layer)(layer, args, kwargs, tape,
                                                                 None)
        records.append((base_vars, sqr_norm_fn, layer.trainable_variables))
        return outputs, None

    variables = model.trainable_variables
    with tape:
        tape.watch(variables)
        outputs, _ = utils.model_forward_pass(model, x, generator)
        losses = loss_fn(y, outputs)
        summed_loss = tf.reduce_sum(losses)
    output_grads = tape.gradient(summed_loss, [r[0] for r in records],
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)
    norms = tf.sqrt(tf.add_n([fn(g) for g, (_, fn, _) in zip(output_grads, records)]))
    clip_weights = tf.stop_gradient(clip_grads.compute_clip_weights(l2_norm_clip, norms))
    by_variable = {}
    for (base_vars, _, weights), grads in zip(records, output_grads):
        shape = tf.concat([tf.shape(clip_weights), tf.ones([tf.rank(grads) - 1], tf.int32)], 0)
        weighted = grads * tf.cast(tf.reshape(clip_weights, shape), grads.dtype)
        layer_sums = tape.gradient(base_vars, weights, output_gradients=weighted,
                                   unconnected_gradients=tf.UnconnectedGradients.ZERO)
        for weight, value in zip(weights, layer_sums):
            key = weight.ref()  # A layer called twice adds both calls' sums.
            by_variable[key] = value if key not in by_variable else by_variable[key] + value
    del tape
    clipped_sum = [by_variable[v.ref()] if v.ref() in by_variable else tf.zeros_like(v)
                   for v in variables]
    return clipped_sum, losses, outputs, norms


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
        variables = self.classifier.trainable_variables
        clipped_sum, losses, logits, _ = clipped_gradient_sum(
            self.classifier, self._registry, x, y, self.task_loss, self.l2_norm_clip)
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
