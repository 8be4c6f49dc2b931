"""Every recipe end to end on digits with tiny settings, and its bad inputs."""

import json

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.data import MembershipSplit
from mcmia_tf.privacy import dp as dp_lib
from mcmia_tf.pruning import PruningMask
from mcmia_tf.recipes.config import DPConfig
from mcmia_tf.recipes.config import METHODS
from mcmia_tf.recipes.config import MinMaxConfig
from mcmia_tf.recipes.config import PruningConfig
from mcmia_tf.recipes.config import RecipeConfig
from mcmia_tf.recipes.config import TrainingConfig
from mcmia_tf.recipes.protocol import TrainingRecipe
from mcmia_tf.recipes.recipe import Recipe

_TINY = TrainingConfig(model="mlp", width=1.0, epochs=3, batch_size=32, learning_rate=3e-3)


@pytest.fixture(scope="module")
def split_data(digits):
    split = MembershipSplit.create(dataset_name="digits", num_examples=len(digits.x_train),
                                   num_members=256, num_non_members=64, num_reference=128,
                                   seed=0)
    return (split.take("members", digits.x_train, digits.y_train),
            split.take("reference", digits.x_train, digits.y_train), digits)


def _config(method):
    return RecipeConfig(
        method, training=_TINY,
        dp=DPConfig(noise_multiplier=0.5),
        minmax=MinMaxConfig(privacy_weight=1.0, attack_steps=1),
        pruning=PruningConfig(target_sparsity=0.75, regularization_epochs=1, retrain_epochs=1,
                              edge_layer_sparsity=None))


@pytest.mark.parametrize("method", [
    pytest.param(m, marks=pytest.mark.slow) if m in ("mcmia_pruning_minmax", "tfmot_magnitude")
    else m for m in METHODS])
def test_recipe_end_to_end(split_data, method):
    (x, y), reference, digits = split_data
    recipe = Recipe(_config(method), digits.input_shape, digits.num_classes,
                    reference_data=reference)
    assert isinstance(recipe, TrainingRecipe)
    result = recipe.fit(x, y, seed=0)
    logits = result.model.predict(digits.x_test, verbose=0)
    assert logits.shape == (len(digits.x_test), digits.num_classes)
    assert len(result.history["loss"]) == _TINY.epochs
    if method == "dp":
        # 24 noisy steps: the loss must go down, accuracy stays low.
        assert result.history["loss"][-1] < result.history["loss"][0]
    else:
        accuracy = np.mean(logits.argmax(1) == digits.y_test)
        assert accuracy > 0.3, accuracy   # 3 epochs of a tiny MLP: far above 10% chance
    if "pruning" in method or method == "tfmot_magnitude":
        # Every prunable kernel cut to exactly 75% (edge layers not spared here).
        assert result.sparsity == pytest.approx(0.75, abs=2e-3)
        assert result.compression_rate == pytest.approx(4.0, rel=0.01)
    else:
        assert result.sparsity < 0.01
    if method == "dp":
        # Per-example clipping on Poisson batches: no microbatch penalty on sigma.
        assert result.epsilon == pytest.approx(dp_lib.compute_epsilon(
            len(x), 32, 3, 0.5, 1e-5, used_microbatching=False))
        assert (result.privacy.clipping, result.privacy.trained_with) == ("per-example",
                                                                          "poisson")
    else:
        assert result.epsilon is None
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["method"] == method
    assert RecipeConfig.from_dict(summary["config"]) == RecipeConfig.from_dict(
        _config(method).to_dict())
    json.dumps(recipe.to_dict())


def test_admm_solver_reaches_the_per_layer_rates(split_data):
    (x, y), _, digits = split_data
    config = RecipeConfig("mcmia_pruning", training=_TINY, pruning=PruningConfig(
        target_sparsity=0.8, solver="admm", rho=1e-2, regularization_epochs=1,
        retrain_epochs=1, layer_sparsity={"fc1": 0.9}, edge_layer_sparsity=None))
    result = Recipe(config, digits.input_shape, digits.num_classes).fit(x, y, seed=0)
    kernel = result.model.get_layer("fc1").kernel.numpy()
    assert np.sum(kernel == 0) == round(0.9 * kernel.size)
    assert result.sparsity == pytest.approx(0.8, abs=2e-3)


@pytest.mark.parametrize("ramp_power", [3.0, None])
def test_reweighted_recipe_ramps_the_constraint_unless_told_not_to(ramp_power):
    training = TrainingConfig(model="mlp", epochs=10, batch_size=32)
    pruning = PruningConfig(target_sparsity=0.9, regularization_epochs=4, retrain_epochs=2,
                            ramp_power=ramp_power)
    pruner = Recipe(RecipeConfig("mcmia_pruning", training=training, pruning=pruning),
                    (8, 8, 1), 10)._pruner(batches_per_epoch=10)
    if ramp_power is None:  # 4 dense epochs, the penalty at the target rate, prune at 8
        assert (pruner.unit, pruner.prune_at, pruner.ramp_power) == ("epoch", 8, None)
    else:  # the same epochs on the step clock, 4 keep-set updates an epoch
        assert (pruner.unit, pruner.prune_at, pruner.reweight_every, pruner.ramp_power) == (
            "step", 80, 2, 3.0)
    with pytest.raises(ValueError, match="`ramp_power`. Expected None with progressive_steps"):
        PruningConfig(regularization_epochs=6, progressive_steps=3)
    assert PruningConfig(regularization_epochs=6, progressive_steps=3,
                         ramp_power=None).progressive_steps == 3


@pytest.mark.slow
def test_tfmot_magnitude_uses_the_mcmia_per_layer_allocation(split_data):
    """The peer and MCMIA pruning zero the same number of weights in every layer."""
    (x, y), _, digits = split_data
    pruning = PruningConfig(target_sparsity=0.75, regularization_epochs=1, retrain_epochs=1,
                            edge_layer_sparsity=0.5)
    zeros = {}
    for method in ("tfmot_magnitude", "mcmia_pruning"):
        config = RecipeConfig(method, training=_TINY, pruning=pruning)
        result = Recipe(config, digits.input_shape, digits.num_classes).fit(x, y, seed=0)
        kernels = {layer.name: layer.kernel.numpy() for layer in result.model.layers
                   if hasattr(layer, "kernel")}
        zeros[method] = {name: int(np.sum(k == 0)) for name, k in kernels.items()}
        assert result.sparsity == pytest.approx(0.75, abs=2e-3)
    sizes = {name: k.size for name, k in kernels.items()}
    first, *_, last = sizes
    # The edge layers are capped at 50%; the middle one takes the rest of the 75%.
    assert zeros["tfmot_magnitude"][first] == round(0.5 * sizes[first])
    assert zeros["tfmot_magnitude"][last] == round(0.5 * sizes[last])
    for name in sizes:
        assert abs(zeros["tfmot_magnitude"][name] - zeros["mcmia_pruning"][name]) <= 1, name


@pytest.mark.slow
def test_dp_target_epsilon_sets_the_noise(split_data):
    (x, y), _, digits = split_data
    config = RecipeConfig("dp", training=TrainingConfig(model="mlp", width=0.25, epochs=1,
                                                        batch_size=32),
                          dp=DPConfig(target_epsilon=8.0, num_microbatches=8,
                                      sampling="shuffled"))
    result = Recipe(config, digits.input_shape, digits.num_classes).fit(x, y, seed=0)
    assert result.epsilon <= 8.0
    assert result.epsilon == pytest.approx(8.0, rel=0.01)
    # The microbatched path is still available, and the statement names it.
    assert (result.privacy.clipping, result.privacy.trained_with) == ("8 microbatches",
                                                                      "shuffled")


def test_bad_inputs(split_data):
    (x, y), (x_ref, y_ref), digits = split_data
    shape, classes = digits.input_shape, digits.num_classes
    with pytest.raises(ValueError, match="`privacy_weight`"):
        MinMaxConfig(privacy_weight=-1.0)
    with pytest.raises(ValueError, match="`attack_steps`"):
        MinMaxConfig(attack_steps=0)
    with pytest.raises(ValueError, match="`num_microbatches`"):
        RecipeConfig("dp", training=TrainingConfig(batch_size=100),
                     dp=DPConfig(num_microbatches=16, sampling="shuffled"))
    with pytest.raises(ValueError, match="`sampling`. Expected 'shuffled' with num_microbatches"):
        DPConfig(num_microbatches=16)
    with pytest.raises(ValueError, match="exceed epochs"):
        RecipeConfig("mcmia_pruning", training=TrainingConfig(epochs=5),
                     pruning=PruningConfig(regularization_epochs=4, retrain_epochs=4))
    with pytest.raises(ValueError, match="`method`"):
        RecipeConfig("pruning")
    with pytest.raises(ValueError, match="reference_data"):
        Recipe(RecipeConfig("minmax"), shape, classes)
    with pytest.raises(ValueError, match="non-empty reference set"):
        Recipe(RecipeConfig("minmax"), shape, classes, reference_data=(x_ref[:0], y_ref[:0]))
    recipe = Recipe(_config("minmax"), shape, classes, reference_data=(x_ref, y_ref))
    with pytest.raises(ValueError, match="shares 10 examples"):
        recipe.fit(np.concatenate([x, x_ref[:10]]), np.concatenate([y, y_ref[:10]]), seed=0)
    with pytest.raises(ValueError, match="unreachable"):
        Recipe(RecipeConfig("dp", training=_TINY, dp=DPConfig(target_epsilon=1e-3)),
               shape, classes).fit(x, y, seed=0)


class _MaskedOnEveryReplica(keras.callbacks.Callback):
    """After every step with a mask set: each replica's kernel is zero where its mask is."""

    def __init__(self, strategy):
        super().__init__()
        self.strategy = strategy
        self.masked_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        masked = False
        for variable in self.model.variables:
            constraint = getattr(variable, "constraint", None)
            if not isinstance(constraint, PruningMask) or constraint.mask is None:
                continue
            pruned = constraint.mask.numpy() == 0
            if not pruned.any():
                continue
            masked = True
            for component in self.strategy.experimental_local_results(variable):
                assert np.all(component.numpy()[pruned] == 0.0), (variable.name, batch)
        self.masked_steps += masked


@pytest.mark.parametrize("method", ["mcmia_pruning", "mcmia_pruning_minmax", "tfmot_magnitude"])
@pytest.mark.slow
def test_pruning_recipes_reach_the_target_under_mirrored_strategy(split_data, mirrored_strategy,
                                                                  method):
    (x, y), reference, digits = split_data
    recipe = Recipe(_config(method), digits.input_shape, digits.num_classes,
                    reference_data=reference)
    watcher = _MaskedOnEveryReplica(mirrored_strategy)
    with mirrored_strategy.scope():
        result = recipe.fit(x, y, seed=0, callbacks=[watcher])
    if method != "tfmot_magnitude":  # tfmot masks in its own wrapper, at the next forward pass.
        assert watcher.masked_steps > 0
    # Every prunable kernel at exactly 75%, as on one device (test_recipe_end_to_end).
    assert result.sparsity == pytest.approx(0.75, abs=2e-3)
    for layer in result.model.layers:
        if isinstance(layer, keras.layers.Dense):
            assert np.mean(layer.kernel.numpy() == 0) == pytest.approx(0.75, abs=2e-3)
            assert layer.kernel.constraint is None  # Deployable: no mask left behind.
