"""`make_prunable` / `strip_masks`: mask constraints given at build time, and slot clearing."""

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.privacy.minmax import MinMaxModel
from mcmia_tf.pruning import make_prunable
from mcmia_tf.pruning import PruningMask
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import strip_masks
from mcmia_tf.pruning.masks import zero_optimizer_slots
from tests.pruning.models import tiny_cnn

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _inputs(n=5):
    return np.random.default_rng(0).uniform(size=(n, 6, 6, 1)).astype(np.float32)


def test_make_prunable_puts_a_mask_on_every_prunable_kernel_and_changes_nothing_else():
    model = tiny_cnn()
    prunable = make_prunable(model, exclude=["logits"])
    assert prunable is not model
    kinds = {"conv": "kernel", "depthwise": "depthwise_kernel", "hidden": "kernel"}
    for name, attribute in kinds.items():
        variable = getattr(prunable.get_layer(name), attribute)
        assert isinstance(variable.constraint, PruningMask)
        np.testing.assert_array_equal(variable.constraint.mask.numpy(), np.ones(variable.shape))
    assert prunable.get_layer("logits").kernel.constraint is None
    assert prunable.get_layer("hidden").bias.constraint is None
    for before, after in zip(model.get_weights(), prunable.get_weights()):
        np.testing.assert_array_equal(before, after)
    # All-ones masks: outputs identical to the last bit.
    np.testing.assert_array_equal(model(_inputs()).numpy(), prunable(_inputs()).numpy())


def test_mask_composes_with_the_layers_own_constraint_and_strip_restores_it():
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(4, kernel_constraint=keras.constraints.NonNeg(),
                                 name="dense")(inputs)
    prunable = make_prunable(keras.Model(inputs, outputs))
    kernel = prunable.get_layer("dense").kernel
    constraint = kernel.constraint
    assert isinstance(constraint.inner, keras.constraints.NonNeg)
    constraint.mask.assign(np.array([[1, 0, 1, 1]] * 3, np.float32))
    w = np.array([[-1.0, 2.0, 3.0, -4.0]] * 3, np.float32)
    # NonNeg first, then the mask: w -> max(w, 0) * mask.
    np.testing.assert_array_equal(constraint(tf.constant(w)).numpy(),
                                  [[0.0, 0.0, 3.0, 0.0]] * 3)
    stripped = strip_masks(prunable)
    assert isinstance(stripped.get_layer("dense").kernel.constraint, keras.constraints.NonNeg)


def _nested(inner_name: str, outer_name: str, width: int = 2) -> keras.Model:
    """A Dense layer inside a nested Sequential "block", then an outer Dense layer."""
    inner = keras.Sequential([keras.layers.Dense(width, input_shape=(width,), name=inner_name)],
                             name="block")
    inputs = keras.Input((width,))
    return keras.Model(inputs, keras.layers.Dense(width, name=outer_name)(inner(inputs)))


def test_nested_models_get_masks_by_path():
    model = _nested("inner_dense", "head", width=4)
    prunable = make_prunable(model)
    nested_kernel = prunable.get_layer("block").get_layer("inner_dense").kernel
    assert isinstance(nested_kernel.constraint, PruningMask)
    assert isinstance(prunable.get_layer("head").kernel.constraint, PruningMask)
    x = np.ones((2, 4), np.float32)
    np.testing.assert_array_equal(model(x).numpy(), prunable(x).numpy())


def test_masked_weights_stay_zero_after_each_optimizer_step():
    model = make_prunable(tiny_cnn())
    model.compile(keras.optimizers.SGD(0.5, momentum=0.9), LOSS)
    kernel = model.get_layer("hidden").kernel
    mask = (np.arange(int(np.prod(kernel.shape))) % 3 != 0).reshape(kernel.shape)
    kernel.constraint.mask.assign(mask.astype(np.float32))
    kernel.assign(kernel.numpy() * mask)
    x, y = _inputs(32), np.arange(32) % 3
    for _ in range(3):
        model.train_on_batch(x, y)
        values = kernel.numpy()
        assert np.all(values[~mask] == 0.0) and np.all(values[mask] != 0.0)


def test_saved_model_reloads_with_an_unbuilt_mask_that_the_pruner_rebuilds(tmp_path):
    model = make_prunable(tiny_cnn())
    model.compile("adam", LOSS)
    path = str(tmp_path / "prunable.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    constraint = loaded.get_layer("hidden").kernel.constraint
    assert isinstance(constraint, PruningMask) and constraint.mask is None
    pruner = ReweightedPruning(0.5, edge_layer_sparsity=None)
    pruner.bind(loaded)
    assert constraint.mask is pruner.binding.masks[2]


def test_pruner_refuses_a_model_without_masks_and_says_how_to_fix():
    pruner = ReweightedPruning(0.5)
    with pytest.raises(ValueError, match=r"`conv` has no `PruningMask`.*make_prunable.*"
                                         r"strategy.scope\(\)"):
        pruner.bind(tiny_cnn())
    model = tiny_cnn()
    model.compile("adam", LOSS)
    with pytest.raises(ValueError, match="make_prunable"):
        model.fit(_inputs(8), np.zeros(8), epochs=1, verbose=0, callbacks=pruner.callbacks())


def test_make_prunable_refuses_a_wrapper_and_names_the_classifier():
    wrapper = MinMaxModel(tiny_cnn(), reference_data=(_inputs(4), np.zeros(4)))
    with pytest.raises(ValueError, match=r"MinMaxModel\(make_prunable\(classifier\)"):
        make_prunable(wrapper)


def _adam_after_one_step(model):
    model.compile(keras.optimizers.Adam(0.1), "mse")
    model.train_on_batch(np.ones((4, 2)), np.zeros((4, 2)))
    return model.optimizer


def test_slot_clearing_touches_exactly_the_variables_slots():
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(2, name="dense")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, name="my_dense")(hidden))
    optimizer = _adam_after_one_step(model)
    kernel = model.get_layer("dense").kernel
    mask = np.array([[1, 0], [0, 1]], np.float32)
    others = {v.name: v.numpy() for v in optimizer.variables
              if v.name not in ("Adam/m/dense/kernel:0", "Adam/v/dense/kernel:0")}
    assert zero_optimizer_slots(optimizer, kernel, mask) == 2  # Adam's m and v.
    for variable in optimizer.variables:
        if variable.name in others:  # "my_dense/kernel" (same suffix) is untouched.
            np.testing.assert_array_equal(variable.numpy(), others[variable.name])
        else:
            assert np.all(variable.numpy()[mask == 0] == 0)
            assert np.all(variable.numpy()[mask == 1] != 0)


def test_slot_clearing_leaves_ambiguous_names_alone_and_warns():
    model = _nested("dense", "dense")
    optimizer = _adam_after_one_step(model)
    before = [v.numpy() for v in optimizer.variables]
    with pytest.warns(UserWarning, match="unique names"):
        assert zero_optimizer_slots(optimizer, model.get_layer("dense").kernel,
                                    np.zeros((2, 2))) == 0
    for old, variable in zip(before, optimizer.variables):
        np.testing.assert_array_equal(old, variable.numpy())
