"""Prune-preserving quantization-aware training keeps every zero."""

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.pruning import prune_preserving_quantization
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import make_prunable
from mcmia_tf.pruning import sparsity_report
from mcmia_tf.pruning.quantization import kernel_zero_masks


def _model():
    init = keras.initializers.GlorotUniform(seed=0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", kernel_initializer=init, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, kernel_initializer=init, name="logits")(x)
    return keras.Model(inputs, outputs)


def test_quantization_aware_training_preserves_sparsity():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 8, 8, 1)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    model = make_prunable(_model())
    pruner = ReweightedPruning(0.75, edge_layer_sparsity=None)
    pruner.bind(model)
    pruner.hard_prune()
    pruned = pruner.strip(model)
    zeros = kernel_zero_masks(pruned)

    qat = prune_preserving_quantization(pruned)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(x, y, epochs=2, batch_size=16, verbose=0)

    # Inside a QuantizeWrapper `layer.kernel` is the fake-quantized tensor: read the variable.
    kernels = {layer.layer.name: variable.numpy()
               for layer in qat.layers if hasattr(layer, "layer")
               for variable in layer.trainable_weights if variable.name.endswith("kernel:0")}
    assert set(kernels) == {"conv", "logits"}
    for name, kernel in kernels.items():
        assert np.all(kernel[zeros[name]] == 0.0)
        assert np.mean(kernel == 0) == pytest.approx(0.75, abs=1e-6)
    assert sparsity_report(pruned).sparsity == pytest.approx(0.75)


def test_dense_model_is_rejected():
    with pytest.raises(ValueError, match="Prune it first"):
        prune_preserving_quantization(_model())
