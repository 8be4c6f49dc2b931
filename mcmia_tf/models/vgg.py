"""VGG16 with batch normalisation, CIFAR variant.

Simonyan & Zisserman (ICLR 2015) configuration D, with a BatchNorm after every
convolution and a single linear classifier on the 512-d feature, as in the
CIFAR literature (e.g. Network Slimming, Liu et al. ICCV 2017; the
pytorch-cifar reference implementation): 14,728,266 trainable parameters at
width 1 for 32x32x3 inputs and 10 classes. Pooling uses 'same' padding so that
inputs smaller than 32x32 still reach the classifier.
"""

from typing import Optional, Sequence

from mcmia_tf.compat import keras
from mcmia_tf.models.initializers import LayerSeeds
from mcmia_tf.models.normalization import check_norm
from mcmia_tf.models.normalization import normalization

__all__ = ["vgg16"]

# Numbers are output channels of 3x3 convolutions, "M" a 2x2 max pool.
_VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                 512, 512, 512, "M")


def vgg16(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
          seed: Optional[int] = None, norm: str = "batch") -> keras.Model:
    """Builds VGG16-BN for small images (logits output); `norm="group"` for DP-SGD."""
    check_norm(norm)
    seeds = LayerSeeds(seed)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    conv_index, pool_index = 0, 0
    for item in _VGG16_CONFIG:
        if item == "M":
            pool_index += 1
            x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{pool_index}")(x)
            continue
        conv_index += 1
        x = keras.layers.Conv2D(max(1, int(round(item * width))), 3, padding="same",
                                use_bias=True, kernel_initializer=seeds.he_normal(),
                                name=f"conv{conv_index}")(x)
        x = normalization(x, norm, f"bn{conv_index}")
        x = keras.layers.ReLU(name=f"relu{conv_index}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(num_classes, kernel_initializer=seeds.glorot_uniform(),
                                 name="logits")(x)
    return keras.Model(inputs, outputs, name="vgg16")
