"""Evaluation: agreement, sizes, latency, arena, and the audit of a deployed `.tflite`.

The audit itself is `mcmia_tf.audit.audit_deployed_model` on a `TFLitePredictor`
(the export package implements the audit's predictor protocol, nothing more).
"""

import json

import numpy as np
import pytest
from sklearn import metrics

from mcmia_tf.audit import audit_deployed_model
from mcmia_tf.audit import AuditConfig
from mcmia_tf.compat import keras
from mcmia_tf.data import MembershipSplit
from mcmia_tf.models import build_model
from tflite_export import converter
from tflite_export import evaluate
from tflite_export.inspection import zipped_size
from tflite_export.runtime import TFLitePredictor

BENCH_KEYS = {"model", "mode", "bytes", "zipped_bytes", "test_accuracy", "agreement",
              "latency_ms_median", "arena_bytes", "tpr_at_0.1pct_fpr"}


def test_int8_row_reports_agreement_size_and_latency(lenets, digits):
    content = converter.convert(lenets.pruned, "int8", representative_data=digits.x_train)
    row = evaluate.evaluate_export(lenets.pruned, content, digits.x_test, digits.y_test,
                                   model_name="pruned", mode="int8", latency_runs=5)
    keras_accuracy = np.mean(lenets.pruned.predict(digits.x_test, verbose=0).argmax(1)
                             == digits.y_test)
    assert row.keras_test_accuracy == pytest.approx(keras_accuracy)
    assert row.agreement >= 0.99
    assert row.accuracy_delta == pytest.approx(row.test_accuracy - keras_accuracy)
    assert row.bytes == len(content) and row.zipped_bytes == zipped_size(content)
    assert row.latency.num_runs == 5 and 0 < row.latency.median_ms <= row.latency.p90_ms
    assert row.arena_bytes is None
    assert BENCH_KEYS <= set(json.loads(row.to_json()))


@pytest.mark.slow
def test_micro_row_reports_the_arena(lenets, digits):
    content = converter.convert(lenets.pruned, "int8", representative_data=digits.x_train)
    row = evaluate.evaluate_export(lenets.pruned, content, digits.x_test[:50], digits.y_test[:50],
                                   model_name="pruned", mode="micro", micro=True)
    assert row.arena_bytes > 0 and row.latency is None
    assert row.agreement >= 0.98


@pytest.fixture(scope="module")
def overfit_target(digits):
    """A LeNet trained to memorise 100 members, so membership leaks."""
    split = MembershipSplit.create(dataset_name="digits", num_examples=len(digits.x_train),
                                   num_members=100, num_shadow_pool=0, seed=0)
    model = build_model("lenet5", input_shape=digits.input_shape, num_classes=10, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(digits.x_train[split.members], digits.y_train[split.members], epochs=60,
              batch_size=32, shuffle=False, verbose=0)
    return model, split


def test_audit_runs_on_the_deployed_file_and_beats_chance(overfit_target, digits):
    model, split = overfit_target
    content = converter.convert(model, "float32")
    config = AuditConfig(attacks=("loss",), num_shadow_models=0)
    with pytest.raises(TypeError, match="TFLitePredictor"):
        audit_deployed_model(content, digits.x_train, digits.y_train, split, config=config)
    report = audit_deployed_model(TFLitePredictor(content), digits.x_train, digits.y_train,
                                  split, recipe=None, config=config)
    assert report.target["deployed"] is True
    assert report.num_members == report.num_non_members == 100
    # The audit scored the deployed file: its AUC is the one of the file's own losses.
    candidates = np.r_[split.members, split.non_members]
    is_member = np.r_[np.ones(100, bool), np.zeros(100, bool)]
    outputs = TFLitePredictor(content).predict(digits.x_train[candidates])
    log_p = outputs - np.log(np.exp(outputs).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(200), digits.y_train[candidates]]
    auc = report.attack("loss").metrics.auc
    assert auc == pytest.approx(metrics.roc_auc_score(is_member, -loss), abs=1e-3)
    assert auc > 0.6
    row = evaluate.ExportEvaluation(model="overfit", mode="float32", sparse_encoding=False,
                                    bytes=1, zipped_bytes=1, keras_test_accuracy=1.0,
                                    test_accuracy=1.0, agreement=1.0).with_leakage(report)
    assert row.leakage_attack == "loss"
    assert row.tpr_at_0_1pct_fpr == report.attack("loss").metrics.tpr_at_fpr["0.1pct"]
