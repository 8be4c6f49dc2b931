"""ResNet18, CIFAR variant.

He et al. (CVPR 2016) basic-block ResNet with [2, 2, 2, 2] blocks of 64, 128,
256, 512 channels, a 3x3 stride-1 stem without max pooling (the CIFAR variant
of the pytorch-cifar reference implementation, used by MCMIA and the MIA
literature), projection shortcuts (1x1 conv + BN) where shape changes:
11,173,962 trainable parameters at width 1 for 10 classes.
"""

from typing import Optional, Sequence

from mcmia_tf.compat import keras
from mcmia_tf.models.initializers import LayerSeeds
from mcmia_tf.models.normalization import check_norm
from mcmia_tf.models.normalization import normalization

__all__ = ["resnet18"]


def _conv_bn(x, filters: int, kernel: int, stride: int, seeds: LayerSeeds, name: str,
             norm: str):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False,
                            kernel_initializer=seeds.he_normal(), name=f"{name}_conv")(x)
    return normalization(x, norm, f"{name}_bn")


def _basic_block(x, filters: int, stride: int, seeds: LayerSeeds, name: str, norm: str):
    shortcut = x
    y = _conv_bn(x, filters, 3, stride, seeds, f"{name}_1", norm)
    y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
    y = _conv_bn(y, filters, 3, 1, seeds, f"{name}_2", norm)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = _conv_bn(x, filters, 1, stride, seeds, f"{name}_shortcut", norm)
    y = keras.layers.Add(name=f"{name}_add")([y, shortcut])
    return keras.layers.ReLU(name=f"{name}_out")(y)


def resnet18(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
             seed: Optional[int] = None, norm: str = "batch") -> keras.Model:
    """Builds the CIFAR ResNet18 (logits output); `norm="group"` for DP-SGD."""
    check_norm(norm)
    seeds = LayerSeeds(seed)
    channels = [max(1, int(round(c * width))) for c in (64, 128, 256, 512)]
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = _conv_bn(inputs, channels[0], 3, 1, seeds, "stem", norm)
    x = keras.layers.ReLU(name="stem_relu")(x)
    for stage, filters in enumerate(channels):
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            x = _basic_block(x, filters, stride, seeds, f"stage{stage + 1}_block{block + 1}",
                             norm)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, kernel_initializer=seeds.glorot_uniform(),
                                 name="logits")(x)
    return keras.Model(inputs, outputs, name="resnet18")
