"""The pure half of `bench.architectures`: input padding, the table and the benchmark's targets.

No flags here, so tests (and other benchmarks) can import it next to any absl app.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["COLUMNS", "IMAGE_SIZE", "check_filter_speedup", "check_reweighted_vs_tfmot",
           "format_row", "markdown_table", "pad_to", "targets"]

IMAGE_SIZE = 32

# The benchmark's targets (see `targets`).
SPEEDUP_MODELS = ("resnet18", "mobilenetv2")
MIN_FLOPS_REDUCTION = 2.0
MIN_SPEEDUP = 1.8
MAX_ACCURACY_DROP = 0.01  # one point
SPARSITY_20X = 0.95
MIN_REWEIGHTED_WINS = 2


def pad_to(images: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Centres (n, h, w, c) images on a `size` x `size` canvas of zeros.

    An odd margin puts the extra row / column at the bottom / right.

    Raises:
      ValueError: if an image is larger than the canvas.
    """
    height, width = images.shape[1:3]
    if height > size or width > size:
        raise ValueError(f"Invalid value for argument `images`. Expected images at most "
                         f"{size}x{size}. Received: {height}x{width}")
    top, left = (size - height) // 2, (size - width) // 2
    return np.pad(images, ((0, 0), (top, size - height - top), (left, size - width - left),
                           (0, 0)))


COLUMNS = ("model", "method", "structure", "target_sparsity", "sparsity", "compression",
           "test_accuracy", "flops", "flops_reduction", "params", "tflite_bytes",
           "tflite_zipped_bytes", "int8_bytes", "int8_zipped_bytes", "latency_ms",
           "latency_ms_slimmed", "seconds_per_epoch", "cpu_seconds_per_epoch")


def _leaves_depthwise_dense(row: Dict) -> bool:
    """A row of our pruners run with `--noprune_depthwise` (tfmot's allocation); rows
    without the choice (dense, tfmot) have `prune_depthwise` None or no such key."""
    return row.get("prune_depthwise") is False


def _cell(column: str, row: Dict) -> str:
    value = row[column]
    if column == "method" and _leaves_depthwise_dense(row):
        return f"{value} (depthwise dense)"
    if value is None:
        return "-"
    if column == "test_accuracy":
        return f"{value:.2%}"
    if column == "flops":
        return f"{value / 1e6:.2f}M"
    if column in ("latency_ms", "latency_ms_slimmed"):
        return f"{value:.3f}"
    return str(value)


def format_row(row: Dict) -> str:
    """One row as ` | `-separated cells (progress lines while the benchmark runs)."""
    return " | ".join(_cell(c, row) for c in COLUMNS)


def markdown_table(rows: List[Dict]) -> str:
    """The rows as a markdown table (FLOPs in millions, accuracy in percent)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append(f"| {format_row(row)} |")
    return "\n".join(lines)


def _dense_row(rows: Sequence[Dict], architecture: str) -> Optional[Dict]:
    return next((r for r in rows if r["model"] == architecture and r["method"] == "dense"), None)


def check_filter_speedup(rows: Sequence[Dict]) -> Tuple[str, List[str]]:
    """Filter-pruned ResNet18 and MobileNetV2 at >= 2x fewer FLOPs, >= 1.8x faster, <= 1 point.

    Per architecture, a filter row qualifies when `flops_reduction` >= 2, the dense
    row's float32 latency over its latency after surgery is >= 1.8, and its accuracy
    is at most one point below the dense row's.

    Returns:
      ("met" | "not met" | "not checked", one detail per architecture). "not checked"
      when an architecture has no dense row or no filter row with a latency after
      surgery (and no other architecture fails).
    """
    status, details = "met", []
    for architecture in SPEEDUP_MODELS:
        dense = _dense_row(rows, architecture)
        filter_rows = [r for r in rows if r["model"] == architecture
                       and r["structure"] == "filter"]
        candidates = [r for r in filter_rows if r.get("latency_ms_slimmed")]
        if dense is None or not candidates:
            missing = ("no dense row" if dense is None else "no filter rows" if not filter_rows
                       else "no filter row has a latency after surgery (surgery failed)")
            details.append(f"{architecture}: {missing}")
            status = "not checked" if status != "not met" else status
            continue

        def summary(row):
            speedup = dense["latency_ms"] / row["latency_ms_slimmed"]
            drop = 100 * (dense["test_accuracy"] - row["test_accuracy"])
            versus = f"{drop:.2f} points below" if drop >= 0 else f"{-drop:.2f} points above"
            return speedup, (f"{row['method']} {row['target_sparsity']:g}: "
                             f"{row['flops_reduction']:.2f}x fewer FLOPs, {speedup:.2f}x faster, "
                             f"{versus} dense")

        def qualifies(row):
            return (row["flops_reduction"] >= MIN_FLOPS_REDUCTION
                    and summary(row)[0] >= MIN_SPEEDUP
                    and row["test_accuracy"] >= dense["test_accuracy"] - MAX_ACCURACY_DROP - 1e-9)

        passing = [r for r in candidates if qualifies(r)]
        if passing:
            best = max(passing, key=lambda r: summary(r)[0])
            details.append(f"{architecture}: {summary(best)[1]}")
        else:
            # The closest miss: the fastest row at >= 2x fewer FLOPs, else the fastest.
            reduced = [r for r in candidates if r["flops_reduction"] >= MIN_FLOPS_REDUCTION]
            closest = max(reduced or candidates, key=lambda r: summary(r)[0])
            details.append(f"{architecture}: none; best {summary(closest)[1]}")
            status = "not met"
    return status, details


def check_reweighted_vs_tfmot(rows: Sequence[Dict]) -> Tuple[str, List[str]]:
    """Reweighted (unstructured) accuracy >= tfmot's at 20x on >= 2 of the architectures.

    tfmot cannot prune depthwise kernels; where a reweighted row run with
    `--noprune_depthwise` exists (the same per-layer allocation as tfmot's), it is the
    one compared, else the row that prunes every layer.

    Returns:
      ("met" | "not met" | "not checked", one detail per compared architecture).
      "not checked" when fewer than two architectures have both rows at 0.95.
    """
    def find(architecture, method):
        found = [r for r in rows if r["model"] == architecture and r["method"] == method
                 and r["structure"] == "unstructured"
                 and abs(r["target_sparsity"] - SPARSITY_20X) < 1e-9]
        same_allocation = [r for r in found if _leaves_depthwise_dense(r)]
        return (same_allocation or found or [None])[0]

    wins, details = 0, []
    architectures = list(dict.fromkeys(r["model"] for r in rows))
    for architecture in architectures:
        ours, theirs = find(architecture, "reweighted"), find(architecture, "tfmot")
        if ours is None or theirs is None:
            continue
        won = ours["test_accuracy"] >= theirs["test_accuracy"]
        wins += won
        label = "reweighted (depthwise dense)" if _leaves_depthwise_dense(ours) else "reweighted"
        details.append(f"{architecture}: {label} {ours['test_accuracy']:.2%} "
                       f"{'>=' if won else '<'} tfmot {theirs['test_accuracy']:.2%}")
    if len(details) < MIN_REWEIGHTED_WINS:
        return "not checked", details + ["fewer than two architectures have both rows at 0.95"]
    return ("met" if wins >= MIN_REWEIGHTED_WINS else "not met"), details


def targets(rows: Sequence[Dict]) -> List[str]:
    """The benchmark's targets, one line each, met or not, with the numbers behind them."""
    lines = []
    for text, check in (
            ("filter-pruned ResNet18 / MobileNetV2 at >= 2x FLOPs reduction run >= 1.8x faster "
             "on LiteRT within 1 point of dense", check_filter_speedup),
            ("reweighted >= tfmot at 20x on at least two of the three architectures",
             check_reweighted_vs_tfmot)):
        status, details = check(rows)
        lines.append(f"{text}: {status} ({'; '.join(details)})")
    return lines
