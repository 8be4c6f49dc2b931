"""Membership-inference metrics: ROC, AUC, balanced accuracy, advantage, low-FPR TPR.

Convention: a higher score means "more likely a member". Every metric is computed
from the full ROC of the score, so no threshold is ever picked on evaluation data;
accuracy-type numbers are the best over all thresholds, as in Yeom et al. (CSF 2018)
and tensorflow-privacy's MIA library.

* ROC: for every distinct score `s`, the attack "predict member iff score >= s"
  has `TPR(s) = #{members >= s} / #members` and `FPR(s) = #{non-members >= s} /
  #non-members`; the curve starts at (0, 0) (threshold +inf).
* AUC: trapezoidal area under that curve, which equals the Mann-Whitney
  probability `P(score_member > score_non_member) + 0.5 P(=)`, i.e. scikit-learn's
  `roc_auc_score` on the same scores.
* Balanced accuracy: `max_s (TPR(s) + 1 - FPR(s)) / 2` (0.5 = chance).
* Attacker advantage (Yeom et al.): `max_s TPR(s) - FPR(s) = 2 * balanced_accuracy - 1`.
* TPR at FPR `t` (Carlini et al., S&P 2022), **step rule, no interpolation**:
  `max { TPR(s) : FPR(s) <= t }`. Only operating points a deterministic threshold
  actually reaches count, so the number is never inflated by drawing a straight line
  between ROC points. With `n` non-members, `FPR <= t` allows `floor(t * n)` false
  positives; at `t = 0` it is the fraction of members scored above every non-member.
  Resolving FPR `t` needs `n >= 1 / t` non-members (1,000 for 0.1%).
* Precision at FPR `t`: `TP / (TP + FP)` at that operating point; `None` when
  it predicts no member at all.
"""

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "STANDARD_FPR_TARGETS",
    "RocCurve",
    "AttackMetrics",
    "roc_curve",
    "tpr_at_fpr",
    "precision_at_fpr",
    "compute_attack_metrics",
    "fpr_key",
    "validate_scores",
]

STANDARD_FPR_TARGETS = (0.01, 0.001, 0.0)


def validate_scores(scores: np.ndarray, is_member: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Checks an attack's scores and membership labels; returns float64 / bool arrays."""
    scores = np.asarray(scores, dtype=np.float64)
    is_member = np.asarray(is_member)
    if scores.ndim != 1 or is_member.shape != scores.shape:
        raise ValueError(
            "Invalid value for arguments `scores` and `is_member`. Expected two 1-D arrays "
            f"of the same length. Received: scores.shape={scores.shape}, "
            f"is_member.shape={is_member.shape}")
    if not np.all(np.isin(is_member, (0, 1))):
        raise ValueError(
            "Invalid value for argument `is_member`. Expected booleans (1 = member). "
            f"Received values {np.unique(is_member)[:5]}")
    is_member = is_member.astype(bool)
    if is_member.all() or not is_member.any():
        raise ValueError(
            "Invalid value for argument `is_member`. Expected both members and non-members. "
            f"Received {int(is_member.sum())} members and {int((~is_member).sum())} "
            "non-members.")
    if not np.all(np.isfinite(scores)):
        raise ValueError(
            "Invalid value for argument `scores`. Expected finite attack scores. Received "
            f"{int(np.sum(~np.isfinite(scores)))} NaN or inf scores; check the model "
            "outputs the attack was computed from.")
    return scores, is_member


@dataclasses.dataclass(frozen=True)
class RocCurve:
    """A ROC curve with one point per distinct score, from (0, 0) to (1, 1).

    Attributes:
      fpr: false positive rates, non-decreasing.
      tpr: true positive rates, non-decreasing.
      thresholds: the score thresholds (predict member iff score >= threshold);
        the first is +inf.
      num_members: number of members (positives).
      num_non_members: number of non-members (negatives).
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    num_members: int
    num_non_members: int

    @property
    def auc(self) -> float:
        return float(np.sum(np.diff(self.fpr) * (self.tpr[1:] + self.tpr[:-1]) / 2.0))

    @property
    def advantage(self) -> float:
        return float(np.max(self.tpr - self.fpr))

    @property
    def balanced_accuracy(self) -> float:
        return float(np.max((self.tpr + 1.0 - self.fpr) / 2.0))


def roc_curve(scores: np.ndarray, is_member: np.ndarray) -> RocCurve:
    """The ROC of the attack "member iff score >= threshold" (see module docstring)."""
    scores, is_member = validate_scores(scores, is_member)
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    sorted_members = is_member[order]
    # The last index of each run of equal scores: tied examples switch together.
    last_of_run = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]
    true_positives = np.cumsum(sorted_members)[last_of_run]
    false_positives = (last_of_run + 1) - true_positives
    num_members = int(is_member.sum())
    num_non_members = len(scores) - num_members
    return RocCurve(
        fpr=np.r_[0.0, false_positives / num_non_members],
        tpr=np.r_[0.0, true_positives / num_members],
        thresholds=np.r_[np.inf, sorted_scores[last_of_run]],
        num_members=num_members,
        num_non_members=num_non_members,
    )


def _operating_point(roc: RocCurve, target_fpr: float) -> int:
    """Index of the point with the highest TPR among those with FPR <= target."""
    if not 0.0 <= target_fpr <= 1.0:
        raise ValueError(
            "Invalid value for argument `target_fpr`. Expected a float in [0, 1]. "
            f"Received: target_fpr={target_fpr}")
    # A tiny tolerance so that e.g. 10 / 1000 counts as <= 0.01 despite rounding.
    allowed = np.flatnonzero(roc.fpr <= target_fpr + 1e-12)
    # TPR is non-decreasing along the curve, so the last allowed point has the highest TPR.
    return int(allowed[-1])


def tpr_at_fpr(roc: RocCurve, target_fpr: float) -> float:
    """TPR at FPR `target_fpr` by the step rule: `max {TPR : FPR <= target_fpr}`."""
    return float(roc.tpr[_operating_point(roc, target_fpr)])


def precision_at_fpr(roc: RocCurve, target_fpr: float) -> Optional[float]:
    """Precision of the operating point used by `tpr_at_fpr`; None if it flags nobody."""
    index = _operating_point(roc, target_fpr)
    true_positives = roc.tpr[index] * roc.num_members
    false_positives = roc.fpr[index] * roc.num_non_members
    if true_positives + false_positives < 0.5:
        return None
    return float(true_positives / (true_positives + false_positives))


def fpr_key(target: float) -> str:
    """1% -> "1pct", 0.1% -> "0.1pct": the suffix of the metric names."""
    return f"{target * 100:g}pct"


@dataclasses.dataclass(frozen=True)
class AttackMetrics:
    """Threshold-free metrics of one attack on one evaluation set.

    Attributes:
      auc: area under the ROC curve (0.5 = chance).
      balanced_accuracy: best balanced accuracy over thresholds (0.5 = chance).
      advantage: best TPR - FPR over thresholds (0 = chance).
      tpr_at_fpr: {"1pct": TPR at 1% FPR, "0.1pct": ..., "0pct": ...} (step rule).
      precision_at_fpr: same keys; None where the operating point flags nobody.
      num_members: evaluated members.
      num_non_members: evaluated non-members.
      confidence_intervals: {"auc": (low, high), "tpr_at_0.1pct_fpr": (low, high), ...}
        percentile bootstrap intervals, or empty if no bootstrap was run.
    """

    auc: float
    balanced_accuracy: float
    advantage: float
    tpr_at_fpr: Dict[str, float]
    precision_at_fpr: Dict[str, Optional[float]]
    num_members: int
    num_non_members: int
    confidence_intervals: Dict[str, Tuple[float, float]] = dataclasses.field(
        default_factory=dict)

    def to_dict(self) -> dict:
        result = dataclasses.asdict(self)
        result["confidence_intervals"] = {
            name: list(bounds) for name, bounds in self.confidence_intervals.items()}
        return result

    @classmethod
    def from_dict(cls, config: dict) -> "AttackMetrics":
        config = dict(config)
        config["confidence_intervals"] = {
            name: tuple(bounds) for name, bounds in config.get("confidence_intervals",
                                                               {}).items()}
        return cls(**config)


def _bootstrap_intervals(scores: np.ndarray, is_member: np.ndarray,
                         fpr_targets: Sequence[float], num_bootstrap: int,
                         confidence: float, seed: int) -> Dict[str, Tuple[float, float]]:
    """Percentile bootstrap, resampling members and non-members separately.

    Resampling within each group keeps the member / non-member ratio, so every
    replicate has the same FPR resolution as the evaluation set.
    """
    rng = np.random.default_rng(seed)
    members = np.flatnonzero(is_member)
    non_members = np.flatnonzero(~is_member)
    names = ["auc", "balanced_accuracy"] + [f"tpr_at_{fpr_key(t)}_fpr" for t in fpr_targets]
    samples = {name: [] for name in names}
    for _ in range(num_bootstrap):
        index = np.r_[rng.choice(members, len(members)), rng.choice(non_members,
                                                                     len(non_members))]
        roc = roc_curve(scores[index], is_member[index])
        samples["auc"].append(roc.auc)
        samples["balanced_accuracy"].append(roc.balanced_accuracy)
        for target in fpr_targets:
            samples[f"tpr_at_{fpr_key(target)}_fpr"].append(tpr_at_fpr(roc, target))
    tail = (1.0 - confidence) / 2.0 * 100.0
    return {name: (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))
            for name, values in samples.items()}


def compute_attack_metrics(scores: np.ndarray, is_member: np.ndarray,
                           fpr_targets: Sequence[float] = STANDARD_FPR_TARGETS,
                           num_bootstrap: int = 0, confidence: float = 0.95,
                           seed: int = 0) -> AttackMetrics:
    """Computes `AttackMetrics` for membership scores (higher = member).

    Args:
      scores: `(n,)` attack scores.
      is_member: `(n,)` booleans, True for members of the target's training set.
      fpr_targets: FPRs at which TPR and precision are reported.
      num_bootstrap: bootstrap replicates for confidence intervals (0 = none).
      confidence: coverage of the intervals.
      seed: seed of the bootstrap resampling.

    Returns:
      An `AttackMetrics`.
    """
    scores, is_member = validate_scores(scores, is_member)
    if num_bootstrap < 0:
        raise ValueError("Invalid value for argument `num_bootstrap`. Expected an integer "
                         f">= 0. Received: num_bootstrap={num_bootstrap}")
    roc = roc_curve(scores, is_member)
    intervals = {}
    if num_bootstrap:
        intervals = _bootstrap_intervals(scores, is_member, fpr_targets, num_bootstrap,
                                         confidence, seed)
    return AttackMetrics(
        auc=roc.auc,
        balanced_accuracy=roc.balanced_accuracy,
        advantage=roc.advantage,
        tpr_at_fpr={fpr_key(t): tpr_at_fpr(roc, t) for t in fpr_targets},
        precision_at_fpr={fpr_key(t): precision_at_fpr(roc, t) for t in fpr_targets},
        num_members=roc.num_members,
        num_non_members=roc.num_non_members,
        confidence_intervals=intervals,
    )
