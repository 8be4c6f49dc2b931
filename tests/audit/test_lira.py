"""LiRA on synthetic Gaussian statistics, where the optimal test is known."""

import numpy as np
import pytest
from scipy import stats

from mcmia_tf.audit import lira
from mcmia_tf.audit import metrics
from mcmia_tf.data import draw_inclusion_masks


def _synthetic(num_candidates=2_000, num_models=16, seed=0):
    """phi ~ N(mu_i + 2 * in, 1): per-example difficulty mu_i hides membership globally."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0, 4, size=num_candidates)
    query_in = draw_inclusion_masks(num_candidates, num_models, seed)
    reference_phi = difficulty + 2.0 * query_in + rng.normal(size=query_in.shape)
    is_member = rng.random(num_candidates) < 0.5
    target_phi = difficulty + 2.0 * is_member + rng.normal(size=num_candidates)
    return target_phi, reference_phi, query_in, is_member


@pytest.mark.parametrize("online", [True, False])
@pytest.mark.parametrize("fixed_variance", [True, False])
def test_lira_beats_global_threshold_when_examples_differ(online, fixed_variance):
    target_phi, reference_phi, query_in, is_member = _synthetic()
    scores = lira.lira_scores(target_phi, reference_phi, query_in, online=online,
                              fixed_variance=fixed_variance)
    lira_auc = metrics.roc_curve(scores, is_member).auc
    global_auc = metrics.roc_curve(target_phi, is_member).auc
    # The Bayes-optimal per-example test separates N(0,1) from N(2,1): AUC = Phi(2 / sqrt 2)
    # = 0.921; the global threshold is drowned by the N(0, 16) difficulty (AUC ~ 0.64).
    assert lira_auc > 0.85
    assert global_auc < 0.7


def test_online_lira_on_exact_gaussians_matches_likelihood_ratio():
    # Two candidates, six models: three IN and three OUT for each candidate.
    reference_phi = np.array([[0.0, 5.0], [2.0, 7.0], [1.0, 6.0], [3.0, 8.0],
                              [-1.0, 4.0], [4.0, 9.0]])
    query_in = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 0], [0, 1]], bool)
    target_phi = np.array([2.0, 6.0])
    scores = lira.lira_scores(target_phi, reference_phi, query_in, online=True,
                              fixed_variance=False)
    ins = [reference_phi[query_in[:, i], i] for i in range(2)]
    outs = [reference_phi[~query_in[:, i], i] for i in range(2)]
    expected = [stats.norm.logpdf(target_phi[i], np.median(ins[i]), np.std(ins[i], ddof=1))
                - stats.norm.logpdf(target_phi[i], np.median(outs[i]), np.std(outs[i], ddof=1))
                for i in range(2)]
    np.testing.assert_allclose(scores, expected)


def test_too_few_models_raise():
    target_phi, reference_phi, query_in, _ = _synthetic(num_candidates=10, num_models=2)
    with pytest.raises(ValueError, match="at least 2 reference models that did not train"):
        lira.lira_scores(target_phi, reference_phi, query_in, online=False)
    no_in = np.zeros_like(query_in)
    with pytest.raises(ValueError, match="IN and"):
        lira.lira_scores(target_phi, reference_phi, no_in, online=True)
    with pytest.raises(ValueError, match="per-example variance"):
        lira.lira_scores(target_phi, reference_phi, query_in, online=True, fixed_variance=False)


def test_mismatched_shapes_and_nan_raise():
    target_phi, reference_phi, query_in, _ = _synthetic(num_candidates=10, num_models=4)
    with pytest.raises(ValueError, match="shapes"):
        lira.lira_scores(target_phi[:5], reference_phi, query_in)
    bad = reference_phi.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        lira.lira_scores(target_phi, bad, query_in)


def test_augmented_views():
    x = np.arange(2 * 4 * 4).reshape(2, 4, 4, 1).astype(np.float32)
    views = lira.augmented_views(x, flip=True, shift_pixels=1)
    assert len(views) == 6 and all(v.shape == x.shape for v in views)
    assert views[0] is x
    np.testing.assert_array_equal(views[1][:, :, 0], x[:, :, 3])
    # Shift down by one row: row 1 of the view is row 0 of the image.
    np.testing.assert_array_equal(views[2][:, 1], x[:, 0])
    with pytest.raises(ValueError, match="NHWC"):
        lira.augmented_views(np.zeros((2, 3)), flip=True)
