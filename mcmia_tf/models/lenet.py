"""LeNet-5 variants.

* `lenet5`: the 20-50-500 Caffe LeNet used by the pruning literature (Han et
  al. 2015; ADMM pruning, Zhang et al. ECCV 2018): conv 5x5x20 - max pool -
  conv 5x5x50 - max pool - dense 500 - dense classes. 431,080 parameters for
  28x28x1 inputs and 10 classes.
* `lenet5_classic`: LeCun et al. 1998's 6-16-120-84 layout (61,706 parameters
  for 28x28x1 with a 'same' first convolution, i.e. the 32x32 original), with
  ReLU and average pooling.

Inputs smaller than 28x28 (e.g. 8x8 `digits`) use 'same' padding so that the
5x5 convolutions still fit; the published counts apply to 28x28.
"""

from typing import Optional, Sequence

from mcmia_tf.compat import keras
from mcmia_tf.models.initializers import LayerSeeds

__all__ = ["lenet5", "lenet5_classic"]

_MIN_VALID_SIDE = 28


def _scaled(units: int, width: float) -> int:
    return max(1, int(round(units * width)))


def _padding(input_shape: Sequence[int], padding: Optional[str]) -> str:
    if padding is not None:
        return padding
    return "valid" if min(input_shape[:2]) >= _MIN_VALID_SIDE else "same"


def lenet5(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
           seed: Optional[int] = None, padding: Optional[str] = None,
           activation: str = "relu") -> keras.Model:
    """Builds the 20-50-500 LeNet-5 (logits output).

    `activation="tanh"`: bounded activations suit DP-SGD better (Papernot et al.,
    AAAI 2021; Tramer & Boneh, ICLR 2021).
    """
    seeds = LayerSeeds(seed)
    pad = _padding(input_shape, padding)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Conv2D(_scaled(20, width), 5, padding=pad, activation=activation,
                            kernel_initializer=seeds.glorot_uniform(), name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(2, padding="same", name="pool1")(x)
    x = keras.layers.Conv2D(_scaled(50, width), 5, padding=pad, activation=activation,
                            kernel_initializer=seeds.glorot_uniform(), name="conv2")(x)
    x = keras.layers.MaxPooling2D(2, padding="same", name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(_scaled(500, width), activation=activation,
                           kernel_initializer=seeds.glorot_uniform(), name="fc1")(x)
    outputs = keras.layers.Dense(num_classes, kernel_initializer=seeds.glorot_uniform(),
                                 name="logits")(x)
    return keras.Model(inputs, outputs, name="lenet5")


def lenet5_classic(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
                   seed: Optional[int] = None) -> keras.Model:
    """Builds LeCun's 6-16-120-84 LeNet-5 with ReLU and average pooling (logits output)."""
    seeds = LayerSeeds(seed)
    pad2 = _padding(input_shape, None)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = keras.layers.Conv2D(_scaled(6, width), 5, padding="same", activation="relu",
                            kernel_initializer=seeds.glorot_uniform(), name="conv1")(inputs)
    x = keras.layers.AveragePooling2D(2, padding="same", name="pool1")(x)
    x = keras.layers.Conv2D(_scaled(16, width), 5, padding=pad2, activation="relu",
                            kernel_initializer=seeds.glorot_uniform(), name="conv2")(x)
    x = keras.layers.AveragePooling2D(2, padding="same", name="pool2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(_scaled(120, width), activation="relu",
                           kernel_initializer=seeds.glorot_uniform(), name="fc1")(x)
    x = keras.layers.Dense(_scaled(84, width), activation="relu",
                           kernel_initializer=seeds.glorot_uniform(), name="fc2")(x)
    outputs = keras.layers.Dense(num_classes, kernel_initializer=seeds.glorot_uniform(),
                                 name="logits")(x)
    return keras.Model(inputs, outputs, name="lenet5_classic")
