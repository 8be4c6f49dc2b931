"""Across-seed statistics: t intervals against their analytic values, paired differences."""

import math

import pytest

from bench import pages
from bench import seed_stats


def test_t_interval_matches_the_students_t_formula():
    # mean 2, s = 1, t_{0.975, 2} = 4.302653: half-width 4.302653 / sqrt(3).
    low, high = seed_stats.t_interval([1.0, 2.0, 3.0])
    half_width = 4.302652729911275 / math.sqrt(3)
    assert low == pytest.approx(2.0 - half_width, abs=1e-9)
    assert high == pytest.approx(2.0 + half_width, abs=1e-9)
    # 90% is narrower: t_{0.95, 2} = 2.919986.
    low90, _ = seed_stats.t_interval([1.0, 2.0, 3.0], confidence=0.90)
    assert low90 == pytest.approx(2.0 - 2.919985580355516 / math.sqrt(3), abs=1e-9)
    assert seed_stats.t_interval([0.7]) is None
    assert seed_stats.t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5)
    with pytest.raises(ValueError, match="confidence"):
        seed_stats.t_interval([1.0, 2.0], confidence=95)


def _rows(offset_by_method, seeds=(0, 1, 2, 3), target=0.95, structure="unstructured"):
    rows = []
    for seed in seeds:
        # The seed moves every method alike (its dense checkpoint); methods differ by offset.
        for method, offset in offset_by_method.items():
            rows.append({"seed": seed, "method": method, "structure": structure,
                         "target_sparsity": target,
                         "test_accuracy": 0.80 + 0.03 * seed + offset})
    return rows


def test_paired_difference_cancels_the_seed_to_seed_spread():
    summaries = {s.method: s for s in seed_stats.summarize(
        _rows({"tfmot": 0.0, "reweighted": 0.01, "admm": -0.02}))}
    tfmot, ours, admm = summaries["tfmot"], summaries["reweighted"], summaries["admm"]
    assert tfmot.difference is None and tfmot.wins is None
    assert tfmot.seeds == (0, 1, 2, 3)
    assert tfmot.mean == pytest.approx(0.845)
    # The means' intervals are wide (the seeds spread 9 points) and overlap...
    assert tfmot.interval[0] < ours.interval[0] < tfmot.interval[1]
    # ...the paired difference is exact: +1 point on every seed, an interval of width 0.
    assert ours.difference == pytest.approx(0.01)
    assert ours.difference_interval == pytest.approx((0.01, 0.01))
    assert ours.wins == 4
    assert admm.difference == pytest.approx(-0.02) and admm.wins == 0


def test_differences_pair_only_shared_seeds_and_structures():
    rows = _rows({"tfmot": 0.0}, seeds=(0, 1)) + _rows({"reweighted": 0.01}, seeds=(1, 2))
    rows += _rows({"reweighted": 0.0}, structure="filter")
    summaries = seed_stats.summarize(rows)
    ours = next(s for s in summaries if s.method == "reweighted" and s.structure == "unstructured")
    assert ours.seeds == (1, 2)
    assert ours.difference == pytest.approx(0.01)
    assert ours.difference_interval is None  # one shared seed: no interval
    assert ours.wins == 1
    filtered = next(s for s in summaries if s.structure == "filter")
    assert filtered.difference is None  # tfmot has no filter rows


def test_rows_without_a_seed_are_seed_zero_and_duplicates_are_refused():
    rows = [{"method": "tfmot", "structure": "unstructured", "target_sparsity": 0.9,
             "test_accuracy": 0.9}]
    assert seed_stats.summarize(rows)[0].seeds == (0,)
    with pytest.raises(ValueError, match="two rows for seed 0"):
        seed_stats.summarize(rows + [dict(rows[0], seed=0)])


def test_pruning_page_shows_seed_means_and_paired_differences():
    rows = _rows({"dense": 0.05}, target=0.0, structure="none")
    rows += _rows({"tfmot": 0.0, "reweighted": 0.01})
    text = pages._pruning_pivot({"rows": rows, "meta": {}})
    assert text.startswith("4 seeds (0-3)")
    header, _, row = text.splitlines()[-3:]
    assert "reweighted (bounded, ramped: default) - tfmot (seeds >= tfmot)" in header
    assert row.startswith("| 0.95 | 85.50% [")
    assert row.endswith("| +1.00 [+1.00, +1.00] (4/4) |")


def test_format_percent_writes_accuracies_and_signed_differences():
    assert seed_stats.format_percent(0.855, (0.8412, 0.869)) == "85.50% [84.12, 86.90]"
    assert seed_stats.format_percent(0.0098, (0.003, 0.0165), signed=True) == \
        "+0.98 [+0.30, +1.65]"
    assert seed_stats.format_percent(-0.0434, signed=True) == "-4.34"
