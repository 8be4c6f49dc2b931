"""The reference-model cache: identical results after resume, sharding, merge, refusal."""

import json
import os

import numpy as np
import pytest

from mcmia_tf.audit import reference_models
from mcmia_tf.data import draw_inclusion_masks
from mcmia_tf.recipes.standard import StandardTrainingRecipe

_RECIPE = StandardTrainingRecipe(
    "mlp", (8, 8, 1), 10, epochs=3, batch_size=32, learning_rate=1e-2,
    model_kwargs={"hidden_units": [16]})


class _Interrupted(Exception):
    pass


class _CountingRecipe:
    """Delegates to a recipe; counts calls and can fail on the n-th one (a crash)."""

    def __init__(self, recipe, fail_on_call=None):
        self.recipe, self.fail_on_call, self.calls = recipe, fail_on_call, 0

    def train(self, x, y, *, seed):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise _Interrupted()
        return self.recipe.train(x, y, seed=seed)

    def to_dict(self):
        return self.recipe.to_dict()


@pytest.fixture(scope="module")
def pool(digits):
    return digits.x_train[:120], digits.y_train[:120]


def _cache(directory, recipe, pool, num_models=3, seed=0):
    x, y = pool
    return reference_models.ReferenceModelCache(
        str(directory), recipe, x, y, draw_inclusion_masks(len(x), num_models, seed),
        base_seed=seed)


@pytest.mark.slow
def test_resume_after_interruption_gives_identical_outputs(tmp_path, pool):
    crashing = _CountingRecipe(_RECIPE, fail_on_call=3)
    with pytest.raises(_Interrupted):
        _cache(tmp_path / "resumed", crashing, pool).train(verbose=0)
    resumed_cache = _cache(tmp_path / "resumed", _CountingRecipe(_RECIPE), pool)
    assert resumed_cache.missing_models() == [2]
    assert resumed_cache.train(verbose=0) == [2]  # only the missing model is trained
    assert resumed_cache.recipe.calls == 1
    resumed = resumed_cache.load_outputs()

    fresh_cache = _cache(tmp_path / "fresh", _RECIPE, pool)
    fresh_cache.train(verbose=0)
    fresh = fresh_cache.load_outputs()
    np.testing.assert_array_equal(resumed.outputs, fresh.outputs)
    np.testing.assert_array_equal(resumed.query_in, fresh.query_in)
    assert resumed.outputs.shape == (3, 120, 10) and resumed.output_type == "logits"


def test_shards_fill_one_folder_and_merge(tmp_path, pool):
    shard_0 = _cache(tmp_path, _RECIPE, pool)
    assert shard_0.train(shard_index=0, num_shards=2, save_models=False, verbose=0) == [0, 2]
    with pytest.raises(ValueError, match="not trained yet"):
        shard_0.load_outputs()
    shard_1 = _cache(tmp_path, _RECIPE, pool)
    assert shard_1.train(shard_index=1, num_shards=2, verbose=0) == [1]
    merged = shard_0.load_outputs()
    assert merged.num_models == 3
    masks = draw_inclusion_masks(120, 3, 0)
    np.testing.assert_array_equal(merged.query_in, masks)
    # Model 1 was saved and reproduces its cached outputs.
    x, _ = pool
    np.testing.assert_allclose(shard_1.load_model(1)(x).numpy(), merged.outputs[1], atol=1e-5)
    assert not any(name.endswith((".tmp", ".pkl", ".pickle")) for name in os.listdir(tmp_path))


def test_folder_of_another_setup_is_refused(tmp_path, pool):
    _cache(tmp_path, _RECIPE, pool)
    other_recipe = StandardTrainingRecipe("mlp", (8, 8, 1), 10, epochs=4)
    with pytest.raises(ValueError, match="differs in: recipe"):
        _cache(tmp_path, other_recipe, pool)
    with pytest.raises(ValueError, match="pool_fingerprint"):
        _cache(tmp_path, _RECIPE, pool, seed=1)
    with open(tmp_path / "manifest.json") as f:
        assert json.load(f)["recipe"]["epochs"] == 3


def test_queries_outside_the_pool_are_never_in(tmp_path, pool):
    x, y = pool
    cache = reference_models.ReferenceModelCache(
        str(tmp_path), _RECIPE, x[:60], y[:60], draw_inclusion_masks(60, 2, 0),
        x_query=np.concatenate([x[:60], x[60:]]),
        query_pool_index=np.r_[np.arange(60), np.full(60, -1)])
    cache.train(save_models=False, verbose=0)
    outputs = cache.load_outputs()
    assert outputs.outputs.shape == (2, 120, 10)
    assert not outputs.query_in[:, 60:].any()
    np.testing.assert_array_equal(outputs.query_in[:, :60], draw_inclusion_masks(60, 2, 0))


def test_bad_cache_arguments_raise(tmp_path, pool):
    x, y = pool
    with pytest.raises(ValueError, match="inclusion_masks"):
        reference_models.ReferenceModelCache(str(tmp_path), _RECIPE, x, y,
                                             np.ones((2, 5), bool))
    with pytest.raises(ValueError, match="same length"):
        reference_models.ReferenceModelCache(str(tmp_path), _RECIPE, x, y[:5],
                                             np.ones((2, 120), bool))
    with pytest.raises(TypeError, match="TrainingRecipe"):
        reference_models.ReferenceModelCache(str(tmp_path), object(), x, y,
                                             np.ones((2, 120), bool))
    cache = _cache(tmp_path, _RECIPE, pool)
    with pytest.raises(ValueError, match="shard_index"):
        cache.train(shard_index=2, num_shards=2)
