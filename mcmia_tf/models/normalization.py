"""The normalisation layer of the zoo's BN architectures: batch (default) or group norm.

BatchNormalization mixes the examples of a batch through its statistics, so an
example's gradient depends on the others and per-example clipping (DP-SGD) is not
defined for it. `norm="group"` swaps every BatchNormalization for a
GroupNormalization with gcd(channels, 32) groups (Wu & He, ECCV 2018, use 32;
the gcd keeps the group count a divisor of narrow layers), as DP-SGD on ResNets
does (e.g. De et al., 2022). Layer names stay the same, so per-layer options
keyed by name carry over.

`recompute_batch_norm` replaces BatchNormalization's moving averages with the
statistics of the final weights (PreciseBN; see its docstring).
"""

import math
from typing import List

import numpy as np

from mcmia_tf.compat import keras

__all__ = ["NORMS", "batch_norm_layers", "check_norm", "normalization", "recompute_batch_norm"]

NORMS = ("batch", "group")
_MAX_GROUPS = 32


def check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"Invalid value for argument `norm`. Expected one of {NORMS} ('group' "
                         f"for DP-SGD, which cannot clip through batch statistics). "
                         f"Received: norm={norm!r}")
    return norm


def normalization(x, norm: str, name: str):
    """Applies batch or group normalisation to `x` (channels last)."""
    if check_norm(norm) == "batch":
        return keras.layers.BatchNormalization(name=name)(x)
    groups = math.gcd(int(x.shape[-1]), _MAX_GROUPS)
    return keras.layers.GroupNormalization(groups=groups, name=name)(x)


# SyncBatchNormalization is not a BatchNormalization subclass in tf_keras.
_BATCH_NORMS = (keras.layers.BatchNormalization, keras.layers.experimental.SyncBatchNormalization)


def batch_norm_layers(model: keras.Model) -> List[keras.layers.Layer]:
    """Every (Sync)BatchNormalization layer of `model`: nested models and the layer
    inside a `keras.layers.Wrapper` included."""
    found = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, keras.layers.Wrapper) else layer
        if isinstance(inner, _BATCH_NORMS):
            found.append(inner)
        elif isinstance(inner, keras.Model):
            found.extend(batch_norm_layers(inner))
    return found


def recompute_batch_norm(model: keras.Model, x: np.ndarray, batch_size: int = 128) -> int:
    """Sets every BatchNormalization's moving statistics to their value under the final weights.

    Keras estimates the inference statistics with an exponential moving average
    over the training batches (momentum 0.99: about the last 100 steps). When the
    weights move fast relative to that window (short runs on few examples, and
    above all pruning, whose mask updates and penalty change a layer's outputs
    within a few steps) the averages describe earlier weights, and the model in
    inference mode can be far worse than in training mode (measured here:
    MobileNetV2 pruned to 90% at 17% in inference mode and 68% in training mode).
    PreciseBN (Wu & Johnson, "Rethinking 'Batch' in BatchNorm", arXiv 2105.07576)
    recomputes them with the weights frozen: the mean over K equal batches of the
    per-batch statistics,

        mu = 1/K sum_k mean_k,     sigma^2 = 1/K sum_k var_k,

    which is what EagleEye's "adaptive batch normalization" does after pruning
    (Li et al., ECCV 2020). Each batch runs in training mode (every BN normalises
    with its batch's statistics, as during training, so a layer's inputs do not
    depend on the statistics being recomputed); the running average is made an
    equal-weight one by setting each layer's momentum to k / (k + 1) at batch k
    (restored afterwards). Only the moving statistics change; no weight does.

    Use training data only (the members): the statistics are part of the trained
    model. Never on a DP-SGD model's private data outside its accounting (the zoo's
    DP models use group normalisation, which has no such statistics).

    Args:
      model: a tf_keras model (models without BatchNormalization are left as they are).
      x: inputs to compute the statistics on, without augmentation (what the
        model sees at inference); the last partial batch is dropped so that every
        batch weighs the same.
      batch_size: examples per batch (the training batch size: per-batch variances
        depend on it).

    Returns:
      The number of BatchNormalization layers recomputed.

    Raises:
      ValueError: if `x` holds fewer than `batch_size` examples.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
            batch_size < 2:
        raise ValueError("Invalid value for argument `batch_size`. Expected an integer >= 2 "
                         f"(a variance needs two examples). Received: batch_size={batch_size!r}")
    num_batches = len(x) // batch_size
    if num_batches == 0:
        raise ValueError(f"Invalid value for argument `x`. Expected at least batch_size="
                         f"{batch_size} examples. Received: {len(x)} examples.")
    momenta = [layer.momentum for layer in layers]
    try:
        for k in range(num_batches):
            for layer in layers:
                layer.momentum = k / (k + 1)  # moving <- (k * moving + batch) / (k + 1)
            # Eager call: each layer reads its momentum now, not from a traced function.
            model(x[k * batch_size:(k + 1) * batch_size], training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(layers)
