"""MobileNetV2, CIFAR variant.

Sandler et al. (CVPR 2018) inverted residual blocks (expand 1x1 - depthwise 3x3
- linear project 1x1, residual only when stride 1 and shapes match), ReLU6,
the paper's (t, c, n, s) table, and a stride-1 stem so 32x32 inputs keep enough
resolution. Same parameter count as `keras.applications.MobileNetV2` (which only
differs in strides): 2,236,682 for 10 classes at width 1.
"""

from typing import Optional, Sequence

from mcmia_tf.compat import keras
from mcmia_tf.models.initializers import LayerSeeds
from mcmia_tf.models.normalization import check_norm
from mcmia_tf.models.normalization import normalization

__all__ = ["mobilenetv2"]

# (expansion t, output channels c, repeats n, first stride s), Table 2 of the paper.
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1))


def _make_divisible(value: float, divisor: int = 8) -> int:
    """Rounds channels to a multiple of 8 as the reference implementation does."""
    new_value = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value


def _inverted_residual(x, expansion: int, filters: int, stride: int, seeds: LayerSeeds,
                       name: str, norm: str):
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = keras.layers.Conv2D(in_channels * expansion, 1, use_bias=False,
                                kernel_initializer=seeds.he_normal(), name=f"{name}_expand")(y)
        y = normalization(y, norm, f"{name}_expand_bn")
        y = keras.layers.ReLU(6.0, name=f"{name}_expand_relu")(y)
    y = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                     depthwise_initializer=seeds.he_normal(),
                                     name=f"{name}_depthwise")(y)
    y = normalization(y, norm, f"{name}_depthwise_bn")
    y = keras.layers.ReLU(6.0, name=f"{name}_depthwise_relu")(y)
    y = keras.layers.Conv2D(filters, 1, use_bias=False, kernel_initializer=seeds.he_normal(),
                            name=f"{name}_project")(y)
    y = normalization(y, norm, f"{name}_project_bn")
    if stride == 1 and in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def mobilenetv2(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
                seed: Optional[int] = None, norm: str = "batch") -> keras.Model:
    """Builds MobileNetV2 with a stride-1 stem (logits output); `norm="group"` for DP-SGD."""
    check_norm(norm)
    seeds = LayerSeeds(seed)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Conv2D(_make_divisible(32 * width), 3, strides=1, padding="same",
                            use_bias=False, kernel_initializer=seeds.he_normal(),
                            name="stem_conv")(inputs)
    x = normalization(x, norm, "stem_bn")
    x = keras.layers.ReLU(6.0, name="stem_relu")(x)
    block = 0
    for expansion, channels, repeats, first_stride in _BLOCKS:
        for i in range(repeats):
            x = _inverted_residual(x, expansion, _make_divisible(channels * width),
                                   first_stride if i == 0 else 1, seeds, f"block{block}", norm)
            block += 1
    last = _make_divisible(1280 * width) if width > 1.0 else 1280
    x = keras.layers.Conv2D(last, 1, use_bias=False, kernel_initializer=seeds.he_normal(),
                            name="head_conv")(x)
    x = normalization(x, norm, "head_bn")
    x = keras.layers.ReLU(6.0, name="head_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, kernel_initializer=seeds.glorot_uniform(),
                                 name="logits")(x)
    return keras.Model(inputs, outputs, name="mobilenetv2")
