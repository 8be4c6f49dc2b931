"""`StandardTrainingRecipe`: JSON round trip, the `TrainingRecipe` protocol, bad arguments."""

import json

import numpy as np
import pytest

from mcmia_tf.recipes.protocol import TrainingRecipe
from mcmia_tf.recipes.standard import StandardTrainingRecipe

_RECIPE = StandardTrainingRecipe("mlp", (8, 8, 1), 10, epochs=2, batch_size=32,
                                 learning_rate=1e-2, model_kwargs={"hidden_units": [16]})


def test_recipe_round_trip_and_validation():
    assert StandardTrainingRecipe.from_dict(json.loads(json.dumps(_RECIPE.to_dict()))) == _RECIPE
    assert isinstance(_RECIPE, TrainingRecipe)
    with pytest.raises(ValueError, match="epochs"):
        StandardTrainingRecipe("mlp", (8, 8, 1), 10, epochs=0)
    with pytest.raises(ValueError, match="optimizer"):
        StandardTrainingRecipe("mlp", (8, 8, 1), 10, optimizer="rmsprop")


def test_training_is_a_function_of_the_seed(digits):
    x, y = digits.x_train[:96], digits.y_train[:96]
    first, again, other = (_RECIPE.train(x, y, seed=s) for s in (0, 0, 1))
    for a, b in zip(first.get_weights(), again.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b)
               for a, b in zip(first.get_weights(), other.get_weights()))
