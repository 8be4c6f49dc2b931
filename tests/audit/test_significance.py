"""Significance tools: bootstrap coverage, permutation floor, out-of-sample selection."""

import math

import numpy as np
import pytest

from mcmia_tf.audit import metrics
from mcmia_tf.audit import significance


def _labels(num_members, num_non_members):
    return np.r_[np.ones(num_members, bool), np.zeros(num_non_members, bool)]


def _phi(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


@pytest.mark.slow
def test_bootstrap_intervals_cover_analytic_auc():
    # Members N(d, 1), non-members N(0, 1): AUC = P(X_m > X_n) = Phi(d / sqrt(2)).
    shift, num = 1.0, 300
    true_auc = _phi(shift / math.sqrt(2.0))
    is_member = _labels(num, num)
    covered = 0
    for repeat in range(100):
        rng = np.random.default_rng(repeat)
        scores = rng.normal(size=2 * num) + shift * is_member
        # All 200 replicates; no TPR targets since only the AUC interval is checked (~4 s).
        result = metrics.compute_attack_metrics(scores, is_member, fpr_targets=(),
                                                num_bootstrap=200, seed=repeat)
        low, high = result.confidence_intervals["auc"]
        covered += low <= true_auc <= high
    # Nominal 95% (93 here); a 95% interval has >= 90 of 100 with probability 0.99
    # (binomial), allowing the percentile bootstrap's slight undercoverage at n = 300.
    assert covered >= 90


def test_floor_of_random_scores_is_near_nominal_fpr():
    num, target = 5_000, 0.01
    is_member = _labels(num, num)
    rng = np.random.default_rng(0)
    attacks = {f"noise_{i}": rng.normal(size=2 * num) for i in range(8)}
    floors = [significance.permutation_floor(dict(list(attacks.items())[:count]), is_member,
                                             target_fpr=target, num_permutations=200, seed=1)
              for count in (1, 2, 4, 8)]
    # One attack: TPR = (members ranked before the (k+1)-th non-member) / n_m, k = 50, a
    # negative hypergeometric count with mean (k + 1) n_m / (n_nm + 1) and standard
    # deviation ~ sqrt(2 (k + 1)) = 10 members (TPR 0.002). Over 200 permutations the
    # standard error of the mean is 0.002 / sqrt(200) = 1.4e-4; allow 5 of them.
    expected_mean = 51 / 5_001
    assert abs(floors[0].null_mean - expected_mean) < 5 * 1.4e-4
    assert abs(floors[0].null_mean - target) < 0.1 * target
    # The 95% floor is about mean + 1.645 sd ~ 0.0135; it is above the nominal FPR.
    assert target < floors[0].floor < target + 3 * 0.002
    # Same permutations for every prefix of attacks, so the max can only grow.
    means = [floor.null_mean for floor in floors]
    values = [floor.floor for floor in floors]
    assert means == sorted(means) and values == sorted(values)
    # The mean max of 8 independent nulls is ~1.4 sd (0.0028) above one null's mean.
    assert means[-1] > means[0] + 0.001
    assert [floor.num_attacks for floor in floors] == [1, 2, 4, 8]
    assert significance.NoiseFloor.from_dict(floors[-1].to_dict()) == floors[-1]


def _brute_force_tpr(scores, labels, target):
    return metrics.tpr_at_fpr(metrics.roc_curve(scores, labels), target)


@pytest.mark.parametrize("target", [0.0, 0.01, 0.03, 0.1, 0.5])
def test_fast_step_tpr_equals_roc_with_ties(target):
    rng = np.random.default_rng(3)
    is_member = rng.random(400) < 0.3
    tied = np.round(rng.normal(size=400), 1)  # Many ties.
    allowed = significance._allowed_false_positives(target, int((~is_member).sum()))
    order, last = significance._sort_scores(tied)
    for _ in range(50):
        labels = rng.permutation(is_member)
        fast = significance._step_tpr(order, last, labels, allowed, int(is_member.sum()))
        assert fast == _brute_force_tpr(tied, labels, target)


def test_permutation_floor_equals_brute_force():
    rng = np.random.default_rng(4)
    is_member = _labels(120, 380)
    attacks = {"coarse": np.round(rng.normal(size=500), 0),
               "tied": np.round(rng.normal(size=500) + 0.3 * is_member, 1),
               "constant": np.zeros(500),
               "smooth": rng.normal(size=500)}
    target, quantile = 0.02, 0.9
    result = significance.permutation_floor(attacks, is_member, target_fpr=target,
                                            num_permutations=60, quantile=quantile, seed=5)
    # The documented stream: replicate r uses `rng.permutation(is_member)` in turn.
    perm_rng = np.random.default_rng(5)
    null_max = []
    for _ in range(60):
        labels = perm_rng.permutation(is_member)
        null_max.append(max(_brute_force_tpr(s, labels, target) for s in attacks.values()))
    assert result.null_mean == float(np.mean(null_max))
    assert result.floor == float(np.quantile(null_max, quantile, method="higher"))
    assert result.floor in null_max
    assert result.is_above(result.floor + 1e-9) and not result.is_above(result.floor)


def test_selection_halves_are_stratified_disjoint_and_seeded():
    is_member = np.random.default_rng(6).random(1_001) < 0.37
    selection, report = significance.selection_halves(is_member, seed=7)
    assert len(np.intersect1d(selection, report)) == 0
    np.testing.assert_array_equal(np.sort(np.r_[selection, report]), np.arange(1_001))
    assert abs(int(is_member[selection].sum()) - int(is_member[report].sum())) <= 1
    assert abs(int((~is_member[selection]).sum()) - int((~is_member[report]).sum())) <= 1
    again = significance.selection_halves(is_member, seed=7)
    np.testing.assert_array_equal(again[0], selection)
    other = significance.selection_halves(is_member, seed=8)
    assert not np.array_equal(other[0], selection)


def test_select_strongest_picks_strong_attack_and_reports_on_other_half():
    rng = np.random.default_rng(9)
    is_member = _labels(2_000, 2_000)
    attacks = {"weak": rng.normal(size=4_000) + 0.2 * is_member,
               "strong": rng.normal(size=4_000) + 2.0 * is_member,
               "noise": rng.normal(size=4_000)}
    result = significance.select_strongest(attacks, is_member, seed=10, num_bootstrap=20)
    assert result.name == "strong"
    report = result.report_index
    expected = metrics.compute_attack_metrics(
        attacks["strong"][report], is_member[report],
        fpr_targets=metrics.STANDARD_FPR_TARGETS, num_bootstrap=20,
        seed=int(np.random.SeedSequence([10, 1]).generate_state(1)[0]))
    assert result.metrics == expected
    assert result.report_tpr == expected.tpr_at_fpr["0.1pct"]
    roc = metrics.roc_curve(attacks["strong"][result.selection_index],
                            is_member[result.selection_index])
    assert result.selection_tpr == metrics.tpr_at_fpr(roc, 0.001)
    as_dict = result.to_dict()
    assert as_dict["num_selection"] + as_dict["num_report"] == 4_000
    assert "selection_index" not in as_dict
    assert significance.StrongestAttack.from_dict(as_dict) == result
    # Ties in TPR and AUC: the first name in sorted order wins.
    same = {"b": attacks["strong"], "a": attacks["strong"].copy()}
    assert significance.select_strongest(same, is_member, seed=10).name == "a"


def test_out_of_sample_selection_removes_max_bias():
    num, target, num_attacks = 2_000, 0.01, 15
    is_member = _labels(num, num)
    in_sample, reported = [], []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        noise = {f"a{i:02d}": rng.normal(size=2 * num) for i in range(num_attacks)}
        result = significance.select_strongest(noise, is_member, seed=seed, target_fpr=target)
        in_sample.append(result.selection_tpr)
        reported.append(result.report_tpr)
    # A half has 1,000 non-members, k = 10: a single null TPR has mean 11 / 1001 and
    # standard deviation ~ sqrt(2 * 11) / 1000 = 0.0047, so the mean of 40 has s.e. 7.4e-4.
    null_mean = 11 / 1_001
    assert abs(np.mean(reported) - null_mean) < 4 * 7.4e-4
    # The max of 15 null TPRs sits ~1.7 sd above the mean: the bias the split removes.
    assert np.mean(in_sample) > null_mean + 0.005


def test_intervals_overlap_and_compare():
    assert significance.intervals_overlap((0.0, 1.0), (0.5, 2.0))
    assert significance.intervals_overlap((0.0, 1.0), (1.0, 2.0))  # Touching overlaps.
    assert not significance.intervals_overlap((0.0, 1.0), (1.5, 2.0))
    assert significance.compare(0.5, (0.0, 1.0), 1.7, (1.5, 2.0)) == "lower"
    assert significance.compare(1.7, (1.5, 2.0), 0.5, (0.0, 1.0)) == "higher"
    assert significance.compare(0.5, (0.0, 1.0), 0.9, (0.8, 2.0)) == "not distinguishable"
    # Values contradicting the intervals' order: no direction is claimed.
    assert significance.compare(3.0, (0.0, 1.0), 1.0, (1.5, 2.0)) == "not distinguishable"


@pytest.mark.parametrize("metric", ["auc", "tpr_at_0.1pct_fpr"])
def test_paired_bootstrap_difference(metric):
    rng = np.random.default_rng(11)
    is_member = _labels(3_000, 3_000)
    common = rng.normal(size=6_000)
    better = common + 3.0 * is_member
    worse = common + 1.0 * is_member + 0.5 * rng.normal(size=6_000)
    difference, (low, high) = significance.paired_bootstrap_difference(
        better, worse, is_member, metric=metric, num_bootstrap=100, seed=12)
    assert difference > 0 and 0 < low <= high
    difference, (low, high) = significance.paired_bootstrap_difference(
        worse, worse.copy(), is_member, metric=metric, num_bootstrap=100, seed=12)
    assert difference == 0 and low <= 0 <= high


_MEMBERS = _labels(50, 50)
_ATTACKS = {"a": np.arange(100.0)}


@pytest.mark.parametrize("call, message", [
    (lambda: significance.permutation_floor({}, _MEMBERS), "at least one attack"),
    (lambda: significance.permutation_floor({"a": np.zeros(99)}, _MEMBERS), "same length"),
    (lambda: significance.permutation_floor(_ATTACKS, _MEMBERS, num_permutations=0),
     r"Expected an integer >= 1. Received: num_permutations=0"),
    (lambda: significance.permutation_floor(_ATTACKS, _MEMBERS, target_fpr=0.1, quantile=1.0),
     r"`quantile`. Expected a float in \(0.0, 1.0\)"),
    (lambda: significance.permutation_floor(_ATTACKS, _MEMBERS, target_fpr=1.5),
     r"`target_fpr`. Expected a float in \[0.0, 1.0\]"),
    (lambda: significance.permutation_floor(_ATTACKS, _MEMBERS), r"1 / target_fpr = 1000"),
    (lambda: significance.select_strongest({}, _MEMBERS, seed=0), "at least one attack"),
    (lambda: significance.select_strongest(_ATTACKS, _MEMBERS, seed=0, target_fpr=0.02),
     r"1 / target_fpr = 50 non-members in the selection half"),
    (lambda: significance.select_strongest(_ATTACKS, _MEMBERS, seed=0, target_fpr=-0.1),
     "target_fpr"),
    (lambda: significance.select_strongest(_ATTACKS, _MEMBERS, seed=0, target_fpr=0.1,
                                           num_bootstrap=-1), "num_bootstrap"),
    (lambda: significance.select_strongest(_ATTACKS, _MEMBERS, seed=0, target_fpr=0.1,
                                           confidence=1.0), "confidence"),
    (lambda: significance.selection_halves(np.array([1, 0, 0, 0]), seed=0), "at least 2"),
    (lambda: significance.intervals_overlap((1.0, 0.0), (0.0, 1.0)), "low <= high"),
    (lambda: significance.compare(0.0, (0.0, np.nan), 0.0, (0.0, 1.0)), "finite"),
    (lambda: significance.paired_bootstrap_difference(
        np.zeros(100), np.zeros(99), _MEMBERS), "same length"),
    (lambda: significance.paired_bootstrap_difference(
        np.zeros(100), np.zeros(100), _MEMBERS, metric="tpr"), "`metric`"),
    (lambda: significance.paired_bootstrap_difference(
        np.zeros(100), np.zeros(100), _MEMBERS), r"1 / target_fpr = 1000"),
    (lambda: significance.paired_bootstrap_difference(
        np.zeros(100), np.zeros(100), _MEMBERS, metric="auc", num_bootstrap=0),
     "num_bootstrap"),
    (lambda: significance.paired_bootstrap_difference(
        np.zeros(100), np.zeros(100), _MEMBERS, metric="auc", confidence=0.0), "confidence"),
])
def test_invalid_arguments_raise(call, message):
    with pytest.raises(ValueError, match=message):
        call()
