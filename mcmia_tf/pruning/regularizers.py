"""Reweighted dynamic regularization and static L1 / group lasso pruners.

Reweighted group regularization (Zhang et al., "A Unified DNN Weight Compression
Framework Using Reweighted Optimization Methods", arXiv 2004.05531):

    min_W  f(W) + lambda * sum_layers sum_g alpha_g * ||W_g||_2          (form 'group')
    alpha_g = 1 / (||W_g^(t)||_2 + eps),   recomputed every `reweight_every` units

or, in the squared form, lambda * sum_g alpha_g ||W_g||_2^2 with
alpha_g = 1 / (||W_g^(t)||_2^2 + eps). For unstructured and N:M sparsity the groups
are single weights (alpha_i |w_i|, reweighted L1, Candes, Wakin & Boyd 2008). Small
groups get large coefficients and are driven to zero while large groups are barely
penalised, so the penalty approximates the cardinality of the support.

Bounded by the designated constraint (the default, `bounded=True`; seed 2's
"dynamically updated regularization terms bounded by the designated constraint"):
at every reweighting each layer's groups are split by the constraint itself into a
keep-set (the groups its hard prune would keep at that layer's rate: all but the
round(rate * G) smallest norms) and the rest, and only the rest is penalised:

    alpha_g = 1 / (||W_g|| + eps)   if g is outside the keep-set,   0 inside.

The kept weights are not shrunk, the removed ones are driven to zero, and the set
follows training as weights cross the boundary. The logs carry the fraction of
groups that changed side at the last reweighting (`pruning_keep_set_change`) and
the squared-norm mass outside the keep-set (`pruning_outside_mass`, a fraction of
each layer's ||W||^2 averaged over layers): when it is ~0 at `prune_at`, the hard
prune removes (almost) nothing the network uses.

Strength: `penalty=None` (the default) calibrates lambda on the run itself: it
starts at `initial_penalty` and is multiplied by `penalty_growth` at every
reweighting while the data term still wins over the penalty somewhere, measured as
the resisting mass (`pruning_resisting_mass`): the squared-norm share of the groups
that were outside at the previous reweighting, still are, and whose norm has not
decreased since. Once every penalised group shrinks (or sits at zero), lambda stops
growing: a larger lambda would not remove them faster with an adaptive optimizer,
whose steps are bounded by its learning rate, and would only inflate the loss. This
ties lambda to what the constraint needs, not to a dataset (the logs show it as
`pruning_lambda`). A float `penalty=` fixes lambda.

Static regularization is the same penalty with alpha_g = 1: L1 (Lasso) for single
weights, group lasso (Yuan & Lin 2006; Wen et al. "SSL", NeurIPS 2016) for groups.
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning import arguments
from mcmia_tf.pruning import pruner as pruner_lib
from mcmia_tf.pruning import registry

__all__ = ["GroupNorms", "ReweightedPruning", "StaticRegularization"]

# Keeps d||W_g||/dW finite at W_g = 0 (sqrt'(0) is infinite).
_SQRT_EPSILON = 1e-12


class GroupNorms:
    """TF group norms of a kernel under a structure's penalty groups.

    Axis-aligned groups (filter, channel, column, kernel) are reduced with
    `tf.reduce_sum` over the structure's axes; other groups (blocks) with a segment
    sum over their ids. Both give the groups in `Structure.group_ids` order.
    """

    def __init__(self, plan):
        shape, depthwise = plan.weight.shape, plan.weight.depthwise
        ids = plan.structure.group_ids(shape, depthwise)
        self.shape = tuple(shape)
        self.num_groups = int(ids.max()) + 1
        self.elementwise = self.num_groups == ids.size
        self.axes = None if self.elementwise else plan.structure.reduction_axes(shape, depthwise)
        self.ids = None if self.elementwise or self.axes is not None else tf.constant(
            ids, tf.int32)

    def squared(self, w: tf.Tensor) -> tf.Tensor:
        """||W_g||^2 per group (elementwise: w^2, with w's shape)."""
        if self.elementwise:
            return tf.square(w)
        if self.axes is not None:
            return tf.reduce_sum(tf.square(w), axis=self.axes)
        return tf.math.unsorted_segment_sum(tf.square(w), self.ids, self.num_groups)

    def norms(self, w: tf.Tensor) -> tf.Tensor:
        """||W_g||_2 per group (elementwise: |w|)."""
        if self.elementwise:
            return tf.abs(w)
        return tf.sqrt(self.squared(w) + _SQRT_EPSILON)

    def alpha_shape(self) -> Sequence[int]:
        """Shape of the per-group coefficients (and of `squared(w)`)."""
        if self.elementwise:
            return self.shape
        if self.axes is not None:
            return tuple(d for axis, d in enumerate(self.shape) if axis not in self.axes)
        return (self.num_groups,)


class _GroupPenaltyPruning(pruner_lib.DynamicRegularizationPruning):
    """lambda * sum_g alpha_g * ||W_g||^p with p = 1 ('group') or 2 ('squared')."""

    def __init__(self, target_sparsity, structure="unstructured", *, penalty: float,
                 form: str = "group", **kwargs):
        super().__init__(target_sparsity, structure, **kwargs)
        self.penalty = arguments.positive("penalty", penalty)
        if form not in ("group", "squared"):
            raise ValueError("Invalid value for argument `form`. Expected 'group' "
                             f"(||W_g||) or 'squared' (||W_g||^2). Received: form={form!r}")
        self.form = form

    def _init_state(self, binding):
        binding.norms = [GroupNorms(plan) for plan in binding.plans]
        binding.alphas = [
            tf.Variable(tf.ones(n.alpha_shape()), trainable=False,
                        name=f"alpha/{p.weight.path}")
            for p, n in zip(binding.plans, binding.norms)]
        # A variable, so that a calibrated lambda changes without retracing the step.
        binding.strength = tf.Variable(self.penalty, trainable=False, name="lambda")

    def _penalty(self, binding):
        terms = []
        for plan, norms, alpha in zip(binding.plans, binding.norms, binding.alphas):
            w = plan.weight.variable
            value = norms.squared(w) if self.form == "squared" else norms.norms(w)
            terms.append(tf.reduce_sum(alpha * tf.cast(value, alpha.dtype)))
        return binding.strength * tf.add_n(terms)

    def get_config(self):
        config = super().get_config()
        config.update({"penalty": self.penalty, "form": self.form})
        return config


@keras.utils.register_keras_serializable(package="mcmia_tf")
class ReweightedPruning(_GroupPenaltyPruning):
    """Reweighted dynamic regularization, then hard prune, then masked retraining.

    ```python
    pruner = ReweightedPruning(target_sparsity=0.95, structure="filter", penalty=1e-5,
                               prune_at=6)            # 6 epochs regularized, then pruned
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    model.fit(x, y, epochs=10, callbacks=pruner.callbacks())
    pruned = pruner.strip(model)
    ```

    The penalty enters the loss through `target.add_loss` (target = the model, or
    `model.pruning_target`), so both the default and a custom `train_step` that adds
    `tf.add_n(classifier.losses)` minimise it; nothing changes in `compile`.

    Args:
      target_sparsity, structure, prune_at, unit: see `DynamicRegularizationPruning`.
      layer_sparsity, layer_structure, exclude, edge_layer_sparsity: see
        `DynamicRegularizationPruning`.
      penalty: the coefficient lambda; None calibrates it (module docstring).
      form: 'group' (alpha_g ||W_g||, alpha_g = 1/(||W_g|| + eps)) or 'squared'
        (alpha_g ||W_g||^2, alpha_g = 1/(||W_g||^2 + eps)).
      epsilon: eps of the reweighting (1e-3 in the reweighted-L1 literature).
      reweight_every: recompute alpha every this many `unit`s before `prune_at`.
      reweight_at: explicit positions (in `unit`s) at which to recompute alpha,
        instead of `reweight_every` (e.g. epochs [0, 10, 20, 30, 40] of 50).
      bounded: penalise only the groups outside the constraint's keep-set (default);
        False penalises every group (Zhang et al.'s unbounded form).
      initial_penalty, penalty_growth, target_outside_mass: the calibration of
        lambda when `penalty` is None.
    """

    def __init__(self, target_sparsity: float, structure="unstructured", *,
                 penalty: Optional[float] = None, form: str = "group",
                 epsilon: float = 1e-3, reweight_every: int = 1,
                 reweight_at: Optional[Sequence[int]] = None, bounded: bool = True,
                 initial_penalty: float = 1e-5, penalty_growth: float = 4.0,
                 target_outside_mass: float = 1e-3, **kwargs):
        self.calibrated = penalty is None
        self.initial_penalty = arguments.positive("initial_penalty", initial_penalty)
        super().__init__(target_sparsity, structure,
                         penalty=self.initial_penalty if penalty is None else penalty,
                         form=form, **kwargs)
        if penalty_growth < 1:
            raise ValueError("Invalid value for argument `penalty_growth`. Expected a factor "
                             f">= 1. Received: penalty_growth={penalty_growth!r}")
        if not 0 < target_outside_mass < 1:
            raise ValueError("Invalid value for argument `target_outside_mass`. Expected a "
                             f"float in (0, 1). Received: target_outside_mass="
                             f"{target_outside_mass!r}")
        self.bounded = bool(bounded)
        self.penalty_growth = float(penalty_growth)
        self.target_outside_mass = float(target_outside_mass)
        self.epsilon = arguments.positive("epsilon", epsilon)
        self.reweight_every = arguments.integer("reweight_every", reweight_every, 1)
        self.reweight_at = None if reweight_at is None else sorted(int(p) for p in reweight_at)
        self.reweight_count = 0

    @classmethod
    def ramped(cls, target_sparsity: float, structure="unstructured", *, prune_at_epoch: int,
               steps_per_epoch: int, updates_per_epoch: int = 4, ramp_power: float = 3.0,
               **kwargs) -> "ReweightedPruning":
        """The bounded form with a ramped constraint, its keep-set moved several times an epoch.

        The designated rate ramps from 0 to `target_sparsity` over the epochs before
        `prune_at_epoch` (`ramp_power`, module docstring of `pruner`), and alpha, the
        keep-sets and the calibration of lambda are updated `updates_per_epoch` times
        an epoch on the step clock. Frequent updates matter: with one per epoch the
        calibration has too few steps to push the last groups out before the prune.

        ```python
        pruner = ReweightedPruning.ramped(0.98, prune_at_epoch=6,
                                          steps_per_epoch=len(x) // 128 + 1)
        model.fit(x, y, batch_size=128, epochs=10, callbacks=pruner.callbacks())
        ```

        Args:
          target_sparsity, structure: see `ReweightedPruning`.
          prune_at_epoch: epoch of the hard prune, counted from the start of training
            (the step clock starts at the optimizer's `iterations`).
          steps_per_epoch: batches per epoch of the `fit` that prunes.
          updates_per_epoch: keep-set / alpha / lambda updates per epoch.
          ramp_power: exponent of the ramp (3: Zhu & Gupta's cubic ramp).
          **kwargs: other `ReweightedPruning` arguments (penalty, layer_sparsity...).
        """
        prune_at_epoch = arguments.integer("prune_at_epoch", prune_at_epoch, 0)
        steps_per_epoch = arguments.integer("steps_per_epoch", steps_per_epoch, 1)
        updates_per_epoch = arguments.integer("updates_per_epoch", updates_per_epoch, 1)
        return cls(target_sparsity, structure, unit="step",
                   prune_at=prune_at_epoch * steps_per_epoch,
                   reweight_every=max(1, steps_per_epoch // updates_per_epoch),
                   ramp_power=ramp_power, **kwargs)

    def alphas(self, weights: tf.Tensor, norms: GroupNorms,
               outside: Optional[tf.Tensor] = None) -> tf.Tensor:
        """alpha_g = 1 / (||W_g|| + eps) (or 1 / (||W_g||^2 + eps) in squared form),
        times the 0/1 indicator of the groups outside the keep-set when given."""
        value = norms.squared(weights) if self.form == "squared" else norms.norms(weights)
        alpha = 1.0 / (value + self.epsilon)
        return alpha if outside is None else alpha * tf.cast(outside, alpha.dtype)

    @staticmethod
    def outside_groups(norms: GroupNorms, mask: np.ndarray) -> tf.Tensor:
        """1 for the groups the constraint's hard prune (0/1 `mask`) would remove, else 0."""
        # A group is outside when any of its weights would be zeroed.
        return tf.cast(norms.squared(tf.constant(1.0 - mask, tf.float32)) > 0, tf.float32)

    def _update(self, binding) -> None:
        """Recomputes the keep-sets (bounded form), alpha and the logged quantities."""
        masses, resistings, changes = [], [], []
        values = [plan.weight.variable.numpy() for plan in binding.plans]
        # The hard prune's masks now: coupled layers (residual groups) decide jointly.
        masks = registry.plan_masks(binding.plans, values)
        for index, (norms, alpha, weights, mask) in enumerate(
                zip(binding.norms, binding.alphas, values, masks)):
            outside = self.outside_groups(norms, mask)
            previous = binding.outside[index]
            if previous is not None:
                changes.append(float(np.mean(previous.numpy() != outside.numpy())))
            binding.outside[index] = outside
            squared = norms.squared(tf.constant(weights))
            total = tf.reduce_sum(squared) + 1e-30
            masses.append(float(tf.reduce_sum(squared * outside) / total))
            # The groups the penalty has acted on for a whole interval (outside at the
            # last update and still outside) whose norm has not decreased: there the
            # data term wins over the penalty.
            if previous is None:
                resisting = outside
            else:
                grew = tf.cast(squared >= binding.previous_squared[index], tf.float32)
                resisting = outside * previous * grew
            binding.previous_squared[index] = squared
            resistings.append(float(tf.reduce_sum(squared * resisting) / total))
            alpha.assign(tf.cast(self.alphas(tf.constant(weights), norms,
                                             outside if self.bounded else None), alpha.dtype))
        binding.outside_mass = float(np.mean(masses))
        binding.resisting_mass = float(np.mean(resistings))
        binding.keep_set_change = float(np.mean(changes)) if changes else 0.0

    def reweight(self) -> None:
        """Recomputes every alpha from the current weights (and the keep-sets)."""
        binding = self._require_binding()
        self._update(binding)
        if self.calibrated and binding.resisting_mass > self.target_outside_mass:
            # The data term still holds up groups the penalty acts on: push harder.
            binding.strength.assign(binding.strength * self.penalty_growth)
        self.reweight_count += 1

    def _init_state(self, binding):
        super()._init_state(binding)
        binding.outside = [None] * len(binding.plans)
        binding.previous_squared = [None] * len(binding.plans)
        self._update(binding)

    def _stage_changed(self, binding):
        # A reweighting at the new stage's rates (keep-sets, alpha and the calibration
        # of lambda, which keeps growing while the new outside set is not yet empty).
        self.reweight()

    def _metrics(self, binding):
        return {"outside_mass": binding.outside_mass,
                "resisting_mass": binding.resisting_mass,
                "keep_set_change": binding.keep_set_change,
                "lambda": float(binding.strength.numpy())}

    def _regularization_event(self, binding, position):
        due = (position in self.reweight_at if self.reweight_at is not None
               else position % self.reweight_every == 0)
        if due and position > 0:  # Position 0: alphas were just set from these weights.
            self.reweight()

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "reweight_every": self.reweight_every,
                       "reweight_at": self.reweight_at, "bounded": self.bounded,
                       "penalty": None if self.calibrated else self.penalty,
                       "initial_penalty": self.initial_penalty,
                       "penalty_growth": self.penalty_growth,
                       "target_outside_mass": self.target_outside_mass})
        return config


@keras.utils.register_keras_serializable(package="mcmia_tf")
class StaticRegularization(_GroupPenaltyPruning):
    """L1 / group lasso with a fixed coefficient, then hard prune + masked retraining.

        penalty = lambda * sum_g ||W_g||_2     (L1 when groups are single weights)

    The static baseline of the reweighted method: every group is penalised alike,
    so large weights shrink as much as small ones. Arguments as `ReweightedPruning`
    without the reweighting ones.
    """

    def __init__(self, target_sparsity: float, structure="unstructured", *,
                 penalty: float = 1e-5, form: str = "group", **kwargs):
        super().__init__(target_sparsity, structure, penalty=penalty, form=form, **kwargs)
