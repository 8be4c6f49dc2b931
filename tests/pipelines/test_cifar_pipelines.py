"""The pipelines on CIFAR-10 read from `--data_dir`, with the accelerator flags, in subprocesses.

The data is the `cifar10_data_dir` fixture: a synthetic CIFAR-10 prepared on disk
by TensorFlow Datasets' own builder, read through `tfds.load(data_dir=...)` like the
real one. On this CPU-only host `--mixed_precision` and `--jit_compile` must parse,
print one line each saying they are ignored, and leave training working.
"""

import json
import os
import subprocess
import sys

import pytest

from mcmia_tf.study import accelerator_visible

pytestmark = pytest.mark.slow  # subprocess pipeline runs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_CIFAR_RECIPE = ["--model=resnet18", "--width=0.125", "--epochs=1", "--batch_size=32",
                 "--learning_rate=0.05", "--optimizer=sgd", "--momentum=0.9",
                 "--lr_schedule=cosine", "--weight_decay=5e-4", "--augmentation=crop_flip"]


def _run(module, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
    return subprocess.run([sys.executable, "-m", f"pipelines.{module}", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600, check=False)


def _assert_ignored_on_cpu(stdout):
    if not accelerator_visible():
        assert "mixed precision ignored: no GPU is visible" in stdout
        assert "jit_compile ignored: no GPU or TPU is visible" in stdout


@pytest.fixture(scope="module")
def trained(cifar10_data_dir, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("cifar_train")
    run = _run("train", "--dataset=cifar10", f"--data_dir={cifar10_data_dir}", *_CIFAR_RECIPE,
               "--num_members=60", "--num_reference=20", "--mixed_precision", "--jit_compile",
               f"--output_dir={output_dir}")
    assert run.returncode == 0, run.stderr[-3000:]
    return output_dir, run.stdout


def test_train_with_the_accelerator_flags_and_the_cifar_recipe(trained):
    output_dir, stdout = trained
    _assert_ignored_on_cpu(stdout)
    summary = json.loads((output_dir / "train_summary.json").read_text())
    assert summary["dataset"] == "cifar10" and summary["num_members"] == 60
    assert len(summary["history"]["loss"]) == 1
    training = summary["config"]["training"]
    assert (training["optimizer"], training["momentum"], training["lr_schedule"],
            training["weight_decay"], training["augmentation"]) == (
                "sgd", 0.9, "cosine", 5e-4, "crop_flip")


def test_audit_retrains_reference_models_with_the_saved_recipe(trained, cifar10_data_dir):
    output_dir, _ = trained
    run = _run("audit", f"--model_path={output_dir / 'model.keras'}",
               f"--split={output_dir / 'split.json'}",
               f"--recipe_json={output_dir / 'recipe.json'}",
               f"--data_dir={cifar10_data_dir}", f"--output_dir={output_dir / 'audit'}",
               "--attacks=loss,lira_online", "--num_reference_models=2", "--num_shadow_models=0",
               "--flip", "--shift_pixels=4", "--num_bootstrap=20", "--num_permutations=20")
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((output_dir / "audit" / "models" / "lira" / "manifest.json").read_text())
    # pipelines.train's Recipe, not a plain fit: the augmentation and optimizer come along.
    assert manifest["recipe"]["recipe"]["training"]["augmentation"] == "crop_flip"
    assert manifest["recipe"]["recipe"]["training"]["optimizer"] == "sgd"
    report = json.loads((output_dir / "audit" / "report.json").read_text())
    assert {a["name"] for a in report["attacks"]} == {"loss", "lira_online"}


def test_export_reads_the_dataset_from_data_dir(trained, cifar10_data_dir):
    output_dir, _ = trained
    run = _run("export", f"--model_path={output_dir / 'model.keras'}", "--dataset=cifar10",
               f"--data_dir={cifar10_data_dir}", "--modes=float32", "--latency_runs=1",
               "--num_calibration_examples=8", f"--output_dir={output_dir / 'export'}")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (output_dir / "export" / "model_float32.tflite").exists()


@pytest.mark.parametrize("module, args", [
    ("train", ["--dataset=cifar10", "--output_dir=unused"]),
    ("study", ["--preset=cifar10_resnet18", "--mixed_precision", "--jit_compile",
               "--output_dir=unused"]),
])
def test_missing_data_names_data_dir_and_how_to_prepare_it(tmp_path, module, args):
    args = [a.replace("unused", str(tmp_path / "out")) for a in args]
    run = _run(module, f"--data_dir={tmp_path / 'empty'}", *args)
    assert run.returncode != 0
    assert "--data_dir" in run.stderr and "tfds build cifar10 --data_dir=DIR" in run.stderr
    if module == "study":
        _assert_ignored_on_cpu(run.stdout)  # the preset and the flags were accepted
