"""`python -m pipelines.export` end to end on `digits`, in subprocesses (absl flags)."""

import json
import os
import subprocess
import sys

import pytest

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from tflite_export import exporter
from tflite_export.metadata import read_metadata
from tflite_export.micro import parse_c_array

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "pipelines.export", *args], cwd=_ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module")
def model_path(digits, tmp_path_factory):
    """A small LeNet with half of its conv1 filters pruned (kernel and bias zero)."""
    model = build_model("lenet5", input_shape=digits.input_shape,
                        num_classes=digits.num_classes, width=0.5, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.x_train, digits.y_train, epochs=3, batch_size=64, verbose=0)
    kernel, bias = model.get_layer("conv1").get_weights()
    kernel[..., :5], bias[:5] = 0.0, 0.0
    model.get_layer("conv1").set_weights([kernel, bias])
    path = tmp_path_factory.mktemp("export") / "model.keras"
    model.save(str(path))
    return path


@pytest.mark.slow
def test_export_writes_files_and_report(model_path, tmp_path, digits):
    output_dir = tmp_path / "out"
    result = _run(f"--model_path={model_path}", "--dataset=digits", f"--output_dir={output_dir}",
                  "--modes=float32,int8+sparse,micro", "--surgery", "--latency_runs=3")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(output_dir / "export_report.json") as f:
        report = json.load(f)
    assert [row["format"] for row in report["files"]] == ["float32", "int8+sparse", "micro"]
    assert report["surgery"]["channels_after"]["conv1"] == 5
    for row in report["files"]:
        assert os.path.exists(row["path"]) and row["agreement"] >= 0.97
        with open(row["path"], "rb") as f:
            metadata = read_metadata(f.read())
        assert metadata.labels == tuple(digits.class_names) and metadata.mode == row["format"]
    micro_row = report["files"][2]
    assert micro_row["arena_bytes"] > 0 and micro_row["latency_ms_median"] is None
    with open(micro_row["c_source_path"]) as f, open(micro_row["path"], "rb") as g:
        assert parse_c_array(f.read()) == g.read()
    assert report["metadata"]["input_scale"] == digits.normalization.scale


@pytest.mark.slow
def test_missing_model_path_fails_clearly(tmp_path):
    result = _run(f"--model_path={tmp_path / 'nope.keras'}", f"--output_dir={tmp_path}")
    assert result.returncode != 0
    assert "No saved model at" in result.stderr


def test_unknown_format_is_rejected_by_name():
    # In process: the CLI calls `parse_format` on every name before loading anything.
    with pytest.raises(ValueError, match="Invalid value for argument `formats`"):
        exporter.parse_format("int4")
    assert exporter.parse_format("int8+sparse") == ("int8", True)
    assert exporter.parse_format("micro") == ("int8", False)
