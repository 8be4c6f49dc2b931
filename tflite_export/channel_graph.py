"""The channel graph of a tf_keras model: which channels are constant, which are unused.

Surgery (`surgery.py`) needs, for every tensor of a Functional model, which of its
channels are known constants and who reads them. This module walks the graph once,
in dependency order (read from `model.get_config()` by
`mcmia_tf.pruning.coupling.layer_graph`, the parser pruning's coupling uses), and
groups tensors that share one channel axis: a Conv2D / Dense output carried
through per-channel layers (batch norm, activations, pooling, dropout, zero
padding, depthwise convolution), `Flatten` (channel `c` of an `H x W x C` tensor
becomes rows `p * C + c`), and residual `Add`s (which join the groups of their
inputs). Per tensor it propagates the constant value of
each channel, NaN when the channel varies:

* a Conv2D / Dense output channel with an all-zero kernel slice is `act(bias_c)`;
* inference batch norm maps `v` to `gamma (v - mean) / sqrt(var + eps) + beta`, and
  makes the channel `beta_c` whatever its input when `gamma_c = 0`;
* activations apply to the constant; pooling keeps it (TF's average pooling
  divides by the number of valid, unpadded positions; max pooling ignores
  padding); zero padding keeps only `v = 0`; a 'valid' depthwise convolution
  maps `v` to `v * sum(k_c) + b_c`; `Add` sums constants.

Groups touching a model input or output, a shared layer, a softmax or any layer
this module does not know are pinned: none of their channels may be removed.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning.coupling import layer_graph

__all__ = ["Group", "TensorInfo", "analyse", "is_reader"]

_L = keras.layers
# Layers applied channel by channel, with no parameters.
_ELEMENTWISE = (_L.Activation, _L.ReLU, _L.LeakyReLU, _L.ELU, _L.Dropout, _L.SpatialDropout2D,
                _L.GaussianNoise, _L.GaussianDropout)
# Pooling keeps a constant channel constant (TF's average pooling divides by the
# number of valid, unpadded positions; max pooling ignores padding).
_POOLING = (_L.MaxPooling2D, _L.AveragePooling2D, _L.GlobalAveragePooling2D,
            _L.GlobalMaxPooling2D)


class Group:
    """Tensors sharing one channel axis (joined by per-channel layers and `Add`).

    Groups joined by an `Add` form a union-find tree; `root()` is the group that
    holds the merged lists.

    Attributes:
      size: number of channels.
      pinned: no channel may be removed.
      producers: Conv2D / Dense layers whose outputs are this axis.
      channelwise: layers with one parameter slice per channel (BN, depthwise).
      readers: `(layer, positions, constants)` for each Conv2D / Dense reading the
        axis, `positions` being the spatial size a `Flatten` folded into it and
        `constants` the channel constants at its input.
    """

    def __init__(self, size: int):
        self.size = size
        self.parent = self
        self.pinned = False
        self.producers = []
        self.channelwise = []
        self.readers = []

    def root(self) -> "Group":
        group = self
        while group.parent is not group:
            group = group.parent
        return group


def merge(groups: list) -> "Group":
    """Joins the groups an `Add` sums into one; returns the root."""
    roots = list({id(g.root()): g.root() for g in groups}.values())
    head = roots[0]
    for other in roots[1:]:
        if other.size != head.size:
            raise ValueError(f"Cannot add tensors with {head.size} and {other.size} channels.")
        other.parent = head
        head.pinned |= other.pinned
        head.producers += other.producers
        head.channelwise += other.channelwise
        head.readers += other.readers
    return head


@dataclasses.dataclass
class TensorInfo:
    """What the analysis knows about one tensor."""

    group: Group
    positions: int            # spatial positions folded into the last axis by Flatten
    constants: np.ndarray     # per channel: its constant value, NaN if it varies


def _apply_elementwise(layer, constants: np.ndarray) -> np.ndarray:
    """The layer (or activation) applied to each finite constant; NaN stays NaN."""
    finite = np.isfinite(constants)
    values = np.asarray(layer(tf.constant(np.where(finite, constants, 0.0)[None],
                                          tf.float32)))[0].astype(np.float64)
    return np.where(finite, values, np.nan)


def _mixes_channels(layer) -> bool:
    activation = getattr(layer, "activation", None)
    return isinstance(layer, _L.Softmax) or getattr(activation, "__name__", "") in (
        "softmax", "log_softmax")


def _activation(layer):
    return keras.activations.get(layer.get_config().get("activation", "linear"))


def is_reader(layer) -> bool:
    """Layers whose kernels read channels: Dense and plain (ungrouped, NHWC) Conv2D."""
    if isinstance(layer, _L.Dense):
        return True
    return (type(layer) is _L.Conv2D and layer.groups == 1  # pylint: disable=unidiomatic-typecheck
            and layer.data_format == "channels_last")


def _producer_constants(layer) -> np.ndarray:
    """Output channels of a Conv2D/Dense with an all-zero kernel slice equal act(bias)."""
    kernel = layer.kernel.numpy()
    dead = np.all(kernel.reshape(-1, kernel.shape[-1]) == 0, axis=0)
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1])
    constants = np.where(dead, bias, np.nan)
    return _apply_elementwise(_activation(layer), constants)


def _batch_norm_constants(layer, constants: np.ndarray) -> np.ndarray:
    """Inference batch norm `gamma (v - mean) / sqrt(var + eps) + beta`; gamma = 0 -> beta."""
    size = len(constants)
    gamma = layer.gamma.numpy() if layer.scale else np.ones(size)
    beta = layer.beta.numpy() if layer.center else np.zeros(size)
    normalized = (constants - layer.moving_mean.numpy()) / np.sqrt(
        layer.moving_variance.numpy() + layer.epsilon)
    return np.where(gamma == 0, beta, gamma * normalized + beta)


def _depthwise_constants(layer, constants: np.ndarray) -> np.ndarray:
    kernel = layer.depthwise_kernel.numpy()[:, :, :, 0]
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1])
    passes = (constants == 0) | (layer.padding == "valid")
    values = np.where(passes, constants * kernel.sum(axis=(0, 1)) + bias, np.nan)
    values = np.where(np.all(kernel == 0, axis=(0, 1)), bias, values)
    return _apply_elementwise(_activation(layer), values)


def _is_channelwise_layer(layer, rank: int) -> bool:
    if isinstance(layer, _L.BatchNormalization):
        axis = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
        return [a % rank for a in axis] == [rank - 1]
    if isinstance(layer, _L.DepthwiseConv2D):
        return layer.depth_multiplier == 1 and layer.data_format == "channels_last"
    return False


def _call_outputs(layer, inputs: list) -> list:
    """The output KerasTensors of the call of `layer` whose first argument is `inputs`.

    The public `get_input_at` / `get_output_at` number every call of the layer,
    also those outside this model, so the call is found by its input tensors.
    """
    wanted = {id(tensor) for tensor in inputs}
    index = 0
    while True:
        try:
            call_inputs = tf.nest.flatten(layer.get_input_at(index))
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"Layer {layer.name} has no call on the tensors the model's "
                             "config gives it.") from error
        if wanted <= {id(tensor) for tensor in call_inputs}:
            return tf.nest.flatten(layer.get_output_at(index))
        index += 1


def analyse(model) -> list:
    """Walks the graph once, in dependency order; returns the channel groups (`Group`)."""
    infos = {}  # id(KerasTensor) -> TensorInfo
    groups = []

    def new_group(tensor, pinned=False, producer=None, constants=None):
        size = int(tensor.shape[-1]) if tensor.shape.rank else 1
        group = Group(size)
        group.pinned = pinned
        if producer is not None:
            group.producers.append(producer)
        groups.append(group)
        if constants is None:
            constants = np.full(size, np.nan)
        infos[id(tensor)] = TensorInfo(group, 1, constants)

    def pin_inputs(inputs):
        for tensor in inputs:
            if id(tensor) in infos:
                infos[id(tensor)].group.root().pinned = True

    graph = layer_graph(model)
    tensors = {}  # (layer name, node index) -> the call's output KerasTensors
    for ref, tensor in zip(graph.inputs, model.inputs):
        tensors[ref[:2]] = [tensor]
        new_group(tensor, pinned=True)
    node_counts = {}
    for node in graph.nodes:
        node_counts[node.name] = node_counts.get(node.name, 0) + 1
    for node in graph.nodes:
        layer = model.get_layer(node.name)
        inputs = [tensors[ref[:2]][ref[2]] for ref in node.inbound + node.other_inbound]
        outputs = _call_outputs(layer, inputs[:len(node.inbound)])
        tensors[(node.name, node.index)] = outputs
        known = [infos[id(t)] for t in inputs if id(t) in infos]
        for info in known:  # groups joined by an `Add` since this tensor was seen
            info.group = info.group.root()
        single = known[0] if len(known) == 1 and len(inputs) == 1 else None
        if node_counts[layer.name] > 1 or _mixes_channels(layer):
            # A shared layer cannot take one slicing for all its uses; a softmax
            # normalises over the channels, so none can be removed around it.
            single, known = None, []
        if is_reader(layer) and single is not None:
            single.group.readers.append((layer, single.positions, single.constants))
            new_group(outputs[0], producer=layer, constants=_producer_constants(layer))
        elif single is not None and single.positions == 1 and (
                isinstance(layer, _ELEMENTWISE + _POOLING + (_L.ZeroPadding2D,))
                or _is_channelwise_layer(layer, inputs[0].shape.rank)):
            constants = single.constants
            if isinstance(layer, _ELEMENTWISE):
                constants = _apply_elementwise(layer, constants)
            elif isinstance(layer, _L.ZeroPadding2D):
                constants = np.where(constants == 0, 0.0, np.nan)
            elif isinstance(layer, _L.BatchNormalization):
                constants = _batch_norm_constants(layer, constants)
                single.group.channelwise.append(layer)
            elif isinstance(layer, _L.DepthwiseConv2D):
                constants = _depthwise_constants(layer, constants)
                single.group.channelwise.append(layer)
            infos[id(outputs[0])] = TensorInfo(single.group, 1, constants)
        elif single is not None and isinstance(layer, _L.Flatten):
            spatial = int(np.prod(inputs[0].shape[1:-1])) * single.positions
            infos[id(outputs[0])] = TensorInfo(single.group, spatial, single.constants)
        elif single is not None and single.positions > 1 and isinstance(layer, _ELEMENTWISE):
            infos[id(outputs[0])] = TensorInfo(
                single.group, single.positions, _apply_elementwise(layer, single.constants))
        elif (isinstance(layer, _L.Add) and len(known) == len(inputs)
              and all(info.positions == 1 for info in known)):
            group = merge([info.group for info in known])
            constants = np.sum([info.constants for info in known], axis=0)
            infos[id(outputs[0])] = TensorInfo(group, 1, constants)
        else:  # a layer this module cannot see through: keep every channel around it
            pin_inputs(inputs)
            for tensor in outputs:
                new_group(tensor, pinned=True)
    for tensor in tf.nest.flatten(model.outputs):
        infos[id(tensor)].group.root().pinned = True
    return list({id(g.root()): g.root() for g in groups}.values())
