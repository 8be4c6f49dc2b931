"""Masks that keep pruned weights exactly zero through training, on any strategy.

A mask is a *kernel constraint*, `PruningMask`, given to the layer when it is
built: `make_prunable(model)` clones the model with `kernel_constraint` (or
`depthwise_constraint`) set to a `PruningMask` in each prunable layer's config,
so `add_weight` creates the kernel with the constraint attached. Every tf_keras
optimizer (new and legacy) runs `var.assign(var.constraint(var))` right after
it updates `var`, inside the same `apply_gradients` call, so after EVERY
optimizer step (also with `steps_per_execution > 1`, in a custom `train_step`
that calls `apply_gradients` or `minimize`, and in the replica context of a
`tf.distribute` strategy) the pruned weights are exactly 0, whatever momentum
or Adam moments the optimizer has accumulated for them. tfmot's wrapper instead
re-applies the mask at the next forward pass, which leaves revived values in
the variable between steps.

Why at build time: under `MirroredStrategy` a kernel is a `MirroredVariable`
whose `constraint` is read from its primary component, and a variable offers
no public way to change its constraint after creation. A constraint given at
build time reaches every component, on every strategy.

The mask itself is a non-trainable `tf.Variable` created in the scope that is
current when the constraint is built (the strategy's, so it is mirrored like
the kernel); a pruner assigns it at the hard prune, in cross-replica context,
which writes every replica. It is not a layer weight: `get_weights`, surgery
and export see the plain layer, and a saved model reloads with an all-ones
mask that the pruner rebuilds from the weights' zeros at its next hard prune.
"""

from typing import Iterable, Optional, Sequence
import warnings

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning import registry

__all__ = ["PruningMask", "make_prunable", "strip_masks", "pruning_mask_of",
           "zero_optimizer_slots"]

# The config key of the constraint of each prunable kernel kind.
_CONSTRAINT_KEY = {"conv2d": "kernel_constraint", "dense": "kernel_constraint",
                   "depthwise_conv2d": "depthwise_constraint"}


@keras.utils.register_keras_serializable(package="mcmia_tf")
class PruningMask(keras.constraints.Constraint):
    """`w -> inner(w) * mask`: a 0/1 mask composed with the layer's own constraint.

    Args:
      inner: the constraint the layer had (None, a name or a Constraint).
    """

    def __init__(self, inner=None):
        self.inner = keras.constraints.get(inner)
        self.mask: Optional[tf.Variable] = None

    def build(self, variable: tf.Variable) -> tf.Variable:
        """Creates the all-ones mask of `variable` (once) in the current scope."""
        if self.mask is None:
            with tf.init_scope():
                self.mask = tf.Variable(tf.ones(variable.shape, variable.dtype), trainable=False,
                                        name=variable.name.split(":")[0] + "/pruning_mask")
        return self.mask

    def __call__(self, w):
        if self.inner is not None:
            w = self.inner(w)
        if self.mask is None:  # Not built yet: nothing is pruned.
            return w
        return w * tf.cast(self.mask, w.dtype)

    def get_config(self):
        # The mask is training state, rebuilt from the zeros at the next hard prune.
        return {"inner": keras.constraints.serialize(self.inner)}


def pruning_mask_of(variable: tf.Variable) -> Optional[PruningMask]:
    """The `PruningMask` constraint of `variable`, or None."""
    constraint = variable.constraint
    return constraint if isinstance(constraint, PruningMask) else None


def _clone_with(model: keras.Model, transform) -> keras.Model:
    """`clone_model` applying `transform(layer) -> layer` to every layer, nested too."""

    def clone_layer(layer):
        if isinstance(layer, keras.Model):
            return _clone_with(layer, transform)
        return transform(layer)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    clone.set_weights(model.get_weights())
    return clone


def _check_plain_model(model: keras.Model, function: str) -> keras.Model:
    if getattr(model, "pruning_target", None) is not None:
        raise ValueError(
            f"Invalid value for argument `model`. `{function}` takes the classifier itself; "
            f"received a {type(model).__name__} that wraps one (`pruning_target`). Call "
            f"`{function}` on the classifier before wrapping it, e.g. "
            "`MinMaxModel(make_prunable(classifier), ...)`.")
    return registry.resolve_pruning_target(model)


def make_prunable(model: keras.Model, exclude: Sequence[str] = ()) -> keras.Model:
    """A copy of `model` whose prunable kernels carry a `PruningMask` constraint.

    The pruners (`ReweightedPruning`, `ADMMPruning`, `StaticRegularization`)
    prune through these masks; they refuse a model without them. Call it where
    the model's variables are to live: inside `strategy.scope()` when training
    with a `tf.distribute` strategy, before `compile`.

    ```python
    with strategy.scope():
        model = make_prunable(build_model("lenet5", (28, 28, 1), 10))
        model.compile(...)
    model.fit(x, y, callbacks=pruner.callbacks())
    ```

    Until a pruner hard-prunes, the masks are all ones and training is
    unchanged (`w * 1.0 == w` exactly).

    Args:
      model: a built Sequential or Functional tf_keras model (nested ones too).
      exclude: layer paths that stay without a mask (never prunable).

    Returns:
      A new model with the same weights, layer names and outputs.

    Raises:
      ValueError: if `model` wraps its classifier (`pruning_target`), or a name
        in `exclude` is not a layer.
    """
    model = _check_plain_model(model, "make_prunable")
    prunable = {id(w.layer): w.kind for w in registry.find_prunable_weights(model, exclude)}

    def add_mask(layer):
        kind = prunable.get(id(layer))
        config = layer.get_config()
        if kind is not None and not isinstance(config.get(_CONSTRAINT_KEY[kind]), PruningMask):
            config[_CONSTRAINT_KEY[kind]] = PruningMask(config.get(_CONSTRAINT_KEY[kind]))
        return layer.__class__.from_config(config)

    clone = _clone_with(model, add_mask)
    for weight in registry.find_prunable_weights(clone):
        constraint = pruning_mask_of(weight.variable)
        if constraint is not None:
            constraint.build(weight.variable)
    return clone


def strip_masks(model: keras.Model) -> keras.Model:
    """A copy of `model` without `PruningMask` constraints (the layers' own stay).

    The weights are copied as they are: apply the masks first (a pruner's
    `strip` does).
    """
    model = _check_plain_model(model, "strip_masks")

    def remove_mask(layer):
        config = layer.get_config()
        for key in set(_CONSTRAINT_KEY.values()):
            value = getattr(layer, key, None)
            if isinstance(value, PruningMask):
                config[key] = keras.constraints.serialize(value.inner)
        return layer.__class__.from_config(config)

    return _clone_with(model, remove_mask)


def _optimizer_slots(optimizer, variable: tf.Variable) -> Iterable[tf.Variable]:
    """The optimizer's per-weight state (momentum, Adam moments) for `variable`."""
    if hasattr(optimizer, "get_slot_names"):  # Legacy (OptimizerV2) optimizers.
        for name in optimizer.get_slot_names():
            try:
                yield optimizer.get_slot(variable, name)
            except (KeyError, ValueError):
                continue
        return
    # New tf_keras optimizers name a slot "<optimizer>/<slot>/<variable name>"
    # (`add_variable_from_reference`), the slot one token ("m", "v", "momentum"...).
    # Under a strategy both names are the primary component's, so this matches there
    # too. Variable names are not unique (a nested model's layer may share a name
    # with an outer one); then the slots cannot be told apart and are left alone.
    prefix = optimizer.name + "/"
    matches = {}
    for slot in getattr(optimizer, "variables", []):
        head, _, slot_of = slot.name[len(prefix):].partition("/")
        if (slot.name.startswith(prefix) and head and slot_of == variable.name
                and slot.shape == variable.shape):
            matches.setdefault(head, []).append(slot)
    if any(len(slots) > 1 for slots in matches.values()):
        warnings.warn(
            f"The optimizer holds several slots named for `{variable.name}` (layers of the "
            "same name in nested models), so the moments of its pruned weights are not "
            "cleared. The pruned weights still stay exactly zero (mask constraint); give "
            "the layers unique names to clear their optimizer state too.", stacklevel=3)
        return
    for slots in matches.values():
        yield slots[0]


def zero_optimizer_slots(optimizer: Optional[object], variable: tf.Variable,
                         mask: np.ndarray) -> int:
    """Zeroes the optimizer state of the pruned entries; returns the slots touched.

    Masked weights stay zero anyway (see module docstring); clearing their moments
    at pruning time means nothing stale is carried into a later unmasked training.
    Called in cross-replica context (a callback), `assign` writes every replica.
    """
    if optimizer is None:
        return 0
    touched = 0
    for slot in _optimizer_slots(optimizer, variable):
        slot.assign(slot * tf.constant(mask, slot.dtype))
        touched += 1
    return touched
