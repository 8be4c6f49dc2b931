"""Prediction access for audits: "give me the outputs for these inputs".

A membership-inference audit only needs black-box access to a model's outputs,
so every attack in `mcmia_tf.audit` takes a `Predictor`. The same audit then runs
on a tf_keras model in memory, on a saved Keras model, or on a deployed `.tflite`
file: `tflite_export.TFLitePredictor` implements this protocol for LiteRT, and the
caller passes it in (the audit never imports the export package).

The module also turns raw outputs into the per-example quantities attacks use,
computed in float64 and in log space so that confident models do not saturate:

* log-probabilities `log p = log_softmax(z)` (or `log p` clipped away from 0),
* the per-example cross-entropy loss `-log p_y`,
* LiRA's logit-scaled confidence (Carlini et al., "Membership Inference Attacks
  From First Principles", S&P 2022, eq. 4):

      phi = log(p_y / (1 - p_y)) = z_y - logsumexp_{j != y} z_j   (from logits).
"""

import abc
import os
from typing import Optional, Union

import numpy as np

from mcmia_tf.compat import ensure_tf_keras_model, keras

__all__ = [
    "OUTPUT_TYPES",
    "Predictor",
    "KerasPredictor",
    "SavedModelPredictor",
    "as_predictor",
    "validate_outputs",
    "validate_labels",
    "log_probabilities",
    "per_example_loss",
    "logit_scaled_confidence",
]

OUTPUT_TYPES = ("logits", "probabilities")

# Smallest probability kept when outputs are probabilities: float32 softmax
# rounds tiny probabilities to 0, and log(0) would turn a confident model into -inf.
_MIN_PROBABILITY = 1e-45


class Predictor(abc.ABC):
    """Black-box access to a classifier's outputs.

    Attributes:
      output_type: "logits" (unnormalized scores) or "probabilities" (rows sum to 1).
      num_classes: length of an output row.
    """

    output_type: str
    num_classes: int

    @abc.abstractmethod
    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Returns outputs of shape `(len(x), num_classes)` as a float numpy array."""


def _check_output_type(output_type: str) -> str:
    if output_type not in OUTPUT_TYPES:
        raise ValueError(
            f"Invalid value for argument `output_type`. Expected one of {OUTPUT_TYPES}. "
            f"Received: output_type={output_type!r}")
    return output_type


def _ends_with_softmax(model) -> bool:
    """Whether the layer producing the model's output applies a softmax."""
    layer = model.layers[-1] if model.layers else None
    while isinstance(layer, keras.Model) and layer.layers:  # nested model as last layer
        layer = layer.layers[-1]
    if layer is None:
        return False
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or getattr(
        activation, "__name__", "") == "softmax"


class KerasPredictor(Predictor):
    """A `Predictor` over an in-memory tf_keras model.

    Args:
      model: a tf_keras model mapping a batch of inputs to a `(batch, num_classes)` output.
      output_type: "logits" or "probabilities"; by default "probabilities" when the last
        layer applies a softmax, else "logits" (the convention of `mcmia_tf.models`).
    """

    def __init__(self, model, output_type: Optional[str] = None):
        self.model = ensure_tf_keras_model(model)
        if len(self.model.outputs or [None]) != 1:
            raise ValueError(
                "Invalid value for argument `model`. Expected a model with one output of "
                f"shape (batch, num_classes). Received a model with {len(model.outputs)} "
                "outputs; wrap the classification head in its own model.")
        shape = self.model.output_shape
        if len(shape) != 2 or shape[-1] is None:
            raise ValueError(
                "Invalid value for argument `model`. Expected an output of shape "
                f"(batch, num_classes). Received: output_shape={shape}")
        self.num_classes = int(shape[-1])
        if output_type is None:
            output_type = "probabilities" if _ends_with_softmax(self.model) else "logits"
        self.output_type = _check_output_type(output_type)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        x = np.asarray(x)
        if len(x) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        # A direct inference-mode call: `model.predict` would build a tf.data pipeline and
        # trace a new tf.function for every model, and audits query many models.
        outputs = [np.asarray(self.model(x[i:i + batch_size], training=False))
                   for i in range(0, len(x), batch_size)]
        return np.concatenate(outputs, axis=0)


class SavedModelPredictor(KerasPredictor):
    """A `Predictor` over a saved tf_keras model (`.keras`, `.h5` or a SavedModel folder).

    Args:
      path: the saved model.
      output_type: as in `KerasPredictor`.
      custom_objects: passed to `keras.models.load_model` (e.g. custom layers).
    """

    def __init__(self, path: Union[str, os.PathLike], output_type: Optional[str] = None,
                 custom_objects: Optional[dict] = None):
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"Invalid value for argument `path`. No saved model at {path!r}. Save the "
                "model with `model.save(path)` (a `.keras` file or a SavedModel folder).")
        self.path = path
        model = keras.models.load_model(path, custom_objects=custom_objects, compile=False)
        super().__init__(model, output_type=output_type)


def as_predictor(obj, output_type: Optional[str] = None) -> Predictor:
    """Returns a `Predictor` for a predictor, a tf_keras model or a saved model's path.

    Args:
      obj: a `Predictor` (returned as is; e.g. `tflite_export.TFLitePredictor(path)`
        for a deployed `.tflite` file), a tf_keras model, or the path of a saved
        tf_keras model.
      output_type: overrides the detected output type for models and Keras paths.

    Returns:
      A `Predictor`.

    Raises:
      ValueError: for a `.tflite` path (pass a `TFLitePredictor` instead).
      TypeError: for any other object, including Keras 3 models.
    """
    if isinstance(obj, Predictor):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        path = os.fspath(obj)
        if path.endswith(".tflite"):
            raise ValueError(
                "Invalid value for argument `target`. A `.tflite` file runs on LiteRT, which "
                "the audit does not load itself: pass `tflite_export.TFLitePredictor(path)` "
                f"instead. Received: {path!r}")
        return SavedModelPredictor(path, output_type=output_type)
    if isinstance(obj, keras.Model):
        return KerasPredictor(obj, output_type=output_type)
    ensure_tf_keras_model(obj, argument_name="model")  # raises a Keras-3-specific message
    raise TypeError(f"Cannot build a Predictor from {obj!r}.")  # unreachable


def validate_outputs(outputs: np.ndarray, num_classes: Optional[int] = None,
                     argument_name: str = "outputs") -> np.ndarray:
    """Checks that outputs are a finite `(n, num_classes)` array; returns it as float64."""
    outputs = np.asarray(outputs)
    if outputs.ndim != 2 or (num_classes is not None and outputs.shape[1] != num_classes):
        expected = f"(n, {num_classes})" if num_classes is not None else "(n, num_classes)"
        raise ValueError(
            f"Invalid value for argument `{argument_name}`. Expected an array of shape "
            f"{expected}. Received: {argument_name}.shape={outputs.shape}")
    outputs = outputs.astype(np.float64)
    if not np.all(np.isfinite(outputs)):
        bad = int(np.sum(~np.all(np.isfinite(outputs), axis=1)))
        raise ValueError(
            f"Invalid value for argument `{argument_name}`. Expected finite model outputs. "
            f"Received {bad} rows with NaN or inf. The model diverged or overflowed; audit "
            "a model with finite outputs (check its training loss).")
    return outputs


def validate_labels(labels: np.ndarray, num_classes: int, length: Optional[int] = None,
                    argument_name: str = "labels") -> np.ndarray:
    """Checks that labels are integers in `[0, num_classes)`; returns them as int64."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or (length is not None and len(labels) != length):
        raise ValueError(
            f"Invalid value for argument `{argument_name}`. Expected a 1-D array of "
            f"{'length ' + str(length) if length is not None else 'integer labels'}. "
            f"Received: {argument_name}.shape={labels.shape}")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer)):
        if not np.all(np.equal(np.mod(labels, 1), 0)):
            raise ValueError(
                f"Invalid value for argument `{argument_name}`. Expected integer class "
                f"indices (sparse labels, not one-hot). Received dtype {labels.dtype}.")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"Invalid value for argument `{argument_name}`. Expected labels in "
            f"[0, {num_classes}). Received labels in [{labels.min()}, {labels.max()}].")
    return labels


def log_probabilities(outputs: np.ndarray, output_type: str) -> np.ndarray:
    """Per-example log-probabilities, float64, shape `(n, num_classes)`.

    Logits go through a max-shifted log-softmax; probabilities are clipped at
    1e-45 before the log (the smallest positive float32), as in Carlini et al.'s code.
    """
    outputs = validate_outputs(outputs)
    if _check_output_type(output_type) == "logits":
        shifted = outputs - outputs.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return np.log(np.maximum(outputs, _MIN_PROBABILITY))


def per_example_loss(outputs: np.ndarray, labels: np.ndarray, output_type: str) -> np.ndarray:
    """Cross-entropy `-log p_y` per example (Yeom et al.'s loss attack statistic)."""
    log_p = log_probabilities(outputs, output_type)
    labels = validate_labels(labels, log_p.shape[1], length=len(log_p))
    return -log_p[np.arange(len(labels)), labels]


def logit_scaled_confidence(outputs: np.ndarray, labels: np.ndarray,
                            output_type: str) -> np.ndarray:
    """LiRA's statistic `phi = log(p_y) - log(1 - p_y)` per example (Carlini et al. 2022).

    From logits, `phi = z_y - logsumexp_{j != y} z_j` exactly, with no cancellation
    even when `p_y` rounds to 1. From probabilities, `1 - p_y` is computed as the sum
    of the other classes (not `1 - p_y`, which is 0 once `p_y` rounds to 1).

    Args:
      outputs: `(n, num_classes)` logits or probabilities.
      labels: `(n,)` integer labels.
      output_type: "logits" or "probabilities".

    Returns:
      `(n,)` float64 array; approximately Gaussian across models for a fixed example,
      which is what LiRA's parametric test assumes.
    """
    outputs = validate_outputs(outputs)
    labels = validate_labels(labels, outputs.shape[1], length=len(outputs))
    rows = np.arange(len(labels))
    if _check_output_type(output_type) == "logits":
        true_logit = outputs[rows, labels]
        others = outputs.copy()
        others[rows, labels] = -np.inf
        max_other = others.max(axis=1, keepdims=True)
        logsumexp_others = max_other[:, 0] + np.log(np.exp(others - max_other).sum(axis=1))
        return true_logit - logsumexp_others
    true_p = outputs[rows, labels]
    others = outputs.copy()
    others[rows, labels] = 0.0
    return (np.log(np.maximum(true_p, _MIN_PROBABILITY))
            - np.log(np.maximum(others.sum(axis=1), _MIN_PROBABILITY)))
