"""Dynamic-regularization pruning: regularize -> hard prune -> masked retrain.

`DynamicRegularizationPruning` is the common machinery of the reweighted, ADMM and
static-regularization pruners: it plans the layers (structure and rate), adds the
method's penalty to the model's loss, runs the method's state updates on a clock
(epochs or steps), projects every layer to its rate at `prune_at`, and keeps the
pruned weights exactly zero afterwards through the `PruningMask` constraints that
`make_prunable` gives the model's kernels (`masks.py`). Subclasses only say what
the penalty is and how their state evolves.

The penalty reaches the loss through `target.add_loss(callable)`, where `target` is
`model.pruning_target` if the model given to `fit` has one, else the model itself.
So Keras' default `train_step` (which adds `model.losses`) and a custom `train_step`
that adds `tf.add_n(classifier.losses)` both minimise it, and no `compile` argument
changes. After the hard prune the penalty is switched off (a `tf.cond`, so it costs
nothing during masked retraining).

Progressive targets (`progressive_steps=S > 1`, for extreme rates, as the
progressive ADMM pruning of Ye et al., "Progressive Weight Pruning of Deep Neural
Networks using ADMM", arXiv 1810.07378, reaches 0.99+ in a few steps): the
regularization phase [0, prune_at) is cut into S equal stages; in stage s each
layer aims at the rate r_s whose kept fraction is a geometric step towards its
final one,

    1 - r_s = (1 - r)^(s / S),        s = 1..S,

and the end of every stage but the last hard-prunes to r_s (masks frozen), so the
next stage regularizes the survivors towards a higher rate. r_S = r is the final
prune at `prune_at`.

A ramped constraint (`ramp_power=p`) moves the designated rate itself gradually,
with nothing frozen before `prune_at`: at clock position t of the regularization
phase [t_0, prune_at) every layer's current rate is

    r_t = r * (1 - (1 - min(1, (t - t_0) / (f * (prune_at - t_0))))^p),

Zhu & Gupta's schedule ("To prune, or not to prune", arXiv 1710.01878; p = 3 is
tfmot's `PolynomialDecay` default) over the first share f (`ramp_fraction`) of the
phase, then held, recomputed at every clock tick. The method's
state (the reweighted keep-set, ADMM's projection) follows r_t, so the penalty acts
first on the few smallest groups and reaches the designated rate just before the
hard prune, instead of pushing every group the final rate removes towards zero from
the first step on (which then behaves like a one-shot magnitude prune followed by
fine-tuning). Unlike tfmot's ramp, the groups on their way out are penalised, not
zeroed: one whose loss gradient resists the penalty keeps its norm and re-enters
the keep-set at the next update.
"""

import abc
import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning import arguments
from mcmia_tf.pruning import callbacks as callbacks_lib
from mcmia_tf.pruning import masks as masks_lib
from mcmia_tf.pruning import registry
from mcmia_tf.pruning import structures as structures_lib

__all__ = ["DynamicRegularizationPruning", "PruningBinding", "UNITS"]

UNITS = ("epoch", "step")


def _mask_variable(plan: registry.LayerPlan) -> tf.Variable:
    """The mask variable of a planned kernel, from its `PruningMask` constraint."""
    constraint = masks_lib.pruning_mask_of(plan.weight.variable)
    if constraint is None:
        raise ValueError(
            f"Layer `{plan.weight.path}` has no `PruningMask` constraint on its kernel, so "
            "its pruned weights would not stay zero. Build the model with "
            "`model = mcmia_tf.pruning.make_prunable(model)` before `compile` (inside "
            "`strategy.scope()` when training with a tf.distribute strategy; for a "
            "MinMaxModel, on the classifier before wrapping it).")
    # A model reloaded from a file has its constraint but no mask yet.
    return constraint.build(plan.weight.variable)


class PruningBinding:
    """The state a pruner keeps for the one model it currently prunes."""

    def __init__(self, target: keras.Model, plans: List[registry.LayerPlan]):
        self.target = target
        self.plans = plans  # At the current progressive stage's rates.
        self.final_plans = plans
        self.stage = 1
        self.start: Optional[int] = None  # The clock position of the first tick.
        self.masks = [_mask_variable(p) for p in plans]
        for mask in self.masks:  # A previous pruner may have left masks behind.
            mask.assign(tf.ones_like(mask))
        # True while the penalty is part of the loss (read inside the traced step).
        self.regularizing = tf.Variable(True, trainable=False, name="regularizing")
        self.pruned = False
        self.penalty_fn = None  # Set by the pruner: zero-argument callable -> scalar.

    def loss(self):
        """The callable given to `target.add_loss`."""
        return tf.cond(self.regularizing, self.penalty_fn, lambda: tf.constant(0.0))

    def sparsities(self) -> Dict[str, float]:
        """Current fraction of exact zeros of every pruned kernel, by layer path."""
        return {p.weight.path: float(np.mean(p.weight.variable.numpy() == 0))
                for p in self.plans}

    def overall_sparsity(self) -> float:
        zeros = sum(int(np.sum(p.weight.variable.numpy() == 0)) for p in self.plans)
        return zeros / sum(p.weight.size for p in self.plans)


class DynamicRegularizationPruning(abc.ABC):
    """Base of the pruners: phases, layer plans, masks, strip.

    Args:
      target_sparsity: fraction of zero weights over all pruned kernels, in [0, 1).
      structure: a name from `structures.STRUCTURE_NAMES` ('block:1x16', '2:4'...) or
        a `structures.Structure`.
      prune_at: when to hard-prune, counted in `unit`s from the start of training
        (e.g. 6 with unit='epoch': regularize epochs 0-5, prune at the start of
        epoch 6, masked retraining for the remaining epochs of `fit`). None
        regularizes only (e.g. to let tfmot's `prune_low_magnitude` prune).
      unit: 'epoch' or 'step'. The step clock is the optimizer's `iterations`
        when `fit` starts plus the batches since, so it survives save/load.
      layer_sparsity: per-layer rates, a dict by layer path or a callable
        `layer -> rate or None`. Other layers share the rest of the budget.
      layer_structure: per-layer structures, dict by layer path or callable.
      exclude: layer paths never pruned.
      edge_layer_sparsity: the first and last pruned layers get
        min(target_sparsity, edge_layer_sparsity); None prunes them like the rest.
      progressive_steps: S >= 1 stages of rising rates before `prune_at` (module
        docstring); 1 (default) aims at the final rates from the start.
      ramp_power: None (default) aims at the final rates from the start; p > 0
        ramps the designated rates over the regularization phase as
        r (1 - (1 - progress)^p) (module docstring; 3 is the cubic ramp).
        Exclusive with `progressive_steps` > 1.
      ramp_fraction: the share of the regularization phase the ramp takes; the
        rest holds the final rates, so the groups that left the keep-set last
        have time to reach zero before the prune (an adaptive optimizer moves a
        weight by about its learning rate per step, whatever the penalty).
    """

    def __init__(self, target_sparsity: float, structure="unstructured", *,
                 prune_at: Optional[int] = None, unit: str = "epoch",
                 layer_sparsity=None, layer_structure=None, exclude: Sequence[str] = (),
                 edge_layer_sparsity: Optional[float] = 0.8, progressive_steps: int = 1,
                 ramp_power: Optional[float] = None, ramp_fraction: float = 1.0):
        self.target_sparsity = arguments.fraction(
            "target_sparsity", target_sparsity,
            " (the fraction of zero weights, e.g. 0.95 for 20x compression)")
        self.structure = structures_lib.get_structure(structure)
        if unit not in UNITS:
            raise ValueError(f"Invalid value for argument `unit`. Expected one of {UNITS}. "
                             f"Received: unit={unit!r}")
        if prune_at is not None:
            prune_at = arguments.integer("prune_at", prune_at, 0,
                                         f" (in {unit}s) or None to regularize only")
        if edge_layer_sparsity is not None and not 0 <= edge_layer_sparsity < 1:
            raise ValueError(
                "Invalid value for argument `edge_layer_sparsity`. Expected a float in "
                f"[0, 1) or None. Received: edge_layer_sparsity={edge_layer_sparsity!r}")
        progressive_steps = arguments.integer("progressive_steps", progressive_steps, 1,
                                              " (1 = no intermediate targets)")
        if progressive_steps > 1 and (prune_at is None or prune_at < progressive_steps):
            raise ValueError(
                "Invalid value for argument `progressive_steps`. Each stage needs at least one "
                f"`{unit}` before `prune_at`, so it can be at most prune_at={prune_at}. "
                f"Received: progressive_steps={progressive_steps}")
        if ramp_power is not None:
            if isinstance(ramp_power, bool) or not isinstance(
                    ramp_power, (int, float)) or not ramp_power > 0:
                raise ValueError(
                    "Invalid value for argument `ramp_power`. Expected None (final rates from "
                    "the start) or a positive exponent (3: cubic ramp). "
                    f"Received: ramp_power={ramp_power!r}")
            if prune_at is None or progressive_steps > 1:
                raise ValueError(
                    "Invalid value for argument `ramp_power`. A ramp needs `prune_at` (its "
                    "end) and excludes `progressive_steps` > 1. Received: "
                    f"ramp_power={ramp_power!r}, prune_at={prune_at!r}, "
                    f"progressive_steps={progressive_steps!r}")
        if isinstance(exclude, str):
            exclude = [exclude]
        self.prune_at = prune_at
        self.unit = unit
        self.layer_sparsity = layer_sparsity
        self.layer_structure = layer_structure
        self.exclude = tuple(exclude)
        self.edge_layer_sparsity = edge_layer_sparsity
        self.progressive_steps = progressive_steps
        self.ramp_power = None if ramp_power is None else float(ramp_power)
        if isinstance(ramp_fraction, bool) or not isinstance(
                ramp_fraction, (int, float)) or not 0 < ramp_fraction <= 1:
            raise ValueError(
                "Invalid value for argument `ramp_fraction`. Expected a float in (0, 1] (the "
                "share of the regularization phase the ramp takes). "
                f"Received: ramp_fraction={ramp_fraction!r}")
        self.ramp_fraction = float(ramp_fraction)
        self.binding: Optional[PruningBinding] = None

    # ---------------------------------------------------------------- subclass API
    @abc.abstractmethod
    def _init_state(self, binding: PruningBinding) -> None:
        """Creates the method's variables (alpha, Z, U...) for the bound model."""

    @abc.abstractmethod
    def _penalty(self, binding: PruningBinding) -> tf.Tensor:
        """The regularization term added to the loss (a scalar tensor)."""

    def _regularization_event(self, binding: PruningBinding, position: int) -> None:
        """Called at every clock tick before `prune_at` (reweighting, ADMM updates)."""

    def _stage_changed(self, binding: PruningBinding) -> None:
        """Called when progressive targets move `binding.plans` to the next rates."""

    def _metrics(self, binding: PruningBinding) -> Dict[str, float]:
        """Method-specific scalars for the epoch logs (e.g. the ADMM residual)."""
        return {}

    # ---------------------------------------------------------------- public API
    def callbacks(self, log_dir: Optional[str] = None,
                  prune_data=None) -> List[keras.callbacks.Callback]:
        """The Keras callbacks to pass to `fit` (one `PruningCallback`; see its args)."""
        return [callbacks_lib.PruningCallback(self, log_dir=log_dir, prune_data=prune_data)]

    def plan(self, model: keras.Model) -> List[registry.LayerPlan]:
        """Structure and rate of every pruned layer of `model` (validates them)."""
        return registry.plan_layers(
            model, self.target_sparsity, self.structure, layer_sparsity=self.layer_sparsity,
            layer_structure=self.layer_structure, exclude=self.exclude,
            edge_layer_sparsity=self.edge_layer_sparsity)

    def bind(self, model: keras.Model) -> bool:
        """Attaches the pruner to `model` (or its `pruning_target`).

        Returns:
          True if the model's loss or constraints changed (a traced train step
          must then be rebuilt), False if the pruner was already bound to it.
        """
        target = registry.resolve_pruning_target(model)
        if self.binding is not None and self.binding.target is target:
            return False
        if self.binding is not None:  # Leave the previous model untouched from now on.
            self.binding.regularizing.assign(False)
        final_plans = self.plan(target)
        binding = PruningBinding(target, self.stage_plans(final_plans, 1)
                                 if self.ramp_power is None else self.ramp_plans(final_plans, 0.0))
        binding.final_plans = final_plans
        self._init_state(binding)
        binding.penalty_fn = lambda: self._penalty(binding)
        target.add_loss(binding.loss)
        self.binding = binding
        return True

    def advance(self, unit: str, position: int, optimizer=None) -> None:
        """Moves the pruner's clock: regularization events, then the hard prune."""
        binding = self._require_binding()
        if unit != self.unit or binding.pruned:
            return
        if binding.start is None:
            binding.start = position
        if self.prune_at is not None and position >= self.prune_at:
            self.hard_prune(optimizer)
            return
        if self.ramp_power is not None:
            binding.plans = self.ramp_plans(binding.final_plans,
                                            self.progress(position, binding.start))
            self._regularization_event(binding, position)
            return
        stage = self.stage_at(position, binding.start)
        if stage != binding.stage:
            # The end of a stage: freeze its rates, then aim at the next ones.
            self._freeze_current_rates(binding, optimizer)
            binding.stage = stage
            binding.plans = self.stage_plans(binding.final_plans, stage)
            self._stage_changed(binding)
        else:
            self._regularization_event(binding, position)

    def stage_at(self, position: int, start: int = 0) -> int:
        """The progressive stage (1..S) of a clock position in [start, prune_at).

        `start` is where the pruner's clock started (a recipe binds it after dense
        pre-training epochs); the stages split [start, prune_at) evenly.
        """
        if self.progressive_steps == 1 or self.prune_at is None:
            return 1
        span = max(1, self.prune_at - start)
        return min(self.progressive_steps,
                   1 + (position - start) * self.progressive_steps // span)

    def stage_plans(self, plans: List[registry.LayerPlan],
                    stage: int) -> List[registry.LayerPlan]:
        """`plans` with the rates of a progressive stage: 1 - r_s = (1 - r)^(s / S)."""
        if stage >= self.progressive_steps:
            return list(plans)
        exponent = stage / self.progressive_steps
        return [dataclasses.replace(p, rate=1.0 - (1.0 - p.rate) ** exponent) for p in plans]

    def progress(self, position: int, start: int = 0) -> float:
        """The ramp's progress at `position`: 0 at `start`, 1 after `ramp_fraction` of
        the regularization phase [start, prune_at) (then held until the prune)."""
        if self.prune_at is None:
            return 1.0
        span = max(1.0, self.ramp_fraction * (self.prune_at - start))
        return min(1.0, max(0.0, (position - start) / span))

    def ramp_plans(self, plans: List[registry.LayerPlan],
                   progress: float) -> List[registry.LayerPlan]:
        """`plans` at the ramp's rates: r_t = r * (1 - (1 - progress)^p)."""
        fraction = 1.0 - (1.0 - progress) ** self.ramp_power
        return [dataclasses.replace(p, rate=p.rate * fraction) for p in plans]

    def hard_prune(self, optimizer=None) -> None:
        """Projects every layer to its rate and freezes the masks.

        Later calls re-project with the new weights (idempotent on pruned weights).
        """
        binding = self._require_binding()
        binding.plans = binding.final_plans
        binding.stage = self.progressive_steps
        self._freeze_current_rates(binding, optimizer)
        binding.regularizing.assign(False)
        binding.pruned = True

    @staticmethod
    def _freeze_current_rates(binding: PruningBinding, optimizer) -> None:
        """Projects every layer to its current plan's rate and freezes the masks."""
        values = [plan.weight.variable.numpy() for plan in binding.plans]
        for plan, mask_variable, weights, mask in zip(
                binding.plans, binding.masks, values, registry.plan_masks(binding.plans, values)):
            mask_variable.assign(mask)
            plan.weight.variable.assign(weights * mask)
            masks_lib.zero_optimizer_slots(optimizer, plan.weight.variable, mask)

    def penalty_value(self) -> float:
        """The current value of the regularization term (0 after the hard prune)."""
        return float(self._require_binding().loss())

    def metrics(self) -> Dict[str, float]:
        """Scalars for logs: overall sparsity, penalty, method-specific values."""
        binding = self._require_binding()
        values = {"sparsity": binding.overall_sparsity(), "penalty": self.penalty_value()}
        values.update(self._metrics(binding))
        return values

    def strip(self, model: keras.Model) -> keras.Model:
        """A plain tf_keras copy of the (target) model with exact zeros.

        The copy has no penalty, no mask constraint and no pruning state. If the
        model has not been hard-pruned yet, the copy is projected to the plan now.
        """
        target = registry.resolve_pruning_target(model)
        clone = masks_lib.strip_masks(target)
        if self.binding is not None and self.binding.target is target and self.binding.pruned:
            layer_masks = [m.numpy() for m in self.binding.masks]
        else:
            plans = self.plan(target)
            layer_masks = registry.plan_masks(plans, [p.weight.variable.numpy() for p in plans])
        clone_weights = registry.find_prunable_weights(clone, self.exclude)
        for weight, mask in zip(clone_weights, layer_masks):
            weight.variable.assign(weight.variable.numpy() * mask)
        return clone

    def get_config(self) -> dict:
        if callable(self.layer_sparsity) or callable(self.layer_structure):
            raise ValueError(
                "Cannot serialize a pruner whose `layer_sparsity` or `layer_structure` is a "
                "callable. Pass dicts by layer path to make it serializable.")
        return {
            "target_sparsity": self.target_sparsity,
            "structure": self.structure.get_config(),
            "prune_at": self.prune_at,
            "unit": self.unit,
            "layer_sparsity": None if self.layer_sparsity is None else dict(self.layer_sparsity),
            "layer_structure": None if self.layer_structure is None else {
                k: structures_lib.get_structure(v).get_config()
                for k, v in self.layer_structure.items()},
            "exclude": list(self.exclude),
            "edge_layer_sparsity": self.edge_layer_sparsity,
            "progressive_steps": self.progressive_steps,
            "ramp_power": self.ramp_power,
            "ramp_fraction": self.ramp_fraction,
        }

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def _require_binding(self) -> PruningBinding:
        if self.binding is None:
            raise RuntimeError(
                f"{type(self).__name__} is not attached to a model yet. Pass "
                "`pruner.callbacks()` to `model.fit` (or call `pruner.bind(model)`) first.")
        return self.binding

    def __repr__(self):
        return (f"{type(self).__name__}(target_sparsity={self.target_sparsity}, "
                f"structure={self.structure!r}, prune_at={self.prune_at}, unit={self.unit!r})")
