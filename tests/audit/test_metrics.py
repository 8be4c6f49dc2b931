"""Metrics equal their analytic values on synthetic scores."""

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from mcmia_tf.audit import metrics


def _labels(num_members, num_non_members):
    return np.r_[np.ones(num_members, bool), np.zeros(num_non_members, bool)]


def test_identical_distributions_give_auc_one_half():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=20_000)
    result = metrics.compute_attack_metrics(scores, _labels(10_000, 10_000))
    # Standard error of the AUC under the null is sqrt((n1 + n2 + 1) / (12 n1 n2)) ~ 0.0029.
    assert abs(result.auc - 0.5) < 4 * 0.0029
    assert abs(result.balanced_accuracy - 0.5) < 0.02
    assert result.tpr_at_fpr["1pct"] < 0.02


def test_separable_scores_give_perfect_attack():
    scores = np.r_[np.linspace(1.0, 2.0, 50), np.linspace(-2.0, 0.5, 70)]
    result = metrics.compute_attack_metrics(scores, _labels(50, 70))
    assert result.auc == 1.0
    assert result.balanced_accuracy == 1.0
    assert result.advantage == 1.0
    assert result.tpr_at_fpr == {"1pct": 1.0, "0.1pct": 1.0, "0pct": 1.0}
    assert result.precision_at_fpr["0pct"] == 1.0


def test_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(1)
    is_member = rng.random(3_000) < 0.4
    # Rounded scores create many ties, which the trapezoid must count as 1/2.
    scores = np.round(rng.normal(size=3_000) + 0.3 * is_member, 1)
    roc = metrics.roc_curve(scores, is_member)
    assert roc.auc == pytest.approx(sk_metrics.roc_auc_score(is_member, scores), abs=1e-12)
    sk_fpr, sk_tpr, _ = sk_metrics.roc_curve(is_member, scores, drop_intermediate=False)
    np.testing.assert_allclose(roc.fpr, sk_fpr, atol=1e-12)
    np.testing.assert_allclose(roc.tpr, sk_tpr, atol=1e-12)


def test_tpr_at_fpr_step_rule_without_interpolation():
    # 4 members, 10 non-members. Sorted by score: m m n m n n n n n n n m n n.
    scores = np.array([14, 13, 11, 3, 12, 10, 9, 8, 7, 6, 5, 4, 2, 1], float)
    is_member = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], bool)
    roc = metrics.roc_curve(scores, is_member)
    # FPR 0: only thresholds above the best non-member (12) -> 2 of 4 members.
    assert metrics.tpr_at_fpr(roc, 0.0) == 0.5
    # FPR 5% allows floor(0.5) = 0 false positives: still 0.5 (no line drawn to the next point).
    assert metrics.tpr_at_fpr(roc, 0.05) == 0.5
    # FPR 10% allows one false positive: threshold 11 reaches 3 of 4 members.
    assert metrics.tpr_at_fpr(roc, 0.1) == 0.75
    assert metrics.precision_at_fpr(roc, 0.1) == 0.75
    # The member at score 3 is reached only after 8 false positives.
    assert metrics.tpr_at_fpr(roc, 0.79) == 0.75
    assert metrics.tpr_at_fpr(roc, 0.8) == 1.0
    # Balanced accuracy and advantage are the best over thresholds: threshold 11 gives
    # TPR 0.75 at FPR 0.1 (advantage 0.65); threshold 3 gives 1.0 - 0.8 = 0.2.
    assert roc.advantage == pytest.approx(0.65)
    assert roc.balanced_accuracy == pytest.approx(0.825)


def test_precision_is_none_when_nobody_is_flagged():
    scores = np.array([1.0, 0.0, 2.0])
    roc = metrics.roc_curve(scores, np.array([True, True, False]))
    assert metrics.tpr_at_fpr(roc, 0.0) == 0.0
    assert metrics.precision_at_fpr(roc, 0.0) is None


def test_bootstrap_interval_contains_estimate_and_is_seeded():
    rng = np.random.default_rng(2)
    is_member = _labels(500, 500)
    scores = rng.normal(size=1000) + 0.5 * is_member
    first = metrics.compute_attack_metrics(scores, is_member, num_bootstrap=100, seed=3)
    second = metrics.compute_attack_metrics(scores, is_member, num_bootstrap=100, seed=3)
    low, high = first.confidence_intervals["auc"]
    assert low < first.auc < high
    assert high - low < 0.1
    assert first.confidence_intervals == second.confidence_intervals


def test_metrics_to_dict_round_trip():
    result = metrics.compute_attack_metrics(np.arange(10.0), np.arange(10) % 2 == 0,
                                            num_bootstrap=5)
    assert metrics.AttackMetrics.from_dict(result.to_dict()) == result


@pytest.mark.parametrize("scores, is_member, message", [
    (np.zeros(3), np.array([True, False]), "same length"),
    (np.array([0.0, np.nan]), np.array([True, False]), "NaN or inf"),
    (np.zeros(2), np.array([True, True]), "both members and non-members"),
    (np.zeros(2), np.array([2, 0]), "booleans"),
])
def test_bad_scores_raise(scores, is_member, message):
    with pytest.raises(ValueError, match=message):
        metrics.compute_attack_metrics(scores, is_member)


def test_bad_target_fpr_raises():
    roc = metrics.roc_curve(np.array([0.0, 1.0]), np.array([False, True]))
    with pytest.raises(ValueError, match="target_fpr"):
        metrics.tpr_at_fpr(roc, 1.5)
