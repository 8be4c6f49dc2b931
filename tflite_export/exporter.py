"""One call from a trained model to the files a deployment needs, and a report of them.

`export_model` optionally removes pruned filters (`surgery`), then writes one
`.tflite` per requested format, a C array pair for the `micro` target, and
`export_report.json` with, per file, size, agreement with Keras, accuracy,
latency or arena. Formats are named `<mode>` or `<mode>+sparse` (e.g.
`float32`, `int8+sparse`), plus `micro` (full int8, dense, as C source).
"""

import dataclasses
import json
import os
from typing import Optional, Sequence

import numpy as np
import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import ensure_tf_keras_model, keras
from tflite_export import converter
from tflite_export import evaluate
from tflite_export import micro
from tflite_export.metadata import ModelMetadata
from tflite_export.surgery import remove_pruned_channels

__all__ = ["MICRO_FORMAT", "SPARSE_SUFFIX", "parse_format", "load_keras_model", "ExportedFile",
           "ExportReport", "export_model"]

MICRO_FORMAT = "micro"
SPARSE_SUFFIX = "+sparse"
REPORT_FILE_NAME = "export_report.json"


def parse_format(name: str) -> tuple:
    """`"int8+sparse"` -> `("int8", True)`; `"micro"` -> `("int8", False)`."""
    if name == MICRO_FORMAT:
        return "int8", False
    mode, sparse = (name[:-len(SPARSE_SUFFIX)], True) if name.endswith(SPARSE_SUFFIX) else (
        name, False)
    if mode not in converter.MODES:
        valid = [*converter.MODES, *(m + SPARSE_SUFFIX for m in converter.MODES), MICRO_FORMAT]
        raise ValueError(f"Invalid value for argument `formats`. Expected names from {valid}. "
                         f"Received: {name!r}")
    return mode, sparse


def load_keras_model(path: str) -> keras.Model:
    """Loads a saved tf_keras model, including tfmot pruning or quantisation wrappers.

    Raises:
      FileNotFoundError: if nothing exists at `path`.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"Invalid value for argument `model_path`. No saved model at {path!r}. Save the "
            "trained model with `model.save(path)` (a `.keras` or `.h5` file or a SavedModel "
            "folder) and pass that path.")
    with tfmot.sparsity.keras.prune_scope(), tfmot.quantization.keras.quantize_scope():
        return ensure_tf_keras_model(keras.models.load_model(path, compile=False))


@dataclasses.dataclass(frozen=True)
class ExportedFile:
    """One written file and how it compares with the Keras model.

    Attributes:
      format: the format name (`int8+sparse`, `micro`, ...).
      path: the `.tflite` file.
      c_source_path: the `.cc` file (micro only).
      evaluation: the comparison on the test split, or None if not evaluated.
    """

    format: str
    path: str
    c_source_path: Optional[str] = None
    evaluation: Optional[evaluate.ExportEvaluation] = None

    def to_dict(self) -> dict:
        row = {"format": self.format, "path": self.path, "c_source_path": self.c_source_path}
        if self.evaluation is not None:
            row.update(self.evaluation.to_dict())
        return row


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """Everything `export_model` wrote.

    Attributes:
      files: one `ExportedFile` per format.
      surgery: the `SurgeryReport` as a dict, or None if surgery was not run.
      metadata: the `ModelMetadata` embedded in every file, as a dict.
    """

    files: tuple
    surgery: Optional[dict]
    metadata: dict

    def to_dict(self) -> dict:
        return {"files": [f.to_dict() for f in self.files], "surgery": self.surgery,
                "metadata": self.metadata}

    def save(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, sort_keys=True)


def export_model(model: keras.Model, formats: Sequence[str], output_dir: str, *,
                 labels: Sequence[str], x_train: Optional[np.ndarray] = None,
                 x_test: Optional[np.ndarray] = None, y_test: Optional[np.ndarray] = None,
                 input_scale: float = 1.0, input_mean: Sequence[float] = (0.0,),
                 input_std: Sequence[float] = (1.0,), surgery: bool = False,
                 num_calibration_examples: int = 256, latency_runs: int = 200, seed: int = 0,
                 name: str = "model", description: str = "") -> ExportReport:
    """Writes `<name>_<format>.tflite` files (and `<name>_micro.cc/.h`) into `output_dir`.

    Args:
      model: a trained tf_keras model (pruning wrappers are stripped).
      formats: format names (see `parse_format`).
      output_dir: created if needed; `export_report.json` is written there too.
      labels: class names embedded in every file.
      x_train: training-split inputs, for int8 calibration.
      x_test, y_test: the test split; when given, every file is evaluated.
      input_scale, input_mean, input_std: the normalisation embedded in every
        file (`model_input = (raw / scale - mean) / std`).
      surgery: remove pruned filters/channels first (`remove_pruned_channels`).
      num_calibration_examples: int8 calibration examples drawn from `x_train`.
      latency_runs: timed single-example runs per LiteRT file.
      seed: seed of the calibration draw.
      name: file name prefix.
      description: free text embedded in the metadata.

    Returns:
      The `ExportReport` (also saved as `export_report.json`).
    """
    parsed = [(f, *parse_format(f)) for f in formats]
    if not parsed:
        raise ValueError("Invalid value for argument `formats`. Expected at least one format.")
    model = converter.strip_for_export(ensure_tf_keras_model(model))
    surgery_report = None
    if surgery:
        probe = None if x_test is None else np.asarray(x_test[:64], np.float32)
        model, report = remove_pruned_channels(model, verify_inputs=probe)
        surgery_report = report.to_dict()
    os.makedirs(output_dir, exist_ok=True)
    shared_metadata = ModelMetadata(labels=labels, input_scale=input_scale,
                                    input_mean=input_mean, input_std=input_std,
                                    description=description)
    files = []
    for format_name, mode, sparse in parsed:
        metadata = dataclasses.replace(shared_metadata, mode=format_name, sparse_encoding=sparse)
        content = converter.convert(model, mode, sparse=sparse, representative_data=x_train,
                                    num_calibration_examples=num_calibration_examples,
                                    seed=seed, metadata=metadata)
        file_stem = f"{name}_{format_name.replace(SPARSE_SUFFIX, '_sparse')}"
        path = os.path.join(output_dir, f"{file_stem}.tflite")
        with open(path, "wb") as f:
            f.write(content)
        source_path = None
        if format_name == MICRO_FORMAT:
            source_path, _ = micro.write_c_array(content, output_dir, f"{name}_micro")
        evaluation = None
        if x_test is not None and y_test is not None:
            evaluation = evaluate.evaluate_export(
                model, content, x_test, y_test, model_name=name, mode=format_name,
                micro=format_name == MICRO_FORMAT, latency_runs=latency_runs)
        files.append(ExportedFile(format=format_name, path=path, c_source_path=source_path,
                                  evaluation=evaluation))
    report = ExportReport(files=tuple(files), surgery=surgery_report,
                          metadata=shared_metadata.to_dict())
    report.save(os.path.join(output_dir, REPORT_FILE_NAME))
    return report
