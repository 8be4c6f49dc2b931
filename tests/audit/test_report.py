"""Reports: JSON round-trip, markdown, report folder, predictions npz."""

import json
import os

import numpy as np
import pytest

from mcmia_tf.audit import report as report_lib


def _report():
    rng = np.random.default_rng(0)
    is_member = np.r_[np.ones(200, bool), np.zeros(200, bool)]
    weak = report_lib.AttackResult.from_scores("loss", "threshold", rng.normal(size=400),
                                               is_member, threshold_accuracy=0.51)
    strong = report_lib.AttackResult.from_scores(
        "lira_online", "lira", rng.normal(size=400) + 3.0 * is_member, is_member,
        parameters={"num_reference_models": 16}, seconds=12.5, num_bootstrap=20)
    return report_lib.AuditReport(attacks=(weak, strong),
                                  target={"test_accuracy": 0.875, "model": "lenet5"},
                                  num_members=200, num_non_members=200), is_member


def test_report_json_round_trip():
    report, _ = _report()
    restored = report_lib.AuditReport.from_json(report.to_json())
    assert restored == report
    assert restored.to_dict() == report.to_dict()
    assert json.loads(report.to_json())["strongest_attack"] == "lira_online"


def test_strongest_attack_and_markdown():
    report, _ = _report()
    assert report.strongest.name == "lira_online"
    markdown = report.to_markdown()
    assert "**lira_online** (strongest)" in markdown
    assert "| loss |" in markdown and "51.00%" in markdown
    assert report.attack("loss").threshold_accuracy == 0.51
    with pytest.raises(KeyError, match="lira_offline"):
        report.attack("lira_offline")


def test_compact_roc_is_monotone_and_matches_metrics():
    report, _ = _report()
    attack = report.attack("lira_online")
    assert np.all(np.diff(attack.roc_tpr) >= 0) and np.all(np.diff(attack.roc_fpr) > 0)
    index = attack.roc_fpr.index(0.001) if 0.001 in attack.roc_fpr else None
    assert index is not None
    assert attack.roc_tpr[index] == attack.metrics.tpr_at_fpr["0.1pct"]


def test_save_writes_report_folder_and_predictions(tmp_path):
    report, is_member = _report()
    predictions = report_lib.AuditPredictions(
        target_outputs=np.zeros((400, 10), np.float32), labels=np.arange(400) % 10,
        is_member=is_member, output_type="logits",
        reference_outputs=np.ones((4, 400, 10), np.float32),
        reference_in=np.zeros((4, 400), bool),
        scores={a.name: a.scores for a in report.attacks})
    report.save(str(tmp_path), predictions)
    assert sorted(os.listdir(tmp_path)) == ["predictions.npz", "report.json", "report.md",
                                            "roc.png"]
    assert report_lib.AuditReport.load(str(tmp_path)) == report
    with open(tmp_path / "roc.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    loaded = report_lib.AuditPredictions.load(str(tmp_path / "predictions.npz"))
    np.testing.assert_array_equal(loaded.is_member, is_member)
    np.testing.assert_array_equal(loaded.scores["loss"], report.attack("loss").scores)
    assert loaded.output_type == "logits" and loaded.reference_outputs.shape == (4, 400, 10)


def test_empty_report_and_unknown_version_raise():
    with pytest.raises(ValueError, match="at least one attack"):
        report_lib.AuditReport(attacks=())
    report, _ = _report()
    config = report.to_dict()
    config["format_version"] = 99
    with pytest.raises(ValueError, match="format_version"):
        report_lib.AuditReport.from_dict(config)
