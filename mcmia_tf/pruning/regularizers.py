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

Static regularization is the same penalty with alpha_g = 1: L1 (Lasso) for single
weights, group lasso (Yuan & Lin 2006; Wen et al. "SSL", NeurIPS 2016) for groups.
"""

from typing import Optional, Sequence

import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning import pruner as pruner_lib

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


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError(f"Invalid value for argument `{name}`. Expected a positive float. "
                         f"Received: {name}={value!r}")
    return float(value)


class _GroupPenaltyPruning(pruner_lib.DynamicRegularizationPruning):
    """sum_g alpha_g * ||W_g||^p with p = 1 ('group') or 2 ('squared')."""

    def __init__(self, target_sparsity, structure="unstructured", *, penalty: float,
                 form: str = "group", **kwargs):
        super().__init__(target_sparsity, structure, **kwargs)
        self.penalty = _check_positive("penalty", penalty)
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

    def _penalty(self, binding):
        terms = []
        for plan, norms, alpha in zip(binding.plans, binding.norms, binding.alphas):
            w = plan.weight.variable
            value = norms.squared(w) if self.form == "squared" else norms.norms(w)
            terms.append(tf.reduce_sum(alpha * tf.cast(value, alpha.dtype)))
        return self.penalty * tf.add_n(terms)

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
      target_sparsity, structure, prune_at, unit, layer_sparsity, layer_structure,
        exclude, edge_layer_sparsity: see `DynamicRegularizationPruning`.
      penalty: the coefficient lambda.
      form: 'group' (alpha_g ||W_g||, alpha_g = 1/(||W_g|| + eps)) or 'squared'
        (alpha_g ||W_g||^2, alpha_g = 1/(||W_g||^2 + eps)).
      epsilon: eps of the reweighting (1e-3 in the reweighted-L1 literature).
      reweight_every: recompute alpha every this many `unit`s before `prune_at`.
      reweight_at: explicit positions (in `unit`s) at which to recompute alpha,
        instead of `reweight_every` (e.g. epochs [0, 10, 20, 30, 40] of 50).
    """

    def __init__(self, target_sparsity: float, structure="unstructured", *,
                 penalty: float = 1e-5, form: str = "group", epsilon: float = 1e-3,
                 reweight_every: int = 1, reweight_at: Optional[Sequence[int]] = None,
                 **kwargs):
        super().__init__(target_sparsity, structure, penalty=penalty, form=form, **kwargs)
        self.epsilon = _check_positive("epsilon", epsilon)
        if isinstance(reweight_every, bool) or not isinstance(reweight_every, int) or \
                reweight_every < 1:
            raise ValueError("Invalid value for argument `reweight_every`. Expected a "
                             f"positive integer. Received: reweight_every={reweight_every!r}")
        self.reweight_every = reweight_every
        self.reweight_at = None if reweight_at is None else sorted(int(p) for p in reweight_at)
        self.reweight_count = 0

    def alphas(self, weights: tf.Tensor, norms: GroupNorms) -> tf.Tensor:
        """alpha_g = 1 / (||W_g|| + eps), or 1 / (||W_g||^2 + eps) in squared form."""
        value = norms.squared(weights) if self.form == "squared" else norms.norms(weights)
        return 1.0 / (value + self.epsilon)

    def reweight(self) -> None:
        """Recomputes every alpha from the current weights."""
        binding = self._require_binding()
        for plan, norms, alpha in zip(binding.plans, binding.norms, binding.alphas):
            alpha.assign(tf.cast(self.alphas(tf.convert_to_tensor(plan.weight.variable), norms),
                                 alpha.dtype))
        self.reweight_count += 1

    def _init_state(self, binding):
        super()._init_state(binding)
        for plan, norms, alpha in zip(binding.plans, binding.norms, binding.alphas):
            alpha.assign(self.alphas(tf.convert_to_tensor(plan.weight.variable), norms))

    def _regularization_event(self, binding, position):
        due = (position in self.reweight_at if self.reweight_at is not None
               else position % self.reweight_every == 0)
        if due and position > 0:  # Position 0: alphas were just set from these weights.
            self.reweight()

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon, "reweight_every": self.reweight_every,
                       "reweight_at": self.reweight_at})
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
