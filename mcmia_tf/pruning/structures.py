"""Sparsity structures: group definitions and Euclidean projections.

Every prunable kernel is read in its *conv view* `(kh, kw, cin, cout)` (tf_keras
layout): a `Dense` kernel `(in, out)` is a 1x1 convolution `(1, 1, in, out)`, and a
`DepthwiseConv2D` kernel `(kh, kw, channels, multiplier)` has one `kh x kw` kernel per
(channel, multiplier) pair and no reduction over input channels. The GEMM view of a
convolution is the matrix `(kh * kw * cin, cout)`.

A structure partitions the weights into groups g. The projection of W onto "a
fraction `rate` of the weights is zero" (for groups of equal size, a fraction `rate`
of the groups) is

    Proj(W) = W * mask,   mask_g = 0 for the round(rate * G) groups of smallest ||W_g||_2

which is the Euclidean projection onto the union of the allowed supports (zero the
smallest groups, keep the rest untouched). Two structures do not follow this rule:
N:M (at most N non-zeros in every M consecutive weights along cin; its sparsity is
1 - N/M whatever the rate) and pattern (every 3x3 kernel keeps the 4-entry pattern of
its library that retains most energy, PatDNN, Niu et al. ASPLOS 2020; rates above 5/9
also zero whole kernels, "connectivity pruning").

Structures are pure: `mask(w, rate)` and `project(w, rate)` take NumPy arrays (or
eager tensors) and return NumPy arrays; `group_ids` gives the integer group of every
weight, which the TF penalties use with `tf.math.unsorted_segment_sum`.
"""

import abc
import itertools
import re
from typing import Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "Structure", "Unstructured", "Filter", "Channel", "Column", "Kernel", "Block",
    "NM", "Pattern", "DEFAULT_PATTERNS", "get_structure", "STRUCTURE_NAMES",
    "conv_view_shape", "group_norms", "project",
]

STRUCTURE_NAMES = ("unstructured", "filter", "channel", "column", "kernel", "block",
                   "n:m", "pattern")


def conv_view_shape(shape: Sequence[int]) -> Tuple[int, int, int, int]:
    """Returns the `(kh, kw, cin, cout)` conv view of a Dense or conv kernel shape."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 2:
        return (1, 1) + shape
    if len(shape) == 4:
        return shape
    raise ValueError(
        "Invalid value for argument `w`. Expected a Dense kernel (in, out) or a conv "
        f"kernel (kh, kw, cin, cout). Received: a tensor of shape {shape}.")


def _as_numpy(w) -> np.ndarray:
    return w.numpy() if hasattr(w, "numpy") else np.asarray(w)


def _smallest(scores: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` smallest scores (stable: ties go to the lower index)."""
    return np.argsort(scores, kind="stable")[:count]


def _check_rate(rate: float) -> float:
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(
            "Invalid value for argument `rate`. Expected a float in [0, 1). "
            f"Received: rate={rate}")
    return float(rate)


class Structure(abc.ABC):
    """A partition of a kernel into groups, and the projection to a sparsity rate."""

    name: str = ""

    def validate(self, shape: Sequence[int], depthwise: bool = False,
                 layer_name: str = "") -> None:
        """Raises `ValueError` if the structure makes no sense for this kernel."""
        del shape, depthwise, layer_name

    @abc.abstractmethod
    def group_ids(self, shape: Sequence[int], depthwise: bool = False) -> np.ndarray:
        """Integer group id (0..G-1) of every weight, with the kernel's shape."""

    def reduction_axes(self, shape: Sequence[int],
                       depthwise: bool = False) -> Optional[Tuple[int, ...]]:
        """Axes of the kernel whose reduction gives the groups, in `group_ids` order.

        None when groups are not axis-aligned (blocks, single weights). A reduction
        is much cheaper in a training step than a segment sum over group ids.
        """
        del shape, depthwise
        return None

    def num_groups(self, shape: Sequence[int], depthwise: bool = False) -> int:
        return int(self.group_ids(shape, depthwise).max()) + 1

    def mask(self, w, rate: float, depthwise: bool = False) -> np.ndarray:
        """0/1 mask (float32, shape of `w`) of the projection of `w` to `rate`."""
        w = _as_numpy(w)
        rate = _check_rate(rate)
        self.validate(w.shape, depthwise)
        ids = self.group_ids(w.shape, depthwise).ravel()
        num_groups = int(ids.max()) + 1
        norms = np.sqrt(np.bincount(ids, weights=np.square(w, dtype=np.float64).ravel(),
                                    minlength=num_groups))
        keep = np.ones(num_groups, dtype=np.float32)
        keep[_smallest(norms, int(round(rate * num_groups)))] = 0.0
        return keep[ids].reshape(w.shape)

    def project(self, w, rate: float, depthwise: bool = False) -> np.ndarray:
        """Euclidean projection of `w` onto the structured sparsity set of `rate`."""
        w = _as_numpy(w)
        return (w * self.mask(w, rate, depthwise)).astype(w.dtype)

    def sparsity_at(self, rate: float) -> float:
        """Fraction of zero weights that `project(w, rate)` yields (equal groups)."""
        return float(rate)

    def get_config(self) -> dict:
        return {"name": self.name}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class Unstructured(Structure):
    """Every weight is its own group (magnitude pruning)."""

    name = "unstructured"

    def group_ids(self, shape, depthwise=False):
        return np.arange(int(np.prod(shape))).reshape(shape)


def _reject_depthwise(structure: Structure, depthwise: bool, layer_name: str):
    if depthwise:
        raise ValueError(
            f"Invalid value for argument `structure`. The {structure.name!r} structure "
            "groups weights across input channels, which a DepthwiseConv2D kernel does not "
            f"reduce over (layer {layer_name!r}). Use 'unstructured', 'filter', 'kernel', "
            "'column' or 'pattern' for depthwise layers, or exclude the layer.")


class Filter(Structure):
    """One output channel (GEMM column, kh*kw*cin weights): removes a whole filter.

    For a Dense kernel this is one output neuron; for a depthwise kernel, one
    (channel, multiplier) kernel.
    """

    name = "filter"

    def reduction_axes(self, shape, depthwise=False):
        if len(shape) == 2:
            return (0,)
        return (0, 1) if depthwise else (0, 1, 2)

    def group_ids(self, shape, depthwise=False):
        kh, kw, cin, cout = conv_view_shape(shape)
        if depthwise:
            ids = np.arange(cin * cout).reshape(1, 1, cin, cout)
        else:
            ids = np.arange(cout).reshape(1, 1, 1, cout)
        return np.broadcast_to(ids, (kh, kw, cin, cout)).reshape(shape)


class Channel(Structure):
    """One input channel across all filters (kh*kw*cout weights)."""

    name = "channel"

    def reduction_axes(self, shape, depthwise=False):
        return (1,) if len(shape) == 2 else (0, 1, 3)

    def validate(self, shape, depthwise=False, layer_name=""):
        _reject_depthwise(self, depthwise, layer_name)

    def group_ids(self, shape, depthwise=False):
        kh, kw, cin, cout = conv_view_shape(shape)
        ids = np.arange(cin).reshape(1, 1, cin, 1)
        return np.broadcast_to(ids, (kh, kw, cin, cout)).reshape(shape)


class Column(Structure):
    """One GEMM row, i.e. one (i, j, cin) position across all filters (cout weights).

    For a depthwise kernel: one spatial position (i, j) across all channels.
    """

    name = "column"

    def reduction_axes(self, shape, depthwise=False):
        if len(shape) == 2:
            return (1,)
        return (2, 3) if depthwise else (3,)

    def group_ids(self, shape, depthwise=False):
        kh, kw, cin, cout = conv_view_shape(shape)
        if depthwise:
            ids = np.arange(kh * kw).reshape(kh, kw, 1, 1)
        else:
            ids = np.arange(kh * kw * cin).reshape(kh, kw, cin, 1)
        return np.broadcast_to(ids, (kh, kw, cin, cout)).reshape(shape)


class Kernel(Structure):
    """One kh x kw slice for a given (cin, cout): connectivity pruning.

    For a Dense kernel (a 1x1 convolution) a kernel is a single weight.
    """

    name = "kernel"

    def reduction_axes(self, shape, depthwise=False):
        return None if len(shape) == 2 else (0, 1)  # Dense: single weights.

    def group_ids(self, shape, depthwise=False):
        kh, kw, cin, cout = conv_view_shape(shape)
        ids = np.arange(cin * cout).reshape(1, 1, cin, cout)
        return np.broadcast_to(ids, (kh, kw, cin, cout)).reshape(shape)


class Block(Structure):
    """`rows x cols` tiles of the GEMM view `(kh*kw*cin, cout)`.

    Edge tiles are smaller when the tile does not divide the matrix. TFLite exploits
    1x4 (float) and 1x16 (int8) blocks in fully-connected layers.
    """

    name = "block"

    def __init__(self, rows: int = 1, cols: int = 4):
        if int(rows) < 1 or int(cols) < 1:
            raise ValueError(
                "Invalid value for argument `structure`. Expected a block of positive tile "
                f"sizes, e.g. 'block:1x4'. Received: rows={rows}, cols={cols}")
        self.rows, self.cols = int(rows), int(cols)

    def validate(self, shape, depthwise=False, layer_name=""):
        _reject_depthwise(self, depthwise, layer_name)

    def group_ids(self, shape, depthwise=False):
        kh, kw, cin, cout = conv_view_shape(shape)
        rows = np.arange(kh * kw * cin) // self.rows
        cols = np.arange(cout) // self.cols
        col_tiles = -(-cout // self.cols)
        ids = rows[:, None] * col_tiles + cols[None, :]
        return ids.reshape(shape)

    def get_config(self):
        return {"name": self.name, "rows": self.rows, "cols": self.cols}


class NM(Structure):
    """At most N non-zeros in every M consecutive weights along input channels.

    The projection keeps the N largest |w| of each M-block, so the sparsity is
    1 - N/M for any `rate` (Mishra et al., "Accelerating Sparse Deep Neural
    Networks", 2021, for 2:4). The penalty groups are single weights.
    """

    name = "n:m"

    def __init__(self, n: int = 2, m: int = 4):
        if not 0 < int(n) < int(m):
            raise ValueError(
                "Invalid value for argument `structure`. Expected 'N:M' with "
                f"0 < N < M, e.g. '2:4'. Received: N={n}, M={m}")
        self.n, self.m = int(n), int(m)

    def validate(self, shape, depthwise=False, layer_name=""):
        _reject_depthwise(self, depthwise, layer_name)
        cin = conv_view_shape(shape)[2]
        if cin % self.m:
            raise ValueError(
                f"Invalid value for argument `structure`. {self.n}:{self.m} sparsity "
                f"needs M={self.m} to divide the number of input channels, but layer "
                f"{layer_name!r} has cin={cin}. Choose an M that divides {cin}, or exclude "
                "the layer (`exclude=[...]`) or give it another structure "
                "(`layer_structure={...}`).")

    def group_ids(self, shape, depthwise=False):
        return Unstructured().group_ids(shape)

    def block_ids(self, shape) -> np.ndarray:
        """Id of the M-block (along cin) of every weight."""
        kh, kw, cin, cout = conv_view_shape(shape)
        blocks = (np.arange(kh * kw).reshape(kh, kw, 1, 1) * (cin // self.m)
                  + (np.arange(cin) // self.m).reshape(1, 1, cin, 1))
        return (blocks * cout + np.arange(cout).reshape(1, 1, 1, cout)).reshape(shape)

    def mask(self, w, rate=0.0, depthwise=False):
        del rate  # The sparsity of N:M is fixed by N and M.
        w = _as_numpy(w)
        self.validate(w.shape, depthwise)
        ids = self.block_ids(w.shape).ravel()
        order = np.argsort(ids, kind="stable")        # weights grouped by block
        magnitudes = np.abs(w.ravel()[order]).reshape(-1, self.m)
        ranks = np.argsort(np.argsort(-magnitudes, axis=1, kind="stable"), axis=1)
        flat = np.empty(w.size, dtype=np.float32)
        flat[order] = (ranks < self.n).astype(np.float32).ravel()
        return flat.reshape(w.shape)

    def sparsity_at(self, rate):
        return 1.0 - self.n / self.m

    def get_config(self):
        return {"name": self.name, "n": self.n, "m": self.m}


def _default_patterns() -> np.ndarray:
    """8 four-entry 3x3 patterns that keep the centre (PatDNN's library size).

    The 4 "cross minus one arm" patterns and the 4 "corner square" patterns.
    """
    cross = [(0, 1), (1, 0), (1, 2), (2, 1)]
    patterns = []
    for arms in itertools.combinations(cross, 3):
        patterns.append([(1, 1), *arms])
    for (r, c) in [(0, 0), (0, 2), (2, 0), (2, 2)]:
        patterns.append([(1, 1), (r, 1), (1, c), (r, c)])
    library = np.zeros((len(patterns), 3, 3), dtype=np.float32)
    for index, cells in enumerate(patterns):
        for r, c in cells:
            library[index, r, c] = 1.0
    return library


DEFAULT_PATTERNS = _default_patterns()


class Pattern(Structure):
    """Every 3x3 kernel keeps one pattern of a library; rates > 5/9 drop kernels.

    The pattern of a kernel K is argmax_p sum_{(i,j) in p} K_ij^2, the Euclidean
    projection onto the union of the pattern subspaces (PatDNN, Niu et al. 2020).
    With 4-entry patterns the sparsity is 5/9; a larger `rate` additionally zeroes
    the fraction k = (rate - 5/9) / (4/9) of kernels with the smallest norm after
    patterning. Penalty groups are kernels.
    """

    name = "pattern"

    def __init__(self, patterns: Optional[np.ndarray] = None):
        library = DEFAULT_PATTERNS if patterns is None else np.asarray(patterns, np.float32)
        if library.ndim != 3 or library.shape[1:] != (3, 3) or not np.all(
                np.isin(library, (0.0, 1.0))):
            raise ValueError(
                "Invalid value for argument `patterns`. Expected a 0/1 array of shape "
                f"(num_patterns, 3, 3). Received: an array of shape {library.shape}")
        sizes = library.reshape(len(library), -1).sum(axis=1)
        if len(set(sizes.tolist())) != 1:
            raise ValueError(
                "Invalid value for argument `patterns`. Every pattern must keep the same "
                f"number of entries. Received patterns keeping {sorted(set(sizes))} entries.")
        self.patterns = library
        self.kept_fraction = float(sizes[0]) / 9.0

    def validate(self, shape, depthwise=False, layer_name=""):
        kh, kw = conv_view_shape(shape)[:2]
        if (kh, kw) != (3, 3):
            raise ValueError(
                "Invalid value for argument `structure`. Pattern pruning needs 3x3 "
                f"kernels, but layer {layer_name!r} has a {kh}x{kw} kernel. Exclude it "
                "(`exclude=[...]`) or give it another structure (`layer_structure={...}`).")

    def reduction_axes(self, shape, depthwise=False):
        return Kernel().reduction_axes(shape, depthwise)

    def group_ids(self, shape, depthwise=False):
        return Kernel().group_ids(shape, depthwise)

    def mask(self, w, rate=0.0, depthwise=False):
        w = _as_numpy(w)
        rate = _check_rate(rate)
        self.validate(w.shape, depthwise)
        kernels = np.moveaxis(w.reshape(3, 3, -1), -1, 0)           # (K, 3, 3)
        energy = np.einsum("kij,pij->kp", np.square(kernels), self.patterns)
        chosen = self.patterns[np.argmax(energy, axis=1)]            # (K, 3, 3)
        drop_fraction = max(0.0, (rate - (1.0 - self.kept_fraction)) / self.kept_fraction)
        kept_norms = np.sqrt(energy.max(axis=1))
        chosen[_smallest(kept_norms, int(round(drop_fraction * len(kernels))))] = 0.0
        return np.moveaxis(chosen, 0, -1).reshape(w.shape).astype(np.float32)

    def sparsity_at(self, rate):
        return max(float(rate), 1.0 - self.kept_fraction)

    def get_config(self):
        return {"name": self.name, "patterns": self.patterns.astype(int).tolist()}


StructureLike = Union[str, Structure]

_CLASSES = {cls.name: cls for cls in (Unstructured, Filter, Channel, Column, Kernel, Block,
                                      NM, Pattern)}


def get_structure(structure: StructureLike, argument_name: str = "structure") -> Structure:
    """Returns the `Structure` for a name.

    Names: 'unstructured', 'filter', 'channel', 'column', 'kernel', 'block'
    (1x4 tiles), 'block:RxC' (e.g. 'block:1x16'), 'n:m' (2:4), 'N:M' (e.g. '1:4'),
    'pattern'. A `Structure` instance is returned unchanged, and a config dict from
    `Structure.get_config()` is rebuilt.
    """
    if isinstance(structure, Structure):
        return structure
    if isinstance(structure, dict) and structure.get("name") in _CLASSES:
        config = dict(structure)
        return _CLASSES[config.pop("name")](**config)
    if isinstance(structure, str):
        key = structure.strip().lower()
        if key in _CLASSES:
            return _CLASSES[key]()
        match = re.fullmatch(r"block:(\d+)x(\d+)", key)
        if match:
            return Block(int(match.group(1)), int(match.group(2)))
        match = re.fullmatch(r"(\d+):(\d+)", key)
        if match:
            return NM(int(match.group(1)), int(match.group(2)))
    raise ValueError(
        f"Invalid value for argument `{argument_name}`. Expected one of "
        f"{list(STRUCTURE_NAMES)}, 'block:RxC' or 'N:M' (e.g. '2:4'), or a `Structure`. "
        f"Received: {argument_name}={structure!r}")


def group_norms(w, structure: StructureLike, depthwise: bool = False) -> np.ndarray:
    """L2 norm ||W_g||_2 of every penalty group of `w` (NumPy, length G)."""
    w = _as_numpy(w)
    structure = get_structure(structure)
    ids = structure.group_ids(w.shape, depthwise).ravel()
    return np.sqrt(np.bincount(ids, weights=np.square(w, dtype=np.float64).ravel(),
                               minlength=int(ids.max()) + 1))


def project(w, structure: StructureLike, rate: float, depthwise: bool = False) -> np.ndarray:
    """Euclidean projection of `w` to `rate` under `structure` (see module docstring)."""
    return get_structure(structure).project(w, rate, depthwise)
