"""tf_keras model -> `.tflite` bytes, in the four post-training modes TFLite offers.

| mode           | weights  | activations | input/output | needs calibration data |
|----------------|----------|-------------|--------------|------------------------|
| `float32`      | float32  | float32     | float32      | no                     |
| `float16`      | float16  | float32     | float32      | no                     |
| `dynamic_int8` | int8     | float32 (quantised on the fly) | float32 | no      |
| `int8`         | int8     | int8        | int8         | yes (training split)   |

`sparse=True` adds `tf.lite.Optimize.EXPERIMENTAL_SPARSITY`: the converter then
stores a constant tensor in TFLite's sparse (CSR-like) format when at least 30%
of it is zero, and inserts a DENSIFY op where a kernel cannot use it directly.
Whether that beats plain zip compression of the dense file depends on the
model: measure both (`inspection.zipped_size`).

Pruning wrappers (`tfmot.sparsity.keras.prune_low_magnitude`) are stripped
automatically. Quantisation-aware models (`tfmot.quantization.keras`, including
the prune-preserving scheme) carry their own ranges, so `int8` needs no
calibration data for them and their zeros stay exact zeros.
"""

from typing import Callable, Iterator, Optional

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import ensure_tf_keras_model, keras
from tflite_export.metadata import ModelMetadata, embed_metadata

__all__ = ["MODES", "strip_for_export", "is_quantization_aware", "representative_dataset",
           "convert"]

MODES = ("float32", "float16", "dynamic_int8", "int8")

_QUANTIZE_WRAPPERS = (tfmot.quantization.keras.QuantizeWrapper,
                      tfmot.quantization.keras.QuantizeWrapperV2)


def _pruning_wrapper_class() -> type:
    """tfmot's `PruneLowMagnitude` wrapper, which its public API does not export.

    `prune_scope()` (public) registers it under its class name for deserialisation;
    reading it back from that scope avoids importing tfmot's internal module.
    """
    with tfmot.sparsity.keras.prune_scope():
        wrapper = keras.utils.get_registered_object("PruneLowMagnitude")
    if not isinstance(wrapper, type):
        raise ImportError("tfmot.sparsity.keras.prune_scope() no longer registers "
                          "`PruneLowMagnitude`; update tflite_export.converter.")
    return wrapper


_PRUNING_WRAPPER = _pruning_wrapper_class()


def _has_pruning_wrappers(model: keras.Model) -> bool:
    return any(isinstance(layer, _PRUNING_WRAPPER)
               or (isinstance(layer, keras.Model) and _has_pruning_wrappers(layer))
               for layer in model.layers)


def is_quantization_aware(model: keras.Model) -> bool:
    """Whether `model` was prepared with `tfmot.quantization.keras.quantize_apply`."""
    return any(isinstance(layer, _QUANTIZE_WRAPPERS) for layer in model.layers)


def strip_for_export(model: keras.Model) -> keras.Model:
    """Returns `model` without training-time pruning wrappers.

    `strip_pruning` copies each wrapped layer with its masked weights, so the
    zeros the pruning schedule produced are exact zeros in the result.

    Raises:
      TypeError: for a Keras 3 model or a non-model.
    """
    model = ensure_tf_keras_model(model)
    if _has_pruning_wrappers(model):
        model = tfmot.sparsity.keras.strip_pruning(model)
    return model


def representative_dataset(x: np.ndarray, num_examples: int = 256,
                           seed: int = 0) -> Callable[[], Iterator[list]]:
    """Calibration examples for full-integer quantisation, drawn without replacement.

    Args:
      x: model inputs from the training split (never the test split: the
        quantisation ranges are a fitted parameter like any other).
      num_examples: how many examples calibrate the activation ranges
        (TFLite's guide suggests 100-500).
      seed: seed of the draw.

    Returns:
      A generator function yielding `[example[None]]`, as
      `TFLiteConverter.representative_dataset` expects.
    """
    x = np.asarray(x, np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError("Invalid value for argument `representative_data`. Expected a "
                         "non-empty batch of model inputs from the training split. Received "
                         f"an array of shape {x.shape}.")
    if num_examples < 1:
        raise ValueError("Invalid value for argument `num_calibration_examples`. Expected a "
                         f"positive integer. Received: num_calibration_examples={num_examples}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(x), size=min(num_examples, len(x)), replace=False)

    def generator():
        for index in chosen:
            yield [x[index:index + 1]]

    return generator


def convert(model: keras.Model,
            mode: str = "float32",
            *,
            sparse: bool = False,
            representative_data: Optional[np.ndarray] = None,
            num_calibration_examples: int = 256,
            seed: int = 0,
            metadata: Optional[ModelMetadata] = None) -> bytes:
    """Converts a tf_keras model to a serialised TFLite model.

    Args:
      model: a tf_keras model (pruning wrappers are stripped here).
      mode: one of `MODES` (see the module table).
      sparse: store pruned tensors in TFLite's sparse format
        (`Optimize.EXPERIMENTAL_SPARSITY`). Not for TFLite Micro, which has no
        DENSIFY kernel.
      representative_data: training-split inputs calibrating `int8` activation
        ranges; required for `int8` unless the model is quantisation-aware.
      num_calibration_examples: how many of them to use.
      seed: seed of the calibration draw.
      metadata: embedded in the file (`metadata.read_metadata` reads it back).

    Returns:
      The `.tflite` bytes.

    Raises:
      ValueError: for an unknown mode, or `int8` without calibration data.
      TypeError: for a Keras 3 model.
    """
    if mode not in MODES:
        raise ValueError(f"Invalid value for argument `mode`. Expected one of {MODES}. "
                         f"Received: mode={mode!r}")
    model = strip_for_export(model)
    quantization_aware = is_quantization_aware(model)
    if quantization_aware and mode in ("float32", "float16"):
        raise ValueError(
            f"Invalid value for argument `mode`. A quantisation-aware model converts to "
            f"'int8' or 'dynamic_int8' only. Received: mode={mode!r}. Convert the float "
            "model it was built from instead.")
    if mode == "int8" and representative_data is None and not quantization_aware:
        raise ValueError(
            "Invalid value for argument `representative_data`. Mode 'int8' calibrates "
            "activation ranges on real inputs: pass `representative_data=x_train` (a few "
            "hundred training-split examples), or use mode='dynamic_int8' which needs none.")

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [] if mode == "float32" else [tf.lite.Optimize.DEFAULT]
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative_data is not None:
            converter.representative_dataset = representative_dataset(
                representative_data, num_calibration_examples, seed)
        if not quantization_aware:
            # Fail at conversion rather than fall back to float kernels.
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    content = converter.convert()
    if metadata is not None:
        content = embed_metadata(content, metadata)
    return bytes(content)
