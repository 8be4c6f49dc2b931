"""Study results: schema validation and mean / spread over seeds on hand-made entries."""

import copy
import dataclasses

import numpy as np
import pytest

from mcmia_tf.study import parse_dp_override
from mcmia_tf.study import preset
from mcmia_tf.study import render_markdown
from mcmia_tf.study import StageRunner
from mcmia_tf.study import StudyConfig
from mcmia_tf.study import validate_results
from mcmia_tf.study import without_wall_times
from mcmia_tf.study import results as results_lib


def _entry(name, test_accuracy, tpr, epsilon=None, sparsity=0.0, width=0.002):
    """A method entry whose single attack has balanced accuracy 0.5 + tpr, +- width."""
    attack = {"balanced_accuracy": 0.5 + tpr, "auc": 0.5 + tpr, "advantage": tpr,
              "tpr_at_fpr": {"0.01": 2 * tpr, "0.001": tpr, "0": 0.0},
              "intervals": {"auc": [0.5 + tpr - width, 0.5 + tpr + width],
                            "balanced_accuracy": [0.5 + tpr - width, 0.5 + tpr + width],
                            "tpr_at_fpr": {"0.01": [2 * tpr - width, 2 * tpr + width],
                                           "0.001": [tpr - width, tpr + width],
                                           "0": [0.0, 0.0]}}}
    strongest = {"attack": "loss", "target_fpr": 0.001, "tpr": tpr,
                 "tpr_interval": [tpr - width, tpr + width], "auc": 0.5 + tpr,
                 "auc_interval": [0.5 + tpr - width, 0.5 + tpr + width],
                 "selection_tpr": tpr, "num_selection": 1000, "num_report": 1000}
    floor = {"target_fpr": 0.001, "floor": 0.003, "null_mean": 0.0015, "quantile": 0.95,
             "num_permutations": 200}
    return {
        "name": name, "config": {"method": name}, "train_accuracy": 1.0,
        "test_accuracy": test_accuracy, "sparsity": sparsity,
        "compression_rate": 1.0 / (1.0 - sparsity), "epsilon": epsilon,
        "attacks": {"loss": attack}, "strongest_attack": "loss", "strongest": strongest,
        "noise_floor": floor, "canary": None,
        "tflite": {"sizes": {"int8": {"bytes": 100, "zipped_bytes": 90}},
                   "int8_accuracy": test_accuracy, "agreement": 1.0, "deployed_format": "int8",
                   "deployed_strongest_attack": "loss", "deployed_tpr_at_0.1pct_fpr": tpr,
                   "strongest": strongest, "noise_floor": floor},
        "layers": [{"path": "fc1", "sparsity": sparsity}],
        "roc": {"attack": "loss", "fpr": [0.0, 1.0], "tpr": [0.0, 1.0]},
        "wall_time": {"train": 1.0, "audit": 2.0, "export": 3.0},
    }


class _Dataset:
    name = "digits"


def test_mean_and_spread_over_seeds():
    config = preset("quick", methods=("baseline", "dp"), seeds=(0, 1))
    per_seed = {0: {"baseline": _entry("baseline", 0.90, 0.10),
                    "dp": _entry("dp", 0.70, 0.01, epsilon=8.0)},
                1: {"baseline": _entry("baseline", 0.80, 0.30),
                    "dp": _entry("dp", 0.74, 0.03, epsilon=8.0)}}
    results = results_lib.study_results(config, _Dataset(), per_seed)
    validate_results(results)
    baseline = results["methods"][0]
    assert baseline["test_accuracy"] == pytest.approx(0.85)
    assert results["spread"]["baseline"]["test_accuracy"] == pytest.approx(0.05)
    assert baseline["attacks"]["loss"]["tpr_at_fpr"]["0.001"] == pytest.approx(0.20)
    assert results["spread"]["baseline"]["attacks"]["loss"]["tpr_at_fpr"]["0.001"] == \
        pytest.approx(np.std([0.1, 0.3]))
    assert results["methods"][1]["epsilon"] == 8.0
    assert list(results["per_seed"]) == ["0", "1"]
    text = render_markdown(results)
    assert "85.00% ± 5.00" in text  # mean ± spread in the paper's table


def test_validation_lists_every_problem():
    results = {"study": {}, "dataset": "digits", "model": "lenet5", "seeds": [0],
               "per_seed": {}, "methods": [_entry("baseline", 0.9, 0.1),
                                           _entry("dp", 0.7, 0.01, epsilon=None)]}
    broken = copy.deepcopy(results)
    del broken["methods"][0]["tflite"]["agreement"]
    broken["methods"][0]["attacks"]["loss"]["tpr_at_fpr"].pop("0")
    with pytest.raises(ValueError) as err:
        validate_results(broken)
    text = str(err.value)
    assert "tflite.agreement missing" in text
    assert "tpr_at_fpr keys" in text
    assert "dp: epsilon=None is not a positive number" in text


def _four_methods(width=0.002):
    return {0: {"baseline": _entry("baseline", 0.9, 0.10, width=width),
                "minmax": _entry("minmax", 0.9, 0.02, width=width),
                "mcmia_pruning": _entry("mcmia_pruning", 0.9, 0.05, sparsity=0.95, width=width),
                "mcmia_pruning_minmax": _entry("mcmia_pruning_minmax", 0.9, 0.04,
                                               sparsity=0.95, width=width)}}


def test_claims_are_reported_whatever_they_say():
    config = preset("quick", methods=("baseline", "minmax", "mcmia_pruning",
                                      "mcmia_pruning_minmax"))
    text = render_markdown(results_lib.study_results(config, _Dataset(), _four_methods()))
    assert ("has the lowest attack accuracy among the seed paper's four methods*: does not "
            "hold here (MCMIA-Pruning & Min-Max: 54.00% [53.80, 54.20]; lowest of the others: "
            "Min-Max, 52.00% [51.80, 52.20])") in text
    assert "below Baseline* (paper: up to 13.6 points): holds, +5.00 points" in text
    assert "below Min-Max* (paper: up to 10 points): does not hold here, -3.00 points" in text
    # Only the seed's four methods: no second, identical "among all methods" line.
    assert "among all methods" not in text


def test_overlapping_intervals_are_not_distinguishable():
    config = preset("quick", methods=("baseline", "minmax", "mcmia_pruning",
                                      "mcmia_pruning_minmax"))
    # +-3 points around 52% and 54%: the intervals overlap.
    text = render_markdown(results_lib.study_results(config, _Dataset(),
                                                     _four_methods(width=0.03)))
    assert ("lowest attack accuracy among the seed paper's four methods*: not distinguishable "
            "from Min-Max") in text
    assert "below Min-Max* (paper: up to 10 points): not distinguishable, -3.00 points" in text


def test_leakage_table_shows_intervals_floor_and_the_verdict_under_it():
    config = preset("quick", methods=("baseline", "dp"))
    per_seed = {0: {"baseline": _entry("baseline", 0.9, 0.10),
                    "dp": _entry("dp", 0.7, 0.001, epsilon=3.0)}}
    text = render_markdown(results_lib.study_results(config, _Dataset(), per_seed))
    assert "| Baseline | loss | 10.00% [9.80, 10.20] | 0.30% |" in text
    assert "| DP-SGD | loss | 0.10% [-0.10, 0.30] (under the floor) | 0.30% |" in text


def test_without_wall_times_drops_only_timings():
    entry = _entry("baseline", 0.9, 0.1)
    stripped = without_wall_times({"methods": [entry]})
    assert "wall_time" not in stripped["methods"][0]
    assert stripped["methods"][0]["test_accuracy"] == 0.9


def test_stage_runner_skips_finished_stages(tmp_path):
    calls = []
    runner = StageRunner(str(tmp_path), total_stages=2, log=lambda line: None)
    assert runner.run("a", lambda: calls.append("a") or {"value": 1}) == {"value": 1}
    again = StageRunner(str(tmp_path), total_stages=2, log=lambda line: None)
    assert again.run("a", lambda: calls.append("a2") or {"value": 2}) == {"value": 1}
    assert calls == ["a"]
    assert not [f for f in (tmp_path / "stages").iterdir() if ".tmp" in f.name]


def test_stage_runner_leaves_nothing_when_a_stage_fails(tmp_path):
    runner = StageRunner(str(tmp_path), log=lambda line: None)

    def failing():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        runner.run("b", failing)
    assert not runner.is_done("b")


def test_study_config_rejects_bad_values():
    with pytest.raises(ValueError, match="Invalid value for argument `methods`"):
        preset("quick", methods=("baseline", "svm"))
    with pytest.raises(ValueError, match="num_reference_models"):
        preset("quick", num_reference_models=1)
    with pytest.raises(ValueError, match="Invalid value for argument `preset`"):
        preset("huge")


def test_dp_epsilons_expand_dp_into_one_method_per_epsilon():
    config = preset("quick", methods=("baseline", "dp", "minmax"), dp_epsilons=(1, 8))
    assert config.methods == ("baseline", "dp_eps1", "dp_eps8", "minmax")
    assert config.recipe_config("dp_eps8").dp.target_epsilon == 8.0
    assert config.recipe_config("dp_eps8").method == "dp"
    # A saved config loads to the same study (the expansion is idempotent).
    assert StudyConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="`dp_epsilons`"):
        preset("quick", dp_epsilons=(3, 3))


def test_dp_overrides_change_only_their_epsilons_recipe():
    epsilon, changes = parse_dp_override(
        "1000:optimizer=adam,learning_rate=0.001,batch_size=128,l2_norm_clip=1,activation=relu")
    assert (epsilon, changes) == ("1000", {"optimizer": "adam", "learning_rate": 0.001,
                                           "batch_size": 128, "l2_norm_clip": 1,
                                           "activation": "relu"})
    config = preset("paper", dp_epsilons=(3, 1000), dp_overrides={epsilon: changes})
    tuned, paper = config.recipe_config("dp_eps1000").dp, config.recipe_config("dp_eps3").dp
    assert (tuned.target_epsilon, tuned.optimizer, tuned.learning_rate, tuned.batch_size,
            tuned.l2_norm_clip, tuned.activation) == (1000.0, "adam", 0.001, 128, 1, "relu")
    assert paper == dataclasses.replace(preset("paper").dp, target_epsilon=3.0)
    # Saved and loaded, the same study; a study without overrides saves no such key, so
    # folders written before the field existed still resume.
    assert StudyConfig.from_dict(config.to_dict()) == config
    assert "dp_overrides" not in preset("paper", dp_epsilons=(3,)).to_dict()


@pytest.mark.parametrize("text", ["1000", "1000:", "1000:adam", ":optimizer=adam"])
def test_malformed_dp_override_names_the_expected_form(text):
    with pytest.raises(ValueError, match="Expected '<epsilon>:field=value"):
        parse_dp_override(text)


@pytest.mark.parametrize("overrides, message", [
    ({"5": {"optimizer": "adam"}}, "keys among dp_epsilons"),
    ({"1000": {"target_epsilon": 2.0}}, "`DPConfig` fields among"),
    ({"1000": {"optimizer": "rmsprop"}}, "argument `optimizer`"),
])
def test_dp_overrides_are_checked_when_the_study_is_built(overrides, message):
    with pytest.raises(ValueError, match=message):
        preset("paper", dp_epsilons=(3, 1000), dp_overrides=overrides)


def test_report_lists_each_dp_runs_recipe_and_sigma():
    config = preset("quick", methods=("baseline", "dp"), dp_epsilons=(1, 8))
    per_seed = {0: {"baseline": _entry("baseline", 0.90, 0.10),
                    "dp_eps1": _entry("dp_eps1", 0.70, 0.002, epsilon=1.0),
                    "dp_eps8": _entry("dp_eps8", 0.80, 0.012, epsilon=8.0)}}
    for name, sigma in (("dp_eps1", 4.25), ("dp_eps8", 0.9)):
        entry = per_seed[0][name]
        entry["config"] = config.recipe_config(name).to_dict()
        entry["privacy"] = {"noise_multiplier": sigma, "clipping": "per-example",
                            "trained_with": "poisson"}
    text = render_markdown(results_lib.study_results(config, _Dataset(), per_seed))
    assert "| DP-SGD (ε=1) | 1.00 | 1e-05 | 4.250 | 1 | per-example | poisson | adam |" in text
    assert "| DP-SGD (ε=8) | 8.00 | 1e-05 | 0.900 |" in text


def test_matched_accuracy_interpolates_the_dp_frontier():
    config = preset("quick", methods=("baseline", "dp", "minmax", "mcmia_pruning",
                                      "mcmia_pruning_minmax"), dp_epsilons=(1, 8))
    per_seed = {0: {"baseline": _entry("baseline", 0.90, 0.10),
                    "dp_eps1": _entry("dp_eps1", 0.70, 0.002, epsilon=1.0),
                    "dp_eps8": _entry("dp_eps8", 0.80, 0.012, epsilon=8.0),
                    # At 75%: DP's TPR interpolates to 0.7% [0.5, 0.9].
                    "minmax": _entry("minmax", 0.75, 0.020),
                    "mcmia_pruning": _entry("mcmia_pruning", 0.85, 0.05, sparsity=0.95),
                    "mcmia_pruning_minmax": _entry("mcmia_pruning_minmax", 0.82, 0.006,
                                                   sparsity=0.95)}}
    results = results_lib.study_results(config, _Dataset(), per_seed)
    validate_results(results)
    text = render_markdown(results)
    assert ("Min-Max vs DP-SGD at matched accuracy (75.00%)*: TPR@0.1%FPR 2.00% [1.80, 2.20] vs "
            "DP-SGD's 0.70% [0.50, 0.90] (interpolated between DP-SGD (ε=1) and DP-SGD (ε=8)): "
            "higher.") in text
    # Above the frontier nothing is interpolated: the most accurate DP point is the peer.
    assert ("MCMIA-Pruning vs DP-SGD at matched accuracy*: its test accuracy 85.00% is above the "
            "DP frontier's [70.00%, 80.00%]: no DP-SGD model here has its accuracy. Against the "
            "most accurate one (DP-SGD (ε=8), 80.00%): TPR@0.1%FPR 5.00% [4.80, 5.20] vs 1.20% "
            "[1.00, 1.40], a trade-off (more accurate, more leakage).") in text
    assert ("MCMIA-Pruning & Min-Max vs DP-SGD at matched accuracy*: its test accuracy 82.00% is "
            "above") in text
    assert "[0.40, 0.80] vs 1.20% [1.00, 1.40], dominates it (more accurate, less leakage)." in text


def test_sparsity_plot_grows_with_the_number_of_layers_of_a_deep_model(tmp_path):
    from matplotlib import image as mpimg  # pylint: disable=g-import-not-at-top
    from mcmia_tf.study import report as report_lib  # pylint: disable=g-import-not-at-top

    def entries(num_layers):
        paths = [f"stage{i // 4}_block{i % 4}_conv" for i in range(num_layers)]
        return [{"name": name, "layers": [{"path": p, "sparsity": s} for p in paths]}
                for name, s in (("baseline", 0.0), ("mcmia_pruning", 0.95),
                                ("tfmot_magnitude", 0.9))]

    heights = {}
    for num_layers in (5, 20, 60):
        path = str(tmp_path / f"sparsity_{num_layers}.png")
        report_lib._plot_sparsity(entries(num_layers), path)  # pylint: disable=protected-access
        heights[num_layers] = mpimg.imread(path).shape[0]
    # Deep models get a taller figure (about 0.2 inch per layer at 120 dpi), small ones
    # keep the bar chart's fixed height.
    assert heights[5] == 480
    assert heights[60] - heights[20] == pytest.approx(40 * 0.2 * 120, abs=2)
