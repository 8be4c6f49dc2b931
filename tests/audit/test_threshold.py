"""Metric attacks: statistics with hand-derived values and shadow-fitted thresholds."""

import numpy as np
import pytest

from mcmia_tf.audit import threshold


def test_statistics_equal_hand_derived_values():
    p = np.array([[0.7, 0.2, 0.1]])
    y = np.array([1])
    log = np.log
    expected = {
        "loss": log(0.2),
        "confidence": log(0.7),
        "entropy": 0.7 * log(0.7) + 0.2 * log(0.2) + 0.1 * log(0.1),
        # -Mentr = (1 - p_y) log p_y + sum_{j != y} p_j log(1 - p_j)  (Song & Mittal, eq. 4)
        "modified_entropy": 0.8 * log(0.2) + 0.7 * log(0.3) + 0.1 * log(0.9),
    }
    for metric, value in expected.items():
        assert threshold.membership_statistic(metric, p, y, "probabilities")[0] == pytest.approx(
            value, rel=1e-12), metric
        # The same statistic from logits (log p + any constant).
        assert threshold.membership_statistic(metric, np.log(p) + 3.0, y, "logits")[
            0] == pytest.approx(value, rel=1e-9), metric


def test_modified_entropy_is_monotone_in_true_class_confidence():
    # Mentr decreases as p_y grows (correct, confident = member-like), unlike entropy,
    # which is also low for confident wrong predictions.
    p_y = np.linspace(0.05, 0.95, 10)
    p = np.stack([p_y, 1 - p_y], axis=1)
    scores = threshold.membership_statistic("modified_entropy", p, np.zeros(10, int),
                                            "probabilities")
    assert np.all(np.diff(scores) > 0)


def test_calibration_fits_class_thresholds_on_calibration_records_only():
    # Class 0 members have confidence 0.9 vs 0.6 for non-members; class 1: 0.99 vs 0.95.
    confidences = np.array([0.9, 0.9, 0.6, 0.6, 0.99, 0.99, 0.95, 0.95])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    is_member = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    p = np.zeros((8, 2))
    p[np.arange(8), labels] = confidences
    p[np.arange(8), 1 - labels] = 1 - confidences
    calibration = threshold.fit_calibration("loss", p, labels, is_member, "probabilities")
    assert calibration.class_thresholds[0] == pytest.approx(np.log(0.9))
    assert calibration.class_thresholds[1] == pytest.approx(np.log(0.99))
    # A global threshold cannot separate both classes; class thresholds can.
    scores, accuracy = threshold.run_metric_attack("loss", p, labels, is_member,
                                                   "probabilities", calibration,
                                                   class_conditional=True)
    assert accuracy == 1.0
    _, global_accuracy = threshold.run_metric_attack("loss", p, labels, is_member,
                                                     "probabilities", calibration)
    assert global_accuracy < 1.0


def test_class_without_calibration_records_falls_back_to_global_threshold():
    p = np.array([[0.9, 0.1], [0.6, 0.4]])
    calibration = threshold.fit_calibration("confidence", p, np.array([0, 0]),
                                            np.array([True, False]), "probabilities")
    assert calibration.class_thresholds[1] == calibration.global_threshold


def test_class_conditional_without_calibration_raises():
    with pytest.raises(ValueError, match="calibration"):
        threshold.run_metric_attack("loss", np.zeros((2, 2)), np.array([0, 1]),
                                    np.array([True, False]), "logits", None,
                                    class_conditional=True)


def test_unknown_metric_raises():
    with pytest.raises(ValueError, match="metric"):
        threshold.membership_statistic("margin", np.zeros((1, 2)), np.array([0]), "logits")
