"""The seed paper's claims and the project's targets, checked on a study's entries.

One place for every verdict that the study report (`report.md`) and the defence
benchmark (`bench.defenses`) print, so the two can never disagree. Every
comparison uses the 95% bootstrap intervals of `results.json`: two numbers whose
intervals overlap are "not distinguishable" (the conservative overlap rule of
`mcmia_tf.audit.significance.compare`, not a test of their difference), and a
verdict is only "holds" or "does not hold" when the intervals separate them.

Metrics:
* attack accuracy (the MCMIA paper's metric): the best balanced accuracy of any
  attack, with that attack's interval;
* low-FPR leakage (Carlini et al., S&P 2022): the strongest attack's TPR, chosen on
  a random half of the candidates and measured on the other half, with its
  interval and the noise floor of permuted labels.

The seed paper's table has four methods (baseline, Min-Max, MCMIA-Pruning, MCMIA-
Pruning & Min-Max); its "lowest attack accuracy" claim is checked among those four
and, separately, among every method of the study (DP-SGD and tfmot included).
"""

from typing import List, Mapping, Optional, Sequence, Tuple

from mcmia_tf.audit.report import format_metric
from mcmia_tf.audit.significance import compare
from mcmia_tf.study.config import dp_epsilon

__all__ = ["SEED_TABLE_METHODS", "LABELS", "attack_accuracy", "check_claims", "is_dp",
           "label", "leakage", "matched_accuracy"]

SEED_TABLE_METHODS = ("baseline", "minmax", "mcmia_pruning", "mcmia_pruning_minmax")
LABELS = {"baseline": "Baseline", "dp": "DP-SGD", "minmax": "Min-Max",
          "mcmia_pruning": "MCMIA-Pruning", "mcmia_pruning_minmax": "MCMIA-Pruning & Min-Max",
          "tfmot_magnitude": "tfmot magnitude"}
Interval = Optional[Tuple[float, float]]


def label(name: str) -> str:
    epsilon = dp_epsilon(name)
    return f"DP-SGD (ε={epsilon:g})" if epsilon is not None else LABELS.get(name, name)


def is_dp(name: str) -> bool:
    return name == "dp" or dp_epsilon(name) is not None


def _pct(value: Optional[float], interval: Interval = None) -> str:
    return format_metric(value, interval, missing="—")


def attack_accuracy(entry: Mapping) -> Tuple[float, Interval]:
    """The best balanced accuracy over all attacks, and that attack's 95% interval."""
    best = max(entry["attacks"].values(), key=lambda a: a["balanced_accuracy"])
    interval = (best.get("intervals") or {}).get("balanced_accuracy")
    return best["balanced_accuracy"], None if interval is None else tuple(interval)


def leakage(entry: Mapping) -> Tuple[float, Interval, float]:
    """(TPR, 95% interval, FPR) of the out-of-sample strongest attack."""
    strongest = entry["strongest"]
    interval = strongest.get("tpr_interval")
    return (strongest["tpr"], None if interval is None else tuple(interval),
            strongest["target_fpr"])


def _ordered(value_a, interval_a, value_b, interval_b) -> str:
    """compare(), or a plain order when a number has no interval (then said so)."""
    if interval_a is None or interval_b is None:
        order = "lower" if value_a < value_b else "higher" if value_a > value_b else "equal"
        return f"{order} (no intervals)"
    return compare(value_a, interval_a, value_b, interval_b)


def _lowest(entries: Mapping[str, Mapping], method: str, among: Sequence[str],
            scope: str) -> Optional[str]:
    if method not in entries or not any(m in entries for m in among if m != method):
        return None
    ours = attack_accuracy(entries[method])
    others = {m: attack_accuracy(entries[m]) for m in among if m in entries and m != method}
    runner_up = min(others, key=lambda m: others[m][0])
    relation = _ordered(*ours, *others[runner_up])
    verdict = {"lower": "holds", "higher": "does not hold here"}.get(
        relation, f"{relation} from {label(runner_up)}")
    return (f"- *{label(method)} has the lowest attack accuracy {scope}*: {verdict} "
            f"({label(method)}: {_pct(*ours)}; lowest of the others: {label(runner_up)}, "
            f"{_pct(*others[runner_up])}).")


def _below(entries, method: str, other: str, paper: str) -> Optional[str]:
    if method not in entries or other not in entries:
        return None
    ours, theirs = attack_accuracy(entries[method]), attack_accuracy(entries[other])
    relation = _ordered(*ours, *theirs)
    verdict = {"lower": "holds", "higher": "does not hold here"}.get(relation, relation)
    return (f"- *{label(method)} attack accuracy below {label(other)}* (paper: {paper} "
            f"points): {verdict}, {100 * (theirs[0] - ours[0]):+.2f} points "
            f"({_pct(*ours)} vs {_pct(*theirs)}).")


def _leakage_versus(entries, method: str, other: str, accuracy_window: float = 0.01) -> \
        Optional[str]:
    """Leakage of `method` against `other`, and whether their accuracies are matched."""
    if method not in entries or other not in entries:
        return None
    ours, theirs = entries[method], entries[other]
    tpr, interval, fpr = leakage(ours)
    other_tpr, other_interval, _ = leakage(theirs)
    relation = _ordered(tpr, interval, other_tpr, other_interval)
    gap = 100 * (ours["test_accuracy"] - theirs["test_accuracy"])
    matched = "matched" if abs(gap) <= 100 * accuracy_window else "NOT matched"
    return (f"- *{label(method)} vs {label(other)}*: TPR@{100 * fpr:g}%FPR {_pct(tpr, interval)}"
            f" vs {_pct(other_tpr, other_interval)}: {relation}; test accuracy {gap:+.2f} "
            f"points (accuracy {matched} within {100 * accuracy_window:g} point).")


def _target(entries, method="mcmia_pruning_minmax") -> Optional[str]:
    """The project's target: <= 1/5 of the baseline's TPR within 1 point at >= 20x."""
    if method not in entries or "baseline" not in entries:
        return None
    ours, base = entries[method], entries["baseline"]
    tpr, interval, fpr = leakage(ours)
    base_tpr, base_interval, _ = leakage(base)
    ratio = tpr / max(base_tpr, 1e-12)
    # "Met" needs the upper end of our interval at most 1/5 of the baseline's lower end.
    if interval is None or base_interval is None:
        certain = "no intervals"
    else:
        certain = ("met with the intervals" if interval[1] <= 0.2 * base_interval[0]
                   else "not established by the intervals")
    return (f"- *Target: {label(method)} at <= 1/5 of the baseline's TPR@{100 * fpr:g}%FPR "
            f"within 1 point of its accuracy at >= 20x*: TPR ratio {ratio:.2f} "
            f"({_pct(tpr, interval)} vs {_pct(base_tpr, base_interval)}; {certain}), accuracy "
            f"{100 * (ours['test_accuracy'] - base['test_accuracy']):+.2f} points, compression "
            f"{ours['compression_rate']:.1f}x.")


def _dominates(entries, method="mcmia_pruning", peer="tfmot_magnitude") -> Optional[str]:
    if method not in entries or peer not in entries:
        return None
    ours, theirs = entries[method], entries[peer]
    relation = _ordered(*leakage(ours)[:2], *leakage(theirs)[:2])
    accuracy = 100 * (ours["test_accuracy"] - theirs["test_accuracy"])
    verdict = ("dominates" if relation == "lower" and accuracy > 0 else
               "does not dominate")
    return (f"- *{label(method)} vs {label(peer)} at the same sparsity*: test accuracy "
            f"{accuracy:+.2f} points, leakage {relation}: {verdict}.")


def _interpolate(x: float, x0: float, x1: float, y0: float, y1: float) -> float:
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _outside_frontier(name: str, entry: Mapping, entries: Mapping[str, Mapping],
                      frontier: Sequence[Tuple[float, str]]) -> str:
    """A defence more (or less) accurate than every DP-SGD point, against the nearest one.

    No DP-SGD model of the study has its accuracy, so nothing is interpolated; the
    nearest end of the frontier says whether the defence dominates it (more accurate
    and less leakage), is dominated by it, or trades one for the other.
    """
    accuracy = entry["test_accuracy"]
    above = accuracy > frontier[-1][0]
    nearest_accuracy, nearest = frontier[-1] if above else frontier[0]
    tpr, interval, fpr = leakage(entry)
    dp_tpr, dp_interval, _ = leakage(entries[nearest])
    relation = _ordered(tpr, interval, dp_tpr, dp_interval)
    leaks = relation.split(" ")[0]
    if leaks == "lower":
        verdict = ("dominates it (more accurate, less leakage)" if above else
                   "a trade-off (less accurate, less leakage)")
    elif leaks == "higher":
        verdict = ("a trade-off (more accurate, more leakage)" if above else
                   "dominated by it (less accurate, more leakage)")
    else:
        verdict = (f"{'more' if above else 'less'} accurate, leakage {relation} at this "
                   "sample size")
    return (f"- *{label(name)} vs DP-SGD at matched accuracy*: its test accuracy "
            f"{_pct(accuracy)} is {'above' if above else 'below'} the DP frontier's "
            f"[{_pct(frontier[0][0])}, {_pct(frontier[-1][0])}]: no DP-SGD model here has its "
            f"accuracy. Against the {'most' if above else 'least'} accurate one ({label(nearest)}, "
            f"{_pct(nearest_accuracy)}): TPR@{100 * fpr:g}%FPR {_pct(tpr, interval)} vs "
            f"{_pct(dp_tpr, dp_interval)}, {verdict}.")


def matched_accuracy(entries: Mapping[str, Mapping]) -> List[str]:
    """Every non-DP defence against the DP-SGD frontier at its own test accuracy.

    The frontier is the DP-SGD methods' (test accuracy, strongest-attack TPR)
    points; at a defence's accuracy the TPR and both ends of its interval are
    interpolated linearly between the two DP points around it (Aerni et al., CCS
    2024: a defence is credible only against DP-SGD at matched accuracy).
    """
    frontier = sorted((e["test_accuracy"], name) for name, e in entries.items() if is_dp(name))
    if len(frontier) < 2:
        return []
    lines = []
    low_accuracy, high_accuracy = frontier[0][0], frontier[-1][0]
    for name, entry in entries.items():
        if is_dp(name) or name == "baseline":
            continue
        accuracy = entry["test_accuracy"]
        tpr, interval, fpr = leakage(entry)
        if not low_accuracy <= accuracy <= high_accuracy:
            lines.append(_outside_frontier(name, entry, entries, frontier))
            continue
        (a0, n0), (a1, n1) = next((frontier[i], frontier[i + 1]) for i in range(len(frontier) - 1)
                                  if frontier[i][0] <= accuracy <= frontier[i + 1][0])
        (t0, i0, _), (t1, i1, _) = leakage(entries[n0]), leakage(entries[n1])
        dp_tpr = _interpolate(accuracy, a0, a1, t0, t1)
        dp_interval = None if i0 is None or i1 is None else (
            _interpolate(accuracy, a0, a1, i0[0], i1[0]),
            _interpolate(accuracy, a0, a1, i0[1], i1[1]))
        relation = _ordered(tpr, interval, dp_tpr, dp_interval)
        if relation == "not distinguishable":
            relation = "not distinguishable at this sample size"
        lines.append(f"- *{label(name)} vs DP-SGD at matched accuracy ({_pct(accuracy)})*: "
                     f"TPR@{100 * fpr:g}%FPR {_pct(tpr, interval)} vs DP-SGD's "
                     f"{_pct(dp_tpr, dp_interval)} (interpolated between {label(n0)} and "
                     f"{label(n1)}): {relation}.")
    return lines


def check_claims(entries: Mapping[str, Mapping]) -> List[str]:
    """Every claim that the given method entries (by name) allow to check."""
    lines = [
        _lowest(entries, "mcmia_pruning_minmax", SEED_TABLE_METHODS,
                "among the seed paper's four methods"),
        _lowest(entries, "mcmia_pruning_minmax", tuple(entries), "among all methods"),
        _below(entries, "mcmia_pruning", "baseline", "up to 13.6"),
        _below(entries, "mcmia_pruning", "minmax", "up to 10"),
        _target(entries),
        _leakage_versus(entries, "mcmia_pruning_minmax", "dp"),
        _dominates(entries),
    ]
    # Among all methods repeats the first line when the study has only the seed's four.
    if set(entries) <= set(SEED_TABLE_METHODS):
        lines[1] = None
    return [line for line in lines if line is not None] + matched_accuracy(entries)
