"""Tests of MinMaxModel (Nasr et al.'s adversarial regularization as a train_step)."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import keras
from mcmia_tf.data import DEFAULT_FASHION_MNIST_DIR
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.models import build_model
from mcmia_tf.privacy.attack_head import build_attack_head
from mcmia_tf.privacy.minmax import MinMaxModel
from mcmia_tf.pruning import make_prunable
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import sparsity_report

_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
_HAS_FASHION_MNIST = os.path.exists(
    os.path.join(DEFAULT_FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))


@pytest.fixture(scope="module")
def data(digits):
    order = np.random.default_rng(0).permutation(len(digits.x_train))
    members, reference = order[:256], order[256:512]
    return (digits.x_train[members], digits.y_train[members],
            digits.x_train[reference], digits.y_train[reference], digits)


def _batches(x, y, batch_size=32, seed=0):
    return (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size))


def _mlp(digits, seed=0):
    return build_model("mlp", digits.input_shape, digits.num_classes, width=0.25, seed=seed)


def _min_max(classifier, x_ref, y_ref, **kwargs):
    model = MinMaxModel(classifier, reference_data=(x_ref, y_ref), reference_batch_size=32,
                        **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  attack_optimizer=keras.optimizers.Adam(1e-3), loss=_LOSS)
    return model


@pytest.mark.parametrize("kwargs, argument", [
    ({"privacy_weight": -0.5}, "privacy_weight"),
    ({"attack_steps": 0}, "attack_steps"),
    ({"attack_steps": 1.5}, "attack_steps"),
    ({"privacy_gain": "square"}, "privacy_gain"),
])
def test_bad_arguments(data, kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        MinMaxModel(_mlp(data[4]), **kwargs)


def test_empty_or_missing_reference_data(data):
    x, y, _, _, digits = data
    with pytest.raises(ValueError, match="non-empty reference set"):
        MinMaxModel(_mlp(digits), reference_data=(x[:0], y[:0]))
    model = MinMaxModel(_mlp(digits))
    model.compile(optimizer="adam", attack_optimizer=keras.optimizers.Adam(), loss=_LOSS)
    with pytest.raises(ValueError, match="set_reference_data"):
        model.fit(x, y, epochs=1, verbose=0)


@pytest.mark.slow
def test_zero_weight_trains_the_classifier_exactly_like_plain_fit(data):
    """With lambda = 0 the attack steps must not touch the classifier's weights or step."""
    x, y, x_ref, y_ref, digits = data
    plain = _mlp(digits)
    plain.compile(keras.optimizers.Adam(1e-3), _LOSS)
    plain.fit(_batches(x, y), epochs=2, verbose=0)

    classifier = _mlp(digits)
    model = _min_max(classifier, x_ref, y_ref, privacy_weight=0.0, attack_steps=2)
    head_before = [w.copy() for w in model.attack_head.get_weights()]
    history = model.fit(_batches(x, y), epochs=2, verbose=0)

    for a, b in zip(plain.get_weights(), classifier.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert int(model.optimizer.iterations) == 2 * 8
    assert int(model.attack_optimizer.iterations) == 2 * 2 * 8
    assert any(not np.array_equal(a, b)
               for a, b in zip(head_before, model.attack_head.get_weights()))
    assert set(history.history) == {"loss", "accuracy", "privacy_loss", "attack_gain",
                                    "attack_accuracy"}
    # G = mean log h + mean log(1 - h) <= 0, and the head's balanced accuracy is in [0, 1].
    assert max(history.history["attack_gain"]) <= 0
    assert all(0 <= a <= 1 for a in history.history["attack_accuracy"])


@pytest.mark.slow
def test_tfmot_wrapper_counts_one_pruning_step_per_optimizer_step(data):
    x, y, x_ref, y_ref, digits = data
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.75, begin_step=0, frequency=1)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(_mlp(digits), pruning_schedule=schedule)
    model = _min_max(pruned, x_ref, y_ref, attack_steps=3)
    model.fit(_batches(x, y), epochs=2, verbose=0,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    wrappers = [l for l in pruned.layers if hasattr(l, "pruning_step")]
    assert wrappers
    for wrapper in wrappers:
        assert int(wrapper.pruning_step) == int(model.optimizer.iterations) == 16
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    for layer in stripped.layers:
        if isinstance(layer, keras.layers.Dense):
            assert np.mean(layer.kernel.numpy() == 0) == pytest.approx(0.75, abs=1e-3)


def test_reweighted_pruning_inside_min_max_reaches_exact_sparsity(data):
    x, y, x_ref, y_ref, digits = data
    classifier = make_prunable(_mlp(digits))
    model = _min_max(classifier, x_ref, y_ref)
    assert model.pruning_target is classifier
    pruner = ReweightedPruning(target_sparsity=0.8, penalty=1e-4, prune_at=2,
                               edge_layer_sparsity=None)
    model.fit(_batches(x, y), epochs=4, verbose=0, callbacks=pruner.callbacks())
    report = sparsity_report(classifier)
    for layer in report.layers:
        # Each kernel is cut to round(0.8 * size) zeros and stays there through the
        # masked retraining (2 epochs of min-max steps).
        assert layer.num_weights - layer.num_nonzero == round(0.8 * layer.num_weights)
    stripped = pruner.strip(model)
    assert sparsity_report(stripped).sparsity == pytest.approx(report.sparsity)
    np.testing.assert_allclose(stripped.predict(x[:8], verbose=0),
                               classifier.predict(x[:8], verbose=0), rtol=1e-5)


@pytest.mark.slow
def test_config_round_trip_and_classifier_save_load(data, tmp_path):
    x, y, x_ref, y_ref, digits = data
    head = build_attack_head(digits.num_classes, prediction_transform="softmax", seed=4)
    model = MinMaxModel(_mlp(digits), head, privacy_weight=2.5, attack_steps=3,
                        privacy_gain="linear", reference_batch_size=16, seed=7, name="mm")
    restored = MinMaxModel.from_config(model.get_config())
    for field in ("privacy_weight", "attack_steps", "privacy_gain", "reference_batch_size",
                  "seed", "name", "num_classes"):
        assert getattr(restored, field) == getattr(model, field), field
    assert restored.attack_head.get_layer("prediction_transform").mode == "softmax"
    assert [l.__class__ for l in restored.classifier.layers] == \
        [l.__class__ for l in model.classifier.layers]
    assert restored.reference_size == 0

    model.set_reference_data(x_ref, y_ref)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  attack_optimizer=keras.optimizers.Adam(1e-3), loss=_LOSS)
    model.fit(_batches(x, y), epochs=1, verbose=0)
    path = str(tmp_path / "classifier.keras")
    model.classifier.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0),
                               model.predict(x[:8], verbose=0), rtol=1e-5)


@pytest.mark.skipif(not _HAS_FASHION_MNIST, reason="Fashion-MNIST IDX files not installed")
@pytest.mark.slow
def test_default_game_lowers_the_loss_gap_on_fashion_mnist():
    """Same seed, same data order: the default game (lambda=3, k=1, log gain)
    against plain training. (On `digits`, a few hundred easy examples, the game
    does not lower the gap; see the MinMaxModel docstring.)"""
    dataset = load_dataset("fashion_mnist")
    split = MembershipSplit.create(dataset_name=dataset.name, num_examples=len(dataset.x_train),
                                   num_members=2000, num_non_members=0, num_reference=2000,
                                   num_shadow_pool=0, seed=0)
    x, y = split.take("members", dataset.x_train, dataset.y_train)
    x_ref, y_ref = split.take("reference", dataset.x_train, dataset.y_train)
    x_test, y_test = dataset.x_test[:2000], dataset.y_test[:2000]

    def gap_and_accuracy(classifier):
        test_logits = classifier.predict(x_test, verbose=0)
        gap = float(_LOSS(y_test, test_logits)) - float(_LOSS(y, classifier.predict(x, verbose=0)))
        return gap, float(np.mean(test_logits.argmax(1) == y_test))

    def lenet():
        return build_model("lenet5", dataset.input_shape, dataset.num_classes, width=0.5, seed=0)

    baseline = lenet()
    baseline.compile(keras.optimizers.Adam(1e-3), _LOSS)
    baseline.fit(_batches(x, y, 64), epochs=10, verbose=0)
    defended = lenet()
    model = MinMaxModel(defended, reference_data=(x_ref, y_ref), reference_batch_size=64)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  attack_optimizer=keras.optimizers.Adam(1e-3), loss=_LOSS)
    model.fit(_batches(x, y, 64), epochs=10, verbose=0)

    baseline_gap, baseline_accuracy = gap_and_accuracy(baseline)
    defended_gap, defended_accuracy = gap_and_accuracy(defended)
    assert defended_gap < baseline_gap, (defended_gap, baseline_gap)
    assert defended_accuracy > baseline_accuracy - 0.02


@pytest.mark.slow
def test_mirrored_game_follows_the_one_device_gradient(data, mirrored_strategy):
    """Two replicas each see half the batch and their gradients are summed.

    The task loss and the classifier's own losses (here a reweighted pruning
    penalty) are scaled by 1/R, so with lambda = 0 the classifier takes the
    one-device steps. Plain SGD shows a wrong scale (Adam would hide it).
    """
    x, y, x_ref, y_ref, digits = data

    def train(strategy):
        with strategy.scope():
            classifier = make_prunable(_mlp(digits))
            model = MinMaxModel(classifier, reference_data=(x_ref, y_ref),
                                reference_batch_size=32, privacy_weight=0.0)
            model.compile(optimizer=keras.optimizers.SGD(0.1),
                          attack_optimizer=keras.optimizers.Adam(1e-3), loss=_LOSS)
        pruner = ReweightedPruning(0.5, penalty=1e-2, form="squared", prune_at=None,
                                   edge_layer_sparsity=None)
        history = model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(32), epochs=2,
                            verbose=0, callbacks=pruner.callbacks())
        return classifier.get_weights(), history.history["loss"]

    (on_two, loss_on_two), (on_one, loss_on_one) = (train(mirrored_strategy),
                                                    train(tf.distribute.get_strategy()))
    for a, b in zip(on_two, on_one):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss_on_two, loss_on_one, rtol=1e-4)
