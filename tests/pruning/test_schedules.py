"""tfmot schedules: values, use with prune_low_magnitude, save/load, config round trip."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import keras
from mcmia_tf.pruning import GradualAfter
from mcmia_tf.pruning import OneShotAfter
from mcmia_tf.pruning import pruning_scope


def _values(schedule, step):
    should_prune, sparsity = schedule(tf.constant(step, tf.int64))
    return bool(should_prune.numpy()), float(sparsity.numpy())


def test_one_shot_after_prunes_only_at_prune_step():
    schedule = OneShotAfter(0.9, prune_step=10)
    assert _values(schedule, 9)[0] is False
    assert _values(schedule, 10) == (True, pytest.approx(0.9))
    assert _values(schedule, 11)[0] is False
    assert _values(schedule, 500)[0] is False


def test_gradual_after_follows_cubic_ramp():
    schedule = GradualAfter(0.8, begin_step=100, end_step=200, power=3, frequency=10)
    assert _values(schedule, 99)[0] is False
    assert _values(schedule, 100) == (True, pytest.approx(0.0))
    assert _values(schedule, 150) == (True, pytest.approx(0.8 * (1 - 0.5 ** 3)))
    assert _values(schedule, 155)[0] is False
    assert _values(schedule, 200) == (True, pytest.approx(0.8))
    assert _values(schedule, 210)[0] is False


@pytest.mark.parametrize("schedule", [OneShotAfter(0.75, 4),
                                      GradualAfter(0.5, 1, 9, power=2.0, frequency=3)])
def test_schedule_config_round_trip(schedule):
    config = schedule.get_config()
    rebuilt = type(schedule).from_config(config["config"])
    assert rebuilt.get_config() == config
    restored = keras.utils.deserialize_keras_object(keras.utils.serialize_keras_object(schedule))
    assert restored.get_config() == config
    wrapper = tfmot.sparsity.keras.prune_low_magnitude(
        keras.Sequential([keras.layers.Dense(2, input_shape=(3,))]),
        pruning_schedule=schedule).layers[0]
    with pruning_scope():
        via_tfmot = type(wrapper).from_config(wrapper.get_config())
    assert via_tfmot.pruning_schedule.get_config() == config


@pytest.mark.parametrize("prune_step,expected", [(1, 0.75), (2, 0.0)])
def test_one_shot_counts_tfmot_steps_from_1(prune_step, expected):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(
        _model(), pruning_schedule=OneShotAfter(0.75, prune_step=prune_step))
    wrapped.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # One batch: a single training step (tfmot's step 1), then the epoch-end remask.
    wrapped.fit(x, y, batch_size=64, epochs=1, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    kernel = tfmot.sparsity.keras.strip_pruning(wrapped).layers[0].kernel.numpy()
    assert np.mean(kernel == 0) == pytest.approx(expected)


def _model():
    init = keras.initializers.GlorotUniform(seed=0)
    return keras.Sequential([
        keras.layers.Dense(16, activation="relu", input_shape=(8,), kernel_initializer=init),
        keras.layers.Dense(3, kernel_initializer=init),
    ])


def test_one_shot_with_prune_low_magnitude_then_save_load_and_continue(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=64)
    wrapped = tfmot.sparsity.keras.prune_low_magnitude(
        _model(), pruning_schedule=OneShotAfter(0.75, prune_step=3))
    wrapped.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    update = tfmot.sparsity.keras.UpdatePruningStep()
    wrapped.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=[update])   # steps 0..3
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    kernel = stripped.layers[0].kernel.numpy()
    assert np.mean(kernel == 0) == pytest.approx(0.75)
    zeros = kernel == 0

    path = str(tmp_path / "wrapped.keras")
    wrapped.save(path)
    with pruning_scope():
        loaded = keras.models.load_model(path)
    assert isinstance(loaded.layers[0].pruning_schedule, OneShotAfter)
    loaded.fit(x, y, batch_size=16, epochs=2, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    kernel_after = tfmot.sparsity.keras.strip_pruning(loaded).layers[0].kernel.numpy()
    np.testing.assert_array_equal(kernel_after == 0, zeros)


@pytest.mark.parametrize("kwargs,match", [
    (dict(target_sparsity=1.0, prune_step=3), "target_sparsity"),
    (dict(target_sparsity=0.5, prune_step=-1), "prune_step"),
    (dict(target_sparsity=0.5, prune_step=0), "prune_step"),  # tfmot's steps start at 1
])
def test_one_shot_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{match}`"):
        OneShotAfter(**kwargs)


def test_gradual_rejects_end_before_begin():
    with pytest.raises(ValueError, match="Invalid value for argument `end_step`"):
        GradualAfter(0.5, begin_step=10, end_step=10)
