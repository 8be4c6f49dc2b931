"""Who an audit scores, and against what: candidates, canaries and the RMIA population.

From a `MembershipSplit` over a training split `(x, y)`:

* candidates: the members (label 1), the non-members (label 0) and, when the split
  carries canaries, the canaries (label 1 for the half the target trained on). The
  LiRA / RMIA reference models train on random halves of all candidates, so every
  canary is IN for about half of them too (Aerni, Zhang and Tramer, CCS 2024).
* the average-case audit is members vs non-members; the worst-case (canary) audit
  is IN vs OUT canaries. Neither sees the other's examples.
* population: known non-members for RMIA's pairwise test (Zarifzadeh et al., ICML
  2024), drawn from the shadow pool. No target, reference or canary example is in
  it, and no LiRA / RMIA reference model trains on it; the shadow models (Shokri et
  al.) do, but RMIA never queries them.
"""

import dataclasses
from typing import Optional

import numpy as np

__all__ = ["AuditCandidates"]


@dataclasses.dataclass(frozen=True, eq=False)
class AuditCandidates:
    """The candidate pool of an audit and its population points.

    Attributes:
      x: candidate inputs: members, non-members, then canaries.
      y: their labels (a canary's label is its planted label).
      is_member: True where the target trained on the candidate.
      is_canary: True for canaries.
      population_x: RMIA population inputs (may be empty).
      population_y: their labels.
    """

    x: np.ndarray
    y: np.ndarray
    is_member: np.ndarray
    is_canary: np.ndarray
    population_x: np.ndarray
    population_y: np.ndarray

    @classmethod
    def from_split(cls, split, x: np.ndarray, y: np.ndarray, population_size: int = 0,
                   seed: int = 0) -> "AuditCandidates":
        """Builds the candidates of `split` over the training split `(x, y)`.

        Args:
          split: a `MembershipSplit` (with or without canaries).
          x: the training split's inputs.
          y: its labels.
          population_size: RMIA population points to draw from the shadow pool
            (all of it when the pool is smaller); 0 for none.
          seed: seed of the population draw.
        """
        members = np.asarray(split.members, np.int64)
        non_members = np.asarray(split.non_members, np.int64)
        parts_x, parts_y = [x[members], x[non_members]], [y[members], y[non_members]]
        is_member = [np.ones(len(members), bool), np.zeros(len(non_members), bool)]
        is_canary = [np.zeros(len(members) + len(non_members), bool)]
        canaries = getattr(split, "canaries", None)
        if canaries is not None:
            canary_x, canary_y = canaries.take(x)
            parts_x.append(canary_x)
            parts_y.append(canary_y)
            is_member.append(np.asarray(canaries.target_in, bool))
            is_canary.append(np.ones(len(canary_y), bool))
        pool = np.asarray(split.shadow_pool, np.int64)
        order = np.random.default_rng([int(seed), 7]).permutation(len(pool))
        chosen = np.sort(pool[order[:min(int(population_size), len(pool))]])
        return cls(x=np.concatenate(parts_x), y=np.concatenate(parts_y).astype(np.int64),
                   is_member=np.concatenate(is_member), is_canary=np.concatenate(is_canary),
                   population_x=x[chosen], population_y=np.asarray(y)[chosen].astype(np.int64))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_canaries(self) -> int:
        return int(self.is_canary.sum())

    @property
    def average_case(self) -> np.ndarray:
        """Indices of the members and non-members."""
        return np.flatnonzero(~self.is_canary)

    @property
    def canaries(self) -> Optional[np.ndarray]:
        """Indices of the canaries, or None without canaries."""
        return np.flatnonzero(self.is_canary) if self.num_canaries else None
