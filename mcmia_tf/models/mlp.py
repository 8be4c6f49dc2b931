"""A multi-layer perceptron for flat or tabular inputs (images are flattened)."""

from typing import Optional, Sequence

from mcmia_tf.compat import keras
from mcmia_tf.models.initializers import LayerSeeds

__all__ = ["mlp"]


def mlp(input_shape: Sequence[int], num_classes: int, width: float = 1.0,
        seed: Optional[int] = None, hidden_units: Sequence[int] = (256, 128)) -> keras.Model:
    """Builds Flatten - [Dense(h * width, relu)]... - Dense(classes) (logits output)."""
    seeds = LayerSeeds(seed)
    inputs = keras.Input(shape=tuple(input_shape), name="features")
    x = keras.layers.Flatten(name="flatten")(inputs)
    for i, units in enumerate(hidden_units):
        x = keras.layers.Dense(max(1, int(round(units * width))), activation="relu",
                               kernel_initializer=seeds.glorot_uniform(), name=f"fc{i + 1}")(x)
    outputs = keras.layers.Dense(num_classes, kernel_initializer=seeds.glorot_uniform(),
                                 name="logits")(x)
    return keras.Model(inputs, outputs, name="mlp")
