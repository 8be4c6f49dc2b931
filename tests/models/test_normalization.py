"""`recompute_batch_norm`: BatchNormalization statistics recomputed under frozen weights."""

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from mcmia_tf.models import recompute_batch_norm
from mcmia_tf.models.normalization import batch_norm_layers
from tests.helpers import randomize_batch_norms


def _features_then_batch_norm(num_features=3):
    inputs = keras.Input((num_features,))
    outputs = keras.layers.BatchNormalization(name="bn")(
        keras.layers.Dense(num_features, name="dense")(inputs))
    return keras.Model(inputs, outputs)


def test_statistics_are_the_mean_of_equal_batches_and_nothing_else_changes():
    rng = np.random.default_rng(0)
    model = randomize_batch_norms(_features_then_batch_norm())
    layer = model.get_layer("bn")
    kept = {name: getattr(layer, name).numpy().copy() for name in ("gamma", "beta")}
    dense_kernel = model.get_layer("dense").kernel.numpy().copy()
    # 10 batches of 16, then 5 examples that must be left out (unequal weight).
    x = rng.normal(2.0, 3.0, size=(165, 3)).astype(np.float32)
    assert recompute_batch_norm(model, x, batch_size=16) == 1
    features = keras.Model(model.input, model.get_layer("dense").output)(x[:160]).numpy()
    batches = features.reshape(10, 16, 3)
    np.testing.assert_allclose(layer.moving_mean.numpy(), batches.mean(axis=1).mean(axis=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.moving_variance.numpy(),
                               batches.var(axis=1).mean(axis=0), rtol=1e-5)
    assert layer.momentum == 0.99  # restored
    for name, value in kept.items():
        np.testing.assert_array_equal(getattr(layer, name).numpy(), value)
    np.testing.assert_array_equal(model.get_layer("dense").kernel.numpy(), dense_kernel)


def test_inference_matches_training_mode_on_the_batch_it_was_computed_on():
    # Statistics far from the truth make inference and training mode disagree; one
    # batch recomputed makes inference mode use that batch's statistics (the fused
    # kernel keeps the unbiased variance, a factor n / (n - 1): n >= 64 * 4 * 4 here).
    model = randomize_batch_norms(build_model("resnet18", (32, 32, 1), 10, width=0.125, seed=0))
    x = np.random.default_rng(1).uniform(size=(64, 32, 32, 1)).astype(np.float32)
    training_mode = model(x, training=True).numpy()
    assert np.abs(model(x, training=False).numpy() - training_mode).max() > 0.1
    assert recompute_batch_norm(model, x, batch_size=64) == len(batch_norm_layers(model)) == 20
    np.testing.assert_allclose(model(x, training=False).numpy(), training_mode, atol=2e-2)


def test_models_without_batch_norm_are_left_alone_and_bad_arguments_say_why():
    lenet = build_model("lenet5", (28, 28, 1), 10, seed=0)
    weights = [w.copy() for w in lenet.get_weights()]
    assert recompute_batch_norm(lenet, np.zeros((4, 28, 28, 1), np.float32)) == 0
    for before, after in zip(weights, lenet.get_weights()):
        np.testing.assert_array_equal(before, after)
    model = _features_then_batch_norm()
    with pytest.raises(ValueError, match=r"Expected at least batch_size=16 examples\. "
                                         r"Received: 5 examples"):
        recompute_batch_norm(model, np.zeros((5, 3), np.float32), batch_size=16)
    with pytest.raises(ValueError, match=r"`batch_size`. Expected an integer >= 2.*"
                                         r"Received: batch_size=1"):
        recompute_batch_norm(model, np.zeros((5, 3), np.float32), batch_size=1)


def test_statistics_under_mirrored_strategy_equal_the_single_device_ones(mirrored_strategy):
    # The moving statistics are sync-on-read variables there: the recomputed values must
    # reach every replica and equal those of the same model on one device.
    x = np.random.default_rng(2).normal(1.0, 2.0, size=(64, 3)).astype(np.float32)
    single = _features_then_batch_norm()
    with mirrored_strategy.scope():
        mirrored = _features_then_batch_norm()
    mirrored.set_weights(single.get_weights())
    recompute_batch_norm(single, x, batch_size=16)
    recompute_batch_norm(mirrored, x, batch_size=16)
    for name in ("moving_mean", "moving_variance"):
        expected = getattr(single.get_layer("bn"), name).numpy()
        variable = getattr(mirrored.get_layer("bn"), name)
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-6)
        for replica_value in mirrored_strategy.experimental_local_results(variable):
            np.testing.assert_allclose(replica_value.numpy(), expected, rtol=1e-6)
