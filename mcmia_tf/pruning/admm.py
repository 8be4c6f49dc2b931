"""ADMM pruning (Zhang et al., "A Systematic DNN Weight Pruning Framework using
Alternating Direction Method of Multipliers", ECCV 2018; the solver of MCMIA).

    min_W f(W)  s.t.  W_i in S_i = {W : W_i meets structure i at rate l_i}

is split with an auxiliary Z_i in S_i and a scaled dual U_i:

    W-step:  minimise f(W) + sum_i rho/2 ||W_i - Z_i + U_i||_F^2   (ordinary `fit` steps)
    Z-step:  Z_i = Proj_{S_i}(W_i + U_i)                           (every `update_every`)
    U-step:  U_i = U_i + W_i - Z_i

with Z = Proj(W), U = 0 at the start, and rho optionally multiplied by `rho_growth`
at every Z/U update (capped at `rho_max`). The primal residual ||W - Z||_F measures
how far W is from the constraint set; it is logged as `admm_residual`. After the
ADMM phase W is hard-pruned (Proj(W)) and retrained with fixed masks.

`target_residual` calibrates rho on the run instead of a fixed schedule: at every
Z/U update rho is multiplied by `rho_growth` only while the relative residual
||W - Z||_F / ||W||_F is above the target, so the strength grows until W sits on
the constraint set, whatever the dataset's loss scale (Boyd et al., "Distributed
Optimization and Statistical Learning via ADMM", 2011, Sec. 3.4.1, adapt rho to
the residuals).
"""

from typing import Dict, List, Optional

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning import arguments
from mcmia_tf.pruning import pruner as pruner_lib
from mcmia_tf.pruning import registry

__all__ = ["ADMMPruning", "admm_update"]


def admm_update(w: np.ndarray, u: np.ndarray, project) -> tuple:
    """One Z/U update: returns (Z, U') = (Proj(W + U), U + W - Proj(W + U))."""
    z = project(w + u)
    return z, u + w - z


@keras.utils.register_keras_serializable(package="mcmia_tf")
class ADMMPruning(pruner_lib.DynamicRegularizationPruning):
    """ADMM weight pruning inside a plain `model.fit`, then masked retraining.

    ```python
    pruner = ADMMPruning(target_sparsity=0.95, rho=1e-3, update_every=1, prune_at=6)
    model.fit(x, y, epochs=10, callbacks=pruner.callbacks())   # W-step = the fit steps
    pruned = pruner.strip(model)
    ```

    The augmented-Lagrangian term enters the loss through `target.add_loss`
    (target = the model or `model.pruning_target`), like the reweighted penalty.

    Args:
      target_sparsity, structure, prune_at, unit: see `DynamicRegularizationPruning`.
      layer_sparsity, layer_structure, exclude, edge_layer_sparsity: see
        `DynamicRegularizationPruning`.
      rho: initial penalty parameter of the augmented Lagrangian.
      rho_growth: factor applied to rho after every Z/U update (1.0 = constant).
      rho_max: upper bound of rho (None = unbounded).
      update_every: Z/U update every this many `unit`s (an "ADMM iteration").
      target_residual: if set, rho grows by `rho_growth` at an update only while
        ||W - Z|| / ||W|| exceeds it (calibration; see the module docstring).
    """

    def __init__(self, target_sparsity: float, structure="unstructured", *,
                 rho: float = 1e-3, rho_growth: float = 1.0, rho_max: Optional[float] = None,
                 update_every: int = 1, target_residual: Optional[float] = None, **kwargs):
        super().__init__(target_sparsity, structure, **kwargs)
        if target_residual is not None and not 0 < target_residual < 1:
            raise ValueError("Invalid value for argument `target_residual`. Expected None or a "
                             f"float in (0, 1). Received: target_residual={target_residual!r}")
        self.target_residual = None if target_residual is None else float(target_residual)
        rho = arguments.positive("rho", rho)
        rho_growth = arguments.positive("rho_growth", rho_growth)
        if rho_growth < 1:
            raise ValueError("Invalid value for argument `rho_growth`. Expected a factor "
                             f">= 1 (rho never decreases). Received: rho_growth={rho_growth}")
        if rho_max is not None and rho_max < rho:
            raise ValueError("Invalid value for argument `rho_max`. Expected None or a "
                             f"value >= rho={rho}. Received: rho_max={rho_max}")
        update_every = arguments.integer("update_every", update_every, 1)
        self.rho = rho
        self.rho_growth = rho_growth
        self.rho_max = None if rho_max is None else float(rho_max)
        self.update_every = update_every
        self.residual_history: List[float] = []

    @staticmethod
    def _project(plans, values: List[np.ndarray]) -> List[np.ndarray]:
        """Euclidean projection of every layer (coupled layers projected jointly)."""
        return [(v * m).astype(v.dtype) for v, m in zip(values, registry.plan_masks(plans, values))]

    def _init_state(self, binding):
        binding.rho = tf.Variable(self.rho, trainable=False, name="admm/rho")
        values = [plan.weight.variable.numpy() for plan in binding.plans]
        binding.z = [tf.Variable(z, trainable=False, name=f"admm/z/{plan.weight.path}")
                     for plan, z in zip(binding.plans, self._project(binding.plans, values))]
        binding.u = [tf.Variable(np.zeros_like(w), trainable=False,
                                 name=f"admm/u/{plan.weight.path}")
                     for plan, w in zip(binding.plans, values)]
        binding.residual = self._residual(binding)

    def _penalty(self, binding):
        terms = [tf.reduce_sum(tf.square(p.weight.variable - z + u))
                 for p, z, u in zip(binding.plans, binding.z, binding.u)]
        return 0.5 * binding.rho * tf.add_n(terms)

    @staticmethod
    def _residual(binding) -> float:
        """Primal residual sqrt(sum_i ||W_i - Z_i||_F^2)."""
        return float(np.sqrt(sum(np.sum(np.square(p.weight.variable.numpy() - z.numpy()))
                                 for p, z in zip(binding.plans, binding.z))))

    def update(self) -> float:
        """One Z-step and U-step for every layer; returns the primal residual."""
        binding = self._require_binding()
        weights = [plan.weight.variable.numpy() for plan in binding.plans]
        duals = [u.numpy() for u in binding.u]
        # Z = Proj(W + U) for all layers at once (coupled layers share channels).
        projected = self._project(binding.plans, [w + u for w, u in zip(weights, duals)])
        for z, u, w, dual, new_z in zip(binding.z, binding.u, weights, duals, projected):
            z.assign(new_z)
            u.assign(dual + w - new_z)  # U' = U + W - Z, as `admm_update`.
        residual = self._residual(binding)
        weight_norm = float(np.sqrt(sum(np.sum(np.square(p.weight.variable.numpy()))
                                        for p in binding.plans)))
        if self.target_residual is None or residual > self.target_residual * weight_norm:
            rho = float(binding.rho.numpy()) * self.rho_growth
            binding.rho.assign(rho if self.rho_max is None else min(rho, self.rho_max))
        binding.residual = residual
        self.residual_history.append(binding.residual)
        return binding.residual

    def _stage_changed(self, binding):
        # Z follows the new stage's constraint set at once; U keeps its running sum.
        values = [p.weight.variable.numpy() + u.numpy() for p, u in zip(binding.plans, binding.u)]
        for z, new_z in zip(binding.z, self._project(binding.plans, values)):
            z.assign(new_z)
        binding.residual = self._residual(binding)

    def _regularization_event(self, binding, position):
        if position > 0 and position % self.update_every == 0:
            self.update()

    def _metrics(self, binding) -> Dict[str, float]:
        return {"admm_residual": self._residual(binding), "admm_rho": float(binding.rho.numpy())}

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "rho_growth": self.rho_growth, "rho_max": self.rho_max,
                       "update_every": self.update_every,
                       "target_residual": self.target_residual})
        return config
