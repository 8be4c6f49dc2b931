"""The architecture benchmark's pure helpers: 32x32 padding and the targets check (no training)."""

import numpy as np
import pytest

from bench import architectures_lib as lib


def test_padding_centres_the_image_and_leaves_zeros_around():
    images = np.arange(1, 2 * 28 * 28 + 1, dtype=np.float32).reshape(2, 28, 28, 1)
    padded = lib.pad_to(images)
    assert padded.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], images)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert np.all(padded[:, border] == 0)
    # digits: 8x8 -> 12 pixels each side.
    digits = np.ones((1, 8, 8, 1), np.float32)
    assert np.argwhere(lib.pad_to(digits)[0, :, :, 0]).min(0).tolist() == [12, 12]
    # An odd margin puts the extra pixel at the bottom / right.
    odd = lib.pad_to(np.ones((1, 29, 29, 1), np.float32))[0, :, :, 0]
    assert odd[0].sum() == 0 and odd[-1].sum() == 0 and odd[:, -1].sum() == 0
    assert odd[1].sum() == 29
    with pytest.raises(ValueError, match="at most 32x32"):
        lib.pad_to(np.zeros((1, 33, 32, 1)))


def _row(model, method, structure="none", target=0.0, accuracy=0.90, flops_reduction=1.0,
         latency=10.0, latency_slimmed=None):
    return {"model": model, "method": method, "structure": structure, "target_sparsity": target,
            "test_accuracy": accuracy, "flops_reduction": flops_reduction, "latency_ms": latency,
            "latency_ms_slimmed": latency if latency_slimmed is None else latency_slimmed}


def _filter_rows(resnet_accuracy, mobilenet_latency):
    return [_row("resnet18", "dense"), _row("mobilenetv2", "dense"),
            # 1.9x faster at 3x fewer FLOPs, 0.5 point (or more) below dense.
            _row("resnet18", "admm", "filter", 0.9, resnet_accuracy, 3.0, 10.0, 10.0 / 1.9),
            # Fast enough but only 1.5x fewer FLOPs: never qualifies.
            _row("mobilenetv2", "admm", "filter", 0.9, 0.90, 1.5, 10.0, 2.0),
            _row("mobilenetv2", "reweighted", "filter", 0.95, 0.895, 4.0, 10.0,
                 mobilenet_latency)]


def test_filter_speedup_target_needs_flops_speed_and_accuracy_on_both_models():
    status, details = lib.check_filter_speedup(_filter_rows(0.895, 5.0))
    assert status == "met", details
    assert details[0].startswith("resnet18: admm 0.9: 3.00x fewer FLOPs, 1.90x faster")
    # A pruned model more accurate than dense qualifies, and the detail says "above".
    status, details = lib.check_filter_speedup(_filter_rows(0.911, 5.0))
    assert status == "met"
    assert details[0].endswith("1.10 points above dense")
    # 1.2 points below dense on ResNet18.
    assert lib.check_filter_speedup(_filter_rows(0.888, 5.0))[0] == "not met"
    # MobileNetV2's 4x-FLOPs row only 1.67x faster; its 5x-faster row has 1.5x FLOPs.
    status, details = lib.check_filter_speedup(_filter_rows(0.895, 6.0))
    assert status == "not met"
    assert details[1].startswith("mobilenetv2: none; best reweighted 0.95")
    # MobileNetV2 not run, or surgery failed on it: the target cannot be checked.
    rows = [r for r in _filter_rows(0.895, 5.0) if r["model"] == "resnet18"]
    assert lib.check_filter_speedup(rows) == ("not checked", [
        "resnet18: admm 0.9: 3.00x fewer FLOPs, 1.90x faster, 0.50 points below dense",
        "mobilenetv2: no dense row"])
    rows = [dict(r, latency_ms_slimmed=None) if r["model"] == "mobilenetv2" else r
            for r in _filter_rows(0.895, 5.0)]
    status, details = lib.check_filter_speedup(rows)
    assert status == "not checked" and "surgery failed" in details[1]
    # A failure on one model outweighs a model that cannot be checked.
    rows = [r for r in _filter_rows(0.888, 5.0) if r["model"] == "resnet18"]
    assert lib.check_filter_speedup(rows)[0] == "not met"


def test_reweighted_vs_tfmot_needs_two_wins_at_20x():
    def rows(*accuracies):
        result = []
        for model, (ours, theirs) in zip(("resnet18", "mobilenetv2", "vgg16"), accuracies):
            result += [_row(model, "reweighted", "unstructured", 0.95, ours),
                       _row(model, "tfmot", "unstructured", 0.95, theirs),
                       # 10x rows and filter rows do not count.
                       _row(model, "reweighted", "unstructured", 0.9, 0.1),
                       _row(model, "reweighted", "filter", 0.95, 0.1)]
        return result

    assert lib.check_reweighted_vs_tfmot(rows((0.9, 0.9), (0.8, 0.7), (0.5, 0.6)))[0] == "met"
    assert lib.check_reweighted_vs_tfmot(rows((0.8, 0.81), (0.8, 0.7), (0.5, 0.6)))[0] == \
        "not met"
    assert lib.check_reweighted_vs_tfmot(rows((0.9, 0.8)))[0] == "not checked"
    # Where a reweighted row leaves depthwise kernels dense (tfmot's allocation), it is
    # the one compared, whatever the row that prunes them scored.
    same_allocation = rows((0.9, 0.8), (0.5, 0.7)) + [dict(
        _row("mobilenetv2", "reweighted", "unstructured", 0.95, 0.75), prune_depthwise=False)]
    status, details = lib.check_reweighted_vs_tfmot(same_allocation)
    assert status == "met", details
    assert details[1] == "mobilenetv2: reweighted (depthwise dense) 75.00% >= tfmot 70.00%"
    # Only our pruners' rows get the label: tfmot variants have no such choice (None).
    numbers = {c: 0 for c in lib.COLUMNS[4:] if c != "test_accuracy"}
    table = lib.markdown_table([
        dict(same_allocation[-1], **numbers),
        dict(_row("mobilenetv2", "tfmot_oneshot", "unstructured", 0.95), prune_depthwise=None,
             **numbers)])
    assert "| reweighted (depthwise dense) | unstructured |" in table
    assert "| tfmot_oneshot | unstructured |" in table
    lines = lib.targets(rows((0.9, 0.8), (0.9, 0.8)))
    assert lines[1].startswith("reweighted >= tfmot at 20x on at least two of the three "
                               "architectures: met (resnet18: reweighted 90.00% >= tfmot 80.00%")
    assert lines[0].startswith("filter-pruned ResNet18 / MobileNetV2 at >= 2x FLOPs reduction "
                               "run >= 1.8x faster on LiteRT within 1 point of dense: not checked")
