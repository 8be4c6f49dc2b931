"""`TrainingConfig`'s optimizer, schedule, weight decay and augmentation, through `Recipe.fit`."""

import dataclasses
import json

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.models import recompute_batch_norm
from mcmia_tf.models.normalization import batch_norm_layers
from mcmia_tf.recipes.config import PruningConfig
from mcmia_tf.recipes.config import RecipeConfig
from mcmia_tf.recipes.config import TrainingConfig
from mcmia_tf.recipes.optimization import named_optimizer
from mcmia_tf.recipes.recipe import Recipe

_ORIGINAL_FIELDS = {"model", "width", "epochs", "batch_size", "learning_rate", "model_kwargs"}
# 96 examples, batch 32: 3 steps per epoch.
_SGD = TrainingConfig(model="mlp", epochs=2, batch_size=32, learning_rate=0.1, optimizer="sgd",
                      momentum=0.9, lr_schedule="cosine", weight_decay=5e-4,
                      model_kwargs={"hidden_units": [16]})


@pytest.fixture(scope="module")
def data(digits):
    return (digits.x_train[:96], digits.y_train[:96]), (digits.x_test[:64], digits.y_test[:64])


def _fit(training, data, method="baseline", seed=0, **kwargs):
    (x, y), validation = data
    config = RecipeConfig(method, training=training, pruning=PruningConfig(
        target_sparsity=0.5, regularization_epochs=1, retrain_epochs=1, edge_layer_sparsity=None))
    return Recipe(config, x.shape[1:], 10).fit(x, y, seed=seed, validation_data=validation,
                                               **kwargs)


def test_defaults_keep_the_original_description_and_non_defaults_round_trip():
    # Earlier recipe descriptions (audit cache manifests, study folders) stay byte-identical.
    assert set(RecipeConfig("baseline").to_dict()["training"]) == _ORIGINAL_FIELDS
    custom = RecipeConfig("dp", training=dataclasses.replace(_SGD, augmentation="crop_flip"))
    written = custom.to_dict()["training"]
    assert written["optimizer"] == "sgd" and written["augmentation"] == "crop_flip"
    assert RecipeConfig.from_dict(json.loads(json.dumps(custom.to_dict()))) == custom


@pytest.mark.parametrize("field, value, expected", [
    ("optimizer", "rmsprop", "one of ('adam', 'sgd')"),
    ("momentum", 1.0, "a float in [0, 1)"),
    ("lr_schedule", "step", "one of ('constant', 'cosine')"),
    ("weight_decay", -1e-4, "a finite float >= 0"),
    ("augmentation", "cutout", "one of ('none', 'crop_flip')"),
    ("recompute_batch_norm", 1, "a bool"),
])
def test_bad_values_fail_keras_style(field, value, expected):
    with pytest.raises(ValueError) as err:
        TrainingConfig(**{"optimizer": "sgd", field: value})
    assert str(err.value).startswith(f"Invalid value for argument `{field}`. Expected {expected}")
    assert str(err.value).endswith(f"Received: {field}={value!r}")


def test_momentum_without_sgd_says_the_fix():
    with pytest.raises(ValueError, match=r"set optimizer='sgd'.*Received: momentum=0\.9"):
        TrainingConfig(momentum=0.9)


def test_augmentation_needs_images():
    with pytest.raises(ValueError, match="crops and flips need images"):
        Recipe(RecipeConfig("baseline", training=TrainingConfig(augmentation="crop_flip")),
               (64,), 10)


def test_default_is_adam_at_a_constant_rate_without_decay(data):
    result = _fit(TrainingConfig(model="mlp", epochs=1, batch_size=32,
                                 model_kwargs={"hidden_units": [16]}), data)
    optimizer = result.model.optimizer
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert optimizer.get_config()["learning_rate"] == pytest.approx(1e-3)
    assert not result.model.losses


def test_sgd_momentum_cosine_schedule_and_coupled_l2(data):
    model = _fit(_SGD, data).model
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.get_config()["momentum"] == pytest.approx(0.9)
    assert int(optimizer.iterations) == 6
    # Cosine over the whole budget (2 epochs x 3 steps): lr/2 halfway, 0 at the end.
    schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
    assert [float(schedule(step)) for step in (0, 3, 6)] == pytest.approx([0.1, 0.05, 0.0],
                                                                          abs=1e-7)
    # weight_decay / 2 * sum ||W||^2 over the kernels only (not the biases).
    kernels = [w.numpy() for w in model.trainable_weights if w.shape.rank >= 2]
    assert len(kernels) == 2 and len(model.losses) == 1
    assert float(model.losses[0]) == pytest.approx(
        0.5 * 5e-4 * sum(float(np.sum(k.astype(np.float64)**2)) for k in kernels), rel=1e-5)


@pytest.mark.slow
def test_tfmot_pruning_phase_continues_the_schedule(data):
    starts, losses = [], []

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            starts.append(int(self.model.optimizer.iterations))
            losses.append(len(self.model.losses))

    _fit(dataclasses.replace(_SGD, epochs=3), data, method="tfmot_magnitude",
         callbacks=[Record()])
    # Pretraining (1 epoch = 3 steps), then the wrapped model's new optimizer from step 3;
    # one L2 term on each model.
    assert starts == [0, 3] and losses == [1, 1]
    # The default constant rate: a fresh optimizer from step 0, as the original recipe.
    starts.clear()
    losses.clear()
    _fit(dataclasses.replace(_SGD, epochs=3, lr_schedule="constant", weight_decay=0.0), data,
         method="tfmot_magnitude", callbacks=[Record()])
    assert starts == [0, 0] and losses == [0, 0]


@pytest.mark.slow
def test_augmentation_reaches_training_only_and_is_seeded(data):
    (_, _), (x_val, y_val) = data
    training = TrainingConfig(model="mlp", epochs=2, batch_size=32, learning_rate=3e-3,
                              augmentation="crop_flip", model_kwargs={"hidden_units": [16]})
    augmented = _fit(training, data)
    again = _fit(training, data)
    other_seed = _fit(training, data, seed=1)
    plain = _fit(dataclasses.replace(training, augmentation="none"), data)
    for a, b in zip(augmented.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(a, b)  # a function of the fit seed
    assert not all(np.allclose(a, b) for a, b in zip(augmented.model.get_weights(),
                                                     plain.model.get_weights()))
    assert augmented.history["loss"] != other_seed.history["loss"]
    # Never at evaluation: the deployed model has no augmentation layer, and the epoch's
    # validation loss is the loss on the original validation images.
    assert [type(layer) for layer in augmented.model.layers] == [
        type(layer) for layer in plain.model.layers]
    evaluated = augmented.model.evaluate(x_val, y_val, verbose=0, return_dict=True)
    assert augmented.history["val_loss"][-1] == pytest.approx(evaluated["loss"], rel=1e-6)
    predictions = augmented.model.predict(x_val, verbose=0)
    np.testing.assert_array_equal(predictions, augmented.model.predict(x_val, verbose=0))


def test_dp_trains_on_augmented_poisson_batches(data):
    training = TrainingConfig(model="mlp", epochs=1, batch_size=32, augmentation="crop_flip",
                              model_kwargs={"hidden_units": [16]})
    (x, y), _ = data
    config = RecipeConfig("dp", training=training)
    first = Recipe(config, x.shape[1:], 10).fit(x, y, seed=0)
    plain = Recipe(dataclasses.replace(config, training=dataclasses.replace(
        training, augmentation="none")), x.shape[1:], 10).fit(x, y, seed=0)
    # Same Poisson draws and noise, different (augmented) pixels.
    assert not all(np.allclose(a, b) for a, b in zip(first.model.get_weights(),
                                                     plain.model.get_weights()))
    assert first.epsilon == plain.epsilon


def test_named_optimizer_builds_each_configured_optimizer():
    sgd = named_optimizer("sgd", 0.1, momentum=0.9)
    assert isinstance(sgd, keras.optimizers.SGD) and float(sgd.momentum) == pytest.approx(0.9)
    assert float(sgd.learning_rate) == pytest.approx(0.1)
    assert isinstance(named_optimizer("adam", 1e-3), keras.optimizers.Adam)
    assert isinstance(named_optimizer("adagrad", 1e-2), keras.optimizers.Adagrad)
    with pytest.raises(ValueError, match="`name`. Expected one of"):
        named_optimizer("rmsprop", 1e-3)


@pytest.mark.parametrize("method", ["baseline", "tfmot_magnitude"])
def test_recompute_batch_norm_ends_every_method_with_the_final_weights_statistics(data, method):
    (x, y), validation = data
    images = (x.reshape(-1, 8, 8, 1), y), (validation[0].reshape(-1, 8, 8, 1), validation[1])
    resnet = TrainingConfig(model="resnet18", width=0.125, epochs=3, batch_size=32)

    def moving_statistics(model):
        return [v.numpy().copy() for layer in batch_norm_layers(model)
                for v in (layer.moving_mean, layer.moving_variance)]

    def recomputed_again(model):
        before = moving_statistics(model)
        recompute_batch_norm(model, images[0][0], batch_size=32)
        return before, moving_statistics(model)

    # Recomputing again changes nothing: the recipe left the statistics of its final weights.
    before, after = recomputed_again(_fit(dataclasses.replace(
        resnet, recompute_batch_norm=True), images, method).model)
    for b, a in zip(before, after):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # Without the option the moving averages lag the weights, and recomputing moves them.
    before, after = recomputed_again(_fit(resnet, images, method).model)
    assert max(float(np.abs(a - b).max()) for a, b in zip(before, after)) > 1e-2
    assert RecipeConfig("baseline", training=dataclasses.replace(
        resnet, recompute_batch_norm=True)).to_dict()["training"]["recompute_batch_norm"]
