"""Residual and depthwise channel coupling: tied layers lose the same filters, surgery slims them."""

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from mcmia_tf.pruning import ADMMPruning
from mcmia_tf.pruning import make_prunable
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import sparsity_report
from mcmia_tf.pruning.coupling import coupled_channel_sets
from tflite_export.surgery import remove_pruned_channels
from tests.helpers import randomize_batch_norms

_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _sets(model):
    by_set = {}
    for name, set_id in coupled_channel_sets(model).items():
        by_set.setdefault(set_id, set()).add(name)
    return sorted(by_set.values(), key=sorted)


def test_resnet18_residual_groups_are_the_convolutions_summed_by_each_stage():
    sets = _sets(build_model("resnet18", (32, 32, 3), 10, width=0.125))
    assert {"stem_conv", "stage1_block1_2_conv", "stage1_block2_2_conv"} in sets
    for stage in (2, 3, 4):  # a projection shortcut joins its stage's group
        assert {f"stage{stage}_block1_2_conv", f"stage{stage}_block1_shortcut_conv",
                f"stage{stage}_block2_2_conv"} in sets
    assert len(sets) == 4
    # Inner block convolutions and the logits layer choose their own filters.
    flat = set().union(*sets)
    assert "stage1_block1_1_conv" not in flat and "logits" not in flat


def test_mobilenetv2_depthwise_layers_follow_the_layer_that_feeds_them():
    model = build_model("mobilenetv2", (32, 32, 3), 10, width=0.125)
    coupled = coupled_channel_sets(model)
    depthwise = [layer for layer in model.layers
                 if isinstance(layer, keras.layers.DepthwiseConv2D)]
    assert depthwise and all(layer.name in coupled for layer in depthwise)
    config = {c["name"]: c for c in model.get_config()["layers"]}
    for layer in depthwise:
        # Walk back through BN / ReLU to the convolution producing its channels.
        source = config[layer.name]["inbound_nodes"][0][0][0]
        while not isinstance(model.get_layer(source), keras.layers.Conv2D):
            source = config[source]["inbound_nodes"][0][0][0]
        assert coupled[source] == coupled[layer.name]


def test_plain_chains_have_no_coupling():
    assert coupled_channel_sets(build_model("vgg16", (32, 32, 3), 10, width=0.125)) == {}
    assert coupled_channel_sets(build_model("lenet5", (28, 28, 1), 10)) == {}


def _channel_zeros(model, name):
    layer = model.get_layer(name)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        kernel = layer.depthwise_kernel.numpy()
        return set(np.flatnonzero(np.all(kernel == 0, axis=(0, 1, 3))))
    kernel = layer.kernel.numpy()
    return set(np.flatnonzero(np.all(kernel.reshape(-1, kernel.shape[-1]) == 0, axis=0)))


def _data(count=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(size=(count, 32, 32, 3)).astype(np.float32),
            rng.integers(0, 10, size=count))


def _train_pruned(name, pruner_class, width, seed=0):
    """One step regularized, the hard prune, one masked step."""
    model = make_prunable(build_model(name, (32, 32, 3), 10, width=width, seed=seed))
    model.compile(keras.optimizers.Adam(1e-3), _LOSS)
    kwargs = {"penalty": 1e-3} if pruner_class is ReweightedPruning else {}
    pruner = pruner_class(0.5, "filter", prune_at=1, unit="step", **kwargs)
    model.fit(*_data(16, seed), epochs=1, batch_size=8, verbose=0, callbacks=pruner.callbacks())
    return model, pruner


@pytest.mark.parametrize("name,pruner_class", [("resnet18", ReweightedPruning),
                                               ("mobilenetv2", ADMMPruning)])
@pytest.mark.slow
def test_coupled_layers_lose_the_same_filters_and_keep_training(name, pruner_class):
    model, pruner = _train_pruned(name, pruner_class, width=0.125)
    coupled = [p for p in pruner.binding.plans if p.coupling is not None]
    assert coupled
    by_set = {}
    for plan in coupled:
        by_set.setdefault(plan.coupling, []).append(plan.weight.path)
    for names in by_set.values():
        zeros = [_channel_zeros(model, n) for n in names]
        assert zeros[0] and all(z == zeros[0] for z in zeros), (names, zeros)
    # One more masked step: the coupled zeros stay, the loss is finite.
    history = model.fit(*_data(8, 1), epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    for names in by_set.values():
        zeros = [_channel_zeros(model, n) for n in names]
        assert all(z == zeros[0] for z in zeros)
    assert sparsity_report(pruner.strip(model)).sparsity == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("name", [pytest.param("resnet18", marks=pytest.mark.slow), "vgg16",
                                  pytest.param("mobilenetv2", marks=pytest.mark.slow)])
def test_filter_pruned_architecture_slims_with_identical_outputs(name):
    # Width 0.25, filters projected to 50% (coupled sets jointly), random BN statistics.
    model = make_prunable(build_model(name, (32, 32, 3), 10, width=0.25, seed=0))
    randomize_batch_norms(model)
    pruner = ReweightedPruning(0.5, "filter", penalty=1e-3)
    pruner.bind(model)
    pruner.hard_prune()
    pruned = pruner.strip(model)
    smaller, _ = remove_pruned_channels(pruned)
    assert smaller.count_params() < 0.6 * pruned.count_params()
    x = _data(4)[0]
    difference = np.abs(pruned.predict_on_batch(x) - smaller.predict_on_batch(x))
    assert np.max(difference) <= 1e-4
