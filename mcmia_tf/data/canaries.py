"""Canaries for worst-case membership audits.

Average-case audits (members vs non-members) average the leakage over typical
examples and so hide the examples a defence protects worst. Following Aerni,
Zhang and Tramer (CCS 2024, "Evaluations of Machine Learning Privacy Defenses
are Misleading"), a study can plant N canaries — examples that are hard to
learn without memorising them — and audit the attacks on the canaries alone:
the target trains on a random half (IN), the other half is OUT.

Two kinds:
  * "mislabeled" (default): a training image with a flipped label, the
    paper's choice; in-distribution inputs, so a defence cannot spot them by
    their inputs alone;
  * "noise": an out-of-distribution image of uniform noise over the data's
    value range, with a random label.

Canaries are made from examples of the training split that have no other role
in the `MembershipSplit` (they are reserved: no other set may use them), so
they never enter the test accuracy either.
"""

import dataclasses
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

if TYPE_CHECKING:
    # For annotations only. splits.py imports this module at load time (a split
    # carries its `Canaries`), so canaries.py is the lower layer: it never
    # imports splits.py at run time and `plant_canaries` works on the split
    # through its attributes and `dataclasses.replace`. A lazy import inside
    # `plant_canaries` would also work but hides a dependency that is not needed.
    from mcmia_tf.data.splits import MembershipSplit  # pylint: disable=g-bad-import-order

__all__ = ["CANARY_KINDS", "Canaries", "plant_canaries"]

CANARY_KINDS = ("mislabeled", "noise")
# Independent random streams of one seed: numpy pads the entropy before appending
# the spawn key, so the draw, each canary's noise and `MembershipSplit.create`
# (which seeds with the bare seed) never share a stream, even with equal seeds.
_DRAW_STREAM = 1
_NOISE_STREAM = 2


def _invalid(argument: str, expected: str, received) -> ValueError:
    return ValueError(f"Invalid value for argument `{argument}`. Expected {expected}. "
                      f"Received: {argument}={received}")


def _check_seed(seed) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise _invalid("seed", "a non-negative integer", repr(seed))


@dataclasses.dataclass(frozen=True, eq=False)
class Canaries:
    """N canaries: their source examples, their labels, and which are IN for the target.

    Build with `plant_canaries(...)`; the constructor checks the arrays agree and
    sorts them by index.

    Attributes:
      kind: one of `CANARY_KINDS`. "mislabeled": a training image with a flipped
        label; "noise": uniform noise over the data's value range, with a random
        label.
      indices: (N,) sorted unique int64 indices into the training split, the
        examples the canaries are made from (reserved: no other set may use them).
      labels: (N,) int64 canary labels (for "mislabeled", never the true label).
      target_in: (N,) bool, True for exactly N // 2 canaries chosen at random:
        the ones the target trains on.
      seed: the seed the canaries were drawn with (it also seeds the noise).
    """
    kind: str
    indices: np.ndarray
    labels: np.ndarray
    target_in: np.ndarray
    seed: int

    def __post_init__(self):
        if self.kind not in CANARY_KINDS:
            raise _invalid("kind", f"one of {CANARY_KINDS}", repr(self.kind))
        _check_seed(self.seed)
        indices = np.asarray(self.indices, dtype=np.int64)
        labels = np.asarray(self.labels, dtype=np.int64)
        target_in = np.asarray(self.target_in)
        if indices.ndim != 1 or not labels.shape == target_in.shape == indices.shape:
            raise ValueError(f"Canary `indices`, `labels` and `target_in` must be 1-D arrays of "
                             f"one length; got shapes {indices.shape}, {labels.shape} and "
                             f"{target_in.shape}.")
        if target_in.size and target_in.dtype != bool:
            raise ValueError(f"Canary `target_in` must be a bool array; got {target_in.dtype}.")
        if (indices.size and indices.min() < 0) or (labels.size and labels.min() < 0):
            raise ValueError("Canary `indices` and `labels` must be non-negative.")
        if np.unique(indices).size != indices.size:
            raise ValueError("Canary `indices` contains repeated indices.")
        # Exactly half IN keeps the canary audit balanced (50% accuracy = chance).
        if int(target_in.sum()) != indices.size // 2:
            raise ValueError(f"Exactly {indices.size // 2} of {indices.size} canaries must be IN "
                             f"for the target (`target_in`); got {int(target_in.sum())}.")
        order = np.argsort(indices, kind="stable")
        for name, arr in (("indices", indices), ("labels", labels),
                          ("target_in", target_in.astype(bool))):
            arr = arr[order]
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def num_canaries(self) -> int:
        return int(self.indices.size)

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Returns the (N, ...) canary inputs made from the training images `x`.

        "mislabeled": `x[indices]`. "noise": uniform noise in `[x.min(), x.max()]`
        with the shape and dtype of one image, seeded by `(seed, index)` alone, so
        it is the same on every call and machine whatever else the split holds.
        """
        x = np.asarray(x)
        if self.num_canaries and self.indices[-1] >= len(x):
            raise ValueError(f"Canary index {int(self.indices[-1])} is outside the {len(x)} rows "
                             "of `x`; pass the whole training split the canaries were drawn from.")
        if self.kind == "mislabeled":
            return x[self.indices]
        low, high = x.min(), x.max()
        out = np.empty((self.num_canaries,) + x.shape[1:], dtype=x.dtype)
        for row, index in enumerate(self.indices):
            rng = np.random.default_rng(
                np.random.SeedSequence(self.seed, spawn_key=(_NOISE_STREAM, int(index))))
            if np.issubdtype(x.dtype, np.integer):  # e.g. raw uint8 pixels: every value possible
                out[row] = rng.integers(low, high, size=x.shape[1:], endpoint=True)
            else:  # clip: rounding to float32 must not leave the range
                out[row] = np.clip(rng.uniform(low, high, size=x.shape[1:]), low, high)
        return out

    def take(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Returns `(inputs, labels)` of all canaries (the canary audit's candidates)."""
        return self.inputs(x), self.labels.copy()

    def take_in(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Returns `(inputs, labels)` of the canaries the target trains on."""
        return self.inputs(x)[self.target_in], self.labels[self.target_in]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "seed": self.seed, "indices": self.indices.tolist(),
                "labels": self.labels.tolist(), "target_in": self.target_in.tolist()}

    @classmethod
    def from_dict(cls, config: dict) -> "Canaries":
        return cls(kind=config["kind"], seed=int(config["seed"]),
                   indices=np.asarray(config["indices"], np.int64),
                   labels=np.asarray(config["labels"], np.int64),
                   target_in=np.asarray(config["target_in"], bool))

    def __repr__(self) -> str:
        return (f"Canaries(kind={self.kind!r}, seed={self.seed}, num_canaries={self.num_canaries}, "
                f"target_in={int(self.target_in.sum())})")


def plant_canaries(split: "MembershipSplit",
                   y: np.ndarray,
                   num_canaries: int,
                   *,
                   kind: str = "mislabeled",
                   num_classes: Optional[int] = None,
                   seed: int = 0) -> "MembershipSplit":
    """Returns a copy of `split` carrying `num_canaries` canaries.

    The canaries are drawn from the training-split examples with no role in
    `split`, so build it with room to spare, e.g.
    `MembershipSplit.create(..., num_shadow_pool=...)` (the shadow pool takes
    everything left by default).

    Args:
      split: a `MembershipSplit` without canaries.
      y: integer labels of the whole training split (`split.num_examples` rows).
      num_canaries: N >= 2; N // 2 are IN for the target, the rest OUT.
      kind: "mislabeled" (label `(y + r) mod C`, `r` uniform in [1, C - 1], so
        never the true label) or "noise" (uniform random label).
      num_classes: C; defaults to `max(y) + 1`.
      seed: seed of the draw (indices, labels, IN/OUT) and of the noise inputs.
        Same arguments, same canaries.

    Returns:
      `dataclasses.replace(split, canaries=...)`.
    """
    if kind not in CANARY_KINDS:
        raise _invalid("kind", f"one of {CANARY_KINDS}", repr(kind))
    if isinstance(num_canaries, bool) or not isinstance(num_canaries, (int, np.integer)) \
            or num_canaries < 2:
        raise _invalid("num_canaries", "an integer >= 2 (the canary audit compares IN and OUT "
                       "canaries)", repr(num_canaries))
    _check_seed(seed)
    if split.canaries is not None:
        raise _invalid("split", "a split without canaries (plant them once; start again from "
                       "the split without them)", f"a split with {split.canaries.num_canaries} "
                       "canaries")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != split.num_examples:
        raise _invalid("y", f"the integer labels of the whole training split, shape "
                       f"({split.num_examples},) as the split indexes", f"y of shape {y.shape}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if y.size else 0
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 2 or (y.size and num_classes <= y.max()):
        raise _invalid("num_classes", "an integer >= 2 and above every label in `y` (a canary "
                       "label must differ from the true one)", repr(num_classes))
    free = split.unassigned()
    if num_canaries > free.size:
        raise _invalid("num_canaries", f"at most {free.size}: at most {free.size} examples of the "
                       "training split have no role; lower num_canaries or num_members / "
                       "num_shadow_pool", num_canaries)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_DRAW_STREAM,)))
    indices = np.sort(rng.choice(free, size=num_canaries, replace=False))
    if kind == "mislabeled":
        labels = (y[indices].astype(np.int64) + rng.integers(1, num_classes, size=num_canaries)) \
            % num_classes
    else:
        labels = rng.integers(0, num_classes, size=num_canaries)
    target_in = np.zeros(num_canaries, bool)
    target_in[rng.permutation(num_canaries)[:num_canaries // 2]] = True
    canaries = Canaries(kind=kind, indices=indices, labels=labels, target_in=target_in,
                        seed=int(seed))
    return dataclasses.replace(split, canaries=canaries)
