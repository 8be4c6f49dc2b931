"""Helpers shared by several test packages (`from tests.helpers import ...`)."""

import numpy as np

from mcmia_tf.compat import keras

__all__ = ["randomize_batch_norms"]


def randomize_batch_norms(model: keras.Model, seed: int = 0) -> keras.Model:
    """Gives every BatchNormalization layer inference statistics far from the initial ones.

    gamma ~ N(1, 0.3), beta ~ N(0, 0.3), moving mean ~ N(0, 0.3), moving variance
    ~ U(0.5, 1.5): so that BN folding and surgery must carry all four exactly
    (with the initial gamma = 1, beta = 0, mean = 0, variance = 1 a dropped
    statistic would go unnoticed). Top-level layers only; returns `model`.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        size = layer.moving_mean.shape
        values = {"gamma": rng.normal(1.0, 0.3, size), "beta": rng.normal(0.0, 0.3, size),
                  "moving_mean": rng.normal(0.0, 0.3, size),
                  "moving_variance": rng.uniform(0.5, 1.5, size)}
        for name, value in values.items():
            variable = getattr(layer, name)
            if variable is not None:  # gamma / beta are None with scale / center off
                variable.assign(value.astype(variable.dtype.as_numpy_dtype))
    return model
