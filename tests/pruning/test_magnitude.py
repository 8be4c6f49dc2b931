"""tfmot magnitude pruning layer by layer on the rates that `plan_layers` plans."""

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot

from mcmia_tf import pruning
from mcmia_tf.compat import keras
from tests.pruning.models import tiny_cnn

_SPARSITY = tfmot.sparsity.keras


def _constant(rate):
    return _SPARSITY.ConstantSparsity(rate, begin_step=0, frequency=1)


def _kernel(layer):
    return (layer.depthwise_kernel if hasattr(layer, "depthwise_kernel") else layer.kernel).numpy()


def test_every_layer_reaches_its_planned_rate():
    model = tiny_cnn()
    # tfmot does not prune depthwise kernels: the plan leaves them out.
    plans = pruning.plan_layers(model, 0.7, exclude=["depthwise"], edge_layer_sparsity=0.5)
    wrapped = pruning.prune_low_magnitude_planned(model, 0.7, _constant,
                                                  edge_layer_sparsity=0.5)
    # The trained layers are reused: the wrapper prunes the model's own kernels.
    assert wrapped.get_layer("prune_low_magnitude_conv").layer is model.get_layer("conv")
    wrapped.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    wrapped.fit(rng.normal(size=(16, 6, 6, 1)), rng.integers(0, 3, 16), epochs=1, batch_size=8,
                verbose=0, callbacks=[_SPARSITY.UpdatePruningStep()])
    stripped = _SPARSITY.strip_pruning(wrapped)
    rates = {plan.weight.path: plan.rate for plan in plans}
    assert rates["conv"] == rates["logits"] == 0.5   # the capped edges
    for path, rate in rates.items():
        kernel = _kernel(stripped.get_layer(path))
        # tfmot keeps round(n * (1 - rate)) weights of each kernel.
        assert np.sum(kernel == 0) == kernel.size - round(kernel.size * (1 - rate)), path
    assert np.sum(_kernel(stripped.get_layer("depthwise")) == 0) == 0
    total = sum(_kernel(stripped.get_layer(p)).size for p in rates)
    zeros = sum(np.sum(_kernel(stripped.get_layer(p)) == 0) for p in rates)
    assert zeros / total == pytest.approx(0.7, abs=1 / total + 1e-9)


def test_without_the_edge_cap_every_layer_gets_the_target():
    wrapped = pruning.prune_low_magnitude_planned(tiny_cnn(), 0.6, _constant,
                                                  edge_layer_sparsity=None)
    schedules = {layer.layer.name: layer.pruning_schedule.target_sparsity
                 for layer in wrapped.layers if isinstance(layer, _SPARSITY.PrunableLayer)
                 or hasattr(layer, "pruning_schedule")}
    assert schedules == {"conv": 0.6, "hidden": 0.6, "logits": 0.6}


def test_nested_models_are_refused():
    inner = tiny_cnn()
    inputs = keras.Input((6, 6, 1))
    outer = keras.Model(inputs, inner(inputs))
    with pytest.raises(ValueError, match="nested models"):
        pruning.prune_low_magnitude_planned(outer, 0.5, _constant)
