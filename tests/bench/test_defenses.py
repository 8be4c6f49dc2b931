"""The defence benchmark reads a study: its plan of studies, rows and claim checks."""

import os

import pytest

from bench import defenses
from mcmia_tf.study import preset


def _entry(name, test_accuracy, sparsity, attacks, epsilon=None):
    return {"name": name, "train_accuracy": 1.0, "test_accuracy": test_accuracy,
            "sparsity": sparsity, "compression_rate": 1 / (1 - sparsity), "epsilon": epsilon,
            "strongest_attack": max(attacks, key=lambda a: attacks[a][2]),
            "attacks": {a: {"balanced_accuracy": b, "auc": auc, "advantage": 2 * b - 1,
                            "tpr_at_fpr": {"0.01": 0.1, "0.001": tpr, "0": 0.0}}
                        for a, (b, auc, tpr) in attacks.items()},
            "wall_time": {"train": 10.0, "audit": 5.0, "export": 100.0}}


def test_one_study_per_sparsity_and_only_pruning_methods_repeat(tmp_path):
    base = preset("quick")
    plan = defenses.study_configs(base, ["baseline", "dp", "mcmia_pruning", "tfmot_magnitude"],
                                  ["0.9", str(base.sparsity)], str(tmp_path))
    (folder_90, config_90), (folder_base, config_base) = plan
    assert folder_base == str(tmp_path)
    assert config_base.methods == ("baseline", "dp", "mcmia_pruning", "tfmot_magnitude")
    assert folder_90 == os.path.join(str(tmp_path), "sparsity_0.9")
    assert config_90.methods == ("mcmia_pruning", "tfmot_magnitude")
    assert config_90.sparsity == 0.9
    # Same seed and sizes: both studies draw the same membership split.
    assert (config_90.seeds, config_90.num_members) == (base.seeds, base.num_members)
    with pytest.raises(Exception, match="--methods"):
        defenses.study_configs(base, ["pruning"], None, str(tmp_path))


def test_rows_take_the_strongest_attack_and_the_best_balanced_accuracy():
    results = {"target_sparsity": 0.95, "methods": [
        _entry("baseline", 0.88, 0.0, {"lira_online": (0.55, 0.60, 0.02),
                                       "loss": (0.58, 0.56, 0.001)}),
        _entry("mcmia_pruning", 0.87, 0.95, {"lira_online": (0.52, 0.53, 0.003)})]}
    baseline, pruned = defenses.rows_from_results(results)
    assert baseline["method"] == "baseline"
    assert pruned["method"] == "mcmia_pruning@0.95"
    assert baseline["strongest_attack"] == "lira_online"
    assert (baseline["auc"], baseline["tpr_at_0.1pct_fpr"]) == (0.60, 0.02)
    # The papers' "attack accuracy" is the best of any attack, here the loss threshold.
    assert baseline["max_balanced_accuracy"] == 0.58
    assert baseline["seconds"] == 15.0   # train + audit, not export
    assert baseline["loss/tpr_at_fpr_0.001"] == 0.001
    assert pruned["compression_rate"] == pytest.approx(20.0)


def test_claims_report_failed_targets_as_failed():
    results = {"target_sparsity": 0.95, "methods": [
        _entry("baseline", 0.88, 0.0, {"lira_online": (0.60, 0.60, 0.020)}),
        _entry("dp", 0.70, 0.0, {"lira_online": (0.51, 0.51, 0.002)}, epsilon=20.0),
        _entry("minmax", 0.86, 0.0, {"lira_online": (0.55, 0.55, 0.010)}),
        _entry("mcmia_pruning", 0.87, 0.95, {"lira_online": (0.56, 0.56, 0.010)}),
        _entry("mcmia_pruning_minmax", 0.86, 0.95, {"lira_online": (0.53, 0.53, 0.005)}),
        _entry("tfmot_magnitude", 0.86, 0.95, {"lira_online": (0.57, 0.57, 0.012)})]}
    lines = defenses.claims(defenses.rows_from_results(results))
    text = "\n".join(lines)
    assert "four methods': holds (53.00%; lowest of the others: minmax, 55.00%)" in text
    assert "+4.00 points below (paper: up to 13.6)" in text
    assert "-1.00 points below (paper: up to 10)" in text
    # 0.005 / 0.020 = 0.25 > 0.2: the target is missed and the line says so by its number.
    assert "= 0.25 x baseline" in text and "-2.00 points vs baseline" in text
    assert "(NOT below)" in text and "accuracy NOT matched" in text
    assert "mcmia_pruning@0.95 vs tfmot_magnitude" in text and ": dominates" in text
    assert "mcmia_pruning_minmax@0.95 vs tfmot_magnitude" in text
