"""`python -m pipelines.audit` end to end on `digits`, in subprocesses (absl flags)."""

import json
import os
import subprocess
import sys

import pytest

from mcmia_tf.audit import AuditReport
from mcmia_tf.data import MembershipSplit
from mcmia_tf.recipes import StandardTrainingRecipe

pytestmark = pytest.mark.slow  # subprocess pipeline runs

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "pipelines.audit", *args], cwd=_ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def setup(digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    split = MembershipSplit.create(dataset_name="digits", num_examples=len(digits.x_train),
                                   num_members=150, num_shadow_pool=300, seed=0)
    split.save(str(folder / "split.json"))
    recipe = StandardTrainingRecipe("mlp", digits.input_shape, digits.num_classes, epochs=5,
                                    batch_size=32, learning_rate=1e-2,
                                    model_kwargs={"hidden_units": [32]})
    with open(folder / "recipe.json", "w") as f:
        json.dump(recipe.to_dict(), f)
    target = recipe.train(*split.take("members", digits.x_train, digits.y_train), seed=7)
    target.save(str(folder / "model.keras"))
    return folder


def test_sharded_training_then_report(setup):
    common = [f"--model_path={setup / 'model.keras'}", f"--split={setup / 'split.json'}",
              f"--output_dir={setup / 'report'}", f"--recipe_json={setup / 'recipe.json'}",
              "--attacks=loss,shadow,lira_online,lira_offline", "--num_reference_models=4",
              "--num_shadow_models=2", "--num_shards=2"]
    for shard in (0, 1):
        result = _run(*common, f"--shard_index={shard}", "--train_only")
        assert result.returncode == 0, result.stderr[-3000:]
    lira_folder = setup / "report" / "models" / "lira"
    assert sorted(f for f in os.listdir(lira_folder) if f.startswith("outputs_")) == [
        f"outputs_{k:04d}.npz" for k in range(4)]
    # The final run only loads the cached models (no shard left to train) and reports.
    result = _run(*common, "--save_predictions")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Strongest attack" in result.stdout
    report_folder = setup / "report"
    assert {"report.json", "report.md", "roc.png", "predictions.npz"} <= set(
        os.listdir(report_folder))
    report = AuditReport.load(str(report_folder))
    assert {a.name for a in report.attacks} == {
        "loss", "loss_class_conditional", "shadow_mlp", "lira_online", "lira_offline"}
    assert report.num_members == report.num_non_members == 150


def test_lira_without_recipe_is_a_usage_error(setup):
    result = _run(f"--model_path={setup / 'model.keras'}", f"--split={setup / 'split.json'}",
                  f"--output_dir={setup / 'no_recipe'}", "--attacks=loss,lira_online")
    assert result.returncode != 0
    assert "--recipe_json" in result.stderr
