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
public description of the layer graph), in the spirit of the channel-dependency
graphs of structured-pruning libraries (e.g. Fang et al., "DepGraph", CVPR 2023):
every `Conv2D` / `Dense` output starts a channel set; layers that act channel by
channel (normalisation, activations, pooling, dropout, zero padding, depthwise
convolution with depth multiplier 1) carry it on; `Add`-like merges join the sets
of their inputs. Any other layer starts a fresh, uncoupled set. Nested sub-models
are not followed (their kernels stay uncoupled).
"""

from typing import Dict, List, Optional

import numpy as np

from mcmia_tf.compat import keras

__all__ = ["coupled_channel_sets", "plan_masks"]

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


def _inbound_layer_names(layer_config: dict) -> List[str]:
    """Names of the layers feeding a layer's first call, from its config."""
    nodes = layer_config.get("inbound_nodes") or []
    if not nodes:
        return []
    return [entry[0] for entry in nodes[0]]  # tf_keras: [[name, node, tensor, kwargs], ...]


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
    if isinstance(model, keras.Sequential):
        layer_configs = [{"name": layer.name, "inbound_nodes": []} for layer in model.layers]
        for previous, config in zip(layer_configs, layer_configs[1:]):
            config["inbound_nodes"] = [[[previous["name"], 0, 0, {}]]]
        output_names = [model.layers[-1].name]
    else:
        config = model.get_config()
        layer_configs = config["layers"]
        output_names = [entry[0] for entry in config["output_layers"]]
    sets = _UnionFind()
    output_set: Dict[str, int] = {}
    members: Dict[str, int] = {}
    for layer_config in layer_configs:
        name = layer_config["name"]
        layer = model.get_layer(name)
        inputs = [output_set[n] for n in _inbound_layer_names(layer_config) if n in output_set]
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
