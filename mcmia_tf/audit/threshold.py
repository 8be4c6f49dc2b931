"""Metric-based attacks: loss, confidence, entropy and modified entropy thresholds.

Each attack reduces a model output to one membership score per example (higher =
member) and thresholds it:

* loss (Yeom et al., CSF 2018):           s = log p_y = -loss
* confidence (Salem et al., NDSS 2019):   s = max_j log p_j
* entropy (Salem et al.; Song & Mittal):  s = -H(p) = sum_j p_j log p_j
* modified entropy (Song & Mittal, USENIX Security 2021, eq. 4):
      s = -Mentr(p, y) = (1 - p_y) log p_y + sum_{j != y} p_j log(1 - p_j)

Global thresholds are threshold-free here: the attack is reported as the ROC of `s`.
When calibration records exist (shadow models' outputs on their own IN / OUT
examples), `fit_calibration` fits a global threshold and one threshold per class
(Song & Mittal's class-conditional attack), each maximizing balanced accuracy on the
calibration records only. The class-conditional attack is then the ROC of the
shifted score `s - tau_y`, and the fitted thresholds' balanced accuracy on the
evaluation set is reported separately. No threshold is ever fitted on evaluation data.
"""

import dataclasses
from typing import Optional, Tuple

import numpy as np

from mcmia_tf.audit import metrics as metrics_lib
from mcmia_tf.audit import predictors

__all__ = [
    "METRIC_NAMES",
    "membership_statistic",
    "best_threshold",
    "ThresholdCalibration",
    "fit_calibration",
    "calibrated_scores",
    "thresholded_balanced_accuracy",
    "run_metric_attack",
]

METRIC_NAMES = ("loss", "confidence", "entropy", "modified_entropy")


def _check_metric(metric: str) -> str:
    if metric not in METRIC_NAMES:
        raise ValueError(f"Invalid value for argument `metric`. Expected one of {METRIC_NAMES}. "
                         f"Received: metric={metric!r}")
    return metric


def membership_statistic(metric: str, outputs: np.ndarray, labels: np.ndarray,
                         output_type: str) -> np.ndarray:
    """The per-example membership score of a metric attack (higher = member).

    Args:
      metric: one of `METRIC_NAMES`.
      outputs: `(n, num_classes)` logits or probabilities.
      labels: `(n,)` integer labels.
      output_type: "logits" or "probabilities".

    Returns:
      `(n,)` float64 scores.
    """
    _check_metric(metric)
    log_p = predictors.log_probabilities(outputs, output_type)
    labels = predictors.validate_labels(labels, log_p.shape[1], length=len(log_p))
    rows = np.arange(len(labels))
    if metric == "loss":
        return log_p[rows, labels]
    if metric == "confidence":
        return log_p.max(axis=1)
    p = np.exp(log_p)
    if metric == "entropy":
        return np.sum(p * log_p, axis=1)
    # log(1 - p_j) = log(-expm1(log p_j)) keeps precision when p_j is close to 1;
    # clipped like Song & Mittal's reference code (log of at least 1e-30).
    log_one_minus_p = np.log(np.maximum(-np.expm1(log_p), 1e-30))
    p_y = p[rows, labels]
    others = p * log_one_minus_p
    others[rows, labels] = 0.0
    return (1.0 - p_y) * log_p[rows, labels] + others.sum(axis=1)


def best_threshold(scores: np.ndarray, is_member: np.ndarray) -> float:
    """The threshold maximizing balanced accuracy of "member iff score >= threshold"."""
    roc = metrics_lib.roc_curve(scores, is_member)
    best = int(np.argmax(roc.tpr - roc.fpr))
    return float(roc.thresholds[best])


def thresholded_balanced_accuracy(scores: np.ndarray, is_member: np.ndarray,
                                  threshold: float = 0.0) -> float:
    """Balanced accuracy of the fixed decision "member iff score >= threshold"."""
    scores, is_member = metrics_lib.validate_scores(scores, is_member)
    predicted = scores >= threshold
    return float((predicted[is_member].mean() + (~predicted[~is_member]).mean()) / 2.0)


@dataclasses.dataclass(frozen=True)
class ThresholdCalibration:
    """Thresholds of one metric attack, fitted on calibration (shadow) records.

    Attributes:
      metric: the metric attack.
      global_threshold: one threshold for all classes.
      class_thresholds: one threshold per class; classes without both IN and OUT
        calibration records fall back to `global_threshold`.
    """

    metric: str
    global_threshold: float
    class_thresholds: Tuple[float, ...]

    def to_dict(self) -> dict:
        return {"metric": self.metric, "global_threshold": self.global_threshold,
                "class_thresholds": list(self.class_thresholds)}


def fit_calibration(metric: str, outputs: np.ndarray, labels: np.ndarray,
                    is_member: np.ndarray, output_type: str) -> ThresholdCalibration:
    """Fits global and class-conditional thresholds on calibration records.

    Args:
      metric: one of `METRIC_NAMES`.
      outputs: `(n, num_classes)` outputs of shadow models on their own pool.
      labels: `(n,)` labels of those records.
      is_member: `(n,)` True where the shadow model trained on the record.
      output_type: "logits" or "probabilities".

    Returns:
      A `ThresholdCalibration`.
    """
    scores = membership_statistic(metric, outputs, labels, output_type)
    labels = np.asarray(labels)
    is_member = np.asarray(is_member, bool)
    global_threshold = best_threshold(scores, is_member)
    class_thresholds = []
    for c in range(np.asarray(outputs).shape[1]):
        in_class = labels == c
        if is_member[in_class].any() and (~is_member[in_class]).any():
            class_thresholds.append(best_threshold(scores[in_class], is_member[in_class]))
        else:
            class_thresholds.append(global_threshold)
    return ThresholdCalibration(metric=metric, global_threshold=global_threshold,
                                class_thresholds=tuple(class_thresholds))


def calibrated_scores(calibration: ThresholdCalibration, outputs: np.ndarray,
                      labels: np.ndarray, output_type: str,
                      class_conditional: bool = True) -> np.ndarray:
    """Scores shifted by the fitted threshold: "member iff >= 0" is the fitted attack.

    Infinite thresholds (a class whose calibration records are all separable at the
    extreme) are replaced by the largest finite score shift so the ROC stays finite.
    """
    scores = membership_statistic(calibration.metric, outputs, labels, output_type)
    labels = np.asarray(labels, np.int64)
    if class_conditional:
        thresholds = np.asarray(calibration.class_thresholds)[labels]
    else:
        thresholds = np.full(len(scores), calibration.global_threshold)
    finite = np.isfinite(thresholds)
    shifted = np.where(finite, scores - np.where(finite, thresholds, 0.0), -np.inf)
    if not finite.all():
        shifted[~finite] = (shifted[finite].min() - 1.0) if finite.any() else 0.0
    return shifted


def run_metric_attack(metric: str, outputs: np.ndarray, labels: np.ndarray,
                      is_member: np.ndarray, output_type: str,
                      calibration: Optional[ThresholdCalibration] = None,
                      class_conditional: bool = False) -> Tuple[np.ndarray, Optional[float]]:
    """Scores of a metric attack on evaluation records, and its fixed-threshold accuracy.

    Returns:
      `(scores, threshold_accuracy)`: the membership scores (higher = member), and the
      balanced accuracy of the calibrated threshold on these records, or None without
      calibration (then only the threshold-free ROC is meaningful).
    """
    if calibration is None:
        if class_conditional:
            raise ValueError("Class-conditional thresholds need calibration records: pass a "
                             "`calibration` fitted on shadow models (`fit_calibration`).")
        return membership_statistic(metric, outputs, labels, output_type), None
    scores = calibrated_scores(calibration, outputs, labels, output_type, class_conditional)
    return scores, thresholded_balanced_accuracy(scores, is_member, 0.0)
