"""Seeded weight initialisers without global random state.

Keras initialisers take a `seed`; giving every layer of a model the same seed
would correlate layers, so a model builder draws one seed per layer from a
counter started at the model's seed.
"""

import itertools
from typing import Optional

from mcmia_tf.compat import keras

__all__ = ["LayerSeeds"]


class LayerSeeds:
    """Hands out one initialiser seed per layer: `seed`, `seed + 1`, ...

    With `seed=None` every initialiser is unseeded (Keras' default behaviour).
    """

    def __init__(self, seed: Optional[int]):
        self._counter = None if seed is None else itertools.count(int(seed) * 1000)

    def _next(self) -> Optional[int]:
        return None if self._counter is None else next(self._counter)

    def glorot_uniform(self) -> keras.initializers.Initializer:
        return keras.initializers.GlorotUniform(seed=self._next())

    def he_normal(self) -> keras.initializers.Initializer:
        return keras.initializers.HeNormal(seed=self._next())
