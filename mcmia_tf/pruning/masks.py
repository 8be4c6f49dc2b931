"""Masks that keep pruned weights exactly zero through training.

The mask is applied as the variable's *constraint*: every tf_keras optimizer (new
and legacy) runs `var.assign(var.constraint(var))` right after it updates `var`,
inside the same `apply_gradients` call. So after EVERY optimizer step (also with
`steps_per_execution > 1`, and in a custom `train_step` that calls
`optimizer.apply_gradients` or `minimize`) the pruned weights are exactly 0, whatever
momentum or Adam moments the optimizer has accumulated for them. tfmot's wrapper
instead re-applies the mask at the next forward pass, which leaves revived values in
the variable between steps.

tf_keras exposes no public setter for a variable's constraint after creation (the
layer's `kernel_constraint` is only read in `add_weight`), hence `_constraint`.
"""

from typing import Iterable, Optional

import numpy as np
import tensorflow as tf

__all__ = ["MaskConstraint", "attach_mask", "detach_mask", "zero_optimizer_slots"]


class MaskConstraint:
    """`w -> inner(w) * mask`: a user's constraint composed with a 0/1 mask."""

    def __init__(self, mask: tf.Variable, inner=None):
        self.mask = mask
        self.inner = inner

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        return w * tf.cast(self.mask, w.dtype)


def attach_mask(variable: tf.Variable, mask: tf.Variable) -> None:
    """Makes the optimizer multiply `variable` by `mask` after each of its updates."""
    current = getattr(variable, "_constraint", None)
    if isinstance(current, MaskConstraint):
        current.mask = mask
        return
    variable._constraint = MaskConstraint(mask, current)  # pylint: disable=protected-access


def detach_mask(variable: tf.Variable) -> None:
    """Restores the constraint the variable had before `attach_mask`."""
    current = getattr(variable, "_constraint", None)
    if isinstance(current, MaskConstraint):
        variable._constraint = current.inner  # pylint: disable=protected-access


def _optimizer_slots(optimizer, variable: tf.Variable) -> Iterable[tf.Variable]:
    """The optimizer's per-weight state (momentum, Adam moments) for `variable`."""
    if hasattr(optimizer, "get_slot_names"):  # Legacy (OptimizerV2) optimizers.
        for name in optimizer.get_slot_names():
            try:
                yield optimizer.get_slot(variable, name)
            except (KeyError, ValueError):
                continue
        return
    # New tf_keras optimizers name slots "<slot>/<variable's shared name>".
    suffix = "/" + variable._shared_name + ":0"  # pylint: disable=protected-access
    for slot in getattr(optimizer, "variables", []):
        if slot.name.endswith(suffix) and slot.shape == variable.shape:
            yield slot


def zero_optimizer_slots(optimizer: Optional[object], variable: tf.Variable,
                         mask: np.ndarray) -> int:
    """Zeroes the optimizer state of the pruned entries; returns the slots touched.

    Masked weights stay zero anyway (see module docstring); clearing their moments
    at pruning time means nothing stale is carried into a later unmasked training.
    """
    if optimizer is None:
        return 0
    touched = 0
    for slot in _optimizer_slots(optimizer, variable):
        slot.assign(slot * tf.constant(mask, slot.dtype))
        touched += 1
    return touched
