"""The min-max game of Nasr et al. as a Keras `train_step` (adversarial regularization).

Nasr, Shokri and Houmansadr, "Machine Learning with Membership Privacy using
Adversarial Regularization" (CCS 2018), Eq. (7) and Algorithm 1:

    min_f  L_D(f) + lambda * max_h G(h, f)
    G(h, f) = mean_{(x,y) in D}  log h(x, y, f(x))
            + mean_{(x,y) in D'} log(1 - h(x, y, f(x)))

D are the training members (the data given to `fit`), D' the defender's
reference non-members (disjoint from D). Every `train_step`:

  1. k ascent steps on h (the attack head) over (member batch, reference
     batch) pairs, with the classifier called in inference mode;
  2. one descent step on f over the member batch:
         L_D(f) + lambda * mean_{D} log h(x, y, f(x))   ("log", Algorithm 1)
     or  L_D(f) + lambda * mean_{D} (h(x, y, f(x)) - 1/2)  ("linear", the
     authors' released code), plus the classifier's own losses (weight
     regularizers, dynamic-regularization penalties).

Two tapes over disjoint weights and two optimizers, as in Keras' GAN examples.
The classifier is called in training mode exactly once per step: tfmot's
`PruneLowMagnitude` increments its pruning step on every training-mode call,
so pruning schedules count optimizer steps, not forward passes.

Under a `tf.distribute` strategy with R replicas each replica sees B/R members
and draws its own reference batch (so the head sees R reference batches per
step), and the optimizers SUM the replicas' gradients.
Every objective is therefore divided by R before differentiation (the task loss
through `tf.nn.compute_average_loss` over the global batch, the classifier's own
losses through `tf.nn.scale_regularization_loss`), so one step follows the same
gradient as on one device; the reported metrics are the unscaled values.
"""

import math
from typing import Optional

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import keras
from mcmia_tf.privacy.attack_head import build_attack_head

__all__ = ["MinMaxModel", "PRIVACY_GAINS"]

PRIVACY_GAINS = ("log", "linear")

# Keeps log(h) and log(1 - h) finite; the same epsilon Keras' binary
# cross-entropy clips probabilities with.
_EPSILON = 1e-7


class _ReferenceStream:
    """Holds the reference-batch iterator outside Keras' object tracking.

    A tf.data iterator assigned to a Model attribute would be tracked and
    written into checkpoints of the model; the stream is training input, not
    model state.
    """

    def __init__(self, iterator, size: int, batch_size: int):
        self.iterator = iterator
        self.size = size
        self.batch_size = batch_size


def _num_replicas() -> float:
    """R, the replicas whose gradients an optimizer step sums (1 without a strategy)."""
    return float(tf.distribute.get_replica_context().num_replicas_in_sync)


def _check_non_negative_float(value, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"Invalid value for argument `{argument}`. Expected a finite float >= 0 "
                         f"(0 disables the privacy term). Received: {argument}={value!r}")
    return float(value)


def _check_positive_int(value, argument: str, hint: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Invalid value for argument `{argument}`. Expected an integer >= 1"
                         f"{hint}. Received: {argument}={value!r}")
    return int(value)


@keras.utils.register_keras_serializable(package="mcmia_tf")
class MinMaxModel(keras.Model):
    """A classifier trained against a membership-inference head (Nasr et al. 2018).

    Usage:

    ```python
    classifier = build_model("lenet5", input_shape=(28, 28, 1), num_classes=10)
    model = MinMaxModel(classifier, privacy_weight=3.0, attack_steps=1,
                        reference_data=(x_ref, y_ref), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  attack_optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_members, y_members, batch_size=128, epochs=30)
    model.classifier.save("defended.keras")   # the deployable model
    ```

    Pruning callbacks act on `pruning_target` (the classifier); its `losses`
    (penalties, regularizers) are added to the classifier objective.

    Metrics: `loss` is the classifier's task loss L_D (so `loss` and
    `val_loss` are comparable and their gap measures over-fitting),
    `accuracy` its accuracy, `privacy_loss` the term lambda * privacy gain
    of the classifier step, `attack_gain` G(h, f) and `attack_accuracy` the
    head's balanced accuracy on the last (member, reference) pair of batches.

    Args:
      classifier: a tf_keras model with logit outputs and integer labels.
      attack_head: an inference model `h([logits, one_hot_labels])` with a
        sigmoid output; defaults to
        `build_attack_head(num_classes, seed=seed)`.
      privacy_weight: lambda >= 0, the weight of the privacy gain in the
        classifier objective. 0 trains the classifier as if undefended (the
        head still trains, so its metrics show the leakage). The default 3
        with k = 1 and the "log" gain cut the train/test cross-entropy gap of
        LeNet-5 on 10,000 Fashion-MNIST members from 0.49 to 0.15 for 1.2
        points of test accuracy, yet a global loss-threshold attack's AUC did
        not drop (0.543 -> 0.554; README, "Defences"). On `digits` (a few
        hundred examples) the game cost accuracy and widened the gap.
      attack_steps: k >= 1, attack-head steps per classifier step.
      privacy_gain: "log" (Nasr et al., Algorithm 1: lambda * mean log h on
        members) or "linear" (the authors' released code: lambda *
        mean(h - 1/2) on members; bounded gradients).
      reference_data: `(x_ref, y_ref)`, the defender's reference non-members
        D'. May be set later with `set_reference_data`.
      reference_batch_size: reference examples per attack step (capped at
        the reference set size).
      seed: seed of the default attack head and of the reference shuffling.
      **kwargs: passed to `keras.Model` (e.g. `name`).
    """

    def __init__(self,
                 classifier: keras.Model,
                 attack_head: Optional[keras.Model] = None,
                 *,
                 privacy_weight: float = 3.0,
                 attack_steps: int = 1,
                 privacy_gain: str = "log",
                 reference_data=None,
                 reference_batch_size: int = 128,
                 seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        classifier = ensure_tf_keras_model(classifier, "classifier")
        self.privacy_weight = _check_non_negative_float(privacy_weight, "privacy_weight")
        self.attack_steps = _check_positive_int(
            attack_steps, "attack_steps", " (the number of attack-head steps per classifier step)")
        if privacy_gain not in PRIVACY_GAINS:
            raise ValueError(f"Invalid value for argument `privacy_gain`. Expected one of "
                             f"{PRIVACY_GAINS}. Received: privacy_gain={privacy_gain!r}")
        self.privacy_gain = privacy_gain
        self.reference_batch_size = _check_positive_int(reference_batch_size,
                                                        "reference_batch_size")
        self.seed = int(seed)
        self.num_classes = int(classifier.output_shape[-1])
        self.classifier = classifier
        if attack_head is None:
            attack_head = build_attack_head(self.num_classes, seed=self.seed)
        self.attack_head = ensure_tf_keras_model(attack_head, "attack_head")
        self._reference = None
        if reference_data is not None:
            self.set_reference_data(*reference_data)

        self._loss_tracker = keras.metrics.Mean(name="loss")
        self._accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        self._privacy_loss_tracker = keras.metrics.Mean(name="privacy_loss")
        self._attack_gain_tracker = keras.metrics.Mean(name="attack_gain")
        self._attack_accuracy_tracker = keras.metrics.Mean(name="attack_accuracy")

    @property
    def pruning_target(self) -> keras.Model:
        """The sub-model that pruning callbacks prune: the classifier."""
        return self.classifier

    def set_reference_data(self, x, y) -> None:
        """Sets the reference non-members D' streamed to the attack-head steps.

        Args:
          x: reference inputs, disjoint from the members given to `fit`.
          y: their integer labels.

        Raises:
          ValueError: if the reference set is empty or x and y differ in length.
        """
        x = np.asarray(x)
        y = np.asarray(y).reshape(-1).astype(np.int64)
        if len(x) == 0:
            raise ValueError("Invalid value for argument `reference_data`. Expected a non-empty "
                             "reference set D' of non-members (e.g. `split.reference` of a "
                             "`MembershipSplit` created with num_reference > 0). Received 0 "
                             "examples.")
        if len(x) != len(y):
            raise ValueError(f"Reference inputs and labels differ in length: {len(x)} vs {len(y)}.")
        batch_size = min(self.reference_batch_size, len(x))
        dataset = (tf.data.Dataset.from_tensor_slices((x, y))
                   .shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
                   .repeat()
                   .batch(batch_size, drop_remainder=True)
                   .prefetch(2))
        self._reference = _ReferenceStream(iter(dataset), len(x), batch_size)
        # A compiled train function captured the previous iterator.
        self.train_function = None

    @property
    def reference_size(self) -> int:
        """Number of reference examples (0 when none are set)."""
        return 0 if self._reference is None else self._reference.size

    def compile(self, optimizer="adam", attack_optimizer="adam", loss=None, **kwargs):
        """Configures both players.

        Args:
          optimizer: the classifier's optimizer.
          attack_optimizer: the attack head's optimizer (a different instance:
            the two players must not share optimizer state).
          loss: the classifier's task loss on logits, e.g.
            `keras.losses.SparseCategoricalCrossentropy(from_logits=True)`;
            that one is the default.
          **kwargs: other `keras.Model.compile` arguments (`run_eagerly`,
            `jit_compile`, ...). `metrics` is not supported: the model reports
            its own.
        """
        if "metrics" in kwargs:
            raise ValueError("MinMaxModel reports its own metrics (loss, accuracy, privacy_loss, "
                             "attack_gain, attack_accuracy); remove the `metrics` argument.")
        super().compile(optimizer=optimizer, **kwargs)
        self.attack_optimizer = keras.optimizers.get(attack_optimizer)
        if self.attack_optimizer is self.optimizer:
            raise ValueError("Invalid value for argument `attack_optimizer`. Expected an "
                             "optimizer instance different from `optimizer`; the two players "
                             "must not share slots. Pass e.g. `keras.optimizers.Adam(1e-3)`.")
        self.task_loss = keras.losses.get(
            loss or keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    @property
    def metrics(self):
        return [self._loss_tracker, self._accuracy, self._privacy_loss_tracker,
                self._attack_gain_tracker, self._attack_accuracy_tracker]

    def call(self, inputs, training=None):
        return self.classifier(inputs, training=training)

    def _head_inputs(self, logits, labels):
        return [logits, tf.one_hot(labels, self.num_classes)]

    def _mean_task_loss(self, y, logits, sample_weight):
        """sum_i w_i l_i / n over this replica's n examples (Keras' default reduction).

        Computed from per-example losses because a `Loss` object refuses its own
        batch reduction inside a custom `train_step` under a `tf.distribute` strategy.
        """
        loss = self.task_loss
        per_example = loss.call(y, logits) if isinstance(loss, keras.losses.Loss) else loss(
            y, logits)
        return tf.nn.compute_average_loss(per_example, sample_weight=sample_weight,
                                          global_batch_size=tf.shape(per_example)[0])

    def _attack_step(self, member_inputs):
        """One ascent step of the attack head; returns (gain, balanced accuracy)."""
        x_ref, y_ref = next(self._reference.iterator)
        reference_inputs = self._head_inputs(self.classifier(x_ref, training=False), y_ref)
        with tf.GradientTape() as tape:
            h_member = self.attack_head(member_inputs, training=True)
            h_reference = self.attack_head(reference_inputs, training=True)
            gain = (tf.reduce_mean(tf.math.log(tf.clip_by_value(h_member, _EPSILON, 1.0)))
                    + tf.reduce_mean(
                        tf.math.log(tf.clip_by_value(1.0 - h_reference, _EPSILON, 1.0))))
            attack_loss = -gain
            if self.attack_head.losses:
                attack_loss += tf.add_n(self.attack_head.losses)
            # Replicas' gradients are summed: each contributes 1/R of the mean.
            scaled_attack_loss = attack_loss / _num_replicas()
        self.attack_optimizer.minimize(scaled_attack_loss, self.attack_head.trainable_variables,
                                       tape=tape)
        accuracy = 0.5 * (tf.reduce_mean(tf.cast(h_member > 0.5, tf.float32))
                          + tf.reduce_mean(tf.cast(h_reference <= 0.5, tf.float32)))
        return gain, accuracy

    def train_step(self, data):
        if self._reference is None:
            raise ValueError("MinMaxModel has no reference data D'. Pass "
                             "`reference_data=(x_ref, y_ref)` to the constructor or call "
                             "`set_reference_data(x_ref, y_ref)` before `fit`.")
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        labels = tf.cast(tf.reshape(y, [-1]), tf.int64)

        # Max over h. The classifier is fixed during these steps, so the member
        # predictions are computed once (inference mode: no pruning-step tick).
        member_inputs = [tf.stop_gradient(t) for t in
                         self._head_inputs(self.classifier(x, training=False), labels)]
        for _ in range(self.attack_steps):
            gain, attack_accuracy = self._attack_step(member_inputs)

        # Min over f: the only training-mode call of the classifier in this step.
        with tf.GradientTape() as tape:
            logits = self.classifier(x, training=True)
            task_loss = self._mean_task_loss(y, logits, sample_weight)
            h_member = self.attack_head(self._head_inputs(logits, labels), training=False)
            if self.privacy_gain == "log":
                privacy = tf.reduce_mean(tf.math.log(tf.clip_by_value(h_member, _EPSILON, 1.0)))
            else:
                privacy = tf.reduce_mean(h_member - 0.5)
            privacy_loss = self.privacy_weight * privacy
            # Replicas' gradients are summed: each contributes 1/R of the mean.
            objective = (task_loss + privacy_loss) / _num_replicas()
            if self.classifier.losses:
                objective += tf.nn.scale_regularization_loss(tf.add_n(self.classifier.losses))
        self.optimizer.minimize(objective, self.classifier.trainable_variables, tape=tape)

        self._loss_tracker.update_state(task_loss)
        self._accuracy.update_state(labels, logits, sample_weight=sample_weight)
        self._privacy_loss_tracker.update_state(privacy_loss)
        self._attack_gain_tracker.update_state(gain)
        self._attack_accuracy_tracker.update_state(attack_accuracy)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        logits = self.classifier(x, training=False)
        self._loss_tracker.update_state(self._mean_task_loss(y, logits, sample_weight))
        self._accuracy.update_state(tf.reshape(y, [-1]), logits, sample_weight=sample_weight)
        return {m.name: m.result() for m in (self._loss_tracker, self._accuracy)}

    def get_config(self):
        return {
            "classifier": keras.saving.serialize_keras_object(self.classifier),
            "attack_head": keras.saving.serialize_keras_object(self.attack_head),
            "privacy_weight": self.privacy_weight,
            "attack_steps": self.attack_steps,
            "privacy_gain": self.privacy_gain,
            "reference_batch_size": self.reference_batch_size,
            "seed": self.seed,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuilds the model; reference data is not part of the config.

        Call `set_reference_data` on the result before training it further.
        """
        config = dict(config)
        for key in ("classifier", "attack_head"):
            config[key] = keras.saving.deserialize_keras_object(
                config[key], custom_objects=custom_objects)
        return cls(**config)
