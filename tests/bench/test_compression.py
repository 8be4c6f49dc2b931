"""The benchmarks' pruner factory: every method honours `exclude` (a layer left dense)."""

import pytest

from bench import compression
from mcmia_tf import pruning
from mcmia_tf.compat import keras


def _model():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, name="depthwise")(x)
    x = keras.layers.Conv2D(16, 3, name="pointwise")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


@pytest.mark.parametrize("method", compression.PRUNER_METHODS)
def test_every_method_leaves_the_excluded_layer_out_of_its_plan(method):
    model = pruning.make_prunable(_model())
    depthwise = [w.path for w in pruning.find_prunable_weights(model) if w.depthwise]
    assert len(depthwise) == 1
    planned = compression.make_pruner(method, "unstructured", 0.9, prune_at=4,
                                      steps_per_epoch=4, exclude=depthwise).plan(model)
    paths = [plan.weight.path for plan in planned]
    assert depthwise[0] not in paths and len(paths) == 3
    # Without `exclude` the depthwise kernel is pruned like the others.
    planned = compression.make_pruner(method, "unstructured", 0.9, prune_at=4,
                                      steps_per_epoch=4).plan(model)
    assert depthwise[0] in [plan.weight.path for plan in planned]
