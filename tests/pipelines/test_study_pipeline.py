"""The study pipeline end to end: schema, resume after SIGKILL, shard + merge, mirrored.

Each test runs `python -m pipelines.study` in a subprocess on a tiny study
(digits, LeNet-5, 2 methods, 4 LiRA reference models, few epochs), as a user
would, so interruption is a real `kill -9`.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mcmia_tf.data import MembershipSplit
from mcmia_tf.study import validate_results
from mcmia_tf.study import without_wall_times

pytestmark = pytest.mark.slow  # subprocess study runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--preset=quick", "--methods=baseline,mcmia_pruning", "--num_members=200",
        "--num_reference=100", "--epochs=3", "--regularization_epochs=1", "--retrain_epochs=1",
        "--num_reference_models=4", "--num_shadow_models=1", "--export_modes=int8",
        "--canaries=40", "--num_bootstrap=50", "--num_permutations=50"]


def _command(output_dir, *extra):
    return [sys.executable, "-m", "pipelines.study", *TINY, f"--output_dir={output_dir}", *extra]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONHASHSEED": "0"}


def _run(output_dir, *extra):
    result = subprocess.run(_command(output_dir, *extra), cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _results(output_dir):
    with open(os.path.join(output_dir, "results.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    output_dir = str(tmp_path_factory.mktemp("study_reference"))
    stdout = _run(output_dir)
    return output_dir, stdout


def test_results_report_and_plots(reference_run):
    output_dir, stdout = reference_run
    results = _results(output_dir)
    validate_results(results)  # raises with the list of schema problems
    assert [e["name"] for e in results["methods"]] == ["baseline", "mcmia_pruning"]
    baseline, pruned = results["methods"]
    assert baseline["sparsity"] == 0.0 and baseline["epsilon"] is None
    assert pruned["sparsity"] == pytest.approx(0.95, abs=0.01)
    assert pruned["compression_rate"] == pytest.approx(20.0, rel=0.1)
    assert {"loss", "lira_online", "lira_offline"} <= set(baseline["attacks"])
    # Pruned models also get the sparse-encoded TFLite variant.
    assert "int8+sparse" in pruned["tflite"]["sizes"] and "int8+sparse" not in \
        baseline["tflite"]["sizes"]
    report = open(os.path.join(output_dir, "report.md")).read()
    assert "| lenet5 | digits | MCMIA-Pruning | 95.00% | 20.0x |" in report
    for name in ("frontier.png", "roc.png", "sparsity.png"):
        path = os.path.join(output_dir, name)
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    for method in ("baseline", "mcmia_pruning"):
        assert os.path.exists(os.path.join(output_dir, "models", method, "model.keras"))
        assert os.path.exists(os.path.join(output_dir, "tflite", method,
                                           f"{method}_int8.tflite"))
    split = MembershipSplit.load(os.path.join(output_dir, "split.json"), "digits")
    assert split.sizes()["members"] == 200
    # The canary audit: recorded in the split, disjoint from every other role (the split
    # checks it on load), reported apart from the average case.
    assert split.canaries.num_canaries == 40 and split.canaries.target_in.sum() == 20
    for entry in results["methods"]:
        canary = entry["canary"]
        assert canary["num_canaries"] == 40 and canary["kind"] == "mislabeled"
        assert canary["strongest"]["num_selection"] + canary["strongest"]["num_report"] == 40
        strongest = entry["strongest"]
        assert strongest["attack"] == entry["strongest_attack"]
        low, high = strongest["tpr_interval"]
        assert 0 <= low <= high <= 1 and entry["noise_floor"]["num_permutations"] == 50
    assert "## Worst case: canaries" in report and "floor" in report
    assert "report.md" in stdout and "[7/7]" in stdout


def test_resume_after_kill_gives_the_same_results(reference_run, tmp_path):
    output_dir = str(tmp_path / "study")
    stage = os.path.join(output_dir, "stages", "seed0_train_mcmia_pruning.json")
    process = subprocess.Popen(_command(output_dir), cwd=ROOT, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.time() + 600
    while not os.path.exists(stage) and process.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the study ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGKILL)  # kill -9 in the middle of the audit stage
    process.wait()
    assert not os.path.exists(os.path.join(output_dir, "results.json"))
    stdout = _run(output_dir)
    assert "seed0_train_baseline: done earlier" in stdout
    assert "seed0_train_mcmia_pruning: done earlier" in stdout
    assert without_wall_times(_results(output_dir)) == without_wall_times(
        _results(reference_run[0]))


def test_sharded_reference_models_merge_to_the_same_results(reference_run, tmp_path):
    output_dir = str(tmp_path / "study")
    for shard in (0, 1):
        stdout = _run(output_dir, f"--shard_index={shard}", "--num_shards=2")
        assert f"shard {shard}/2" in stdout
        assert not os.path.exists(os.path.join(output_dir, "results.json"))
    lira_outputs = os.path.join(output_dir, "audit_cache", "baseline", "lira")
    assert os.path.isdir(lira_outputs)
    stdout = _run(output_dir)  # the merge
    # The shards trained the targets too (baseline by shard 0, mcmia_pruning by shard 1).
    assert "seed0_train_baseline: done earlier" in stdout
    assert "seed0_train_mcmia_pruning: done earlier" in stdout
    assert without_wall_times(_results(output_dir)) == without_wall_times(
        _results(reference_run[0]))


def test_mirrored_strategy_on_two_logical_cpus_prunes_to_the_target(reference_run, tmp_path):
    output_dir = str(tmp_path / "study")
    stdout = _run(output_dir, "--strategy=mirrored", "--logical_cpus=2",
                  "--methods=mcmia_pruning,mcmia_pruning_minmax")
    assert "MirroredStrategy over 2 replica(s)" in stdout
    results = _results(output_dir)
    validate_results(results)
    methods = {entry["name"]: entry for entry in results["methods"]}
    for entry in methods.values():
        assert entry["sparsity"] == pytest.approx(0.95, abs=0.01)
    # The same target trained on one device (the reference run): same zeros, and the
    # same accuracy up to the replicas' float reduction order.
    single = {e["name"]: e for e in _results(reference_run[0])["methods"]}["mcmia_pruning"]
    assert methods["mcmia_pruning"]["sparsity"] == single["sparsity"]
    assert methods["mcmia_pruning"]["test_accuracy"] == pytest.approx(single["test_accuracy"],
                                                                      abs=0.02)


def test_bad_flags_fail_with_a_clear_message(tmp_path):
    result = subprocess.run(_command(str(tmp_path), "--methods=baseline,svm"), cwd=ROOT,
                            env=_env(), capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "Invalid value for argument `methods`" in result.stderr
