"""Disjoint membership splits of a training set, and LiRA inclusion masks.

A membership-inference study needs four disjoint sets drawn from one data
distribution (the dataset's training split):

  * members       D   — the audited (target) model's training set;
  * non_members       — never seen by the target; the audit's negatives;
  * reference     D'  — the defender's own non-members for the Nasr et al.
                         min-max game (CCS 2018); never used by the audit;
  * shadow_pool       — the attacker's data for shadow models (Shokri et al.,
                         S&P 2017) and LiRA reference models (Carlini et al.,
                         S&P 2022).

The dataset's test split stays untouched and measures utility. Keeping
`non_members` out of `reference` matters: a defence tuned on the audit's own
negatives would flatter itself.

A split may also carry `canaries` (see `canaries.py`) for a worst-case audit:
training examples reserved for the canaries, half of them IN for the target.
"""

import dataclasses
import json
import os
from typing import Dict, Optional, Tuple

import numpy as np

from mcmia_tf.data.canaries import Canaries

__all__ = ["MembershipSplit", "draw_inclusion_masks", "draw_paired_inclusion_masks"]

_SET_NAMES = ("members", "non_members", "reference", "shadow_pool")
_FORMAT_VERSION = 1


def _check_count(value, argument: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"Invalid value for argument `{argument}`. Expected a non-negative "
                         f"integer{' or None' if allow_none else ''}. Received: {argument}={value!r}")


@dataclasses.dataclass(frozen=True, eq=False)
class MembershipSplit:
    """Disjoint index sets into a dataset's training split.

    Build with `MembershipSplit.create(...)`; the constructor checks that the
    sets are disjoint and inside `[0, num_examples)`.

    Attributes:
      dataset_name: the dataset the indices refer to.
      num_examples: size of that dataset's training split.
      seed: the seed the split was drawn with.
      members, non_members, reference, shadow_pool: sorted int64 indices.
      canaries: optional `Canaries` (from `plant_canaries`), disjoint from the sets.
    """
    dataset_name: str
    num_examples: int
    seed: int
    members: np.ndarray
    non_members: np.ndarray
    reference: np.ndarray
    shadow_pool: np.ndarray
    canaries: Optional[Canaries] = None

    def __post_init__(self):
        if self.canaries is not None and not isinstance(self.canaries, Canaries):
            raise ValueError(f"`canaries` must be a `Canaries` or None; got {type(self.canaries)}.")
        for name in _SET_NAMES:
            arr = np.asarray(getattr(self, name), dtype=np.int64)
            if arr.ndim != 1:
                raise ValueError(f"`{name}` must be a 1-D index array; got shape {arr.shape}.")
            if np.unique(arr).size != arr.size:
                raise ValueError(f"`{name}` contains repeated indices.")
            arr = np.sort(arr)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        # Canaries are reserved: no other role may use the examples they are made from.
        sets = self._index_sets()
        for name, arr in sets.items():
            if arr.size and (arr.min() < 0 or arr.max() >= self.num_examples):
                raise ValueError(f"`{name}` has indices outside [0, {self.num_examples}).")
        names = list(sets)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                overlap = np.intersect1d(sets[a], sets[b])
                if overlap.size:
                    raise ValueError(f"Membership sets `{a}` and `{b}` overlap in {overlap.size} "
                                     f"indices (first: {overlap[:5].tolist()}); they must be "
                                     "disjoint.")

    def _index_sets(self) -> Dict[str, np.ndarray]:
        sets = {name: getattr(self, name) for name in _SET_NAMES}
        return sets if self.canaries is None else {**sets, "canaries": self.canaries.indices}

    @classmethod
    def create(cls,
               *,
               dataset_name: str,
               num_examples: int,
               num_members: int,
               num_non_members: Optional[int] = None,
               num_reference: int = 0,
               num_shadow_pool: Optional[int] = None,
               seed: int = 0) -> "MembershipSplit":
        """Draws a split uniformly at random.

        Args:
          dataset_name: name of the dataset (stored, checked on load).
          num_examples: size of the training split to draw from.
          num_members: size of the target's training set.
          num_non_members: audit negatives; defaults to `num_members` (a
            balanced audit, 50% attack accuracy = chance).
          num_reference: size of the defender's reference set D' (0 when no
            defence needs it).
          num_shadow_pool: size of the attacker's pool; defaults to everything
            left.
          seed: seed of the permutation. Same arguments, same split.

        Returns:
          A `MembershipSplit`.
        """
        _check_count(num_examples, "num_examples")
        _check_count(num_members, "num_members")
        _check_count(num_non_members, "num_non_members", allow_none=True)
        _check_count(num_reference, "num_reference")
        _check_count(num_shadow_pool, "num_shadow_pool", allow_none=True)
        if num_members == 0:
            raise ValueError("Invalid value for argument `num_members`. Expected at least 1. "
                             "Received: num_members=0")
        balanced = num_non_members is None
        if balanced:
            num_non_members = num_members
        fixed = num_members + num_non_members + num_reference
        if fixed > num_examples:
            # With the default num_non_members = num_members, both grow together.
            largest = ((num_examples - num_reference) // 2 if balanced
                       else num_examples - num_non_members - num_reference)
            others = ("num_reference" if balanced else "num_non_members / num_reference")
            raise ValueError(
                "Invalid value for argument `num_members`. Members + non-members + reference = "
                f"{fixed} examples, but the training split of {dataset_name!r} has "
                f"{num_examples}. The largest num_members with "
                f"{'as many non-members and ' if balanced else ''}these other sizes is "
                f"{max(0, largest)} (or lower {others}). Received: num_members={num_members}")
        if num_shadow_pool is None:
            num_shadow_pool = num_examples - fixed
        elif fixed + num_shadow_pool > num_examples:
            raise ValueError(
                f"Invalid value for argument `num_shadow_pool`. At most {num_examples - fixed} "
                f"examples are left after members, non-members and reference. Received: "
                f"num_shadow_pool={num_shadow_pool}")
        order = np.random.default_rng(seed).permutation(num_examples)
        bounds = np.cumsum([0, num_members, num_non_members, num_reference, num_shadow_pool])
        parts = {name: order[bounds[i]:bounds[i + 1]] for i, name in enumerate(_SET_NAMES)}
        return cls(dataset_name=dataset_name, num_examples=int(num_examples), seed=int(seed),
                   **parts)

    def sizes(self) -> Dict[str, int]:
        # "canaries" only when there are some, so records of canary-free splits stay as before.
        sizes = {name: int(getattr(self, name).size) for name in _SET_NAMES}
        return sizes if self.canaries is None else {**sizes, "canaries": self.canaries.num_canaries}

    def unassigned(self) -> np.ndarray:
        """Sorted indices of the training split in no set and not a canary."""
        used = np.concatenate(list(self._index_sets().values()))
        return np.setdiff1d(np.arange(self.num_examples), used)

    def take(self, which: str, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Returns `(x[idx], y[idx])` for one of the sets, e.g. `split.take("members", ...)`."""
        if which not in _SET_NAMES:
            raise ValueError(f"Invalid value for argument `which`. Expected one of {_SET_NAMES}. "
                             f"Received: which={which!r}")
        if len(x) != self.num_examples or len(y) != self.num_examples:
            raise ValueError(f"The split indexes a training split of {self.num_examples} examples; "
                             f"received x with {len(x)} and y with {len(y)} rows. Pass the "
                             f"training split of {self.dataset_name!r}.")
        idx = getattr(self, which)
        return x[idx], y[idx]

    def target_training_data(self, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Returns `(x, y)` the target trains on: the members, then the IN canaries.

        IN canaries come with their canary inputs and labels. The average-case
        audit is still members vs non-members; the canary audit scores the
        canaries alone (IN vs OUT). Canaries never enter test accuracy: they come
        from the training split and the test split is untouched. Without
        canaries this is `take("members", x, y)`.
        """
        x_members, y_members = self.take("members", x, y)
        if self.canaries is None:
            return x_members, y_members
        x_in, y_in = self.canaries.take_in(x)
        return (np.concatenate([x_members, x_in.astype(x_members.dtype)]),
                np.concatenate([y_members, y_in.astype(y_members.dtype)]))

    def to_dict(self) -> dict:
        # No "canaries" key without canaries: canary-free files stay byte-identical.
        config = {"format_version": _FORMAT_VERSION, "dataset_name": self.dataset_name,
                  "num_examples": self.num_examples, "seed": self.seed,
                  **{name: getattr(self, name).tolist() for name in _SET_NAMES}}
        if self.canaries is not None:
            config["canaries"] = self.canaries.to_dict()
        return config

    @classmethod
    def from_dict(cls, config: dict) -> "MembershipSplit":
        version = config.get("format_version")
        if version != _FORMAT_VERSION:
            raise ValueError(f"Unsupported split format_version {version!r}; expected "
                             f"{_FORMAT_VERSION}.")
        return cls(dataset_name=config["dataset_name"], num_examples=int(config["num_examples"]),
                   seed=int(config["seed"]),
                   canaries=(Canaries.from_dict(config["canaries"])
                             if config.get("canaries") is not None else None),
                   **{name: np.asarray(config[name], np.int64) for name in _SET_NAMES})

    def save(self, path: str) -> None:
        """Writes the split as JSON, atomically (write to a temp file, then rename).

        The temporary name is this process's own: study shards started together
        may all write the same split, and a shared name would let one rename
        another's half-written file.
        """
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self.to_dict(), f)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str, expected_dataset: Optional[str] = None) -> "MembershipSplit":
        """Reads a split written by `save`; disjointness is checked again."""
        with open(path) as f:
            split = cls.from_dict(json.load(f))
        if expected_dataset is not None and split.dataset_name != expected_dataset:
            raise ValueError(f"The split in {path} was drawn from {split.dataset_name!r}, not "
                             f"{expected_dataset!r}.")
        return split

    def __repr__(self) -> str:
        return (f"MembershipSplit(dataset_name={self.dataset_name!r}, seed={self.seed}, "
                f"{', '.join(f'{k}={v}' for k, v in self.sizes().items())})")


def _check_mask_sizes(pool_size: int, num_models: int) -> None:
    _check_count(pool_size, "pool_size")
    _check_count(num_models, "num_models")
    if num_models < 1:
        raise ValueError("Invalid value for argument `num_models`. Expected at least 1. "
                         f"Received: num_models={num_models}")


def draw_inclusion_masks(pool_size: int, num_models: int, seed: int) -> np.ndarray:
    """Random IN/OUT masks for `num_models` reference models over a pool.

    Follows Carlini et al.'s LiRA code: every example is IN for exactly
    `num_models / 2` models, chosen at random (with an odd number of models, for
    `floor` or `ceil` of it with equal probability, so a single model trains on
    a random half of the pool). Each model then sees about half the pool.

    Args:
      pool_size: number of examples in the pool.
      num_models: number of reference models (>= 1).
      seed: random seed.

    Returns:
      Bool array of shape (num_models, pool_size); `[k, i]` says whether
      model k trains on example i.
    """
    _check_mask_sizes(pool_size, num_models)
    rng = np.random.default_rng(seed)
    rank = rng.uniform(size=(num_models, pool_size)).argsort(axis=0).argsort(axis=0)
    num_in = num_models // 2 + (num_models % 2) * (rng.uniform(size=pool_size) < 0.5)
    return rank < num_in


def draw_paired_inclusion_masks(pool_size: int, num_models: int, seed: int) -> np.ndarray:
    """Inclusion masks in complementary pairs: model 2i + 1 trains on what 2i leaves out.

    The design of ML Privacy Meter's RMIA code (paired reference models): every
    example is IN for exactly one model of each pair, so the first k models, for
    every even k, have each example IN for exactly k / 2 of them. Attacks can then
    be run with the first 2, 4, 8, ... of K trained models (LiRA with 2 models
    already has an IN and an OUT model for every example), which the independent
    ranks of `draw_inclusion_masks` only give at k = K. With an odd number of
    models the last one trains on a random half on its own.

    Args:
      pool_size: number of examples in the pool.
      num_models: number of models (>= 1).
      seed: random seed.

    Returns:
      Bool array of shape (num_models, pool_size).
    """
    _check_mask_sizes(pool_size, num_models)
    rng = np.random.default_rng(seed)
    masks = np.zeros((num_models, pool_size), bool)
    for first in range(0, num_models, 2):
        half = np.zeros(pool_size, bool)
        half[rng.permutation(pool_size)[:pool_size // 2 + rng.integers(0, 2) * (pool_size % 2)]] \
            = True
        masks[first] = half
        if first + 1 < num_models:
            masks[first + 1] = ~half
    return masks
