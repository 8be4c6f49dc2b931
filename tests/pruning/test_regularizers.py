"""Reweighted and static penalties, and ADMM updates, against their formulas."""

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning import ADMMPruning
from mcmia_tf.pruning import make_prunable
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import StaticRegularization
from mcmia_tf.pruning import structures
from mcmia_tf.pruning.admm import admm_update
from mcmia_tf.pruning.registry import LayerPlan
from mcmia_tf.pruning.registry import PrunableWeight
from mcmia_tf.pruning.regularizers import GroupNorms
from tests.pruning.models import two_dense

FIRST = np.array([[0.5, -2.0, 0.0], [1.5, 0.1, -0.3]], np.float32)
SECOND = np.array([[1.0, -1.0], [0.2, 0.0], [-3.0, 4.0]], np.float32)


def test_reweighted_l1_alpha_and_penalty_values():
    pruner = ReweightedPruning(0.5, "unstructured", penalty=0.01, epsilon=1e-3,
                               edge_layer_sparsity=None, bounded=False)
    pruner.bind(make_prunable(two_dense([FIRST, SECOND])))
    alphas = [a.numpy() for a in pruner.binding.alphas]
    np.testing.assert_allclose(alphas[0], 1.0 / (np.abs(FIRST) + 1e-3), rtol=1e-6)
    np.testing.assert_allclose(alphas[1], 1.0 / (np.abs(SECOND) + 1e-3), rtol=1e-6)
    expected = 0.01 * sum(np.sum(np.abs(w) / (np.abs(w) + 1e-3)) for w in (FIRST, SECOND))
    assert pruner.penalty_value() == pytest.approx(expected, rel=1e-5)


def test_reweighted_group_form_uses_filter_norms():
    pruner = ReweightedPruning(0.5, "filter", penalty=0.1, epsilon=0.5, edge_layer_sparsity=None,
                               bounded=False)
    pruner.bind(make_prunable(two_dense([FIRST, SECOND])))
    norms = np.linalg.norm(FIRST, axis=0)  # one group per output neuron
    np.testing.assert_allclose(pruner.binding.alphas[0].numpy(), 1.0 / (norms + 0.5), rtol=1e-5)
    # The output layer's filters are the logits: it is pruned by input neurons.
    assert pruner.binding.plans[1].structure.name == "channel"
    norms2 = np.linalg.norm(SECOND, axis=1)
    expected = 0.1 * (np.sum(norms / (norms + 0.5)) + np.sum(norms2 / (norms2 + 0.5)))
    assert pruner.penalty_value() == pytest.approx(expected, rel=1e-4)


def test_reweighted_squared_form():
    pruner = ReweightedPruning(0.5, "unstructured", penalty=1.0, form="squared", epsilon=0.25,
                               edge_layer_sparsity=None, bounded=False)
    pruner.bind(make_prunable(two_dense([FIRST, SECOND])))
    np.testing.assert_allclose(pruner.binding.alphas[0].numpy(), 1.0 / (FIRST ** 2 + 0.25),
                               rtol=1e-6)
    expected = sum(np.sum(w ** 2 / (w ** 2 + 0.25)) for w in (FIRST, SECOND))
    assert pruner.penalty_value() == pytest.approx(expected, rel=1e-5)


def test_reweight_recomputes_alpha_from_current_weights():
    model = make_prunable(two_dense([FIRST, SECOND]))
    pruner = ReweightedPruning(0.5, penalty=1.0, epsilon=1e-3, reweight_every=2,
                               edge_layer_sparsity=None, bounded=False)
    pruner.bind(model)
    new_first = FIRST * 3.0
    model.get_layer("first").kernel.assign(new_first)
    pruner.advance("epoch", 1)                       # not due (every 2)
    np.testing.assert_allclose(pruner.binding.alphas[0].numpy(), 1 / (np.abs(FIRST) + 1e-3),
                               rtol=1e-6)
    pruner.advance("epoch", 2)                       # due
    np.testing.assert_allclose(pruner.binding.alphas[0].numpy(),
                               1 / (np.abs(new_first) + 1e-3), rtol=1e-6)
    assert pruner.reweight_count == 1


def test_static_group_lasso_value():
    pruner = StaticRegularization(0.5, "channel", penalty=0.2, edge_layer_sparsity=None)
    pruner.bind(make_prunable(two_dense([FIRST, SECOND])))
    expected = 0.2 * (np.linalg.norm(FIRST, axis=1).sum() + np.linalg.norm(SECOND, axis=1).sum())
    assert pruner.penalty_value() == pytest.approx(expected, rel=1e-5)


def test_admm_initial_state_and_dual_update():
    model = make_prunable(two_dense([FIRST, SECOND]))
    pruner = ADMMPruning(0.5, "unstructured", rho=0.5, rho_growth=2.0, rho_max=1.5,
                         edge_layer_sparsity=None)
    pruner.bind(model)
    binding = pruner.binding
    rates = [p.rate for p in binding.plans]
    np.testing.assert_array_equal(binding.z[0].numpy(),
                                  structures.project(FIRST, "unstructured", rates[0]))
    np.testing.assert_array_equal(binding.u[0].numpy(), 0.0)

    w1 = FIRST + 0.25
    model.get_layer("first").kernel.assign(w1)
    pruner.update()
    z1 = structures.project(w1, "unstructured", rates[0])
    np.testing.assert_allclose(binding.z[0].numpy(), z1)
    np.testing.assert_allclose(binding.u[0].numpy(), w1 - z1)
    assert float(binding.rho.numpy()) == pytest.approx(1.0)

    w2 = FIRST - 0.5
    model.get_layer("first").kernel.assign(w2)
    pruner.update()
    z2 = structures.project(w2 + (w1 - z1), "unstructured", rates[0])
    np.testing.assert_allclose(binding.z[0].numpy(), z2, rtol=1e-6)
    np.testing.assert_allclose(binding.u[0].numpy(), (w1 - z1) + w2 - z2, rtol=1e-6, atol=1e-7)
    assert float(binding.rho.numpy()) == pytest.approx(1.5)  # capped at rho_max

    penalty = 0.5 * 1.5 * sum(
        np.sum((p.weight.variable.numpy() - z.numpy() + u.numpy()) ** 2)
        for p, z, u in zip(binding.plans, binding.z, binding.u))
    assert pruner.penalty_value() == pytest.approx(penalty, rel=1e-5)
    residual = np.sqrt(sum(np.sum((p.weight.variable.numpy() - z.numpy()) ** 2)
                           for p, z in zip(binding.plans, binding.z)))
    assert pruner.residual_history[-1] == pytest.approx(residual, rel=1e-5)


def test_admm_update_function():
    w = np.array([3.0, -1.0, 0.5, 2.0], np.float32)
    u = np.array([0.0, 2.0, 0.0, -0.5], np.float32)
    z, new_u = admm_update(w, u, lambda v: structures.project(v, "unstructured", 0.5))
    np.testing.assert_array_equal(z, [3.0, 0.0, 0.0, 1.5])
    np.testing.assert_array_equal(new_u, [0.0, 1.0, 0.5, 0.0])


def test_hard_prune_reaches_exact_layer_rates():
    pruner = StaticRegularization(0.5, penalty=1e-3, edge_layer_sparsity=None)
    pruner.bind(make_prunable(two_dense([FIRST + 0.01, SECOND + 0.01])))
    pruner.hard_prune()
    assert pruner.binding.sparsities() == {"first": 0.5, "second": 0.5}
    assert pruner.penalty_value() == 0.0


@pytest.mark.parametrize("structure", ["unstructured", "filter", "channel", "column", "kernel",
                                       "block:2x3", "2:4", "pattern"])
@pytest.mark.parametrize("shape,depthwise", [((3, 3, 4, 6), False), ((3, 3, 4, 2), True),
                                             ((8, 6), False)])
def test_tf_group_norms_match_numpy_definition(structure, shape, depthwise):
    structure_obj = structures.get_structure(structure)
    try:
        structure_obj.validate(shape, depthwise)
    except ValueError:
        pytest.skip("structure does not apply to this kernel")
    weight = PrunableWeight(path="w", layer=None, variable=tf.Variable(
        np.random.default_rng(0).normal(size=shape).astype(np.float32)),
        kind="depthwise_conv2d" if depthwise else ("dense" if len(shape) == 2 else "conv2d"))
    norms = GroupNorms(LayerPlan(weight=weight, structure=structure_obj, rate=0.5))
    computed = np.ravel(norms.norms(weight.variable).numpy())
    if norms.elementwise:
        np.testing.assert_allclose(computed, np.abs(weight.variable.numpy()).ravel(), rtol=1e-6)
    else:
        expected = structures.group_norms(weight.variable.numpy(), structure_obj, depthwise)
        np.testing.assert_allclose(computed, expected, rtol=1e-5)
    assert norms.norms(weight.variable).shape == norms.alpha_shape()


def test_nested_functional_submodel_is_pruned_by_path_and_stripped():
    inner = keras.Sequential([keras.layers.Dense(6, input_shape=(4,), name="inner_dense")],
                             name="block")
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, name="head")(inner(inputs))
    model = make_prunable(keras.Model(inputs, outputs))
    pruner = StaticRegularization(0.5, penalty=1e-3, edge_layer_sparsity=None,
                                  layer_sparsity={"block/inner_dense": 0.75})
    pruner.bind(model)
    assert [p.weight.path for p in pruner.binding.plans] == ["block/inner_dense", "head"]
    pruner.hard_prune()
    stripped = pruner.strip(model)
    inner_kernel = stripped.get_layer("block").get_layer("inner_dense").kernel.numpy()
    assert np.mean(inner_kernel == 0) == 0.75
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_allclose(stripped(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_bounded_penalty_is_zero_on_the_keep_set_and_positive_outside():
    pruner = ReweightedPruning(0.5, "unstructured", penalty=0.01, epsilon=1e-3,
                               edge_layer_sparsity=None)
    assert pruner.bounded  # the default
    pruner.bind(make_prunable(two_dense([FIRST, SECOND])))
    for weights, alpha in zip((FIRST, SECOND), pruner.binding.alphas):
        # The hard prune at 50% would zero the 3 smallest |w| of 6: exactly those are penalised.
        removed = np.zeros(weights.size, bool)
        removed[np.argsort(np.abs(weights).ravel(), kind="stable")[:3]] = True
        removed = removed.reshape(weights.shape)
        np.testing.assert_array_equal(alpha.numpy()[~removed], 0.0)
        np.testing.assert_allclose(alpha.numpy()[removed], 1 / (np.abs(weights[removed]) + 1e-3),
                                   rtol=1e-6)
    expected = 0.01 * sum(np.sum(np.sort(np.abs(w).ravel())[:3] / (np.sort(np.abs(w).ravel())[:3]
                                                                  + 1e-3)) for w in (FIRST, SECOND))
    assert pruner.penalty_value() == pytest.approx(expected, rel=1e-5)


def test_bounded_filter_groups_follow_the_constraint():
    pruner = ReweightedPruning(0.5, "filter", penalty=0.1, epsilon=0.5, edge_layer_sparsity=None)
    pruner.bind(make_prunable(two_dense([FIRST, SECOND])))
    norms = np.linalg.norm(FIRST, axis=0)   # [1.58, 2.06, 0.30]
    # round(0.5 * 3 filters) = 2 are removed: the two smallest are penalised, the largest not.
    alpha = pruner.binding.alphas[0].numpy()
    np.testing.assert_allclose(alpha, np.where(norms < norms.max(), 1 / (norms + 0.5), 0.0),
                               rtol=1e-5)


def test_outside_mass_decreases_monotonically_on_a_convex_problem():
    # Least squares on one linear layer (convex), started at its optimum: the bounded
    # penalty pulls the 60% smallest weights towards zero against a data term that
    # only mildly needs them.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 10)).astype(np.float32)
    scale = np.r_[np.ones(4), 0.1 * np.ones(6)].astype(np.float32)[:, None]
    y = x @ (rng.normal(size=(10, 1)).astype(np.float32) * scale)
    inputs = keras.Input((10,))
    model = make_prunable(keras.Model(inputs, keras.layers.Dense(1, use_bias=False,
                                                                 name="linear")(inputs)))
    model.get_layer("linear").kernel.assign(np.linalg.lstsq(x, y, rcond=None)[0])
    model.compile(keras.optimizers.SGD(0.02), "mse")
    # The squared form: with alpha fixed between reweightings every step solves a convex
    # problem (the |w| form's subgradient makes plain SGD oscillate around 0 instead).
    pruner = ReweightedPruning(0.6, "unstructured", penalty=0.01, form="squared",
                               edge_layer_sparsity=None, prune_at=None, unit="epoch")
    history = model.fit(x, y, epochs=30, batch_size=256, verbose=0, callbacks=pruner.callbacks())
    masses = history.history["pruning_outside_mass"]
    assert all(later <= earlier + 1e-9 for earlier, later in zip(masses, masses[1:])), masses
    assert masses[-1] < 0.5 * masses[0]  # measured: 0.19 x after 30 epochs


def test_calibrated_strength_grows_while_the_penalised_groups_hold_up():
    model = make_prunable(two_dense([FIRST, SECOND]))
    pruner = ReweightedPruning(0.5, edge_layer_sparsity=None, initial_penalty=1e-6,
                               penalty_growth=2.0, target_outside_mass=1e-3)
    pruner.bind(model)
    assert pruner.calibrated and pruner.binding.strength.numpy() == pytest.approx(1e-6)
    pruner.reweight()  # the weights have not moved: still far outside, lambda doubles
    assert pruner.binding.strength.numpy() == pytest.approx(2e-6)
    for layer in ("first", "second"):  # now put the removed weights at zero: target reached
        kernel = model.get_layer(layer).kernel
        kernel.assign(kernel.numpy() * (pruner.binding.alphas[0 if layer == "first" else 1]
                                        .numpy() == 0))
    pruner.reweight()
    assert pruner.binding.outside_mass < 1e-3
    assert pruner.binding.strength.numpy() == pytest.approx(2e-6)  # unchanged
    with pytest.raises(ValueError, match="`penalty_growth`"):
        ReweightedPruning(0.5, penalty_growth=0.5)


def test_calibration_stops_growing_once_every_penalised_group_shrinks():
    model = make_prunable(two_dense([FIRST, SECOND]))
    pruner = ReweightedPruning(0.5, edge_layer_sparsity=None, initial_penalty=1e-6,
                               penalty_growth=2.0, target_outside_mass=1e-3)
    pruner.bind(model)
    outside = [a.numpy() > 0 for a in pruner.binding.alphas]
    kernels = [model.get_layer(layer).kernel for layer in ("first", "second")]

    def scale_outside(factor):
        for kernel, removed in zip(kernels, outside):
            kernel.assign(np.where(removed, kernel.numpy() * factor, kernel.numpy()))

    scale_outside(0.5)  # every penalised weight shrank, none is zero yet
    pruner.reweight()
    assert pruner.binding.outside_mass > 1e-3  # still far from the constraint ...
    assert pruner.binding.resisting_mass == 0.0
    assert pruner.binding.strength.numpy() == pytest.approx(1e-6)  # ... but lambda holds
    scale_outside(1.5)  # the data term pushes them back up (still the smallest)
    pruner.reweight()
    assert pruner.binding.resisting_mass == pytest.approx(pruner.binding.outside_mass)
    assert pruner.binding.strength.numpy() == pytest.approx(2e-6)


def test_admm_calibrated_rho_grows_only_while_the_residual_is_large():
    model = make_prunable(two_dense([FIRST, SECOND]))
    pruner = ADMMPruning(0.5, "unstructured", rho=0.5, rho_growth=2.0, target_residual=0.01,
                         edge_layer_sparsity=None)
    pruner.bind(model)
    pruner.update()      # W far from Z = Proj(W): rho doubles
    assert pruner.binding.rho.numpy() == pytest.approx(1.0)
    for plan, z in zip(pruner.binding.plans, pruner.binding.z):
        plan.weight.variable.assign(z.numpy())   # W on the constraint set: residual 0
    for u in pruner.binding.u:
        u.assign(np.zeros_like(u.numpy()))
    pruner.update()
    assert pruner.binding.residual == pytest.approx(0.0, abs=1e-6)
    assert pruner.binding.rho.numpy() == pytest.approx(1.0)   # unchanged
    with pytest.raises(ValueError, match="`target_residual`"):
        ADMMPruning(0.5, target_residual=2.0)


def _dense_pair(seed=0):
    rng = np.random.default_rng(seed)
    inputs = keras.Input((10,))
    hidden = keras.layers.Dense(20, name="first")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(5, name="second")(hidden))
    x = rng.normal(size=(64, 10)).astype(np.float32)
    y = rng.normal(size=(64, 5)).astype(np.float32)
    return make_prunable(model), x, y


class _SparsityRecorder(keras.callbacks.Callback):
    """Per-layer zero fractions and zero sets at every epoch start (after the pruner)."""

    def __init__(self, pruner):
        super().__init__()
        self.pruner, self.sparsities, self.zeros = pruner, {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        self.sparsities[epoch] = self.pruner.binding.sparsities()
        self.zeros[epoch] = [p.weight.variable.numpy() == 0 for p in self.pruner.binding.plans]


def test_progressive_stage_rates_are_geometric_in_the_kept_fraction():
    pruner = ReweightedPruning(0.99, penalty=1e-4, prune_at=6, progressive_steps=3,
                               edge_layer_sparsity=None)
    plans = pruner.plan(_dense_pair()[0])
    for stage, kept in ((1, 0.01 ** (1 / 3)), (2, 0.01 ** (2 / 3)), (3, 0.01)):
        for plan in pruner.stage_plans(plans, stage):
            assert plan.rate == pytest.approx(1 - kept, rel=1e-9)
    assert [pruner.stage_at(p) for p in range(6)] == [1, 1, 2, 2, 3, 3]
    later = ReweightedPruning(0.99, penalty=1e-4, prune_at=8, progressive_steps=3)
    assert [later.stage_at(p, start=2) for p in range(2, 8)] == [1, 1, 2, 2, 3, 3]


@pytest.mark.parametrize("pruner_class,kwargs", [(ReweightedPruning, {"penalty": 1e-4}),
                                                 (ADMMPruning, {"rho": 1e-3})])
def test_progressive_targets_hard_prune_each_stage_and_keep_earlier_zeros(pruner_class, kwargs):
    model, x, y = _dense_pair()
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    pruner = pruner_class(0.96, prune_at=8, progressive_steps=3, edge_layer_sparsity=None,
                          **kwargs)
    recorder = _SparsityRecorder(pruner)
    # Dense pre-training for 2 epochs, as a recipe does: the stages split epochs 2..7.
    model.fit(x, y, epochs=2, verbose=0)
    model.fit(x, y, initial_epoch=2, epochs=10, batch_size=16, verbose=0,
              callbacks=pruner.callbacks() + [recorder])
    sizes = {"first": 200, "second": 100}
    expected = {2: 0.0, 4: 1 - 0.04 ** (1 / 3), 6: 1 - 0.04 ** (2 / 3), 8: 0.96}
    for epoch, rate in expected.items():
        for layer, size in sizes.items():
            assert recorder.sparsities[epoch][layer] == pytest.approx(
                round(rate * size) / size), (epoch, layer)
    for earlier, later in zip(range(2, 9), range(3, 10)):  # a pruned weight never returns
        for before, after in zip(recorder.zeros[earlier], recorder.zeros[later]):
            assert np.all(after[before]), (earlier, later)
    assert pruner.binding.sparsities() == pytest.approx({"first": 0.96, "second": 0.96})


def test_progressive_steps_errors():
    with pytest.raises(ValueError, match="`progressive_steps`. Expected a positive integer"):
        ReweightedPruning(0.9, prune_at=4, progressive_steps=0)
    with pytest.raises(ValueError, match="at most prune_at=2"):
        ReweightedPruning(0.9, prune_at=2, progressive_steps=3)
    with pytest.raises(ValueError, match="at most prune_at=None"):
        ReweightedPruning(0.9, prune_at=None, progressive_steps=2)


def test_calibration_grows_between_progressive_stage_changes_only():
    model, x, y = _dense_pair()
    model.compile(keras.optimizers.SGD(1e-3), "mse")
    pruner = ReweightedPruning(0.96, prune_at=6, progressive_steps=3, edge_layer_sparsity=None)
    history = model.fit(x, y, epochs=6, batch_size=64, verbose=0, callbacks=pruner.callbacks())
    masses = history.history["pruning_outside_mass"]
    assert min(masses) > 1e-3  # a tiny learning rate: the outside set never empties here
    lambdas = history.history["pruning_lambda"]
    # The stage changes (epochs 2 and 4) hard-prune the groups penalised so far, and the
    # new outside set has not been penalised yet: nothing to judge, lambda unchanged.
    assert lambdas[2] == lambdas[1] and lambdas[4] == lambdas[3], lambdas
    # Between them, a reweighting grows it while the data term holds groups up.
    assert lambdas[1] == pytest.approx(4e-5) and lambdas[3] == pytest.approx(1.6e-4), lambdas


class _RateRecorder(keras.callbacks.Callback):
    """The pruner's current rates and the kernels' zero fractions at every epoch start."""

    def __init__(self, pruner):
        super().__init__()
        self.pruner, self.rates, self.sparsities, self.outside = pruner, {}, {}, {}

    def on_epoch_begin(self, epoch, logs=None):
        binding = self.pruner.binding
        self.rates[epoch] = [p.rate for p in binding.plans]
        self.sparsities[epoch] = binding.sparsities()
        self.outside[epoch] = [float(np.sum(o.numpy())) for o in binding.outside]


def test_ramped_rates_follow_the_cubic_schedule_and_nothing_is_frozen_before_the_prune():
    model, x, y = _dense_pair()
    model.compile(keras.optimizers.Adam(1e-3), "mse")
    pruner = ReweightedPruning(0.9, penalty=1e-3, prune_at=6, ramp_power=3,
                               edge_layer_sparsity=None)
    recorder = _RateRecorder(pruner)
    model.fit(x, y, epochs=2, verbose=0)  # dense pre-training: the ramp spans epochs 2..5
    model.fit(x, y, initial_epoch=2, epochs=8, batch_size=16, verbose=0,
              callbacks=pruner.callbacks() + [recorder])
    for epoch in range(2, 6):
        expected = 0.9 * (1 - (1 - (epoch - 2) / 4) ** 3)
        assert recorder.rates[epoch] == pytest.approx([expected, expected]), epoch
        # Penalised, not pruned: no kernel has a zero before the hard prune ...
        assert recorder.sparsities[epoch] == {"first": 0.0, "second": 0.0}, epoch
        # ... and exactly the groups the current rate would remove are outside.
        assert recorder.outside[epoch] == [round(expected * 200), round(expected * 100)], epoch
    assert recorder.rates[2] == [0.0, 0.0]
    assert recorder.sparsities[6] == pytest.approx({"first": 0.9, "second": 0.9})
    assert pruner.binding.sparsities() == pytest.approx({"first": 0.9, "second": 0.9})


def test_ramp_at_progress_zero_penalises_nothing():
    pruner = ReweightedPruning(0.5, penalty=0.01, prune_at=4, ramp_power=3,
                               edge_layer_sparsity=None)
    pruner.bind(make_prunable(two_dense([FIRST, SECOND])))
    assert pruner.penalty_value() == 0.0
    assert [p.rate for p in pruner.ramp_plans(pruner.binding.final_plans, 0.5)] == \
        pytest.approx([0.5 * 0.875] * 2)


def test_ramp_power_errors_and_config_round_trip():
    with pytest.raises(ValueError, match="`ramp_power`. Expected None"):
        ReweightedPruning(0.9, prune_at=4, ramp_power=0)
    with pytest.raises(ValueError, match="A ramp needs `prune_at`"):
        ReweightedPruning(0.9, prune_at=None, ramp_power=3)
    with pytest.raises(ValueError, match="excludes `progressive_steps`"):
        ReweightedPruning(0.9, prune_at=4, ramp_power=3, progressive_steps=2)
    pruner = ADMMPruning(0.9, prune_at=4, ramp_power=2)
    assert ADMMPruning.from_config(pruner.get_config()).ramp_power == 2.0


def test_ramped_constructor_counts_in_steps():
    pruner = ReweightedPruning.ramped(0.9, "filter", prune_at_epoch=6, steps_per_epoch=50,
                                      penalty=1e-3)
    assert (pruner.unit, pruner.prune_at, pruner.reweight_every, pruner.ramp_power) == \
        ("step", 300, 12, 3.0)
    assert pruner.structure.name == "filter" and pruner.penalty == 1e-3
    assert ReweightedPruning.ramped(0.9, prune_at_epoch=2, steps_per_epoch=3).reweight_every == 1
    with pytest.raises(ValueError, match="`steps_per_epoch`. Expected a positive integer"):
        ReweightedPruning.ramped(0.9, prune_at_epoch=6, steps_per_epoch=0)


def test_ramp_fraction_reaches_the_final_rate_early_and_holds_it():
    pruner = ReweightedPruning(0.9, prune_at=10, ramp_power=3, ramp_fraction=0.5)
    assert [pruner.progress(p, start=2) for p in (2, 4, 6, 8, 9)] == pytest.approx(
        [0.0, 0.5, 1.0, 1.0, 1.0])
    assert ReweightedPruning(0.9, prune_at=10, ramp_power=3).progress(6, start=2) == 0.5
    with pytest.raises(ValueError, match="`ramp_fraction`. Expected a float in \\(0, 1\\]"):
        ReweightedPruning(0.9, prune_at=10, ramp_power=3, ramp_fraction=0.0)
