"""Model surgery: physically remove pruned filters and channels from a tf_keras model.

Structured pruning (the `filter` and `channel` structures of `mcmia_tf.pruning`,
Network Slimming's zeroed batch-norm scales) leaves whole channels that carry
no information, but a dense kernel still computes them: the file shrinks after
compression, the latency does not move. This module rebuilds the model with
those channels gone, so every runtime (LiteRT, XNNPACK, TFLite Micro) runs a
genuinely smaller dense network. tfmot has no equivalent.

A channel `c` of a tensor (a Conv2D/Dense output, carried through per-channel
layers: batch norm, activations, pooling, dropout, depthwise convolution,
residual `Add`, `Flatten`) is removed when, at every layer that reads it,

* the reading weights are all zero (channel pruning: the channel is unused), or
* the channel is a known constant `v` (filter pruning: its kernel slice is
  zero, so it equals `act(bias_c)`; or its batch norm has `gamma_c = 0`, so it
  equals `act(beta_c)`), and the reader can absorb it exactly. A Dense reader
  absorbs it into its bias, `b' = b + sum_p v * W[p*C + c, :]`; a Conv2D reader
  with 'valid' padding absorbs `b' = b + v * sum_{i,j} K[i, j, c, :]`. Under
  'same' padding the zero border makes the contribution position-dependent:
  the reader becomes a `Conv2DWithBiasMap` holding the exact per-position map
  `conv(v * ones, K[:, :, c])` (`v = 0` needs nothing). A constant the reader
  cannot absorb exactly keeps its channel (`SurgeryReport.kept_for_exactness`).

Channels of model inputs and outputs, and channels reaching layers this module
does not know (Concatenate, Reshape, Lambda, nested models...), are never
removed. Outputs are identical to the original model's up to float rounding.
"""

import dataclasses
import json
from typing import Optional

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import ensure_tf_keras_model, has_layer_graph, keras
from tflite_export import channel_graph
from tflite_export.bias_map_conv import Conv2DWithBiasMap

__all__ = ["SurgeryReport", "remove_pruned_channels"]

_L = keras.layers

@dataclasses.dataclass(frozen=True)
class SurgeryReport:
    """What surgery removed, per group of tensors sharing channels (named by their producers).

    Attributes:
      channels_before: channels of each producer layer before surgery.
      channels_after: channels left.
      kept_for_exactness: constant channels kept because a reader could not
        absorb them exactly (a 'same' convolution with an unknown input size).
      bias_map_layers: 'same' convolutions rebuilt as `Conv2DWithBiasMap` to
        absorb removed constant channels exactly.
      parameters_before: parameter count of the original model.
      parameters_after: parameter count of the rebuilt model.
    """

    channels_before: dict
    channels_after: dict
    kept_for_exactness: dict
    bias_map_layers: tuple
    parameters_before: int
    parameters_after: int

    @property
    def parameter_reduction(self) -> float:
        """`parameters_before / parameters_after`."""
        return self.parameters_before / max(self.parameters_after, 1)

    def to_dict(self) -> dict:
        result = dataclasses.asdict(self)
        result["parameter_reduction"] = self.parameter_reduction
        return result

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _reader_slice(layer, kernel: np.ndarray, channel: int, size: int, positions: int):
    if isinstance(layer, _L.Dense):
        return kernel[np.arange(positions) * size + channel]
    return kernel[:, :, channel, :]


def _absorbs_uniformly(layer, value: float) -> bool:
    """Whether a constant input channel adds the same vector at every output position."""
    return isinstance(layer, _L.Dense) or value == 0.0 or layer.padding == "valid"


def _absorbs_as_bias_map(layer) -> bool:
    """A 'same' conv with a static input size takes the border effect as a bias map."""
    return isinstance(layer, _L.Conv2D) and None not in tuple(layer.input_shape[1:3])


def _bias_map(layer, kernel: np.ndarray, channel: int, value: float) -> np.ndarray:
    """`conv(v * ones(H, W, 1), K[:, :, c:c+1, :])`: the channel's exact contribution."""
    height, width = layer.input_shape[1:3]
    constant_image = tf.fill((1, height, width, 1), tf.constant(value, tf.float32))
    slice_kernel = tf.constant(kernel[:, :, channel:channel + 1, :], tf.float32)
    return layer.convolution_op(constant_image, slice_kernel).numpy()[0].astype(np.float64)


def _absorbed_bias(layer, kernel: np.ndarray, channel: int, size: int, positions: int,
                   value: float) -> np.ndarray:
    weights = _reader_slice(layer, kernel, channel, size, positions)
    return value * weights.reshape(-1, weights.shape[-1]).sum(axis=0)


@dataclasses.dataclass
class _LayerEdit:
    keep_inputs: Optional[np.ndarray] = None     # reader: kept rows / input channels
    keep_outputs: Optional[np.ndarray] = None    # producer: kept filters / units
    keep_channels: Optional[np.ndarray] = None   # channelwise layer: kept slices
    bias_delta: Optional[np.ndarray] = None      # reader: absorbed constants
    bias_map: Optional[np.ndarray] = None        # 'same' conv reader: absorbed border effect


def _plan(groups) -> tuple:
    edits, before, after, kept_for_exactness = {}, {}, {}, {}
    for group in groups:
        name = "+".join(sorted(layer.name for layer in group.producers)) or "input"
        removable = np.zeros(group.size, bool)
        blocked = np.zeros(group.size, bool)
        if not group.pinned and group.readers and group.producers:
            removable[:] = True
            for layer, positions, constants in group.readers:
                kernel = layer.kernel.numpy()
                for channel in range(group.size):
                    if np.all(_reader_slice(layer, kernel, channel, group.size, positions) == 0):
                        continue
                    value = constants[channel]
                    if not np.isfinite(value):
                        removable[channel] = False
                    elif not (_absorbs_uniformly(layer, value) or _absorbs_as_bias_map(layer)):
                        removable[channel] = False
                        blocked[channel] = True
        if removable.all():
            # A dead branch (every channel constant): keep one channel so that every
            # layer keeps at least one filter; its constant flows on unchanged.
            removable[0] = False
        keep = np.flatnonzero(~removable)
        if group.producers:
            before[name], after[name] = group.size, len(keep)
            kept_for_exactness[name] = int(blocked.sum())
        if not removable.any():
            continue
        for layer in group.producers:
            edits.setdefault(layer.name, _LayerEdit()).keep_outputs = keep
        for layer in group.channelwise:
            edits.setdefault(layer.name, _LayerEdit()).keep_channels = keep
        for layer, positions, constants in group.readers:
            edit = edits.setdefault(layer.name, _LayerEdit())
            kernel = layer.kernel.numpy()
            delta = np.zeros(kernel.shape[-1])
            for channel in np.flatnonzero(removable):
                value = constants[channel]
                if not np.isfinite(value) or np.all(
                        _reader_slice(layer, kernel, channel, group.size, positions) == 0):
                    continue
                if _absorbs_uniformly(layer, value):
                    delta += _absorbed_bias(layer, kernel, channel, group.size, positions, value)
                else:
                    contribution = _bias_map(layer, kernel, channel, value)
                    edit.bias_map = contribution if edit.bias_map is None else (
                        edit.bias_map + contribution)
            edit.bias_delta = delta
            edit.keep_inputs = (np.arange(positions)[:, None] * group.size
                                + keep[None, :]).reshape(-1)
    return edits, before, after, kept_for_exactness


def _needs_bias(layer, edit: _LayerEdit) -> bool:
    """Whether the rebuilt layer has a bias: its own, or absorbed constants on kept outputs."""
    if layer.use_bias:
        return True
    if edit.bias_delta is None:
        return False
    delta = edit.bias_delta if edit.keep_outputs is None else edit.bias_delta[edit.keep_outputs]
    return bool(np.any(delta != 0))


def _new_weights(layer, edit: _LayerEdit) -> list:
    if isinstance(layer, _L.BatchNormalization):
        return [w[edit.keep_channels] for w in layer.get_weights()]
    if isinstance(layer, _L.DepthwiseConv2D):
        weights = [layer.get_weights()[0][:, :, edit.keep_channels, :]]
        if layer.use_bias:
            weights.append(layer.get_weights()[1][edit.keep_channels])
        return weights
    kernel = layer.kernel.numpy()
    bias = layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[-1], np.float32)
    if edit.bias_delta is not None:
        bias = bias + edit.bias_delta
    if edit.keep_inputs is not None:
        kernel = kernel[edit.keep_inputs] if isinstance(layer, _L.Dense) else kernel[
            :, :, edit.keep_inputs, :]
    if edit.keep_outputs is not None:
        kernel, bias = kernel[..., edit.keep_outputs], bias[edit.keep_outputs]
    weights = [kernel, bias.astype(np.float32)] if _needs_bias(layer, edit) else [kernel]
    if edit.bias_map is not None:
        bias_map = edit.bias_map if edit.keep_outputs is None else edit.bias_map[
            ..., edit.keep_outputs]
        weights.append(bias_map.astype(np.float32))
    return weights


def remove_pruned_channels(model: keras.Model, verify_inputs: Optional[np.ndarray] = None,
                           atol: float = 1e-4) -> tuple:
    """Rebuilds `model` without its pruned filters and channels (see the module docstring).

    Args:
      model: a Functional or Sequential tf_keras model with exact zeros where it
        was pruned (strip tfmot pruning wrappers first).
      verify_inputs: optional inputs on which the rebuilt model's outputs are
        checked against the original's.
      atol: largest absolute output difference `verify_inputs` may show.

    Returns:
      `(smaller_model, SurgeryReport)`; the smaller model is uncompiled.

    Raises:
      ValueError: for a subclassed model, or if the verification fails.
    """
    model = ensure_tf_keras_model(model)
    if not has_layer_graph(model):
        raise ValueError(
            "Invalid value for argument `model`. Expected a Functional or Sequential model "
            f"with a known input shape; received a subclassed model ({type(model).__name__}), "
            "whose graph cannot be rebuilt. Rebuild it with the Functional API.")
    groups = channel_graph.analyse(model)
    edits, before, after, kept_for_exactness = _plan(groups)

    def clone_layer(layer):
        config = layer.get_config()
        edit = edits.get(layer.name)
        if edit is not None and edit.keep_outputs is not None:
            config["filters" if "filters" in config else "units"] = len(edit.keep_outputs)
        if edit is not None and "use_bias" in config and _needs_bias(layer, edit):
            config["use_bias"] = True
        if edit is not None and edit.bias_map is not None:
            height, width = edit.bias_map.shape[:2]
            config["bias_map_shape"] = [height, width, config["filters"]]
            return Conv2DWithBiasMap.from_config(config)
        return layer.__class__.from_config(config)

    smaller = keras.models.clone_model(model, clone_function=clone_layer)
    for layer in model.layers:
        if not layer.weights:
            continue
        edit = edits.get(layer.name)
        weights = layer.get_weights() if edit is None else _new_weights(layer, edit)
        smaller.get_layer(layer.name).set_weights(weights)
    report = SurgeryReport(channels_before=before, channels_after=after,
                           kept_for_exactness=kept_for_exactness,
                           bias_map_layers=tuple(sorted(
                               name for name, edit in edits.items() if edit.bias_map is not None)),
                           parameters_before=int(model.count_params()),
                           parameters_after=int(smaller.count_params()))
    if verify_inputs is not None:
        difference = float(np.max(np.abs(model.predict_on_batch(verify_inputs)
                                          - smaller.predict_on_batch(verify_inputs))))
        if difference > atol:
            raise ValueError(f"Surgery changed the outputs by up to {difference:.3g} "
                             f"(> atol={atol}); please report this model.")
    return smaller, report
