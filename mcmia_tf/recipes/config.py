"""Frozen, JSON-serializable configurations of the training recipes (`Recipe`'s input).

One `RecipeConfig` names a method and carries the sections it reads:

| method                 | sections                    |
|------------------------|-----------------------------|
| `baseline`             | training                    |
| `dp`                   | training, dp                |
| `minmax`               | training, minmax            |
| `mcmia_pruning`        | training, pruning           |
| `mcmia_pruning_minmax` | training, pruning, minmax   |
| `tfmot_magnitude`      | training, pruning           |

`training.epochs` is every method's total budget. Pruning methods split it into
`pretrain` (dense) + `pruning.regularization_epochs` (penalty on, or tfmot's
sparsity ramp) + `pruning.retrain_epochs` (masked retraining at the target).

`TrainingConfig`'s optimizer settings (`optimizer`, `momentum`, `lr_schedule`,
`weight_decay`) drive every method but `dp`, which keeps `DPConfig`'s optimizer;
`augmentation` applies to every method's training batches, DP's included.
Fields added after the first release (those of `TrainingConfig.ADDED_FIELDS`)
are written by `to_dict` only when they differ from their defaults, so the
descriptions of earlier recipes, and the audit caches and study folders keyed
on them, stay valid.
"""

import dataclasses
import math
from typing import Mapping, Optional

import numpy as np

from mcmia_tf.data.augmentation import AUGMENTATIONS
from mcmia_tf.privacy.dp import DP_OPTIMIZERS
from mcmia_tf.privacy.dp import SAMPLING_MODES
from mcmia_tf.privacy.minmax import PRIVACY_GAINS

__all__ = ["DPConfig", "LR_SCHEDULES", "METHODS", "MinMaxConfig", "OPTIMIZERS",
           "PruningConfig", "RecipeConfig", "SOLVERS", "TrainingConfig",
           "without_default_fields"]

METHODS = ("baseline", "dp", "minmax", "mcmia_pruning", "mcmia_pruning_minmax",
           "tfmot_magnitude")
SOLVERS = ("reweighted", "admm")
OPTIMIZERS = ("adam", "sgd")
LR_SCHEDULES = ("constant", "cosine")
_ACTIVATIONS = ("relu", "tanh")
_SECTIONS = {
    "baseline": (),
    "dp": ("dp",),
    "minmax": ("minmax",),
    "mcmia_pruning": ("pruning",),
    "mcmia_pruning_minmax": ("pruning", "minmax"),
    "tfmot_magnitude": ("pruning",),
}


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def _is_number(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float, np.integer,
                                                               np.floating))
            and math.isfinite(value))


def _fail(argument: str, expected: str, value) -> None:
    raise ValueError(f"Invalid value for argument `{argument}`. Expected {expected}. "
                     f"Received: {argument}={value!r}")


def _check_int(value, argument: str, minimum: int) -> None:
    if not _is_int(value) or value < minimum:
        _fail(argument, f"an integer >= {minimum}", value)


def _check_positive(value, argument: str) -> None:
    if not _is_number(value) or value <= 0:
        _fail(argument, "a finite number > 0", value)


def without_default_fields(config, values: dict, names) -> dict:
    """`values` (`config`'s fields as a dict) without the `names` still at their defaults.

    For fields added to a config after its first release: left out at their
    defaults, the JSON of earlier configs (and the caches and folders keyed on
    it) stays the same. A field's default is its `default`, or its
    `default_factory()`.
    """
    for field in dataclasses.fields(config):
        default = (field.default_factory() if field.default is dataclasses.MISSING
                   else field.default)
        if field.name in names and values[field.name] == default:
            del values[field.name]
    return values

@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The classifier and its optimization (shared by every method).

    The defaults are the package's original recipe: Adam at a constant learning
    rate, no weight decay, no augmentation. The CIFAR presets use the published
    recipe of kuangliu/pytorch-cifar (SGD momentum 0.9, learning rate 0.1 with
    cosine decay, weight decay 5e-4, random crop + flip).

    Attributes:
      model: a `mcmia_tf.models.build_model` name.
      width: width multiplier of the architecture.
      epochs: total epochs of the recipe.
      batch_size: examples per step.
      learning_rate: the classifier's (initial) learning rate.
      model_kwargs: extra builder arguments.
      optimizer: "adam" or "sgd" (not for `dp`, see `DPConfig.optimizer`).
      momentum: SGD momentum in [0, 1) (ignored by Adam).
      lr_schedule: "constant", or "cosine": `lr_t = lr / 2 * (1 + cos(pi t / T))`
        at optimizer step t of the T steps of the whole `epochs` budget (every
        phase of a pruning method continues the same curve): SGDR without
        restarts (Loshchilov & Hutter, ICLR 2017), updated every step where
        kuangliu's `CosineAnnealingLR(T_max=epochs)` updates every epoch.
      weight_decay: coupled L2 weight decay on the kernels: the loss gains
        `weight_decay / 2 * sum ||W||^2` over every trainable weight of rank >= 2
        (Dense, Conv2D, DepthwiseConv2D kernels; not biases or normalization
        parameters), so each gradient gains `weight_decay * W`, PyTorch SGD's
        `weight_decay` on those tensors (with momentum, the decay goes through the
        momentum buffer as in PyTorch, unlike AdamW's decoupled decay,
        Loshchilov & Hutter, ICLR 2019). 0 disables it.
      augmentation: training-time augmentation, one of
        `mcmia_tf.data.AUGMENTATIONS`: "none" or "crop_flip" (random crop with
        4-pixel zero padding + random horizontal flip, per example, seeded from
        the fit seed; never applied to evaluation or audit queries).
      recompute_batch_norm: after training, replace every BatchNormalization's
        moving averages with the statistics of the final weights on the training
        examples (`mcmia_tf.models.recompute_batch_norm`, PreciseBN). Short runs
        and pruning move the weights faster than the averages follow (momentum
        0.99); on ResNet18 / MobileNetV2 at 5,000-10,000 examples the
        inference-mode accuracy of a pruned model is then tens of points under
        its training-mode accuracy. No effect on models without BatchNormalization
        (LeNet-5, the MLP) and never applied to `dp` (it would read the private
        data outside the accountant; the zoo's DP models use group norm).
    """
    model: str = "lenet5"
    width: float = 1.0
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    model_kwargs: Mapping[str, object] = dataclasses.field(default_factory=dict)
    optimizer: str = "adam"
    momentum: float = 0.0
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    augmentation: str = "none"
    recompute_batch_norm: bool = False

    # Omitted from `to_dict` at their defaults (see the module docstring).
    ADDED_FIELDS = ("optimizer", "momentum", "lr_schedule", "weight_decay", "augmentation",
                    "recompute_batch_norm")

    def __post_init__(self):
        _check_positive(self.width, "width")
        _check_int(self.epochs, "epochs", 1)
        _check_int(self.batch_size, "batch_size", 1)
        _check_positive(self.learning_rate, "learning_rate")
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        if self.optimizer not in OPTIMIZERS:
            _fail("optimizer", f"one of {OPTIMIZERS}", self.optimizer)
        if not _is_number(self.momentum) or not 0 <= self.momentum < 1:
            _fail("momentum", "a float in [0, 1)", self.momentum)
        if self.momentum and self.optimizer != "sgd":
            _fail("momentum", f"0 with optimizer={self.optimizer!r} (momentum is SGD's; "
                  "set optimizer='sgd')", self.momentum)
        if self.lr_schedule not in LR_SCHEDULES:
            _fail("lr_schedule", f"one of {LR_SCHEDULES}", self.lr_schedule)
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            _fail("weight_decay", "a finite float >= 0, e.g. 5e-4", self.weight_decay)
        if self.augmentation not in AUGMENTATIONS:
            _fail("augmentation", f"one of {AUGMENTATIONS}", self.augmentation)
        if not isinstance(self.recompute_batch_norm, bool):
            _fail("recompute_batch_norm", "a bool", self.recompute_batch_norm)

    def to_dict(self) -> dict:
        """JSON-ready fields; `ADDED_FIELDS` only where they differ from the defaults."""
        return without_default_fields(self, dataclasses.asdict(self), self.ADDED_FIELDS)


@dataclasses.dataclass(frozen=True)
class DPConfig:
    """DP-SGD: per-example clipping (`DPSGDModel`) or tensorflow-privacy's microbatches.

    Attributes:
      l2_norm_clip: C.
      noise_multiplier: sigma; ignored when `target_epsilon` is set.
      target_epsilon: if set, sigma is the smallest value reaching this epsilon
        (Poisson-sampling RDP accounting) for the recipe's n, batch and epochs.
      num_microbatches: None (default) = true per-example clipping with fast
        (ghost) gradient norms (`DPSGDModel`); an integer = tensorflow-privacy's
        vectorized optimizer clipping that many microbatches per batch (each
        microbatch of more than one example halves the effective sigma in the
        accounting, and clipping a mean gradient loses signal).
      sampling: how batches are drawn: "poisson" (each example in each step with
        probability B / n, what the accountant assumes; per-example clipping only)
        or "shuffled" (fixed-size batches of a shuffled epoch).
      delta: the delta of the (epsilon, delta) statement.
      optimizer: one of `DP_OPTIMIZERS`.
      momentum: SGD momentum (Tramer & Boneh, ICLR 2021, use 0.9).
      learning_rate: overrides the training section's learning rate.
      batch_size: overrides the training section's batch size (DP-SGD prefers
        large batches: the noise on the mean shrinks as sigma C / B).
      activation: the model builder's `activation` for DP only (e.g. "tanh",
        which DP-SGD prefers); None keeps the training section's model.
    """
    l2_norm_clip: float = 1.0
    noise_multiplier: float = 1.1
    target_epsilon: Optional[float] = None
    num_microbatches: Optional[int] = None
    sampling: str = "poisson"
    delta: float = 1e-5
    optimizer: str = "adam"
    momentum: float = 0.0
    learning_rate: Optional[float] = None
    batch_size: Optional[int] = None
    activation: Optional[str] = None

    def __post_init__(self):
        _check_positive(self.l2_norm_clip, "l2_norm_clip")
        if self.activation is not None and self.activation not in _ACTIVATIONS:
            _fail("activation", f"None or one of {_ACTIVATIONS}", self.activation)
        if not _is_number(self.noise_multiplier) or self.noise_multiplier < 0:
            _fail("noise_multiplier", "a finite number >= 0", self.noise_multiplier)
        if self.target_epsilon is not None:
            _check_positive(self.target_epsilon, "target_epsilon")
        if self.num_microbatches is not None:
            _check_int(self.num_microbatches, "num_microbatches", 1)
        if self.sampling not in SAMPLING_MODES:
            _fail("sampling", f"one of {SAMPLING_MODES}", self.sampling)
        if self.num_microbatches is not None and self.sampling == "poisson":
            _fail("sampling", "'shuffled' with num_microbatches (microbatches reshape fixed-size "
                  "batches; Poisson batches vary in size): set num_microbatches=None for "
                  "per-example clipping, or sampling='shuffled'", self.sampling)
        if not _is_number(self.delta) or not 0 < self.delta < 1:
            _fail("delta", "a float in (0, 1)", self.delta)
        if self.optimizer not in DP_OPTIMIZERS:
            _fail("optimizer", f"one of {DP_OPTIMIZERS}", self.optimizer)
        if not _is_number(self.momentum) or not 0 <= self.momentum < 1:
            _fail("momentum", "a float in [0, 1)", self.momentum)
        if self.learning_rate is not None:
            _check_positive(self.learning_rate, "learning_rate")
        if self.batch_size is not None:
            _check_int(self.batch_size, "batch_size", 1)


@dataclasses.dataclass(frozen=True)
class MinMaxConfig:
    """The Nasr et al. min-max game (see `MinMaxModel`).

    The defaults (Nasr et al.'s "log" gain, lambda = 3, one attack step per
    classifier step) are the setting measured on Fashion-MNIST LeNet-5
    (README, "Defences"; see `MinMaxModel`).

    Attributes:
      privacy_weight: lambda >= 0.
      attack_steps: k >= 1.
      privacy_gain: "log" or "linear".
      attack_learning_rate: Adam learning rate of the attack head.
      reference_batch_size: reference examples per attack step; None = the
        training batch size.
      prediction_transform: the head's view of the logits (see
        `attack_head.PREDICTION_TRANSFORMS`).
    """
    privacy_weight: float = 3.0
    attack_steps: int = 1
    privacy_gain: str = "log"
    attack_learning_rate: float = 1e-3
    reference_batch_size: Optional[int] = None
    prediction_transform: str = "logit_scaled"

    def __post_init__(self):
        if not _is_number(self.privacy_weight) or self.privacy_weight < 0:
            _fail("privacy_weight", "a finite float >= 0", self.privacy_weight)
        _check_int(self.attack_steps, "attack_steps", 1)
        if self.privacy_gain not in PRIVACY_GAINS:
            _fail("privacy_gain", f"one of {PRIVACY_GAINS}", self.privacy_gain)
        _check_positive(self.attack_learning_rate, "attack_learning_rate")
        if self.reference_batch_size is not None:
            _check_int(self.reference_batch_size, "reference_batch_size", 1)


@dataclasses.dataclass(frozen=True)
class PruningConfig:
    """Dynamic-regularization pruning (and tfmot magnitude pruning) settings.

    Attributes:
      target_sparsity: fraction of zero weights over the pruned kernels.
      structure: a `mcmia_tf.pruning.STRUCTURE_NAMES` entry (tfmot_magnitude:
        "unstructured" only).
      solver: "reweighted" (Zhang et al.) or "admm" (the MCMIA paper's solver).
      penalty: reweighted penalty coefficient; None (default) lets the bounded
        reweighted form calibrate it on the run (`ReweightedPruning`).
      rho: ADMM penalty parameter.
      regularization_epochs: epochs with the penalty (tfmot: the ramp).
      retrain_epochs: masked-retraining epochs at the target sparsity.
      layer_sparsity: per-layer rates by layer path; others share the rest.
      edge_layer_sparsity: cap of the first and last pruned layers' rates;
        None prunes them like the rest.
      progressive_steps: stages of rising rates within the regularization epochs
        (`DynamicRegularizationPruning`); 1 aims at the target from the start.
        Needs `ramp_power=None`.
      ramp_power: the reweighted solver's designated rate ramps from 0 to the
        target over the regularization epochs with this exponent, its keep-set
        updated `updates_per_epoch` times an epoch (`ReweightedPruning.ramped`);
        None aims at the target from the start, one update an epoch. ADMM ignores it.
      updates_per_epoch: keep-set updates per epoch of the ramped reweighted form.
    """
    target_sparsity: float = 0.95
    structure: str = "unstructured"
    solver: str = "reweighted"
    penalty: Optional[float] = None
    rho: float = 1e-3
    regularization_epochs: int = 10
    retrain_epochs: int = 10
    layer_sparsity: Optional[Mapping[str, float]] = None
    edge_layer_sparsity: Optional[float] = 0.8
    progressive_steps: int = 1
    ramp_power: Optional[float] = 3.0
    updates_per_epoch: int = 4

    def __post_init__(self):
        if not _is_number(self.target_sparsity) or not 0 <= self.target_sparsity < 1:
            _fail("target_sparsity", "a float in [0, 1), e.g. 0.95 for 20x compression",
                  self.target_sparsity)
        if self.solver not in SOLVERS:
            _fail("solver", f"one of {SOLVERS}", self.solver)
        if self.penalty is not None:
            _check_positive(self.penalty, "penalty")
        _check_positive(self.rho, "rho")
        _check_int(self.regularization_epochs, "regularization_epochs", 0)
        _check_int(self.retrain_epochs, "retrain_epochs", 0)
        _check_int(self.progressive_steps, "progressive_steps", 1)
        if self.progressive_steps > max(1, self.regularization_epochs):
            _fail("progressive_steps", "at most regularization_epochs (one epoch per stage) "
                  f"= {self.regularization_epochs}", self.progressive_steps)
        if self.ramp_power is not None:
            _check_positive(self.ramp_power, "ramp_power")
            if self.progressive_steps > 1:
                _fail("ramp_power", "None with progressive_steps > 1 (stages and a ramp are "
                      "two ways to raise the rate)", self.ramp_power)
        _check_int(self.updates_per_epoch, "updates_per_epoch", 1)
        if self.layer_sparsity is not None:
            object.__setattr__(self, "layer_sparsity", {
                str(k): float(v) for k, v in dict(self.layer_sparsity).items()})
        if self.edge_layer_sparsity is not None and not 0 <= self.edge_layer_sparsity < 1:
            _fail("edge_layer_sparsity", "a float in [0, 1) or None", self.edge_layer_sparsity)


@dataclasses.dataclass(frozen=True)
class RecipeConfig:
    """A method and the settings it reads (sections of other methods are ignored).

    Attributes:
      method: one of `METHODS`.
      training, dp, minmax, pruning: the sections (see the module docstring).
    """
    method: str
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    dp: DPConfig = dataclasses.field(default_factory=DPConfig)
    minmax: MinMaxConfig = dataclasses.field(default_factory=MinMaxConfig)
    pruning: PruningConfig = dataclasses.field(default_factory=PruningConfig)

    def __post_init__(self):
        if self.method not in METHODS:
            _fail("method", f"one of {METHODS}", self.method)
        if self.uses("pruning"):
            pretrain = (self.training.epochs - self.pruning.regularization_epochs
                        - self.pruning.retrain_epochs)
            if pretrain < 0:
                raise ValueError(
                    f"Invalid pruning budget: regularization_epochs="
                    f"{self.pruning.regularization_epochs} + retrain_epochs="
                    f"{self.pruning.retrain_epochs} exceed epochs={self.training.epochs}. "
                    "Raise `epochs` (the total budget) or lower the pruning phases.")
        if self.method == "tfmot_magnitude" and self.pruning.structure != "unstructured":
            _fail("structure", "'unstructured' for tfmot_magnitude (tfmot's magnitude "
                  "pruning is element-wise)", self.pruning.structure)
        dp_batch_size = self.dp.batch_size or self.training.batch_size
        if self.method == "dp" and self.dp.num_microbatches is not None and \
                dp_batch_size % self.dp.num_microbatches:
            raise ValueError(
                f"Invalid value for argument `num_microbatches`. Expected a divisor of "
                f"batch_size={dp_batch_size}. Received: "
                f"num_microbatches={self.dp.num_microbatches}")

    def uses(self, section: str) -> bool:
        """Whether `method` reads `section` ("training" always)."""
        return section == "training" or section in _SECTIONS[self.method]

    @property
    def pretrain_epochs(self) -> int:
        """Dense epochs before pruning starts (pruning methods), else all epochs."""
        if not self.uses("pruning"):
            return self.training.epochs
        return (self.training.epochs - self.pruning.regularization_epochs
                - self.pruning.retrain_epochs)

    def to_dict(self) -> dict:
        """JSON-ready dict with the method and the sections it reads."""
        config = {"method": self.method}
        config["training"] = self.training.to_dict()
        for section in _SECTIONS[self.method]:
            config[section] = dataclasses.asdict(getattr(self, section))
        return config

    @classmethod
    def from_dict(cls, config: Mapping) -> "RecipeConfig":
        sections = {"training": TrainingConfig, "dp": DPConfig, "minmax": MinMaxConfig,
                    "pruning": PruningConfig}
        return cls(method=config["method"], **{
            name: section(**config[name]) for name, section in sections.items()
            if name in config})
