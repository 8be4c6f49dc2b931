"""`python -m pipelines.train`: flags, --flagfile, outputs, bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.data import MembershipSplit
from mcmia_tf.recipes import Recipe

pytestmark = pytest.mark.slow  # subprocess pipeline runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_TINY = ["--dataset=digits", "--model=mlp", "--epochs=3", "--batch_size=32",
         "--num_members=200", "--num_reference=100", "--learning_rate=3e-3"]


def _run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "pipelines.train", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_pruning_minmax_from_a_flagfile(tmp_path):
    output_dir = tmp_path / "run"
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text("\n".join(_TINY + [
        "--method=mcmia_pruning_minmax", "--sparsity=0.75", "--regularization_epochs=1",
        "--retrain_epochs=1", "--edge_layer_sparsity=-1", "--privacy_weight=1.0",
        f"--output_dir={output_dir}"]) + "\n")
    run = _run([f"--flagfile={flagfile}"])
    assert run.returncode == 0, run.stderr[-3000:]

    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["method"] == "mcmia_pruning_minmax"
    assert summary["epochs"] == 3 and len(summary["history"]["loss"]) == 3
    assert summary["config"]["minmax"]["privacy_weight"] == 1.0
    assert abs(summary["sparsity"] - 0.75) < 2e-3
    assert summary["epsilon"] is None
    for key in ("train_accuracy", "test_accuracy", "train_loss", "test_loss", "compression_rate",
                "wall_time_seconds"):
        assert key in summary

    split = MembershipSplit.load(str(output_dir / "split.json"))
    assert split.sizes()["members"] == 200 and split.sizes()["reference"] == 100
    model = keras.models.load_model(str(output_dir / "model.keras"))
    from mcmia_tf.data import load_dataset  # pylint: disable=g-import-not-at-top
    digits = load_dataset("digits")
    x, y = split.take("members", digits.x_train, digits.y_train)
    accuracy = float(np.mean(model.predict(x, verbose=0).argmax(1) == y))
    assert abs(accuracy - summary["train_accuracy"]) < 1e-6
    kernels = [w for w in model.get_weights() if w.ndim == 2]
    zeros = sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)
    assert abs(zeros - 0.75) < 2e-3

    description = json.loads((output_dir / "recipe.json").read_text())
    recipe = Recipe.from_dict(description, reference_data=split.take(
        "reference", digits.x_train, digits.y_train))
    assert recipe.config.method == "mcmia_pruning_minmax"


def test_dp_summary_reports_epsilon_and_bad_input_fails_clearly(tmp_path):
    run = _run(_TINY + ["--method=dp", "--epochs=1", "--num_microbatches=8",
                        "--noise_multiplier=1.0", f"--output_dir={tmp_path / 'dp'}"])
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads((tmp_path / "dp" / "train_summary.json").read_text())
    assert summary["epsilon"] > 0 and summary["privacy"]["num_microbatches"] == 8

    run = _run(_TINY + ["--method=minmax", "--privacy_weight=-1",
                        f"--output_dir={tmp_path / 'bad'}"])
    assert run.returncode != 0
    assert "Invalid value for argument `privacy_weight`" in run.stderr
    assert not (tmp_path / "bad" / "model.keras").exists()
