"""Tiny hand-built models for the pruning tests."""

import numpy as np

from mcmia_tf.compat import keras


def tiny_cnn(seed: int = 0) -> keras.Model:
    """conv 3x3x1x4 -> depthwise 3x3 -> dense 8 -> dense 3 on 6x6x1 inputs."""
    inputs = keras.Input((6, 6, 1), name="image")
    init = keras.initializers.GlorotUniform(seed=seed)
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=init, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, activation="relu", depthwise_initializer=init,
                                     name="depthwise")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(8, activation="relu", kernel_initializer=init, name="hidden")(x)
    outputs = keras.layers.Dense(3, kernel_initializer=init, name="logits")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def two_dense(weights=None) -> keras.Model:
    """Dense(2 -> 3) -> Dense(3 -> 2), optionally with given kernels and zero biases."""
    inputs = keras.Input((2,))
    x = keras.layers.Dense(3, name="first")(inputs)
    outputs = keras.layers.Dense(2, name="second")(x)
    model = keras.Model(inputs, outputs)
    if weights is not None:
        model.get_layer("first").set_weights([np.asarray(weights[0], np.float32),
                                              np.zeros(3, np.float32)])
        model.get_layer("second").set_weights([np.asarray(weights[1], np.float32),
                                               np.zeros(2, np.float32)])
    return model
