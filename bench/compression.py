"""Compression runs the pruning benchmarks share.

A pruner by method name (with the hyper-parameters `bench.pruning` tuned), tfmot
magnitude pruning on the per-layer allocation our pruners plan, and a `fit` timed
in wall and CPU seconds per epoch. `bench.pruning` (LeNet-5) and
`bench.architectures` (ResNet18 / MobileNetV2 / VGG16) both run these, so their
rows mean the same thing.
"""

import dataclasses
import time
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import tensorflow_model_optimization as tfmot

from mcmia_tf import pruning
from mcmia_tf.compat import keras

__all__ = ["PRUNER_METHODS", "TFMOT_EDGE_LAYER_SPARSITY", "TFMOT_ONE_SHOT", "PrunerSettings",
           "make_pruner",
           "timed_fit", "tfmot_prune"]

PRUNER_METHODS = ("reweighted", "reweighted_constant", "reweighted_fixed",
                  "reweighted_progressive", "reweighted_unbounded", "admm", "static_l1")
# "tfmot": the per-layer rates our pruners plan (first / last layer capped at 80%), so
# the rows compare methods, not allocations; "tfmot_uniform": tfmot's default, every
# layer at the target; "tfmot_oneshot": the planned rates reached in one prune at the
# first step, then fine-tuning (the control that tells a gradual ramp's gain from the
# magnitude criterion's).
TFMOT_EDGE_LAYER_SPARSITY = {"tfmot": 0.8, "tfmot_uniform": None, "tfmot_oneshot": 0.8}
TFMOT_ONE_SHOT = ("tfmot_oneshot",)


@dataclasses.dataclass(frozen=True)
class PrunerSettings:
    """One hyper-parameter per method.

    Defaults chosen on 5,000 held-out Fashion-MNIST training images with LeNet-5 at
    sparsity 0.95 (`bench.pruning --evaluate_on=validation`; grids 3e-6..1e-4,
    1e-3..3e-2, 3e-5..1e-3).

    Attributes:
      reweighted_penalty: lambda of `reweighted_unbounded` (the bounded form
        calibrates its own).
      bounded_penalty: fixed lambda of `reweighted_fixed`.
      progressive_steps: stages of `reweighted_progressive`.
      admm_rho: rho of `admm`.
      l1_penalty: lambda of `static_l1` (L1 / group lasso).
    """

    reweighted_penalty: float = 1e-5
    bounded_penalty: float = 1e-3
    progressive_steps: int = 3
    admm_rho: float = 3e-3
    l1_penalty: float = 3e-4


def make_pruner(method: str, structure: str, sparsity: float, prune_at: int,
                steps_per_epoch: int, settings: PrunerSettings = PrunerSettings(),
                exclude: Sequence[str] = ()):
    """The `mcmia_tf.pruning` pruner of a benchmark method (one of `PRUNER_METHODS`).

    `reweighted` is the recipes' default: bounded, lambda calibrated on the run, the
    designated rate ramped over the `prune_at` epochs with 4 keep-set updates an
    epoch (`ReweightedPruning.ramped`); `reweighted_constant` the same bounded form
    aiming at the target from the start, one update an epoch. `exclude`: layer
    paths the pruner leaves dense.
    """
    exclude = tuple(exclude)
    common = dict(target_sparsity=sparsity, structure=structure, prune_at=prune_at,
                  exclude=exclude)
    if method == "reweighted":
        return pruning.ReweightedPruning.ramped(sparsity, structure, prune_at_epoch=prune_at,
                                                steps_per_epoch=steps_per_epoch, exclude=exclude)
    if method == "reweighted_constant":
        return pruning.ReweightedPruning(**common)
    if method == "reweighted_fixed":
        return pruning.ReweightedPruning(penalty=settings.bounded_penalty, **common)
    if method == "reweighted_progressive":
        return pruning.ReweightedPruning(progressive_steps=settings.progressive_steps, **common)
    if method == "reweighted_unbounded":
        return pruning.ReweightedPruning(penalty=settings.reweighted_penalty, bounded=False,
                                         **common)
    if method == "admm":
        return pruning.ADMMPruning(rho=settings.admm_rho, **common)
    if method == "static_l1":
        return pruning.StaticRegularization(penalty=settings.l1_penalty, **common)
    raise ValueError(f"Invalid value for flag `methods`. Unknown method: {method!r}")


def timed_fit(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int,
              callbacks: Sequence[keras.callbacks.Callback] = ()) -> Tuple[float, float]:
    """Runs `epochs` of `fit`; returns (wall, CPU) seconds per epoch.

    Wall time includes tracing; CPU time is this process's (all threads), which
    other processes sharing the machine disturb less.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=list(callbacks),
              shuffle=True)
    return ((time.perf_counter() - wall) / epochs, (time.process_time() - cpu) / epochs)


def tfmot_prune(model: keras.Model, x: np.ndarray, y: np.ndarray, sparsity: float, *,
                compile_fn: Callable[[keras.Model], keras.Model], prune_at: int, epochs: int,
                batch_size: int, edge_layer_sparsity: Optional[float] = 0.8,
                one_shot: bool = False) -> Tuple[keras.Model, Tuple[float, float]]:
    """tfmot `prune_low_magnitude` on the planned per-layer rates, `epochs` of `fit`.

    `PolynomialDecay` from 0 to each layer's rate over the first `prune_at` epochs
    (updated 4 times an epoch), then fine-tuning with frozen masks; `one_shot`
    prunes to the rates at the first step instead (`OneShotAfter(rate, 1)`).

    Returns:
      (the stripped model with exact zeros, (wall, CPU) seconds per epoch).
    """
    steps_per_epoch = int(np.ceil(len(x) / batch_size))
    end_step = prune_at * steps_per_epoch

    def ramp_to(rate):
        if one_shot:
            return pruning.OneShotAfter(rate, 1)
        return tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=rate, begin_step=0, end_step=end_step,
            frequency=max(1, steps_per_epoch // 4))

    wrapped = compile_fn(pruning.prune_low_magnitude_planned(
        model, sparsity, ramp_to, edge_layer_sparsity=edge_layer_sparsity))
    seconds = timed_fit(wrapped, x, y, epochs, batch_size,
                        [tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped), seconds
