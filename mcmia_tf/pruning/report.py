"""Per-layer sparsity, compression rate and FLOPs of a (pruned) model.

Counts are exact zeros in the kernels of Conv2D, DepthwiseConv2D and Dense layers
("weights"); the compression rate is weights / non-zero weights, the convention of
the pruning literature (Han et al. 2015; ADMM, Zhang et al. 2018), which leaves
biases and normalisation parameters out. FLOPs count a multiply-accumulate as 2:

    dense:  2 * positions * kh * kw * cin * cout      sparse: 2 * positions * nnz(kernel)

with `positions` the number of output positions per example (out_h * out_w for a
convolution, 1 for a Dense layer on vectors). The sparse figure is what a sparse
kernel could skip, not a measured speed-up.
"""

import dataclasses
import json
from typing import Tuple

import numpy as np

from mcmia_tf.compat import keras
from mcmia_tf.pruning import registry

__all__ = ["LayerSparsity", "SparsityReport", "sparsity_report"]


@dataclasses.dataclass(frozen=True)
class LayerSparsity:
    """One prunable layer: path, kind, kernel shape, counts and FLOPs per example."""

    path: str
    kind: str
    shape: Tuple[int, ...]
    num_weights: int
    num_nonzero: int
    sparsity: float
    flops_dense: int
    flops_sparse: int

    def to_dict(self) -> dict:
        row = dataclasses.asdict(self)
        row["shape"] = list(self.shape)
        return row


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Sparsity of every prunable layer and of the whole model."""

    model_name: str
    layers: Tuple[LayerSparsity, ...]
    num_weights: int
    num_nonzero: int
    sparsity: float
    compression_rate: float
    num_params: int
    num_nonzero_params: int
    flops_dense: int
    flops_sparse: int

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["layers"] = [layer.to_dict() for layer in self.layers]
        return values

    def to_json(self, indent: int = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def to_markdown(self) -> str:
        lines = ["| layer | kind | shape | weights | non-zero | sparsity | MFLOPs dense | "
                 "MFLOPs sparse |", "|---|---|---|---|---|---|---|---|"]
        for layer in self.layers:
            lines.append(
                f"| {layer.path} | {layer.kind} | {'x'.join(map(str, layer.shape))} | "
                f"{layer.num_weights:,} | {layer.num_nonzero:,} | {layer.sparsity:.4f} | "
                f"{layer.flops_dense / 1e6:.3f} | {layer.flops_sparse / 1e6:.3f} |")
        lines.append(
            f"| **total** | | | {self.num_weights:,} | {self.num_nonzero:,} | "
            f"{self.sparsity:.4f} | {self.flops_dense / 1e6:.3f} | "
            f"{self.flops_sparse / 1e6:.3f} |")
        lines.append(f"\nCompression rate (weights): {self.compression_rate:.1f}x; "
                     f"parameters: {self.num_nonzero_params:,} non-zero of {self.num_params:,}.")
        return "\n".join(lines)

    def __str__(self):
        return self.to_markdown()


def _output_positions(layer: keras.layers.Layer) -> int:
    # The first call's output: a layer shared between calls has no single shape.
    shape = layer.get_output_shape_at(0)
    return int(np.prod([d for d in shape[1:-1] if d is not None])) if len(shape) > 2 else 1


def sparsity_report(model: keras.Model) -> SparsityReport:
    """Measures the exact zeros of every prunable kernel of `model`.

    Args:
      model: a Sequential/Functional tf_keras model; a model with a
        `pruning_target` attribute is measured through that sub-model.

    Returns:
      A `SparsityReport`.
    """
    target = registry.resolve_pruning_target(model)
    rows = []
    for weight in registry.find_prunable_weights(target):
        kernel = weight.variable.numpy()
        nonzero = int(np.count_nonzero(kernel))
        positions = _output_positions(weight.layer)
        rows.append(LayerSparsity(
            path=weight.path, kind=weight.kind, shape=weight.shape, num_weights=kernel.size,
            num_nonzero=nonzero, sparsity=1.0 - nonzero / kernel.size,
            flops_dense=2 * positions * kernel.size, flops_sparse=2 * positions * nonzero))
    num_weights = sum(r.num_weights for r in rows)
    num_nonzero = sum(r.num_nonzero for r in rows)
    params = target.get_weights()
    return SparsityReport(
        model_name=target.name, layers=tuple(rows), num_weights=num_weights,
        num_nonzero=num_nonzero, sparsity=1.0 - num_nonzero / num_weights,
        compression_rate=num_weights / max(num_nonzero, 1),
        num_params=int(sum(p.size for p in params)),
        num_nonzero_params=int(sum(np.count_nonzero(p) for p in params)),
        flops_dense=sum(r.flops_dense for r in rows),
        flops_sparse=sum(r.flops_sparse for r in rows))
