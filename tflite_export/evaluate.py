"""What deploying a model changed: accuracy, agreement, size, latency, arena and leakage.

For a Keras model and one of its `.tflite` exports, on the test split:

* top-1 agreement `mean(argmax f_keras(x) == argmax f_tflite(x))` and the
  accuracy delta `acc_tflite - acc_keras` (quantisation error shows up here
  before it shows up anywhere else);
* size: raw bytes and zip-compressed bytes (how pruning shrinks a download);
* latency: median and 90th percentile of repeated single-example `invoke()`
  calls, one thread, the default XNNPACK delegate when the model can use it
  (the op resolver actually used is recorded);
* for micro exports: accuracy in the TFLite Micro interpreter and the smallest
  tensor arena that runs the model;
* leakage of the deployed file: `ExportEvaluation.with_leakage` reads the TPR
  at 0.1% FPR from an audit report of the file. The audit runs on the caller's
  side (`mcmia_tf.audit.audit_deployed_model(TFLitePredictor(content), ...)`),
  so every attack queries exactly what ships; this package implements the
  audit's `Predictor` protocol and imports nothing else of the audit.
"""

import dataclasses
import json
from typing import Optional, Tuple

import numpy as np

from mcmia_tf.audit.predictors import KerasPredictor
from tflite_export import micro as micro_lib
from tflite_export.inspection import summarize, zipped_size
from tflite_export.runtime import TFLitePredictor

__all__ = ["LatencyStats", "ExportEvaluation", "measure_latency", "evaluate_export",
           "LEAKAGE_FPR_KEY"]

LEAKAGE_FPR_KEY = "0.1pct"


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Single-example latency of a `.tflite` model.

    Attributes:
      median_ms: median wall-clock time of one `invoke()`, milliseconds.
      p90_ms: 90th percentile.
      num_runs: timed invocations.
      op_resolver: the interpreter's op resolver (XNNPACK or builtin kernels).
    """

    median_ms: float
    p90_ms: float
    num_runs: int
    op_resolver: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def measure_latency(predictor: TFLitePredictor, example: np.ndarray, num_runs: int = 200,
                    num_warmup: int = 20) -> LatencyStats:
    """Times single-example inference (see `TFLitePredictor.time_invocations`)."""
    seconds = predictor.time_invocations(example, num_runs=num_runs, num_warmup=num_warmup)
    return LatencyStats(median_ms=float(np.median(seconds) * 1e3),
                        p90_ms=float(np.percentile(seconds, 90) * 1e3),
                        num_runs=int(num_runs), op_resolver=predictor.op_resolver)


@dataclasses.dataclass(frozen=True)
class ExportEvaluation:
    """One exported file compared with the Keras model it came from.

    Attributes:
      model: a name for the source model (e.g. "dense", "pruned").
      mode: the export mode ("float32", ..., "int8", or "micro").
      sparse_encoding: whether tensors are stored in TFLite's sparse format.
      bytes: file size.
      zipped_bytes: zip-compressed file size.
      keras_test_accuracy: the Keras model's test accuracy.
      test_accuracy: the exported model's test accuracy.
      agreement: fraction of test examples with the same top-1 class.
      latency: single-example latency in LiteRT (None for micro rows: host
        timings of the micro reference kernels say nothing about a device).
      arena_bytes: smallest TFLite Micro tensor arena (micro rows only).
      tpr_at_0_1pct_fpr: TPR at 0.1% FPR of the strongest attack (LiRA when it
        ran) on the exported file, if audited.
      tpr_interval: its 95% bootstrap interval (when the audit ran a bootstrap).
      leakage_attack: the attack that number comes from.
    """

    model: str
    mode: str
    sparse_encoding: bool
    bytes: int
    zipped_bytes: int
    keras_test_accuracy: float
    test_accuracy: float
    agreement: float
    latency: Optional[LatencyStats] = None
    arena_bytes: Optional[int] = None
    tpr_at_0_1pct_fpr: Optional[float] = None
    tpr_interval: Optional[Tuple[float, float]] = None
    leakage_attack: Optional[str] = None

    @property
    def accuracy_delta(self) -> float:
        """`test_accuracy - keras_test_accuracy` (negative: the export lost accuracy)."""
        return self.test_accuracy - self.keras_test_accuracy

    def with_leakage(self, report, attack: Optional[str] = None) -> "ExportEvaluation":
        """Returns a copy with the TPR at 0.1% FPR of `attack` (default: LiRA online if run,
        else the strongest attack) from `report`, a `mcmia_tf.audit.AuditReport` of this
        file (e.g. from `mcmia_tf.audit.audit_deployed_model`)."""
        names = [a.name for a in report.attacks]
        if attack is None:
            attack = "lira_online" if "lira_online" in names else report.strongest.name
        metrics = report.attack(attack).metrics
        interval = metrics.confidence_intervals.get(f"tpr_at_{LEAKAGE_FPR_KEY}_fpr")
        return dataclasses.replace(self, tpr_at_0_1pct_fpr=float(metrics.tpr_at_fpr[
            LEAKAGE_FPR_KEY]), tpr_interval=None if interval is None else tuple(interval),
                                   leakage_attack=attack)

    def to_dict(self) -> dict:
        """A flat row (the benchmark's JSON schema)."""
        return {
            "model": self.model,
            "mode": self.mode,
            "sparse_encoding": self.sparse_encoding,
            "bytes": self.bytes,
            "zipped_bytes": self.zipped_bytes,
            "keras_test_accuracy": self.keras_test_accuracy,
            "test_accuracy": self.test_accuracy,
            "accuracy_delta": self.accuracy_delta,
            "agreement": self.agreement,
            "latency_ms_median": None if self.latency is None else self.latency.median_ms,
            "latency_ms_p90": None if self.latency is None else self.latency.p90_ms,
            "op_resolver": None if self.latency is None else self.latency.op_resolver,
            "arena_bytes": self.arena_bytes,
            "tpr_at_0.1pct_fpr": self.tpr_at_0_1pct_fpr,
            "tpr_at_0.1pct_fpr_interval": (None if self.tpr_interval is None
                                           else list(self.tpr_interval)),
            "leakage_attack": self.leakage_attack,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def evaluate_export(keras_model, model_content: bytes, x_test: np.ndarray, y_test: np.ndarray,
                    *, model_name: str, mode: str, micro: bool = False,
                    latency_runs: int = 200) -> ExportEvaluation:
    """Compares an exported file with its Keras model on the test split.

    Args:
      keras_model: the tf_keras model the file was converted from.
      model_content: the `.tflite` bytes.
      x_test, y_test: the test split.
      model_name: a name for the row.
      mode: the export mode, recorded in the row.
      micro: run the file in the TFLite Micro interpreter (accuracy and arena)
        instead of LiteRT (accuracy and latency).
      latency_runs: timed single-example invocations.

    Returns:
      An `ExportEvaluation` (without leakage; see `with_leakage`).
    """
    y_test = np.asarray(y_test)
    keras_outputs = KerasPredictor(keras_model).predict(x_test)
    keras_accuracy = float(np.mean(keras_outputs.argmax(axis=1) == y_test))
    latency = arena = None
    if micro:
        outputs = micro_lib.MicroModel(model_content).predict(x_test)
        arena = micro_lib.minimum_arena_size(model_content)
    else:
        predictor = TFLitePredictor(model_content)
        outputs = predictor.predict(x_test)
        latency = measure_latency(predictor, x_test[0], num_runs=latency_runs)
    return ExportEvaluation(
        model=model_name, mode=mode,
        sparse_encoding=summarize(model_content).num_sparse_tensors > 0,
        bytes=len(model_content), zipped_bytes=zipped_size(model_content),
        keras_test_accuracy=keras_accuracy,
        test_accuracy=float(np.mean(outputs.argmax(axis=1) == y_test)),
        agreement=float(np.mean(outputs.argmax(axis=1) == keras_outputs.argmax(axis=1))),
        latency=latency, arena_bytes=arena)
