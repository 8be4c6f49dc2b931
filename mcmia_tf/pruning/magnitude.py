"""tfmot magnitude pruning on the per-layer rates that MCMIA pruning plans.

`tfmot.sparsity.keras.prune_low_magnitude(model, schedule)` drives every layer
to the same sparsity. The dynamic-regularization pruners instead plan a rate per
layer (`plan_layers`: explicit `layer_sparsity`, the first and last layers capped
at `edge_layer_sparsity`, the rest sharing what is left so that

    sum_l rate_l * n_l = target_sparsity * sum_l n_l).

Comparing the two methods at a uniform vs a planned allocation would mix the
allocation with the method, so the peer baseline is tfmot's own magnitude
pruning (Zhu & Gupta, 2017) run layer by layer on the same plan.
"""

from typing import Callable, Mapping, Optional

import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import keras
from mcmia_tf.pruning.registry import find_prunable_weights
from mcmia_tf.pruning.registry import plan_layers

__all__ = ["prune_low_magnitude_planned"]


def prune_low_magnitude_planned(
        model: keras.Model, target_sparsity: float,
        make_schedule: Callable[[float], "tfmot.sparsity.keras.PruningSchedule"], *,
        layer_sparsity: Optional[Mapping[str, float]] = None,
        edge_layer_sparsity: Optional[float] = 0.8) -> keras.Model:
    """Wraps each prunable layer in tfmot's `PruneLowMagnitude` with its planned rate.

    Args:
      model: a built tf_keras Sequential or functional model; its layers (and
        their trained weights) are reused, not copied.
      target_sparsity: fraction of zeros over the kernels tfmot prunes (Conv2D and
        Dense; tfmot leaves DepthwiseConv2D dense).
      make_schedule: `rate -> tfmot PruningSchedule` ending at that rate (e.g. a
        `PolynomialDecay` with `final_sparsity=rate`).
      layer_sparsity: explicit rates by layer path (see `plan_layers`).
      edge_layer_sparsity: cap of the first and last prunable layers; None
        gives every layer the target (tfmot's default allocation).

    Returns:
      A new model sharing `model`'s layers, the planned ones wrapped for tfmot;
      train it with `tfmot.sparsity.keras.UpdatePruningStep()` and finish with
      `strip_pruning`.

    Raises:
      ValueError: if a prunable layer sits inside a nested model (tfmot wraps
        top-level layers only).
    """
    # tfmot registers DepthwiseConv2D with no prunable weight: plan over the kernels
    # it can prune, so that those reach `target_sparsity` together.
    depthwise = [w.path for w in find_prunable_weights(model) if w.depthwise]
    plans = plan_layers(model, target_sparsity, "unstructured", layer_sparsity=layer_sparsity,
                        exclude=depthwise, edge_layer_sparsity=edge_layer_sparsity)
    nested = [plan.weight.path for plan in plans if plan.weight.layer not in model.layers]
    if nested:
        raise ValueError(f"Invalid value for argument `model`. tfmot prunes top-level layers "
                         f"only; {nested} are inside nested models. Flatten the model first.")
    rates = {id(plan.weight.layer): plan.rate for plan in plans}

    def wrap_planned_layer(layer):
        # Returning the layer itself (wrapped or not) keeps its trained weights.
        rate = rates.get(id(layer), 0.0)
        if rate <= 0.0:
            return layer
        return tfmot.sparsity.keras.prune_low_magnitude(layer,
                                                         pruning_schedule=make_schedule(rate))

    return keras.models.clone_model(model, clone_function=wrap_planned_layer)
