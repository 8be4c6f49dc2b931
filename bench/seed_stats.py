"""Across-seed statistics of benchmark rows: means with t intervals, paired differences.

A benchmark run with several seeds (`bench.pruning --num_seeds`) writes one row per
(seed, method, structure, target sparsity); within a seed every method starts from
the same dense checkpoint and sees the same data, so methods are compared seed by
seed (a paired design) rather than by their means: the seed-to-seed spread of the
checkpoint cancels out of the difference.

For n seeds with values v_1..v_n (mean m, sample standard deviation s), the 95%
interval of the mean is m +/- t_{0.975, n-1} * s / sqrt(n) (Student's t; exact for
normal errors, and the usual choice for a handful of training runs). The paired
difference d_i = v_i(method) - v_i(reference) gets the same interval; an interval
that excludes 0 separates the methods at the 95% level.

This module needs no TensorFlow, so `bench.pages` renders the pages with it.
"""

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from scipy import stats

__all__ = ["SeedSummary", "format_percent", "summarize", "t_interval"]


def t_interval(values: Sequence[float],
               confidence: float = 0.95) -> Optional[Tuple[float, float]]:
    """Student-t interval of the mean of `values`; None for fewer than 2 values.

    Args:
      values: one measurement per seed.
      confidence: two-sided coverage, in (0, 1).

    Returns:
      (low, high) = mean -/+ t_{(1 + confidence) / 2, n - 1} * s / sqrt(n).
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError("Invalid value for argument `confidence`. Expected a value in (0, 1). "
                         f"Received: confidence={confidence}")
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    deviation = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half_width = float(stats.t.ppf((1.0 + confidence) / 2.0, n - 1)) * deviation / math.sqrt(n)
    return (mean - half_width, mean + half_width)


@dataclasses.dataclass(frozen=True)
class SeedSummary:
    """One (method, structure, target sparsity) cell over the seeds that ran it.

    Attributes:
      method, structure, target_sparsity: the cell.
      seeds: the seeds, sorted.
      mean: mean of `value` over the seeds.
      interval: 95% t interval of the mean (None with one seed).
      difference: mean of (this method - reference) over the seeds both ran; None
        for the reference itself or when it has no row in this cell.
      difference_interval: 95% t interval of that paired difference.
      wins: seeds where this method's value >= the reference's.
    """

    method: str
    structure: str
    target_sparsity: float
    seeds: Tuple[int, ...]
    mean: float
    interval: Optional[Tuple[float, float]]
    difference: Optional[float] = None
    difference_interval: Optional[Tuple[float, float]] = None
    wins: Optional[int] = None


def format_percent(value: float, interval: Optional[Tuple[float, float]] = None,
                   signed: bool = False) -> str:
    """A fraction in percent with its interval: "85.50% [84.10, 86.90]" for a value,
    "+0.98 [+0.30, +1.65]" (points, signed) for a difference with `signed`."""
    sign, unit = ("+", "") if signed else ("", "%")
    text = f"{100 * value:{sign}.2f}{unit}"
    if interval is not None:
        text += f" [{100 * interval[0]:{sign}.2f}, {100 * interval[1]:{sign}.2f}]"
    return text


def _seed(row: Mapping) -> int:
    # Rows written before `--num_seeds` carry no seed: they are seed 0's.
    return int(row.get("seed", 0))


def summarize(rows: Sequence[Mapping], reference: str = "tfmot",
              value: str = "test_accuracy") -> List[SeedSummary]:
    """Summaries of every (method, structure, target) cell, in first-seen order.

    The reference is looked up in the same structure and target sparsity (tfmot runs
    unstructured only, so filter rows get no difference).

    Args:
      rows: benchmark rows with `method`, `structure`, `target_sparsity`, `value` and
        (for multi-seed runs) `seed`.
      reference: the method every other is differenced against.
      value: the row key to summarize.

    Returns:
      One `SeedSummary` per cell.

    Raises:
      ValueError: a (seed, method, structure, target) appears twice.
    """
    cells: Dict[Tuple[str, str, float], Dict[int, float]] = {}
    for row in rows:
        key = (row["method"], row["structure"], float(row["target_sparsity"]))
        by_seed = cells.setdefault(key, {})
        seed = _seed(row)
        if seed in by_seed:
            raise ValueError(f"Invalid value for argument `rows`. Expected one row per seed and "
                             f"cell. Received: two rows for seed {seed} of {key}.")
        by_seed[seed] = float(row[value])
    summaries = []
    for (method, structure, target), by_seed in cells.items():
        seeds = tuple(sorted(by_seed))
        values = [by_seed[s] for s in seeds]
        summary = SeedSummary(method, structure, target, seeds, math.fsum(values) / len(values),
                              t_interval(values))
        baseline = cells.get((reference, structure, target))
        if method != reference and baseline:
            paired = [s for s in seeds if s in baseline]
            if paired:
                differences = [by_seed[s] - baseline[s] for s in paired]
                summary = dataclasses.replace(
                    summary, difference=math.fsum(differences) / len(differences),
                    difference_interval=t_interval(differences),
                    wins=sum(d >= 0 for d in differences))
        summaries.append(summary)
    return summaries
