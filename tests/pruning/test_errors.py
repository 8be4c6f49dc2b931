"""Bad input raises Keras-style errors that name the argument and the fix."""

import keras as keras3
import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.pruning import ADMMPruning
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import sparsity_report
from tests.pruning.models import tiny_cnn


@pytest.mark.parametrize("value", [1.0, 1.2, -0.1, "0.5", True])
def test_target_sparsity_outside_unit_interval(value):
    with pytest.raises(ValueError, match=r"argument `target_sparsity`. Expected a float in \[0, 1\)"):
        ReweightedPruning(value)


def test_unknown_structure():
    with pytest.raises(ValueError, match="argument `structure`. Expected one of"):
        ReweightedPruning(0.5, "rows")


def test_unknown_unit_and_negative_prune_at():
    with pytest.raises(ValueError, match="argument `unit`"):
        ADMMPruning(0.5, unit="batch")
    with pytest.raises(ValueError, match="argument `prune_at`"):
        ADMMPruning(0.5, prune_at=-2)


def test_n_m_when_m_does_not_divide_channels():
    pruner = ReweightedPruning(0.5, "2:3", exclude=["conv", "depthwise"])
    with pytest.raises(ValueError, match="M=3 to divide the number of input channels"):
        pruner.bind(tiny_cnn())


def test_pattern_on_non_3x3_kernel():
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Conv2D(2, 5, name="conv5x5")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(
        keras.layers.Flatten()(outputs)))
    pruner = ReweightedPruning(0.6, "pattern", layer_structure={"dense": "unstructured"})
    with pytest.raises(ValueError, match="needs 3x3 kernels, but layer 'conv5x5' has a 5x5"):
        pruner.bind(model)


def test_structure_that_does_not_fit_depthwise():
    with pytest.raises(ValueError, match="DepthwiseConv2D"):
        ReweightedPruning(0.5, "channel").bind(tiny_cnn())


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_subclassed_model_rejected_with_fix():
    model = _Subclassed()
    model(np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError, match="subclassed model.*`pruning_target`"):
        ReweightedPruning(0.5).bind(model)


def test_keras3_model_rejected_with_fix():
    model = keras3.Sequential([keras3.Input((3,)), keras3.layers.Dense(2)])
    with pytest.raises(TypeError, match="tf_keras"):
        ReweightedPruning(0.5).bind(model)
    with pytest.raises(TypeError, match="tf_keras"):
        sparsity_report(model)


def test_model_without_prunable_layers():
    model = keras.Sequential([keras.layers.Flatten(input_shape=(2, 2))])
    with pytest.raises(ValueError, match="no prunable layer"):
        ReweightedPruning(0.5).bind(model)


def test_unknown_layer_in_per_layer_rates_lists_the_layers():
    pruner = ReweightedPruning(0.5, layer_sparsity={"fc9": 0.9})
    with pytest.raises(ValueError, match=r"`layer_sparsity`. Layer names \['fc9'\].*'hidden'"):
        pruner.bind(tiny_cnn())
    with pytest.raises(ValueError, match="argument `exclude`"):
        ReweightedPruning(0.5, exclude=["nope"]).bind(tiny_cnn())


def test_per_layer_rate_outside_unit_interval():
    with pytest.raises(ValueError, match="layer_sparsity\\['hidden'\\]=1.5"):
        ReweightedPruning(0.5, layer_sparsity={"hidden": 1.5}).bind(tiny_cnn())


def test_unreachable_target_says_how_to_fix():
    pruner = ReweightedPruning(0.99, layer_sparsity={"conv": 0.0, "depthwise": 0.0,
                                                     "logits": 0.0})
    with pytest.raises(ValueError, match="Lower `target_sparsity`"):
        pruner.bind(tiny_cnn())


def test_strip_before_fit_needs_no_binding_but_metrics_do():
    pruner = ReweightedPruning(0.5)
    with pytest.raises(RuntimeError, match="callbacks"):
        pruner.metrics()
