"""The normalisation layer of the zoo's BN architectures: batch (default) or group norm.

BatchNormalization mixes the examples of a batch through its statistics, so an
example's gradient depends on the others and per-example clipping (DP-SGD) is not
defined for it. `norm="group"` swaps every BatchNormalization for a
GroupNormalization with gcd(channels, 32) groups (Wu & He, ECCV 2018, use 32;
the gcd keeps the group count a divisor of narrow layers), as DP-SGD on ResNets
does (e.g. De et al., 2022). Layer names stay the same, so per-layer options
keyed by name carry over.
"""

import math

from mcmia_tf.compat import keras

__all__ = ["NORMS", "check_norm", "normalization"]

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
