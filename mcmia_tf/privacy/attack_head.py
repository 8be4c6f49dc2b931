"""The Nasr et al. membership-inference model used inside the min-max game.

Nasr, Shokri and Houmansadr, "Machine Learning with Membership Privacy using
Adversarial Regularization" (CCS 2018), Fig. 2: the inference model h sees the
classifier's prediction vector f(x) and the one-hot true label y and outputs
the probability that (x, y) was a training member:

    h(x, y, f(x)) = sigmoid( MLP_c( [ MLP_f(f(x)) ; MLP_y(onehot(y)) ] ) )

The paper's branches for 100 classes are 1024-512-64 (prediction) and 128-64
(label), combined by 256-128-64-1. `default_head_units` shrinks the head for
fewer classes: a 10-class head is not a 1024-wide layer fed by 10 numbers.

The head reads the classifier's logits and turns them into the prediction
vector itself (`PredictionTransform`), so gradients reach the classifier in the
min-max game and the representation is a constructor choice:

  * "softmax": p = softmax(z), Nasr et al.'s input;
  * "log_softmax": log p;
  * "logit_scaled": phi_j = log(p_j / (1 - p_j)), the per-class version of the
    statistic LiRA scores (Carlini et al., S&P 2022).

A well-fitted classifier puts p_y within 1e-4 of 1 on members and non-members
alike; an MLP cannot resolve such differences on the probability scale, while
phi spreads them over several units (log 1e-4 vs log 1e-5). Measured on an
overfit MLP on `digits` (the setting of tests/privacy/test_attack_head.py),
sorted heads on held-out pairs reached AUC 0.50-0.55 on probabilities and
0.62-0.64 on logit-scaled confidences.

Sorting the prediction vector (Salem et al., "ML-Leaks", NDSS 2019) makes the
prediction branch class-agnostic; the label branch still tells the head which
class the example belongs to.
"""

from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import keras

__all__ = [
    "PREDICTION_TRANSFORMS",
    "PredictionTransform",
    "SortDescending",
    "attack_features",
    "build_attack_head",
    "default_head_units",
    "logit_scaled_confidences",
]


PREDICTION_TRANSFORMS = ("softmax", "log_softmax", "logit_scaled")


def logit_scaled_confidences(logits: tf.Tensor) -> tf.Tensor:
    """phi_j = log p_j - log(1 - p_j) for every class j, stable in float32.

    phi_j = z_j - logsumexp_{k != j} z_k. For a class with p_j <= 1/2,
    log(1 - p_j) = log1p(-p_j) is exact; for the arg-max class, whose p_j may
    round to 1, the sum over the other classes is computed directly.

    Args:
      logits: (batch, num_classes).

    Returns:
      (batch, num_classes) log-odds.
    """
    logits = tf.convert_to_tensor(logits)
    log_p = tf.nn.log_softmax(logits, axis=-1)
    top = tf.cast(tf.one_hot(tf.argmax(logits, axis=-1), tf.shape(logits)[-1]), tf.bool)
    # Non-arg-max classes: p_j <= 1/2, so log(1 - p_j) = log1p(-exp(log p_j)) keeps
    # full precision. (For the arg-max class the value is discarded below.)
    log_not_p = tf.math.log1p(-tf.exp(tf.minimum(log_p, np.log(0.5))))
    others = tf.where(top, tf.fill(tf.shape(logits), tf.constant(-np.inf, logits.dtype)),
                      logits)
    top_phi = tf.reduce_max(logits, axis=-1, keepdims=True) - tf.reduce_logsumexp(
        others, axis=-1, keepdims=True)
    return tf.where(top, tf.broadcast_to(top_phi, tf.shape(logits)), log_p - log_not_p)


@keras.utils.register_keras_serializable(package="mcmia_tf")
class PredictionTransform(keras.layers.Layer):
    """Logits -> the attack head's view of the prediction vector.

    Args:
      mode: one of `PREDICTION_TRANSFORMS`.
      **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(self, mode: str = "logit_scaled", **kwargs):
        super().__init__(**kwargs)
        if mode not in PREDICTION_TRANSFORMS:
            raise ValueError(f"Invalid value for argument `prediction_transform`. Expected one "
                             f"of {PREDICTION_TRANSFORMS}. Received: prediction_transform={mode!r}")
        self.mode = mode

    def call(self, logits):
        if self.mode == "softmax":
            return tf.nn.softmax(logits, axis=-1)
        if self.mode == "log_softmax":
            return tf.nn.log_softmax(logits, axis=-1)
        return logit_scaled_confidences(logits)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.utils.register_keras_serializable(package="mcmia_tf")
class SortDescending(keras.layers.Layer):
    """Sorts the last axis in decreasing order (a prediction vector's top-k view)."""

    def call(self, inputs):
        return tf.sort(inputs, axis=-1, direction="DESCENDING")


def default_head_units(num_classes: int) -> Tuple[Tuple[int, ...], Tuple[int, ...],
                                                Tuple[int, ...]]:
    """Branch widths (prediction, label, combined) that grow with the number of classes.

    From 64 classes on, Nasr et al.'s CIFAR-100 head: (1024, 512, 64),
    (128, 64), (256, 128, 64). Below, one layer per branch: (256, 64), (64,),
    (128, 64) up to 32 classes and (64,), (16,), (64,) up to 16. The small head
    matters on small data: on `digits` (10 classes, 450 training pairs) it
    reached a held-out AUC of 0.64 where the Nasr-sized head over-fitted its
    training pairs and stayed at 0.56.

    Args:
      num_classes: size of the prediction vector.

    Returns:
      Three tuples of layer widths.
    """
    if num_classes <= 16:
        return (64,), (16,), (64,)
    if num_classes <= 32:
        return (256, 64), (64,), (128, 64)
    return (1024, 512, 64), (128, 64), (256, 128, 64)


def _check_units(units, argument: str) -> Tuple[int, ...]:
    units = tuple(units)
    if not units or any(isinstance(u, bool) or not isinstance(u, (int, np.integer)) or u < 1
                        for u in units):
        raise ValueError(f"Invalid value for argument `{argument}`. Expected a non-empty "
                         f"sequence of positive integers. Received: {argument}={units!r}")
    return tuple(int(u) for u in units)


def build_attack_head(num_classes: int,
                      *,
                      prediction_transform: str = "logit_scaled",
                      sort_predictions: bool = True,
                      prediction_units: Optional[Sequence[int]] = None,
                      label_units: Optional[Sequence[int]] = None,
                      combined_units: Optional[Sequence[int]] = None,
                      seed: int = 0,
                      name: str = "attack_head") -> keras.Model:
    """Builds the Nasr et al. (CCS 2018) inference model h(f(x), y).

    Args:
      num_classes: number of classes of the classifier under attack.
      prediction_transform: how logits become the prediction vector, one of
        `PREDICTION_TRANSFORMS` ("softmax" is Nasr et al.'s input).
      sort_predictions: sort the prediction vector in decreasing order before
        the prediction branch (ML-Leaks style, class-agnostic).
      prediction_units: widths of the prediction branch (ReLU).
      label_units: widths of the one-hot label branch (ReLU).
      combined_units: widths of the combining MLP (ReLU) before the final
        sigmoid unit. Each of the three defaults to
        `default_head_units(num_classes)`.
      seed: seed of the Glorot-uniform initialisers (layer i uses seed + i).
      name: model name.

    Returns:
      An uncompiled Functional tf_keras model with inputs
      `[logits (batch, num_classes), one_hot_labels (batch, num_classes)]`
      and output `(batch, 1)`: the membership probability h in (0, 1).

    Raises:
      ValueError: if `num_classes < 2` or a widths argument is not a sequence
        of positive integers.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2:
        raise ValueError("Invalid value for argument `num_classes`. Expected an integer >= 2. "
                         f"Received: num_classes={num_classes!r}")
    num_classes = int(num_classes)
    defaults = default_head_units(num_classes)
    prediction_units = defaults[0] if prediction_units is None else prediction_units
    label_units = defaults[1] if label_units is None else label_units
    combined_units = defaults[2] if combined_units is None else combined_units
    prediction_units = _check_units(prediction_units, "prediction_units")
    label_units = _check_units(label_units, "label_units")
    combined_units = _check_units(combined_units, "combined_units")

    layer_index = iter(range(10_000))

    def dense(units, activation, layer_name):
        return keras.layers.Dense(
            units, activation=activation, name=layer_name,
            kernel_initializer=keras.initializers.GlorotUniform(seed=seed + next(layer_index)))

    logits = keras.Input(shape=(num_classes,), name="logits")
    labels = keras.Input(shape=(num_classes,), name="one_hot_labels")

    h_pred = PredictionTransform(prediction_transform, name="prediction_transform")(logits)
    if sort_predictions:
        h_pred = SortDescending(name="sort_predictions")(h_pred)
    for i, units in enumerate(prediction_units):
        h_pred = dense(units, "relu", f"prediction_{i}")(h_pred)
    h_label = labels
    for i, units in enumerate(label_units):
        h_label = dense(units, "relu", f"label_{i}")(h_label)
    h = keras.layers.Concatenate(name="combine")([h_pred, h_label])
    for i, units in enumerate(combined_units):
        h = dense(units, "relu", f"combined_{i}")(h)
    membership = dense(1, "sigmoid", "membership")(h)
    return keras.Model([logits, labels], membership, name=name)


def attack_features(classifier: keras.Model,
                    x: np.ndarray,
                    y: np.ndarray,
                    *,
                    batch_size: int = 512) -> Tuple[np.ndarray, np.ndarray]:
    """The attack head's inputs for examples (x, y): the logits f(x) and onehot(y).

    Args:
      classifier: a tf_keras model whose outputs are logits.
      x: inputs.
      y: integer labels.
      batch_size: prediction batch size.

    Returns:
      `(logits, one_hot_labels)`, float32 arrays of shape (len(x), num_classes).
    """
    ensure_tf_keras_model(classifier, "classifier")
    logits = np.asarray(classifier.predict(x, batch_size=batch_size, verbose=0), np.float32)
    one_hot = np.eye(logits.shape[-1], dtype=np.float32)[np.asarray(y, dtype=np.int64)]
    return logits, one_hot
