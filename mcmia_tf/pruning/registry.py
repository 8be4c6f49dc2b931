"""Which weights of a model are prunable, and at which structure and rate.

Prunable: the kernel of `Conv2D`, `DepthwiseConv2D` and `Dense` layers (biases,
normalisation and transposed convolutions stay dense, as in tfmot's registry).
Layers are found in Sequential and Functional tf_keras models, including nested
Sequential/Functional sub-models (named "outer/inner") and layers wrapped by
`keras.layers.Wrapper` (e.g. tfmot's `PruneLowMagnitude`). Subclassed models have no
inspectable graph and are rejected, like in tfmot.

A model given to `fit` that carries a `pruning_target` attribute (a `keras.Model`,
e.g. a min-max defence wrapping its classifier) is pruned through that sub-model only.
"""

import dataclasses
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import has_layer_graph
from mcmia_tf.compat import keras
from mcmia_tf.pruning import coupling as coupling_lib
from mcmia_tf.pruning import structures as structures_lib

__all__ = ["PrunableWeight", "LayerPlan", "resolve_pruning_target", "find_prunable_weights",
           "layer_paths", "plan_layers", "plan_masks", "MAX_LAYER_SPARSITY"]

# A layer pruned above this keeps < 0.1% of its weights: almost surely a mistake.
MAX_LAYER_SPARSITY = 0.999

LayerSparsity = Union[None, Mapping[str, float], Callable[[keras.layers.Layer], Optional[float]]]
LayerStructure = Union[None, Mapping[str, structures_lib.StructureLike],
                       Callable[[keras.layers.Layer], Optional[structures_lib.StructureLike]]]


@dataclasses.dataclass(frozen=True)
class PrunableWeight:
    """A prunable kernel: the layer's path in the model, the layer and the variable."""

    path: str
    layer: keras.layers.Layer
    variable: tf.Variable
    kind: str  # "conv2d", "depthwise_conv2d" or "dense".

    @property
    def depthwise(self) -> bool:
        return self.kind == "depthwise_conv2d"

    @property
    def shape(self):
        return tuple(int(d) for d in self.variable.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclasses.dataclass(frozen=True)
class LayerPlan:
    """A prunable weight with the structure and the rate it is projected to.

    `coupling` names the set of filter-pruned layers whose output channels are
    removed together (residual groups, a depthwise layer and its producer;
    `coupling.py`); None when the layer chooses its own.
    """

    weight: PrunableWeight
    structure: structures_lib.Structure
    rate: float
    coupling: Optional[int] = None


def resolve_pruning_target(model) -> keras.Model:
    """Returns `model.pruning_target` if the model has one, else `model` (checked)."""
    target = getattr(model, "pruning_target", None)
    if target is not None:
        return _check_graph_model(ensure_tf_keras_model(target, "model.pruning_target"),
                                  "model.pruning_target")
    return _check_graph_model(ensure_tf_keras_model(model), "model")


def _check_graph_model(model: keras.Model, argument_name: str) -> keras.Model:
    if isinstance(model, keras.Sequential) or has_layer_graph(model):
        if not model.built:
            raise ValueError(
                f"Invalid value for argument `{argument_name}`. The model is not built: "
                "give its first layer an `input_shape` (or call `model.build(...)`) first.")
        return model
    raise TypeError(
        f"Invalid value for argument `{argument_name}`. Expected a Sequential or Functional "
        f"tf_keras model; received a subclassed model ({type(model).__name__}), whose layers "
        "cannot be inspected. Rebuild it with the Functional API, or expose the Functional "
        "classifier as a `pruning_target` attribute of the subclassed model.")


def _kind(layer: keras.layers.Layer) -> Optional[str]:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return "depthwise_conv2d"
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return None
    if isinstance(layer, keras.layers.Conv2D):
        return "conv2d"
    if isinstance(layer, keras.layers.Dense):
        return "dense"
    return None


def _walk(model: keras.Model, prefix: str = ""):
    """Yields (path, layer) for every layer, descending into nested models."""
    for layer in model.layers:
        path = prefix + layer.name
        if isinstance(layer, keras.Model):
            yield from _walk(_check_graph_model(layer, f"model.{path}"), path + "/")
            continue
        yield path, layer


def _unwrap(layer: keras.layers.Layer) -> keras.layers.Layer:
    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer


def layer_paths(model: keras.Model) -> List[str]:
    """Paths of every layer of `model` (nested sub-models as 'outer/inner')."""
    return [path for path, _ in _walk(model)]


def find_prunable_weights(model: keras.Model, exclude: Sequence[str] = ()) -> List[PrunableWeight]:
    """Prunable kernels of `model` in topological order, minus the excluded layers.

    Args:
      model: a Sequential or Functional tf_keras model (`pruning_target` honoured).
      exclude: layer paths (or plain names of top-level layers) not to prune.

    Raises:
      ValueError: if a name in `exclude` is not a layer, or nothing is prunable.
    """
    model = resolve_pruning_target(model)
    paths = layer_paths(model)
    _check_names(exclude, paths, "exclude")
    weights = []
    for path, layer in _walk(model):
        inner = _unwrap(layer)
        kind = _kind(inner)
        if kind is None or path in exclude:
            continue
        variable = inner.depthwise_kernel if kind == "depthwise_conv2d" else inner.kernel
        weights.append(PrunableWeight(path=path, layer=inner, variable=variable, kind=kind))
    if not weights:
        raise ValueError(
            "Invalid value for argument `model`. It has no prunable layer (Conv2D, "
            "DepthwiseConv2D or Dense) left after `exclude`. Prune a model with such "
            f"layers, or exclude fewer layers. Layers: {paths}")
    return weights


def _check_names(names, paths: Sequence[str], argument_name: str):
    unknown = [name for name in names if name not in paths]
    if unknown:
        raise ValueError(
            f"Invalid value for argument `{argument_name}`. Layer names {unknown} are not in "
            f"the model. Use the layer paths of the model: {list(paths)}")


def _per_layer(option, weight: PrunableWeight):
    """Value of a dict-by-path or callable option for a layer (None if unset)."""
    if option is None:
        return None
    if callable(option) and not isinstance(option, Mapping):
        return option(weight.layer)
    return option.get(weight.path)


def plan_layers(model: keras.Model, target_sparsity: float,
                structure: structures_lib.StructureLike = "unstructured",
                layer_sparsity: LayerSparsity = None,
                layer_structure: LayerStructure = None,
                exclude: Sequence[str] = (),
                edge_layer_sparsity: Optional[float] = 0.8) -> List[LayerPlan]:
    """Assigns a structure and a sparsity rate to every prunable kernel.

    Rates: a layer named in `layer_sparsity` (dict by path, or a callable on the
    layer returning a rate or None) gets that rate. Otherwise the first and the
    last prunable layer get min(target, edge_layer_sparsity) (they are small and
    sensitive: the input features and the logits), and the remaining layers share
    one rate r chosen so that the zeros of all pruned kernels are a fraction
    `target_sparsity` of their weights:

        sum_l rate_l * n_l = target_sparsity * sum_l n_l.

    Structures: `layer_structure` (dict by path or callable) overrides `structure`.
    With 'filter', a Dense output layer is pruned by 'channel' (its input neurons)
    unless overridden, since its filters are the model's outputs.

    Raises:
      ValueError: unknown layer names, rates outside [0, 1), a structure that does
        not fit a layer, or a target that the free layers cannot absorb.
    """
    model = resolve_pruning_target(model)
    weights = find_prunable_weights(model, exclude)
    paths = layer_paths(model)
    for option, name in ((layer_sparsity, "layer_sparsity"), (layer_structure, "layer_structure")):
        if isinstance(option, Mapping):
            _check_names(list(option), paths, name)
            excluded = [key for key in option if key in exclude]
            if excluded:
                raise ValueError(f"Invalid value for argument `{name}`. Layers {excluded} are "
                                 "also in `exclude`; remove them from one of the two.")
    rates: Dict[str, float] = {}
    for weight in weights:
        rate = _per_layer(layer_sparsity, weight)
        if rate is not None:
            if not 0.0 <= float(rate) < 1.0:
                raise ValueError(
                    "Invalid value for argument `layer_sparsity`. Expected rates in [0, 1). "
                    f"Received: layer_sparsity[{weight.path!r}]={rate}")
            rates[weight.path] = float(rate)
    free = [w for w in weights if w.path not in rates]
    if edge_layer_sparsity is not None and len(free) > 2:
        for edge in (weights[0], weights[-1]):
            if edge.path not in rates:
                rates[edge.path] = min(target_sparsity, float(edge_layer_sparsity))
        free = [w for w in weights if w.path not in rates]
    if free:
        total = sum(w.size for w in weights)
        fixed_zeros = sum(rates[w.path] * w.size for w in weights if w.path in rates)
        shared = (target_sparsity * total - fixed_zeros) / sum(w.size for w in free)
        if shared > MAX_LAYER_SPARSITY:
            raise ValueError(
                f"Invalid value for argument `target_sparsity`. Reaching {target_sparsity} "
                f"overall needs rate {shared:.4f} on layers {[w.path for w in free]}, above "
                f"{MAX_LAYER_SPARSITY}. Lower `target_sparsity`, or raise "
                "`edge_layer_sparsity` / the rates in `layer_sparsity`.")
        for weight in free:
            rates[weight.path] = max(0.0, shared)
    plans = []
    for weight in weights:
        chosen = _per_layer(layer_structure, weight)
        structure_obj = structures_lib.get_structure(
            structure if chosen is None else chosen,
            "structure" if chosen is None else "layer_structure")
        if chosen is None and weight is weights[-1] and isinstance(
                structure_obj, structures_lib.Filter) and weight.kind == "dense":
            # Filters of the output layer are the model's outputs (class logits):
            # prune its input neurons instead, still a structured removal.
            structure_obj = structures_lib.Channel()
        structure_obj.validate(weight.shape, weight.depthwise, weight.path)
        plans.append(LayerPlan(weight=weight, structure=structure_obj, rate=rates[weight.path]))
    return _couple_filters(model, plans)


def _couple_filters(model: keras.Model, plans: List[LayerPlan]) -> List[LayerPlan]:
    """Filter-pruned layers whose channels are tied share one rate and one channel choice.

    The set's rate is the size-weighted mean of its members' planned rates, so the
    zeros of the set (and the overall target) are unchanged.
    """
    sets = coupling_lib.coupled_channel_sets(model)
    members: Dict[int, List[int]] = {}
    for index, plan in enumerate(plans):
        if plan.weight.path in sets and isinstance(plan.structure, structures_lib.Filter):
            members.setdefault(sets[plan.weight.path], []).append(index)
    plans = list(plans)
    for set_id, indices in members.items():
        if len(indices) < 2:
            continue
        sizes = [plans[i].weight.size for i in indices]
        rate = sum(plans[i].rate * n for i, n in zip(indices, sizes)) / sum(sizes)
        for i in indices:
            plans[i] = dataclasses.replace(plans[i], rate=rate, coupling=set_id)
    return plans


def plan_masks(plans: Sequence[LayerPlan], values: Sequence[np.ndarray]) -> List[np.ndarray]:
    """The 0/1 projection mask of every plan for these kernel values (coupling honoured)."""
    return coupling_lib.plan_masks(plans, values)
