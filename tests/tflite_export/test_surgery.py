"""Surgery: pruned filters/channels physically removed, outputs unchanged."""

import json

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from tflite_export import converter
from tflite_export.bias_map_conv import Conv2DWithBiasMap
from tflite_export.runtime import TFLitePredictor
from tflite_export.surgery import remove_pruned_channels
from tests.helpers import randomize_batch_norms


def _randomize(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.normal(scale=0.3, size=w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    return randomize_batch_norms(model, seed)


def _zero_filters(layer, filters, zero_bias):
    kernel, bias = layer.get_weights()
    kernel[..., filters] = 0.0
    if zero_bias:
        bias[filters] = 0.0
    layer.set_weights([kernel, bias])


def _assert_same_outputs(model, smaller, input_shape, seed=0):
    x = np.random.default_rng(seed).random((8, *input_shape)).astype(np.float32)
    np.testing.assert_allclose(smaller.predict_on_batch(x), model.predict_on_batch(x),
                               atol=2e-5, rtol=1e-5)


def test_half_the_filters_of_a_valid_padded_lenet_are_removed():
    model = _randomize(build_model("lenet5", input_shape=(28, 28, 1), num_classes=10, seed=0), 1)
    for name, filters in (("conv1", 20), ("conv2", 50), ("fc1", 500)):
        # Kernel slices only: the biases stay, their constants are folded downstream.
        _zero_filters(model.get_layer(name), np.arange(0, filters, 2), zero_bias=False)
    smaller, report = remove_pruned_channels(model)
    assert report.channels_after == {"conv1": 10, "conv2": 25, "fc1": 250, "logits": 10}
    # conv1 5*5*1*10+10, conv2 5*5*10*25+25, fc1 (4*4*25)*250+250, logits 250*10+10.
    assert smaller.count_params() == report.parameters_after == 260 + 6275 + 100250 + 2510
    _assert_same_outputs(model, smaller, (28, 28, 1))


def test_same_padding_constants_become_an_exact_bias_map(tmp_path):
    model = _randomize(build_model("lenet5", input_shape=(8, 8, 1), num_classes=10, seed=0), 2)
    conv1 = model.get_layer("conv1")
    _zero_filters(conv1, np.arange(10), zero_bias=False)
    assert np.any(conv1.get_weights()[1][:10] > 0)  # relu(b) != 0: border effect in conv2
    smaller, report = remove_pruned_channels(model)
    assert report.channels_after["conv1"] == 10 and report.kept_for_exactness["conv1"] == 0
    assert report.bias_map_layers == ("conv2",)
    assert isinstance(smaller.get_layer("conv2"), Conv2DWithBiasMap)
    _assert_same_outputs(model, smaller, (8, 8, 1))
    # The bias map survives save / load and conversion.
    path = str(tmp_path / "smaller.keras")
    smaller.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    assert reloaded.get_layer("conv2").get_config() == smaller.get_layer("conv2").get_config()
    _assert_same_outputs(model, reloaded, (8, 8, 1))
    x = np.random.default_rng(0).random((8, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(TFLitePredictor(converter.convert(smaller)).predict(x),
                               model.predict_on_batch(x), atol=1e-4)


def test_bias_map_conv_round_trips_its_config():
    layer = Conv2DWithBiasMap(4, 3, padding="same", activation="relu", bias_map_shape=(5, 5, 4))
    clone = Conv2DWithBiasMap.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert clone.bias_map_shape == (5, 5, 4)
    with pytest.raises(ValueError, match="bias_map_shape"):
        Conv2DWithBiasMap(4, 3)


def test_zeroed_kernel_and_bias_are_removed_under_same_padding():
    model = _randomize(build_model("lenet5", input_shape=(8, 8, 1), num_classes=10, seed=0), 3)
    _zero_filters(model.get_layer("conv1"), np.arange(10), zero_bias=True)
    smaller, report = remove_pruned_channels(model)
    assert report.channels_after["conv1"] == 10 and report.kept_for_exactness["conv1"] == 0
    _assert_same_outputs(model, smaller, (8, 8, 1))


def _residual_model():
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(8, 3, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU()(x)
    branch = keras.layers.Conv2D(8, 1, name="branch")(x)
    branch = keras.layers.BatchNormalization(name="branch_bn")(branch)
    x = keras.layers.Activation("relu")(keras.layers.Add()([x, branch]))
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
    x = keras.layers.Conv2D(6, 1, name="pointwise")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, name="logits")(x)
    return _randomize(keras.Model(inputs, outputs), 4)


def test_residual_bn_and_depthwise_stay_consistent():
    model = _residual_model()
    # Channel 2: dead filter in both producers of the residual sum.
    _zero_filters(model.get_layer("stem"), [2], zero_bias=False)
    _zero_filters(model.get_layer("branch"), [2], zero_bias=False)
    # Channel 5: batch norm scales of zero make it constant on both sides.
    for name in ("stem_bn", "branch_bn"):
        weights = model.get_layer(name).get_weights()
        weights[0][5] = 0.0
        model.get_layer(name).set_weights(weights)
    # Channel 7: unused by every reader (channel pruning of "branch" and "pointwise").
    for name in ("branch", "pointwise"):
        kernel, bias = model.get_layer(name).get_weights()
        kernel[:, :, 7, :] = 0.0
        model.get_layer(name).set_weights([kernel, bias])
    smaller, report = remove_pruned_channels(model)
    assert report.channels_after["branch+stem"] == 5
    assert smaller.get_layer("depthwise").get_weights()[0].shape == (3, 3, 5, 1)
    assert smaller.get_layer("stem_bn").get_weights()[0].shape == (5,)
    _assert_same_outputs(model, smaller, (10, 10, 3))


def test_channel_pruned_dense_units_are_removed():
    inputs = keras.Input((6,))
    hidden = keras.layers.Dense(5, activation="tanh", name="hidden")(inputs)
    outputs = keras.layers.Dense(3, name="logits")(hidden)
    model = _randomize(keras.Model(inputs, outputs), 5)
    kernel, bias = model.get_layer("logits").get_weights()
    kernel[[1, 3], :] = 0.0  # units 1 and 3 feed nothing
    model.get_layer("logits").set_weights([kernel, bias])
    smaller, report = remove_pruned_channels(model)
    assert report.channels_after["hidden"] == 3
    np.testing.assert_array_equal(smaller.get_layer("hidden").get_weights()[0],
                                  model.get_layer("hidden").get_weights()[0][:, [0, 2, 4]])
    _assert_same_outputs(model, smaller, (6,))


def test_unknown_layers_and_outputs_pin_their_channels():
    inputs = keras.Input((4,))
    a = keras.layers.Dense(3, name="a")(inputs)
    b = keras.layers.Dense(3, name="b")(inputs)
    outputs = keras.layers.Dense(2, name="out")(keras.layers.Concatenate()([a, b]))
    model = _randomize(keras.Model(inputs, outputs), 6)
    _zero_filters(model.get_layer("a"), [0, 1], zero_bias=True)
    _zero_filters(model.get_layer("out"), [0], zero_bias=True)
    smaller, report = remove_pruned_channels(model)
    assert report.channels_after == report.channels_before
    assert smaller.count_params() == model.count_params()


def test_report_serialises_and_smaller_model_converts():
    model = _randomize(build_model("lenet5", input_shape=(8, 8, 1), num_classes=10, seed=0), 7)
    for name, filters in (("conv1", 20), ("conv2", 50), ("fc1", 500)):
        _zero_filters(model.get_layer(name), np.arange(filters // 2), zero_bias=True)
    smaller, report = remove_pruned_channels(model, verify_inputs=np.zeros((2, 8, 8, 1)))
    assert json.loads(report.to_json())["parameter_reduction"] == pytest.approx(
        report.parameters_before / report.parameters_after)
    assert len(converter.convert(smaller)) < 0.4 * len(converter.convert(model))


def test_subclassed_model_is_rejected():
    class Subclassed(keras.Model):

        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="subclassed"):
        remove_pruned_channels(model)


def test_softmax_over_channels_keeps_them():
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(5, name="hidden")(inputs)
    normalised = keras.layers.Activation("softmax")(hidden)
    outputs = keras.layers.Dense(2, name="logits")(normalised)
    model = _randomize(keras.Model(inputs, outputs), 8)
    _zero_filters(model.get_layer("hidden"), [0, 1], zero_bias=True)
    smaller, report = remove_pruned_channels(model)
    assert report.channels_after["hidden"] == 5
    _assert_same_outputs(model, smaller, (4,))


def test_a_dead_layer_keeps_one_filter_and_the_outputs():
    # Every filter of conv1 zeroed (a dead branch): the rebuilt conv1 keeps one filter
    # (a layer with zero filters cannot be built), the constant flows on unchanged.
    model = _randomize(build_model("lenet5", input_shape=(8, 8, 1), num_classes=10, seed=0), 5)
    kernel, bias = model.get_layer("conv1").get_weights()
    _zero_filters(model.get_layer("conv1"), np.arange(kernel.shape[-1]), zero_bias=False)
    smaller, report = remove_pruned_channels(model)
    assert report.channels_after["conv1"] == 1
    assert smaller.get_layer("conv1").get_weights()[0].shape[-1] == 1
    _assert_same_outputs(model, smaller, (8, 8, 1))


def test_constants_absorbed_only_on_removed_outputs_add_no_bias():
    # A bias-free reader whose removed output filters are the only ones reading a
    # constant input channel: the absorbed bias is zero on every kept output, so the
    # rebuilt layer stays bias-free (the bias decision and the weights must agree).
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(4, 1, name="producer")(inputs)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(3, 1, use_bias=False, name="reader")(x)
    x = keras.layers.Conv2D(2, 1, use_bias=False, name="consumer")(x)
    outputs = keras.layers.Flatten()(x)
    model = _randomize(keras.Model(inputs, outputs), 6)
    kernel, bias = model.get_layer("producer").get_weights()
    kernel[..., 0] = 0.0
    bias[0] = 0.7          # channel 0 of the producer is the constant relu(0.7)
    model.get_layer("producer").set_weights([kernel, bias])
    reader = model.get_layer("reader").get_weights()[0]
    reader[0, 0, 0, 1:] = 0.0  # only reader output 0 reads that constant channel...
    reader[0, 0, :, 0] = 0.0   # ...and output 0 reads nothing else: it is removed
    reader[0, 0, 0, 0] = 0.5
    model.get_layer("reader").set_weights([reader])
    consumer = model.get_layer("consumer").get_weights()[0]
    consumer[0, 0, 0, :] = 0.0  # nothing reads reader output 0 beyond its constant
    model.get_layer("consumer").set_weights([consumer])
    smaller, _ = remove_pruned_channels(model)
    _assert_same_outputs(model, smaller, (6, 6, 2))
