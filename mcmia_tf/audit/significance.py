"""Significance of audit numbers: out-of-sample strongest attack, noise floor, intervals.

At a low FPR a handful of examples decide the TPR (Carlini et al., "Membership
Inference Attacks From First Principles", S&P 2022): with `n` non-members, FPR `t`
allows only `k = floor(t * n)` false positives. Three tools keep such numbers honest:

* **Out-of-sample choice.** "The strongest of ~15 attacks" chosen and reported on the
  same scores is biased upward: `E[max_a TPR_a] >= max_a E[TPR_a]`. Candidates are split
  into a stratified selection half, where `argmax_a TPR_a(t)` is chosen, and a
  disjoint reporting half, where only the chosen attack is evaluated.
* **Permutation noise floor.** Under the null "scores carry no membership information",
  membership labels are exchangeable among the candidates (permutation test; Good,
  "Permutation, Parametric and Bootstrap Tests of Hypotheses", 2005). Replicate `r`
  permutes the labels once for all attacks and records `M_r = max_a TPR_a(t)`; the
  floor is the `q`-quantile of `{M_r}`; the max over attacks makes it hold for the whole
  family (Westfall & Young's max-T, "Resampling-Based Multiple Testing", 1993). For one
  attack with distinct scores, `E[TPR] = (k + 1) / (n + 1)` (members ranked before the
  `(k+1)`-th non-member), i.e. about `t`, not 0.
* **Intervals.** Percentile bootstrap (Efron & Tibshirani, "An Introduction to the
  Bootstrap", 1993, ch. 13): `[Q_{a/2}, Q_{1-a/2}]` of the replicates. Two attacks on
  the SAME candidates are compared by a paired bootstrap of `metric(A) - metric(B)`.
"""

import dataclasses
import math
from typing import Mapping, Optional, Tuple

import numpy as np

from mcmia_tf.audit import metrics

__all__ = [
    "StrongestAttack",
    "NoiseFloor",
    "selection_halves",
    "select_strongest",
    "permutation_floor",
    "intervals_overlap",
    "compare",
    "paired_bootstrap_difference",
]

# The keys of `AttackMetrics.confidence_intervals`, so both kinds of interval line up.
_TPR_METRICS = {f"tpr_at_{metrics.fpr_key(t)}_fpr": t
                for t in metrics.STANDARD_FPR_TARGETS}
_PAIRED_METRICS = ("auc", "balanced_accuracy") + tuple(_TPR_METRICS)


def _check_range(name: str, value: float, low: float, high: float, closed: bool) -> None:
    inside = low <= value <= high if closed else low < value < high
    if not inside:
        bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
        raise ValueError(f"Invalid value for argument `{name}`. Expected a float in "
                         f"{bounds}. Received: {name}={value}")


def _check_count(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"Invalid value for argument `{name}`. Expected an integer >= "
                         f"{minimum}. Received: {name}={value}")


def _allowed_false_positives(target_fpr: float, num_non_members: int) -> int:
    """`k = max {k : k / n <= t}`, i.e. `floor(t * n)`, by the float test of `tpr_at_fpr`."""
    # The same divisions and tolerance as `roc.fpr <= t + 1e-12`, so k agrees bit for bit.
    fpr = np.arange(num_non_members + 1) / num_non_members
    return int(np.flatnonzero(fpr <= target_fpr + 1e-12)[-1])


def _check_resolution(target_fpr: float, num_non_members: int, where: str) -> None:
    """Raises if `target_fpr` allows no false positive: the TPR would silently be at FPR 0."""
    if target_fpr > 0 and _allowed_false_positives(target_fpr, num_non_members) < 1:
        needed = int(math.ceil(1.0 / target_fpr - 1e-9))
        raise ValueError(
            f"Invalid value for argument `target_fpr`. Resolving FPR {target_fpr:g} needs at "
            f"least 1 / target_fpr = {needed} non-members {where}. Received "
            f"{num_non_members} non-members and target_fpr={target_fpr}")


def _validate_attacks(scores_by_attack: Mapping[str, np.ndarray],
                      is_member: np.ndarray) -> Tuple[dict, np.ndarray]:
    if not scores_by_attack:
        raise ValueError("Invalid value for argument `scores_by_attack`. Expected at least "
                         f"one attack. Received: scores_by_attack={dict(scores_by_attack)}")
    checked = {}
    for name, scores in scores_by_attack.items():
        checked[name], labels = metrics.validate_scores(scores, is_member)
    return checked, labels


def _sort_scores(scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Descending order and the last index of each run of tied scores, as in `roc_curve`."""
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores = scores[order]
    return order, np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]


def _step_tpr(order: np.ndarray, last_of_run: np.ndarray, labels: np.ndarray,
              allowed_false_positives: int, num_members: int) -> float:
    """`metrics.tpr_at_fpr(roc_curve(scores, labels), t)` from the pre-sorted scores."""
    true_positives = np.cumsum(labels[order])[last_of_run]
    false_positives = (last_of_run + 1) - true_positives
    # FP is non-decreasing along the curve, so the last point with FP <= k has the top TPR.
    count = int(np.searchsorted(false_positives, allowed_false_positives, side="right"))
    return float(true_positives[count - 1] / num_members) if count else 0.0


def selection_halves(is_member: np.ndarray, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Splits candidate indices into a selection and a reporting half, stratified.

    Members and non-members are each shuffled with `np.random.default_rng(seed)` and
    split in half (the reporting half gets the odd one out), so both halves keep the
    member ratio and the FPR resolution. Returns sorted, disjoint index arrays whose
    union is `arange(len(is_member))`.
    """
    is_member = np.asarray(is_member).astype(bool)
    counts = (int(is_member.sum()), int((~is_member).sum()))
    if min(counts) < 2:
        raise ValueError("Invalid value for argument `is_member`. Expected at least 2 members "
                         f"and 2 non-members to split in half. Received {counts[0]} members "
                         f"and {counts[1]} non-members.")
    rng = np.random.default_rng(seed)
    halves = ([], [])
    for group in (np.flatnonzero(is_member), np.flatnonzero(~is_member)):
        shuffled = rng.permutation(group)
        halves[0].append(shuffled[:len(group) // 2])
        halves[1].append(shuffled[len(group) // 2:])
    return np.sort(np.concatenate(halves[0])), np.sort(np.concatenate(halves[1]))


@dataclasses.dataclass(frozen=True)
class StrongestAttack:
    """The attack chosen on the selection half, evaluated on the reporting half.

    Attributes:
      name: the chosen attack.
      target_fpr: the FPR at which attacks were ranked.
      selection_tpr: its TPR at `target_fpr` on the selection half (in-sample, biased up).
      num_selection: candidates in the selection half.
      metrics: its `AttackMetrics` on the reporting half only (unbiased).
      selection_index: candidate indices of the selection half (not serialized).
      report_index: candidate indices of the reporting half (not serialized).
    """

    name: str
    target_fpr: float
    selection_tpr: float
    num_selection: int
    metrics: metrics.AttackMetrics
    selection_index: Optional[np.ndarray] = dataclasses.field(
        default=None, repr=False, compare=False)
    report_index: Optional[np.ndarray] = dataclasses.field(
        default=None, repr=False, compare=False)

    @property
    def num_report(self) -> int:
        return self.metrics.num_members + self.metrics.num_non_members

    @property
    def report_tpr(self) -> float:
        """The out-of-sample TPR at `target_fpr`: the number to quote."""
        key = metrics.fpr_key(self.target_fpr)
        return self.metrics.tpr_at_fpr[key]

    def to_dict(self) -> dict:
        return {"name": self.name, "target_fpr": self.target_fpr,
                "selection_tpr": self.selection_tpr, "num_selection": self.num_selection,
                "num_report": self.num_report, "metrics": self.metrics.to_dict()}

    @classmethod
    def from_dict(cls, config: dict) -> "StrongestAttack":
        config = dict(config)
        config.pop("num_report", None)  # Derived from `metrics`.
        config["metrics"] = metrics.AttackMetrics.from_dict(config["metrics"])
        return cls(**config)


def select_strongest(scores_by_attack: Mapping[str, np.ndarray], is_member: np.ndarray, *,
                     seed: int, target_fpr: float = 0.001, num_bootstrap: int = 0,
                     confidence: float = 0.95) -> StrongestAttack:
    """Chooses the strongest attack on one half of the candidates, reports it on the other.

    The choice is `argmax_a TPR_a(target_fpr)` on the selection half (ties: higher AUC,
    then the first name in sorted order); `metrics.compute_attack_metrics` then runs on
    the reporting half, which the choice never saw, so its numbers are unbiased.

    Args:
      scores_by_attack: {attack name: `(n,)` scores}, all on the same candidates.
      is_member: `(n,)` booleans.
      seed: seed of the split; the bootstrap uses an independent stream derived from it.
      target_fpr: FPR of the ranking; the selection half needs `1 / target_fpr` non-members.
      num_bootstrap: bootstrap replicates for the reported intervals (0 = none).
      confidence: coverage of the intervals.

    Returns:
      A `StrongestAttack`.
    """
    scores_by_attack, is_member = _validate_attacks(scores_by_attack, is_member)
    _check_range("target_fpr", target_fpr, 0.0, 1.0, closed=True)
    _check_range("confidence", confidence, 0.0, 1.0, closed=False)
    _check_count("num_bootstrap", num_bootstrap, 0)
    selection, report = selection_halves(is_member, seed)
    _check_resolution(target_fpr, int((~is_member[selection]).sum()), "in the selection half")
    ranking = []
    for name in sorted(scores_by_attack):
        roc = metrics.roc_curve(scores_by_attack[name][selection], is_member[selection])
        ranking.append((-metrics.tpr_at_fpr(roc, target_fpr), -roc.auc, name))
    negative_tpr, _, name = min(ranking)
    targets = tuple(metrics.STANDARD_FPR_TARGETS)
    targets += () if target_fpr in targets else (target_fpr,)
    bootstrap_seed = int(np.random.SeedSequence([seed, 1]).generate_state(1)[0])
    reported = metrics.compute_attack_metrics(
        scores_by_attack[name][report], is_member[report], fpr_targets=targets,
        num_bootstrap=num_bootstrap, confidence=confidence, seed=bootstrap_seed)
    return StrongestAttack(name=name, target_fpr=target_fpr, selection_tpr=-negative_tpr,
                           num_selection=len(selection), metrics=reported,
                           selection_index=selection, report_index=report)


@dataclasses.dataclass(frozen=True)
class NoiseFloor:
    """Null distribution of the best attack's TPR when labels carry no signal.

    Attributes:
      target_fpr: the FPR of the TPRs.
      quantile: the quantile `q` of the null maximum used as the floor.
      floor: `q`-quantile of `max_a TPR_a` over label permutations (an attained value).
      null_mean: mean of that null maximum.
      num_permutations: number of permutations.
      num_attacks: number of attacks in the maximum.
    """

    target_fpr: float
    quantile: float
    floor: float
    null_mean: float
    num_permutations: int
    num_attacks: int

    def is_above(self, tpr: float) -> bool:
        """True iff `tpr` is strictly above the floor (a one-sided test at level 1 - q)."""
        return tpr > self.floor

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> "NoiseFloor":
        return cls(**config)


def permutation_floor(scores_by_attack: Mapping[str, np.ndarray], is_member: np.ndarray, *,
                      target_fpr: float = 0.001, num_permutations: int = 200,
                      quantile: float = 0.95, seed: int = 0) -> NoiseFloor:
    """Permutation noise floor of `max_a TPR_a(target_fpr)` over the attacks.

    Replicate `r` draws labels `rng.permutation(is_member)` (`rng =
    np.random.default_rng(seed)`, drawn in turn) and applies them to every attack, so the
    null keeps the correlation between attacks. Each attack's scores are sorted once; a
    replicate costs one cumulative sum per attack, and equals
    `metrics.tpr_at_fpr(metrics.roc_curve(scores, labels), target_fpr)` exactly, ties included.

    Args:
      scores_by_attack: {attack name: `(n,)` scores}; one attack is fine.
      is_member: `(n,)` booleans.
      target_fpr: the FPR; needs at least `1 / target_fpr` non-members.
      num_permutations: number of label permutations.
      quantile: the floor is this quantile of the null maximum, in (0, 1).
      seed: seed of the permutations.

    Returns:
      A `NoiseFloor`.
    """
    scores_by_attack, is_member = _validate_attacks(scores_by_attack, is_member)
    _check_range("target_fpr", target_fpr, 0.0, 1.0, closed=True)
    _check_range("quantile", quantile, 0.0, 1.0, closed=False)
    _check_count("num_permutations", num_permutations, 1)
    num_members = int(is_member.sum())
    num_non_members = len(is_member) - num_members
    _check_resolution(target_fpr, num_non_members, "among the candidates")
    allowed = _allowed_false_positives(target_fpr, num_non_members)
    sorted_attacks = [_sort_scores(scores) for scores in scores_by_attack.values()]
    rng = np.random.default_rng(seed)
    null_max = np.empty(num_permutations)
    for replicate in range(num_permutations):
        labels = rng.permutation(is_member)
        null_max[replicate] = max(_step_tpr(order, last, labels, allowed, num_members)
                                  for order, last in sorted_attacks)
    return NoiseFloor(
        target_fpr=target_fpr, quantile=quantile,
        # "higher": the floor is a TPR a threshold actually reaches, never interpolated.
        floor=float(np.quantile(null_max, quantile, method="higher")),
        null_mean=float(np.mean(null_max)), num_permutations=num_permutations,
        num_attacks=len(sorted_attacks))


def intervals_overlap(a: Tuple[float, float], b: Tuple[float, float]) -> bool:
    """True iff the closed intervals `[a0, a1]` and `[b0, b1]` share a point."""
    for name, (low, high) in (("a", a), ("b", b)):
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ValueError(f"Invalid value for argument `{name}`. Expected an interval "
                             f"(low, high) with finite low <= high. Received: {name}={(low, high)}")
    return a[0] <= b[1] and b[0] <= a[1]


def compare(value_a: float, interval_a: Tuple[float, float], value_b: float,
            interval_b: Tuple[float, float]) -> str:
    """Returns "lower", "higher" or "not distinguishable": A relative to B.

    Conservative overlap rule: "not distinguishable" iff the (95%) intervals overlap.
    This is NOT a test of `A - B`: overlapping 95% intervals can still hide a significant
    difference, while disjoint ones imply one at a level far below 5% (~0.6% for
    independent estimates with equal standard errors; Schenker & Gentleman, The American
    Statistician, 2001). For attacks on the same candidates use
    `paired_bootstrap_difference`. A direction is given only when the values agree
    with the order of the intervals.
    """
    if intervals_overlap(interval_a, interval_b):
        return "not distinguishable"
    if interval_a[1] < interval_b[0] and value_a < value_b:
        return "lower"
    if interval_a[0] > interval_b[1] and value_a > value_b:
        return "higher"
    return "not distinguishable"


def paired_bootstrap_difference(scores_a: np.ndarray, scores_b: np.ndarray,
                                is_member: np.ndarray, *, metric: str = "tpr_at_0.1pct_fpr",
                                num_bootstrap: int = 200, confidence: float = 0.95,
                                seed: int = 0) -> Tuple[float, Tuple[float, float]]:
    """`metric(A) - metric(B)` and its paired percentile bootstrap interval.

    Each replicate resamples members and non-members separately with replacement and
    uses the SAME indices for both attacks, so the shared candidate-level noise
    cancels in `D* = metric*(A) - metric*(B)`; the interval is `[Q_{a/2}, Q_{1-a/2}]`
    of `D*` with `a = 1 - confidence` (Efron & Tibshirani, 1993). An interval
    excluding 0 means A and B differ at level `a`.

    Args:
      scores_a: `(n,)` scores of attack A.
      scores_b: `(n,)` scores of attack B on the same candidates.
      is_member: `(n,)` booleans.
      metric: a key of `AttackMetrics.confidence_intervals`: "auc",
        "balanced_accuracy", "tpr_at_1pct_fpr", "tpr_at_0.1pct_fpr" or "tpr_at_0pct_fpr".
      num_bootstrap: bootstrap replicates.
      confidence: coverage of the interval.
      seed: seed of the resampling.

    Returns:
      `(difference, (low, high))`.
    """
    scores_a, is_member = metrics.validate_scores(scores_a, is_member)
    scores_b, _ = metrics.validate_scores(scores_b, is_member)
    if metric not in _PAIRED_METRICS:
        raise ValueError(f"Invalid value for argument `metric`. Expected one of "
                         f"{_PAIRED_METRICS}. Received: metric={metric!r}")
    _check_count("num_bootstrap", num_bootstrap, 1)
    _check_range("confidence", confidence, 0.0, 1.0, closed=False)
    if metric in _TPR_METRICS:
        _check_resolution(_TPR_METRICS[metric], int((~is_member).sum()), "among the candidates")

    def value(scores, index):
        roc = metrics.roc_curve(scores[index], is_member[index])
        if metric in _TPR_METRICS:
            return metrics.tpr_at_fpr(roc, _TPR_METRICS[metric])
        return getattr(roc, metric)

    def difference(index):
        return value(scores_a, index) - value(scores_b, index)

    rng = np.random.default_rng(seed)
    members, non_members = np.flatnonzero(is_member), np.flatnonzero(~is_member)
    samples = [difference(np.r_[rng.choice(members, len(members)),
                                rng.choice(non_members, len(non_members))])
               for _ in range(num_bootstrap)]
    tail = (1.0 - confidence) / 2.0 * 100.0
    return difference(np.arange(len(is_member))), (float(np.percentile(samples, tail)),
                                                   float(np.percentile(samples, 100 - tail)))
