"""Pruning + 8-bit quantization: prune-preserving quantization-aware training.

The reweighted framework (Zhang et al. 2020) combines pruning with quantization.
Here the pruned model goes through tfmot's quantization-aware training with the
`Default8BitPrunePreserveQuantizeScheme` (tfmot's collaborative optimization,
"PQAT"): the fake-quantized kernels are multiplied by the fixed sparsity masks of the
pruned model, so fine-tuning under 8-bit quantization keeps every zero. The result
converts to an int8 TFLite model with `tf.lite.Optimize.DEFAULT`.
"""

import numpy as np
import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import keras
from mcmia_tf.pruning import registry

__all__ = ["prune_preserving_quantization", "quantization_scope", "kernel_zero_masks"]


def kernel_zero_masks(model: keras.Model) -> dict:
    """{layer path: boolean array of the zeros of its kernel}, for checks."""
    return {w.path: w.variable.numpy() == 0 for w in registry.find_prunable_weights(model)}


def prune_preserving_quantization(model: keras.Model) -> keras.Model:
    """Wraps a pruned (stripped) model for sparsity-preserving 8-bit QAT.

    Args:
      model: a plain Sequential/Functional tf_keras model with exact zeros, e.g.
        `pruner.strip(model)`.

    Returns:
      A new model with tfmot quantize wrappers; compile it and `fit` a few epochs.
      Its kernels keep the zeros of `model`.

    Raises:
      ValueError: if `model` has no zero weights (nothing to preserve: prune first).
    """
    model = ensure_tf_keras_model(model)
    registry.resolve_pruning_target(model)  # Sequential/Functional check.
    zeros = sum(int(np.sum(mask)) for mask in kernel_zero_masks(model).values())
    if zeros == 0:
        raise ValueError(
            "Invalid value for argument `model`. It has no zero weights, so there is no "
            "sparsity to preserve. Prune it first and pass `pruner.strip(model)`.")
    quantize = tfmot.quantization.keras
    scheme = tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    annotated = quantize.quantize_annotate_model(model)
    return quantize.quantize_apply(annotated, scheme)


def quantization_scope():
    """Scope for `keras.models.load_model` of a quantization-aware model."""
    return tfmot.quantization.keras.quantize_scope()
