"""`AuditConfig`: which attacks an audit runs, how, and how its numbers are qualified."""

import dataclasses
from typing import Optional, Sequence

from mcmia_tf.audit import shadow as shadow_lib
from mcmia_tf.audit import threshold

__all__ = ["ATTACK_NAMES", "AuditConfig", "REFERENCE_ATTACKS"]

# Attacks that need the LiRA / RMIA reference models (trained on halves of the candidates).
REFERENCE_ATTACKS = ("lira_online", "lira_offline", "rmia_online", "rmia_offline")
ATTACK_NAMES = threshold.METRIC_NAMES + ("shadow",) + REFERENCE_ATTACKS


def _fail(argument: str, expected: str, value) -> None:
    raise ValueError(f"Invalid value for argument `{argument}`. Expected {expected}. "
                     f"Received: {argument}={value!r}")


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """Which attacks to run and how.

    Attributes:
      attacks: subset of `ATTACK_NAMES`.
      num_reference_models: K reference models shared by LiRA and RMIA (LiRA: 16+
        recommended; RMIA gets most of its power from 1-4, Zarifzadeh et al. 2024).
      num_shadow_models: N shadow models for the Shokri attack and threshold
        calibration; 0 disables both (metric attacks are then reported as ROCs only).
      class_conditional: also report class-conditional threshold attacks (needs
        shadow models).
      fixed_variance: LiRA with one pooled variance (recommended below 64 models).
      flip: add horizontally flipped LiRA / RMIA queries (images only).
      shift_pixels: add 4 shifted LiRA / RMIA queries by this many pixels (images only).
      shadow_classifier: one of `shadow.ATTACK_CLASSIFIERS`.
      rmia_temperature: softmax temperature of RMIA's `p(x|theta)` (paper: 2).
      rmia_gamma: RMIA's threshold on the pairwise likelihood ratio (paper: 1 to 2).
      rmia_offline_a: the offline linear correction `a`; None tunes it on the
        reference models alone (`rmia.tune_offline_a`), never on the target.
      rmia_population_size: population points z for RMIA, drawn from the shadow pool.
      num_bootstrap: bootstrap replicates of the 95% intervals of every metric
        (resampling candidates; 0 disables them).
      num_permutations: label permutations of the noise floor of the strongest
        attack's TPR (0 disables it).
      save_models: keep reference / shadow models on disk, not only their outputs.
      batch_size: prediction batch size.
      seed: seed of the inclusion masks, model seeds, classifiers, the selection
        half, the bootstrap and the permutations.
    """

    attacks: Sequence[str] = ATTACK_NAMES
    num_reference_models: int = 16
    num_shadow_models: int = 4
    class_conditional: bool = True
    fixed_variance: bool = True
    flip: bool = False
    shift_pixels: int = 0
    shadow_classifier: str = "mlp"
    rmia_temperature: float = 2.0
    rmia_gamma: float = 1.0
    rmia_offline_a: Optional[float] = None
    rmia_population_size: int = 5000
    num_bootstrap: int = 200
    num_permutations: int = 200
    save_models: bool = True
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "attacks", tuple(self.attacks))
        unknown = [a for a in self.attacks if a not in ATTACK_NAMES]
        if unknown or not self.attacks:
            _fail("attacks", f"a non-empty subset of {ATTACK_NAMES}", self.attacks)
        if any(a.startswith("lira") for a in self.attacks) and self.num_reference_models < 2:
            raise ValueError("Invalid value for argument `num_reference_models`. LiRA needs at "
                             "least 2 reference models (16 or more for a meaningful low-FPR "
                             f"TPR). Received: num_reference_models={self.num_reference_models}")
        if "lira_offline" in self.attacks and self.num_reference_models < 4:
            # Each candidate is OUT for floor(K / 2) models; offline LiRA needs 2 of them.
            raise ValueError("Invalid value for argument `num_reference_models`. Offline LiRA "
                             "needs at least 4 reference models (2 OUT models per candidate). "
                             f"Received: num_reference_models={self.num_reference_models}")
        if self.uses_rmia and self.num_reference_models < 1:
            raise ValueError("Invalid value for argument `num_reference_models`. RMIA needs at "
                             "least 1 reference model (2 for the offline variant); received "
                             f"num_reference_models={self.num_reference_models}. Train "
                             "reference models, or remove rmia_* from `attacks`.")
        if "rmia_offline" in self.attacks and self.num_reference_models < 2:
            raise ValueError("Invalid value for argument `num_reference_models`. Offline RMIA "
                             "needs at least 2 reference models (1 OUT model per candidate). "
                             f"Received: num_reference_models={self.num_reference_models}")
        if "shadow" in self.attacks and self.num_shadow_models < 1:
            raise ValueError("Invalid value for argument `num_shadow_models`. The shadow attack "
                             "needs at least 1 shadow model. Received: "
                             f"num_shadow_models={self.num_shadow_models}")
        if self.shadow_classifier not in shadow_lib.ATTACK_CLASSIFIERS:
            _fail("shadow_classifier", f"one of {shadow_lib.ATTACK_CLASSIFIERS}",
                  self.shadow_classifier)
        for name in ("rmia_temperature", "rmia_gamma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                _fail(name, "a float > 0", value)
        if self.rmia_offline_a is not None and not 0 <= self.rmia_offline_a <= 1:
            _fail("rmia_offline_a", "None (tuned on the reference models) or a float in [0, 1]",
                  self.rmia_offline_a)
        for name, minimum in (("rmia_population_size", 1), ("num_bootstrap", 0),
                              ("num_permutations", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                _fail(name, f"an integer >= {minimum}", value)

    @property
    def uses_lira(self) -> bool:
        return any(a.startswith("lira") for a in self.attacks)

    @property
    def uses_rmia(self) -> bool:
        return any(a.startswith("rmia") for a in self.attacks)

    @property
    def uses_reference_models(self) -> bool:
        return self.uses_lira or self.uses_rmia

    @property
    def metric_attacks(self) -> Sequence[str]:
        return [a for a in self.attacks if a in threshold.METRIC_NAMES]

    @property
    def uses_shadow_models(self) -> bool:
        return "shadow" in self.attacks or (self.num_shadow_models > 0 and
                                            bool(self.metric_attacks))
