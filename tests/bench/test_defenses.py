"""The defence benchmark reads a study: its plan of studies, rows and claim checks."""

import os

import pytest

from bench import defenses
from mcmia_tf.study import preset
from mcmia_tf.study.claims import check_claims


def _entry(name, test_accuracy, sparsity, attacks, epsilon=None, width=0.001):
    """attacks: {name: (balanced accuracy, auc, tpr at 0.1% FPR)}; intervals +- width."""
    strongest = max(attacks, key=lambda a: attacks[a][2])
    _, auc, tpr = attacks[strongest]
    return {"name": name, "train_accuracy": 1.0, "test_accuracy": test_accuracy,
            "sparsity": sparsity, "compression_rate": 1 / (1 - sparsity), "epsilon": epsilon,
            "strongest_attack": strongest,
            "strongest": {"attack": strongest, "target_fpr": 0.001, "tpr": tpr,
                          "tpr_interval": [tpr - width, tpr + width], "auc": auc,
                          "auc_interval": [auc - width, auc + width]},
            "noise_floor": {"floor": 0.002}, "canary": None,
            "attacks": {a: {"balanced_accuracy": b, "auc": auc, "advantage": 2 * b - 1,
                            "tpr_at_fpr": {"0.01": 0.1, "0.001": tpr, "0": 0.0},
                            "intervals": {"balanced_accuracy": [b - width, b + width]}}
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
        _entry("tfmot_magnitude", 0.86, 0.95, {"lira_online": (0.57, 0.57, 0.015)})]}
    text = "\n".join(defenses.claims(results))
    assert "among the seed paper's four methods*: holds (MCMIA-Pruning & Min-Max: 53.00%" in text
    assert "among all methods*: does not hold here" in text  # DP-SGD is lower still
    assert "below Baseline* (paper: up to 13.6 points): holds, +4.00 points" in text
    assert "below Min-Max* (paper: up to 10 points): does not hold here, -1.00 points" in text
    # 0.005 / 0.020 = 0.25 > 0.2: the target is missed and the line says so by its number.
    assert "TPR ratio 0.25" in text and "accuracy -2.00 points" in text
    assert "MCMIA-Pruning & Min-Max vs DP-SGD*: TPR@0.1%FPR" in text
    assert ": higher; test accuracy +16.00 points (accuracy NOT matched" in text
    assert "MCMIA-Pruning vs tfmot magnitude at the same sparsity*: test accuracy +1.00 " \
        "points, leakage lower: dominates" in text
    # The study report prints exactly these lines.
    assert defenses.claims(results) == check_claims({e["name"]: e for e in results["methods"]})
