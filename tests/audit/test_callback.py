"""The audit callback logs attack metrics to History and TensorBoard during fit."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.audit import callback as callback_lib
from mcmia_tf.audit import metrics
from mcmia_tf.audit import threshold
from mcmia_tf.compat import keras
from mcmia_tf.models import build_model


@pytest.fixture(scope="module")
def members_and_non_members(digits):
    return digits.x_train[:200], digits.y_train[:200], digits.x_train[200:400], \
        digits.y_train[200:400]


def test_callback_logs_every_n_epochs(tmp_path, members_and_non_members):
    x_in, y_in, x_out, y_out = members_and_non_members
    model = build_model("mlp", (8, 8, 1), 10, seed=0, hidden_units=(32,))
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    audit = callback_lib.MembershipAuditCallback(
        x_in, y_in, x_out, y_out, every_n_epochs=2, num_examples=150,
        attacks=("loss", "modified_entropy"), log_dir=str(tmp_path), seed=0)
    history = model.fit(x_in, y_in, epochs=4, batch_size=32, verbose=0, callbacks=[audit])
    assert [epoch for epoch, _ in audit.audit_history] == [1, 3]
    assert len(history.history["mia_loss_auc"]) == 2
    assert set(audit.audit_history[0][1]) == {
        f"mia_{a}_{m}" for a in ("loss", "modified_entropy")
        for m in ("auc", "advantage", "tpr_at_1pct_fpr")}
    # The logged AUC is the AUC of the loss attack on the same fixed subsample.
    recomputed = callback_lib.MembershipAuditCallback(x_in, y_in, x_out, y_out,
                                                      num_examples=150, seed=0)
    recomputed.set_model(model)
    assert recomputed.audit()["mia_loss_auc"] == pytest.approx(
        history.history["mia_loss_auc"][-1])
    event_files = os.listdir(tmp_path / "membership_audit")
    assert len(event_files) == 1 and event_files[0].startswith("events.out.tfevents")
    logged = {}
    for event in tf.compat.v1.train.summary_iterator(
            str(tmp_path / "membership_audit" / event_files[0])):
        for value in event.summary.value:
            assert value.metadata.plugin_data.plugin_name in ("scalars", "")
            logged.setdefault(value.tag, []).append(
                (event.step, float(tf.make_ndarray(value.tensor))))
    assert [step for step, _ in logged["mia_loss_auc"]] == [1, 3]
    np.testing.assert_allclose([v for _, v in logged["mia_loss_auc"]],
                               history.history["mia_loss_auc"], rtol=1e-6)


def test_audit_matches_direct_computation(members_and_non_members):
    x_in, y_in, x_out, y_out = members_and_non_members
    model = build_model("mlp", (8, 8, 1), 10, seed=1, hidden_units=(8,))
    audit = callback_lib.MembershipAuditCallback(x_in, y_in, x_out, y_out, num_examples=1000)
    audit.set_model(model)
    outputs = model.predict(np.concatenate([x_in, x_out]), verbose=0)
    scores = threshold.membership_statistic("loss", outputs, np.r_[y_in, y_out], "logits")
    expected = metrics.roc_curve(scores, np.r_[np.ones(200, bool), np.zeros(200, bool)]).auc
    assert audit.audit()["mia_loss_auc"] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"every_n_epochs": 0}, "every_n_epochs"),
    ({"num_examples": 0}, "num_examples"),
    ({"attacks": ("lira",)}, "attacks"),
])
def test_bad_arguments_raise(members_and_non_members, kwargs, message):
    x_in, y_in, x_out, y_out = members_and_non_members
    with pytest.raises(ValueError, match=message):
        callback_lib.MembershipAuditCallback(x_in, y_in, x_out, y_out, **kwargs)


def test_mismatched_lengths_raise(members_and_non_members):
    x_in, y_in, x_out, y_out = members_and_non_members
    with pytest.raises(ValueError, match="same length"):
        callback_lib.MembershipAuditCallback(x_in, y_in[:10], x_out, y_out)
