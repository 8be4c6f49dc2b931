"""Which kernels' output channels must be pruned together (residual and depthwise coupling).

Filter pruning removes output channels. In a plain chain each layer can choose its
own, but two architectures tie channels across layers:

* **Residual additions** (ResNet, MobileNetV2): `Add` sums its inputs channel by
  channel, so channel c of the sum is removable only if channel c is removed in
  every branch. The channels of a residual group are therefore pruned together:
  the shortcut keeps no 1x1 projection of its own (where the architecture has one,
  e.g. a strided ResNet block, that projection is simply one more member of the
  group).
* **Depthwise convolutions** (MobileNetV2): depthwise channel c reads only channel
  c of its input, so its kernel follows the filter mask of the layer that produces
  that channel (the expansion 1x1 convolution).

`coupled_channel_sets` walks the Functional graph from `model.get_config()` (its
public description of the layer graph, read by `layer_graph`, which
`tflite_export.channel_graph` shares), in the spirit of the channel-dependency
graphs of structured-pruning libraries (e.g. Fang et al., "DepGraph", CVPR 2023):
every `Conv2D` / `Dense` output starts a channel set; layers that act channel by
channel (normalisation, activations, pooling, dropout, zero padding, depthwise
convolution with depth multiplier 1) carry it on; `Add`-like merges join the sets
of their inputs. Any other layer starts a fresh, uncoupled set. Nested sub-models
are not followed (their kernels stay uncoupled).
"""

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from mcmia_tf.compat import keras

__all__ = ["GraphNode", "LayerGraph", "layer_graph", "coupled_channel_sets", "plan_masks"]

# A tensor of the graph: (producing layer's name, node index, tensor index), in the
# numbering of `model.get_config()` (the node index counts the layer's calls in
# this model; a nested Functional model's calls start at 1).
TensorRef = Tuple[str, int, int]

_L = keras.layers
# Layers whose output channel c depends only on input channel c.
_CHANNELWISE = (
    _L.BatchNormalization, _L.LayerNormalization, _L.GroupNormalization, _L.Activation,
    _L.ReLU, _L.LeakyReLU, _L.ELU, _L.PReLU, _L.Dropout, _L.SpatialDropout2D,
    _L.GaussianNoise, _L.GaussianDropout, _L.MaxPooling2D, _L.AveragePooling2D,
    _L.GlobalAveragePooling2D, _L.GlobalMaxPooling2D, _L.ZeroPadding2D, _L.Cropping2D)
_MERGES = (_L.Add, _L.Subtract, _L.Maximum, _L.Minimum, _L.Average, _L.Multiply)


class _UnionFind:
    def __init__(self):
        self.parent: List[int] = []

    def new(self) -> int:
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, item: int) -> int:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, items: List[int]) -> int:
        roots = sorted({self.find(i) for i in items})
        for root in roots[1:]:
            self.parent[root] = roots[0]
        return roots[0]


@dataclasses.dataclass(frozen=True)
class GraphNode:
    """One call of a layer in a model's graph.

    Attributes:
      name: the layer's name (`model.get_layer(name)`).
      index: the call's node index (see `TensorRef`).
      inbound: the tensors of the call's first argument (a layer's input).
      other_inbound: the tensors passed as other arguments (e.g. `mask=`).
    """

    name: str
    index: int
    inbound: Tuple[TensorRef, ...]
    other_inbound: Tuple[TensorRef, ...] = ()


@dataclasses.dataclass(frozen=True)
class LayerGraph:
    """A model's layer calls in dependency order, and its input and output tensors.

    `nodes` holds no node for the model's `InputLayer`s: their tensors are `inputs`
    (in the order of `model.inputs`).
    """

    nodes: Tuple[GraphNode, ...]
    inputs: Tuple[TensorRef, ...]
    outputs: Tuple[TensorRef, ...]


def _is_tensor_ref(item, names) -> bool:
    # tf_keras node data: [name, node, tensor] or [name, node, tensor, kwargs]
    # (constants in the first argument are ["_CONSTANT_VALUE", -1, value, kwargs]).
    return (isinstance(item, (list, tuple)) and len(item) in (3, 4) and isinstance(item[0], str)
            and item[0] in names and isinstance(item[1], int) and isinstance(item[2], int))


def _call_inbound(call_data, names) -> Tuple[Tuple[TensorRef, ...], Tuple[TensorRef, ...]]:
    """The tensors one serialised call reads: (first argument's, other arguments')."""
    first, others = [], []

    def walk_arguments(item):
        if _is_tensor_ref(item, names):
            others.append((item[0], item[1], item[2]))
        elif isinstance(item, dict):
            for value in item.values():
                walk_arguments(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk_arguments(value)

    def walk_first(item):
        if isinstance(item, (list, tuple)) and len(item) in (3, 4) and isinstance(item[0], str):
            if _is_tensor_ref(item, names):
                first.append((item[0], item[1], item[2]))
            if len(item) == 4:
                walk_arguments(item[3])
        elif isinstance(item, dict):
            for value in item.values():
                walk_first(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                walk_first(value)

    walk_first(call_data)
    return tuple(first), tuple(dict.fromkeys(ref for ref in others if ref not in first))


def layer_graph(model: keras.Model) -> LayerGraph:
    """The layer calls of a Sequential or Functional model, read from `model.get_config()`.

    Only the model's own graph: a nested model is one node (its insides are not
    followed).

    Args:
      model: a Sequential or Functional tf_keras model.
    """
    if isinstance(model, keras.Sequential):
        # A chain from its input (the `InputLayer`'s tensor, named after it), when known.
        inputs = () if model.inputs is None else ((model.inputs[0].name, 0, 0),)
        nodes, previous = [], inputs
        for layer in model.layers:
            nodes.append(GraphNode(layer.name, 0, previous))
            previous = ((layer.name, 0, 0),)
        return LayerGraph(tuple(nodes), inputs, previous if nodes else ())
    config = model.get_config()
    layer_configs = config["layers"]
    names = {layer_config["name"] for layer_config in layer_configs}
    inputs = tuple((name, node, tensor) for name, node, tensor in config["input_layers"])
    outputs = tuple((name, node, tensor) for name, node, tensor in config["output_layers"])
    calls = {}  # layer name -> the inbound tensors of each of its calls, in order
    for layer_config in layer_configs:
        if layer_config.get("class_name") != "InputLayer":
            calls[layer_config["name"]] = [_call_inbound(data, names)
                                           for data in layer_config.get("inbound_nodes") or []]
    # A layer's calls are numbered from the smallest index any tensor reference uses
    # (0, or 1 for a nested Functional model, whose first call is its own graph).
    first_index = {}
    referenced = [ref for inbound in calls.values() for call in inbound
                  for refs in call for ref in refs]
    for ref in referenced + list(outputs):
        first_index[ref[0]] = min(ref[1], first_index.get(ref[0], ref[1]))
    by_key = {}
    for name, inbound in calls.items():
        for offset, (refs, other_refs) in enumerate(inbound):
            index = first_index.get(name, 0) + offset
            by_key[(name, index)] = GraphNode(name, index, refs, other_refs)
    ordered, done = [], {(name, node) for name, node, _ in inputs}

    def visit(key):  # dependencies first (iteratively: deep models)
        stack = [(key, False)]
        while stack:
            current, expanded = stack.pop()
            if current in done:
                continue
            if expanded:
                done.add(current)
                ordered.append(by_key[current])
                continue
            stack.append((current, True))
            node = by_key[current]
            for ref in reversed(node.inbound + node.other_inbound):
                if (ref[0], ref[1]) not in done and (ref[0], ref[1]) in by_key:
                    stack.append(((ref[0], ref[1]), False))

    for key in by_key:
        visit(key)
    return LayerGraph(tuple(ordered), inputs, outputs)


def coupled_channel_sets(model: keras.Model) -> Dict[str, int]:
    """Channel set of every prunable kernel of a Functional model's top-level graph.

    Args:
      model: a Sequential or Functional tf_keras model.

    Returns:
      {layer name: set id} for the `Conv2D`, `Dense` and (depth multiplier 1)
      `DepthwiseConv2D` layers whose output channels are tied to another such
      layer's (same id = the same channel indices must be removed). Layers whose
      channels are free are not in the dict; sets touching a model output are left
      out too (the outputs' channels cannot be removed).
    """
    graph = layer_graph(model)
    output_names = [ref[0] for ref in graph.outputs]
    sets = _UnionFind()
    output_set: Dict[str, int] = {ref[0]: sets.new() for ref in graph.inputs}
    members: Dict[str, int] = {}
    for node in graph.nodes:
        name = node.name
        if name in output_set:  # a shared layer: its first call decides
            continue
        layer = model.get_layer(name)
        inputs = [output_set[ref[0]] for ref in node.inbound if ref[0] in output_set]
        if isinstance(layer, _L.DepthwiseConv2D):
            if layer.depth_multiplier == 1 and len(inputs) == 1:
                output_set[name] = inputs[0]
                members[name] = inputs[0]
            else:
                output_set[name] = sets.new()
        elif isinstance(layer, (_L.Conv2D, _L.Dense)) and not isinstance(
                layer, _L.Conv2DTranspose):
            output_set[name] = sets.new()
            members[name] = output_set[name]
        elif isinstance(layer, _CHANNELWISE) and len(inputs) == 1:
            output_set[name] = inputs[0]
        elif isinstance(layer, _MERGES) and inputs:
            output_set[name] = sets.union(inputs)
        else:
            output_set[name] = sets.new()
    pinned = {sets.find(output_set[n]) for n in output_names if n in output_set}
    by_set: Dict[int, List[str]] = {}
    for name, item in members.items():
        by_set.setdefault(sets.find(item), []).append(name)
    coupled = {}
    for index, (root, names) in enumerate(sorted(by_set.items())):
        if len(names) > 1 and root not in pinned:
            coupled.update({name: index for name in names})
    return coupled


def _channel_axis(weight) -> int:
    """The kernel axis that indexes output channels (depthwise: its input channels)."""
    return 2 if weight.depthwise else len(weight.shape) - 1


def plan_masks(plans, values) -> List[np.ndarray]:
    """0/1 masks of every plan's projection, coupled sets deciding their channels jointly.

    A plan with `coupling=None` uses its structure's own mask. The plans of one
    coupled set (filter structure, one rate) remove the same channels: the
    round(rate * C) channels with the smallest joint norm
    sqrt(sum_members ||W_member[..., c]||^2), the group-lasso norm of the whole
    channel across the set.

    Args:
      plans: `registry.LayerPlan`s.
      values: one kernel value (NumPy) per plan.
    """
    values = [np.asarray(v) for v in values]
    masks: List[Optional[np.ndarray]] = [None] * len(plans)
    by_set: Dict[int, List[int]] = {}
    for index, plan in enumerate(plans):
        if plan.coupling is None:
            masks[index] = plan.structure.mask(values[index], plan.rate, plan.weight.depthwise)
        else:
            by_set.setdefault(plan.coupling, []).append(index)
    for indices in by_set.values():
        squared = None
        for index in indices:
            axis = _channel_axis(plans[index].weight)
            other = tuple(a for a in range(values[index].ndim) if a != axis)
            channel_sums = np.sum(np.square(values[index], dtype=np.float64), axis=other)
            squared = channel_sums if squared is None else squared + channel_sums
        keep = np.ones(squared.shape[0], np.float32)
        removed = int(round(plans[indices[0]].rate * squared.shape[0]))
        keep[np.argsort(np.sqrt(squared), kind="stable")[:removed]] = 0.0
        for index in indices:
            shape = [1] * values[index].ndim
            shape[_channel_axis(plans[index].weight)] = -1
            masks[index] = np.broadcast_to(keep.reshape(shape), values[index].shape).astype(
                np.float32)
    return masks
