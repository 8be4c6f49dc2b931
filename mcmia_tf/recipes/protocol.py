"""`TrainingRecipe`: the one definition of how a model is trained, for target and references.

Shadow models (Shokri et al., S&P 2017) and LiRA reference models (Carlini et al.,
S&P 2022) only mean something if they are trained exactly like the target. A
`TrainingRecipe` is that single definition: the target, every shadow model and
every reference model come out of the same `recipe.train(x, y, seed=...)`.
`Recipe` (the six methods) and `StandardTrainingRecipe` (plain `fit`) implement
it; the audit's `ReferenceModelCache` trains its K models with it.
"""

from typing import Protocol, runtime_checkable

import numpy as np

from mcmia_tf.compat import keras

__all__ = ["TrainingRecipe"]


@runtime_checkable
class TrainingRecipe(Protocol):
    """Trains a model from scratch; used for the target, shadow and reference models.

    `train` must depend only on its arguments (same data and seed, same model up to
    floating-point nondeterminism), and return a tf_keras model whose outputs are
    logits or probabilities (see `mcmia_tf.audit.predictors.KerasPredictor`).
    `to_dict()`, if defined, must describe the recipe in JSON; the audit's cache
    uses it to refuse mixing models of different recipes.
    """

    def train(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> keras.Model:
        ...
