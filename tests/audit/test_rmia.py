"""RMIA against a naive transcription of the paper's formulas and on synthetic data."""

import inspect

import numpy as np
import pytest

from mcmia_tf.audit import metrics
from mcmia_tf.audit import rmia
from mcmia_tf.data import draw_inclusion_masks


def _naive_rmia(target, reference, query_in, pop_target, pop_reference, online, a, gamma):
    """Zarifzadeh et al., Eq. 4, with an explicit (V, n, m) ratio matrix and loops."""
    target = np.atleast_2d(target)
    reference = reference[:, None] if reference.ndim == 2 else reference
    num_models, num_views, num_candidates = reference.shape
    p_z = 0.5 * ((1 + a) * pop_reference.mean(axis=0) + (1 - a))
    r_z = pop_target / p_z
    r_x = np.zeros((num_views, num_candidates))
    for v in range(num_views):
        for i in range(num_candidates):
            if online:
                p_x = reference[:, v, i].mean()
            else:
                p_x = 0.5 * ((1 + a) * reference[~query_in[:, i], v, i].mean() + (1 - a))
            r_x[v, i] = target[v, i] / p_x
    ratios = r_x[:, :, None] / r_z[None, None, :]
    return (ratios > gamma).mean(axis=2).mean(axis=0)


def _random_inputs(num_candidates=60, num_models=4, num_views=1, num_population=50, seed=0):
    rng = np.random.default_rng(seed)
    views = () if num_views == 1 else (num_views,)
    target = rng.uniform(0.01, 1.0, size=views + (num_candidates,))
    reference = rng.uniform(0.01, 1.0, size=(num_models,) + views + (num_candidates,))
    query_in = draw_inclusion_masks(num_candidates, num_models, seed)
    pop_target = rng.uniform(0.01, 1.0, size=num_population)
    pop_reference = rng.uniform(0.01, 1.0, size=(num_models, num_population))
    return target, reference, query_in, pop_target, pop_reference


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("a", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("num_views", [1, 2])
def test_matches_naive_transcription(online, a, gamma, num_views):
    inputs = _random_inputs(num_views=num_views, seed=num_views)
    scores = rmia.rmia_scores(*inputs, online=online, offline_a=a, gamma=gamma)
    np.testing.assert_allclose(scores, _naive_rmia(*inputs, online, a, gamma), atol=1e-12)
    assert scores.shape == (60,) and scores.min() >= 0.0 and scores.max() <= 1.0


@pytest.mark.parametrize("online", [True, False])
def test_ties_are_not_counted(online):
    target, reference, query_in, pop_target, pop_reference = _random_inputs(seed=3)
    query_in[:, :5] = False  # with a = 1, p(z) = mean_OUT p(x) exactly for these candidates
    # Population points 0-4 duplicate candidates 0-4, so r(x) = r(z) exactly; population
    # points 5-9 duplicate each other.
    pop_target[:5], pop_reference[:, :5] = target[:5], reference[:, :5]
    pop_target[5:10], pop_reference[:, 5:10] = pop_target[5], pop_reference[:, 5:6]
    scores = rmia.rmia_scores(target, reference, query_in, pop_target, pop_reference,
                              online=online, offline_a=1.0, gamma=1.0)
    expected = _naive_rmia(target, reference, query_in, pop_target, pop_reference, online,
                           1.0, 1.0)
    np.testing.assert_allclose(scores, expected, atol=1e-12)
    for i in range(5):  # r(x_i) / r(z_i) = 1 is not > 1
        assert scores[i] * 50 == np.sum(pop_target / pop_reference.mean(0)
                                        < target[i] / reference[:, i].mean())


def test_true_label_probability_matches_tempered_softmax():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 7, 5)) * 4
    labels = rng.integers(0, 5, size=7)
    expected = np.exp(logits / 2.0) / np.exp(logits / 2.0).sum(-1, keepdims=True)
    expected = np.take_along_axis(expected, labels[None, :, None].repeat(3, 0), -1)[..., 0]
    np.testing.assert_allclose(rmia.true_label_probability(logits, labels, "logits"), expected)
    probabilities = np.exp(logits[0]) / np.exp(logits[0]).sum(-1, keepdims=True)
    probabilities[0, 0] = 0.0  # clipped at 1e-12
    powered = np.maximum(probabilities, 1e-12)**(1 / 3)
    expected = (powered / powered.sum(-1, keepdims=True))[np.arange(7), labels]
    np.testing.assert_allclose(
        rmia.true_label_probability(probabilities, labels, "probabilities", temperature=3.0),
        expected)


def test_true_label_probability_is_stable_for_huge_logits():
    logits = np.array([[1e300, -1e300, 0.0], [-1e300, 1e300, 1e300]])
    p = rmia.true_label_probability(logits, np.array([0, 1]), "logits", temperature=1.0)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [1.0, 0.5])


@pytest.mark.parametrize("a", [0.0, 0.3, 1.0])
def test_offline_equals_online_with_in_models_imputed_by_the_linear_correction(a):
    target, reference, query_in, pop_target, pop_reference = _random_inputs(seed=4)
    assert np.all(query_in.sum(0) == 2)  # 4 models, each candidate IN for exactly half
    # The correction assumes p_IN = a * p_OUT + (1 - a); with IN values replaced by that,
    # the online mean over the balanced models is ((1 + a) * mean_OUT + (1 - a)) / 2.
    out_mean = np.where(~query_in, reference, 0).sum(0) / (~query_in).sum(0)
    imputed = np.where(query_in, a * out_mean + (1 - a), reference)
    offline = rmia.rmia_scores(target, reference, query_in, pop_target, pop_reference,
                               online=False, offline_a=a)
    online = rmia.rmia_scores(target, imputed, query_in, pop_target, pop_reference,
                              online=True, offline_a=a)
    np.testing.assert_allclose(offline, online)


def test_offline_a_one_uses_the_out_mean_and_a_zero_assumes_confident_in_models():
    target, reference, query_in, pop_target, pop_reference = _random_inputs(seed=5)
    out_mean = np.where(~query_in, reference, 0).sum(0) / (~query_in).sum(0)
    r_z = pop_target / pop_reference.mean(0)
    a_one = rmia.rmia_scores(target, reference, query_in, pop_target, pop_reference,
                             online=False, offline_a=1.0, gamma=1.5)
    # a = 1: p(x) = mean_OUT, p(z) = mean over the reference models.
    np.testing.assert_allclose(a_one, np.mean((target / out_mean)[:, None] / r_z > 1.5, 1))
    a_zero = rmia.rmia_scores(target, reference, query_in, pop_target, pop_reference,
                              online=False, offline_a=0.0, gamma=1.5)
    # a = 0: p(x) = (mean_OUT + 1) / 2 (IN models assumed to give p = 1), same for p(z).
    r_z = pop_target / ((pop_reference.mean(0) + 1) / 2)
    np.testing.assert_allclose(a_zero,
                               np.mean((target / ((out_mean + 1) / 2))[:, None] / r_z > 1.5, 1))
    # With the same reference mean for every point, the score ranks by p(x|theta) alone.
    flat = rmia.rmia_scores(target, np.full_like(reference, 0.4), query_in, pop_target,
                            np.full_like(pop_reference, 0.4), online=False, offline_a=0.0,
                            gamma=1.5)
    np.testing.assert_allclose(flat, np.mean(target[:, None] / pop_target > 1.5, axis=1))
    assert np.all(np.diff(flat[np.argsort(target)]) >= 0)


def _synthetic(num_candidates, num_models=8, num_population=2_000, shift=2.0, seed=0):
    """logit p = difficulty + shift * IN + noise: difficulty hides membership globally."""
    rng = np.random.default_rng(seed)
    sigmoid = lambda z: 1.0 / (1.0 + np.exp(-z))
    difficulty = rng.normal(0, 2, size=num_candidates)
    query_in = draw_inclusion_masks(num_candidates, num_models, seed)
    noise = lambda *shape: rng.normal(0, 0.5, size=shape)
    reference = sigmoid(difficulty + shift * query_in + noise(*query_in.shape))
    is_member = rng.random(num_candidates) < 0.5
    target = sigmoid(difficulty + shift * is_member + noise(num_candidates))
    pop_difficulty = rng.normal(0, 2, size=num_population)
    pop_target = sigmoid(pop_difficulty + noise(num_population))
    pop_reference = sigmoid(pop_difficulty + noise(num_models, num_population))
    return target, reference, query_in, pop_target, pop_reference, is_member


@pytest.mark.parametrize("online", [True, False])
def test_rmia_detects_members_and_is_chance_without_signal(online):
    *inputs, is_member = _synthetic(4_000)
    scores = rmia.rmia_scores(*inputs, online=online, offline_a=0.5)
    assert metrics.roc_curve(scores, is_member).auc > 0.9
    *inputs, is_member = _synthetic(20_000, shift=0.0, seed=1)
    scores = rmia.rmia_scores(*inputs, online=online, offline_a=0.5)
    assert abs(metrics.roc_curve(scores, is_member).auc - 0.5) < 0.05


def test_tune_offline_a_picks_the_best_grid_value():
    _, reference, query_in, _, pop_reference, _ = _synthetic(1_000, num_models=6, seed=2)
    grid = (0.0, 0.25, 0.5, 0.75, 1.0)
    result = rmia.tune_offline_a(reference, query_in, pop_reference, grid, seed=1)
    parameters = inspect.signature(rmia.tune_offline_a).parameters
    assert not any(name.startswith("target") for name in parameters)  # nothing of the target
    assert len(result.pseudo_targets) == 4 and result.grid == grid and result.a in grid
    brute_force = []
    for a in grid:
        aucs = []
        for k in result.pseudo_targets:
            others = np.arange(6) != k
            scores = rmia.rmia_scores(reference[k], reference[others], query_in[others],
                                      pop_reference[k], pop_reference[others], online=False,
                                      offline_a=a)
            aucs.append(metrics.roc_curve(scores, query_in[k]).auc)
        brute_force.append(np.mean(aucs))
    np.testing.assert_allclose(result.aucs, brute_force)
    assert result.a == grid[int(np.argmax(brute_force))]
    assert 0.0 < result.a < 1.0  # IN models are neither ignored nor saturated here
    assert result.aucs[grid.index(result.a)] > 0.9


def test_tune_offline_a_excludes_candidates_without_out_model():
    _, reference, query_in, _, pop_reference, _ = _synthetic(400, num_models=3, seed=3)
    query_in[:, :10] = [[False], [True], [True]]  # no OUT model when model 0 is the target
    result = rmia.tune_offline_a(reference, query_in, pop_reference, (0.0, 0.5))
    assert result.pseudo_targets == (0, 1, 2)
    with pytest.raises(ValueError, match="no pseudo-target has both members"):
        rmia.tune_offline_a(reference, np.ones_like(query_in), pop_reference)
    with pytest.raises(ValueError, match="at least 2 reference models"):
        rmia.tune_offline_a(reference[:1], query_in[:1], pop_reference[:1])
    with pytest.raises(ValueError, match="Expected a float in"):
        rmia.tune_offline_a(reference, query_in, pop_reference, (0.5, 1.5))


def test_errors():
    target, reference, query_in, pop_target, pop_reference = _random_inputs(seed=6)
    args = (target, reference, query_in, pop_target, pop_reference)
    with pytest.raises(ValueError, match=r"`gamma`. Expected a float > 0. Received: gamma=0"):
        rmia.rmia_scores(*args, gamma=0)
    with pytest.raises(ValueError, match=r"`offline_a`. Expected a float in \[0, 1\]"):
        rmia.rmia_scores(*args, offline_a=-0.1)
    with pytest.raises(ValueError, match="RMIA needs at least 1 reference model"):
        rmia.rmia_scores(target, reference[:0], query_in[:0], pop_target, pop_reference[:0])
    with pytest.raises(ValueError, match="at least 1 population point"):
        rmia.rmia_scores(target, reference, query_in, pop_target[:0], pop_reference[:, :0])
    with pytest.raises(ValueError, match="Expected shapes"):
        rmia.rmia_scores(target[:-1], reference, query_in, pop_target, pop_reference)
    with pytest.raises(ValueError, match="Expected shapes"):
        rmia.rmia_scores(target, reference, query_in, pop_target, pop_reference[:-1])
    with pytest.raises(ValueError, match="`reference_p`. Expected 2 or 3 dimensions"):
        rmia.rmia_scores(target, reference[0], query_in, pop_target, pop_reference)
    bad = target.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="`target_p`. Expected finite probabilities"):
        rmia.rmia_scores(bad, reference, query_in, pop_target, pop_reference)
    with pytest.raises(ValueError, match="or use the online variant"):
        rmia.rmia_scores(target, reference, np.ones_like(query_in), pop_target, pop_reference,
                         online=False)
    # The online variant works with a single model, even if it trained on every candidate.
    assert rmia.rmia_scores(target, reference[:1], np.ones_like(query_in[:1]), pop_target,
                            pop_reference[:1]).shape == (60,)
    logits, labels = np.zeros((4, 3)), np.array([0, 1, 2, 0])
    with pytest.raises(ValueError, match="Expected a float > 0. Received: temperature=0"):
        rmia.true_label_probability(logits, labels, "logits", temperature=0.0)
    with pytest.raises(ValueError, match="`output_type`. Expected one of"):
        rmia.true_label_probability(logits, labels, "softmax")
    with pytest.raises(ValueError, match="Expected shapes"):
        rmia.true_label_probability(logits, labels[:-1], "logits")
    with pytest.raises(ValueError, match="Expected integer labels in"):
        rmia.true_label_probability(logits, labels + 1, "logits")
    with pytest.raises(ValueError, match="Expected finite model outputs"):
        rmia.true_label_probability(np.full((4, 3), np.inf), labels, "logits")


def test_break_ties_keeps_the_count_order_and_orders_ties_by_the_ratio():
    rng = np.random.default_rng(5)
    target, reference = rng.uniform(0.05, 1, 200), rng.uniform(0.05, 1, (4, 200))
    query_in = np.zeros((4, 200), bool)
    query_in[:2] = True
    population_target, population_reference = rng.uniform(0.05, 1, 7), rng.uniform(0.05, 1,
                                                                                    (4, 7))
    args = (target, reference, query_in, population_target, population_reference)
    plain = rmia.rmia_scores(*args)
    broken = rmia.rmia_scores(*args, break_ties=True)
    ratio = target / reference.mean(axis=0)
    # 7 population points: at most 8 distinct plain scores for 200 candidates.
    assert len(np.unique(plain)) <= 8 and len(np.unique(broken)) == 200
    for i, j in zip(*np.triu_indices(200, 1)):
        if plain[i] != plain[j]:
            assert (plain[i] < plain[j]) == (broken[i] < broken[j])
        else:
            assert (ratio[i] < ratio[j]) == (broken[i] < broken[j])
    assert np.all((broken > 0) & (broken < 1))
