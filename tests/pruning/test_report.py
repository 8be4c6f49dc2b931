"""Sparsity report: counts, compression rate and FLOPs against hand-computed values."""

import json

import numpy as np
import pytest

from mcmia_tf.pruning import sparsity_report
from tests.pruning.models import tiny_cnn


def test_counts_and_flops_of_a_tiny_cnn():
    model = tiny_cnn()
    conv = model.get_layer("conv")
    kernel = conv.kernel.numpy()
    kernel.ravel()[:18] = 0.0                      # half of the 36 conv weights
    conv.kernel.assign(kernel)
    hidden = model.get_layer("hidden")
    hidden.kernel.assign(np.zeros(hidden.kernel.shape, np.float32))

    report = sparsity_report(model)
    rows = {row.path: row for row in report.layers}
    assert list(rows) == ["conv", "depthwise", "hidden", "logits"]
    # conv: 3x3x1x4 on 6x6 'valid' -> 4x4 outputs; 2 FLOPs per multiply-accumulate.
    assert rows["conv"].num_weights == 36 and rows["conv"].num_nonzero == 18
    assert rows["conv"].flops_dense == 2 * 16 * 36
    assert rows["conv"].flops_sparse == 2 * 16 * 18
    # depthwise: 3x3x4x1 on 4x4 -> 2x2 outputs.
    assert rows["depthwise"].flops_dense == 2 * 4 * 36
    assert rows["depthwise"].kind == "depthwise_conv2d"
    # dense 16 -> 8, all zero.
    assert rows["hidden"].sparsity == 1.0 and rows["hidden"].flops_sparse == 0
    assert rows["hidden"].flops_dense == 2 * 16 * 8
    total = 36 + 36 + 128 + 24
    zeros = 18 + 128
    assert report.num_weights == total
    assert report.sparsity == pytest.approx(zeros / total)
    assert report.compression_rate == pytest.approx(total / (total - zeros))
    assert report.num_params == model.count_params()


def test_report_serializes_to_json_and_markdown():
    report = sparsity_report(tiny_cnn())
    values = json.loads(report.to_json())
    assert values["layers"][0]["shape"] == [3, 3, 1, 4]
    assert values["sparsity"] == report.sparsity
    text = str(report)
    assert "| conv | conv2d | 3x3x1x4 |" in text and "Compression rate" in text
    with pytest.raises(AttributeError):
        report.sparsity = 0.5  # frozen
