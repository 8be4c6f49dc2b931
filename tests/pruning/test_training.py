"""Pruning inside `model.fit` on `digits`: phases, masks, strip, resume, pruning_target."""

import os

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.data import DEFAULT_FASHION_MNIST_DIR
from mcmia_tf.data import load_dataset
from mcmia_tf.models import build_model
from mcmia_tf.pruning import ADMMPruning
from mcmia_tf.pruning import make_prunable
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import sparsity_report
from mcmia_tf.pruning import StaticRegularization

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
_HAS_FASHION_MNIST = os.path.exists(
    os.path.join(DEFAULT_FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))
# The fixed lambda of the bounded form tuned on Fashion-MNIST LeNet-5 at sparsity 0.95
# on 5,000 held-out training images (`python -m bench.pruning --evaluate_on=validation
# --sparsities=0.95 --structures=unstructured --methods=reweighted_fixed
# --bounded_penalty=L`): held-out accuracy / accuracy drop at the hard prune were
# 87.06% / 16.8 (L = 1e-4), 87.06% / 2.7 (1e-3), 86.98% / 0.0 (1e-2), 86.98% / 0.05
# (1e-1). Accuracy is flat within 0.1 point (one run's noise), so the tie is broken by
# what the bounded form is for, a lossless prune: 1e-2. (The calibrated run in the
# same setting ended at 1.02e-2 with 87.14%.)
_TUNED_FASHION_MNIST_LAMBDA = 1e-2


def _lenet(digits, width=0.5):
    return make_prunable(build_model("lenet5", digits.input_shape, digits.num_classes,
                                     width=width, seed=0))


def _kernels(model):
    return {layer.name: layer.kernel.numpy() for layer in model.layers if hasattr(layer, "kernel")}


class _ZeroWatcher(keras.callbacks.Callback):
    """After every batch once pruned, checks the masked weights are exactly zero."""

    def __init__(self, pruner):
        super().__init__()
        self.pruner = pruner
        self.checked_batches = 0
        self.sparsity_at_batch_begin = []

    def on_train_batch_begin(self, batch, logs=None):
        self.sparsity_at_batch_begin.append(self.pruner.binding.overall_sparsity())

    def on_train_batch_end(self, batch, logs=None):
        binding = self.pruner.binding
        if binding.pruned:
            for plan, mask in zip(binding.plans, binding.masks):
                values = plan.weight.variable.numpy()
                assert np.all(values[mask.numpy() == 0] == 0.0)
            self.checked_batches += 1


@pytest.mark.slow
def test_masked_retraining_keeps_zeros_under_momentum_and_learns(digits):
    keras.utils.set_random_seed(0)
    model = _lenet(digits)
    model.compile(keras.optimizers.SGD(0.05, momentum=0.9), LOSS, metrics=["accuracy"],
                  steps_per_execution=3)
    pruner = ReweightedPruning(0.8, "unstructured", penalty=1e-4, prune_at=2)
    watcher = _ZeroWatcher(pruner)
    history = model.fit(digits.x_train, digits.y_train, epochs=6, batch_size=64, verbose=0,
                        callbacks=pruner.callbacks() + [watcher])
    assert watcher.checked_batches > 10
    assert history.history["pruning_sparsity"][:2] == [0.0, 0.0]
    # Penalty in the loss while regularizing, switched off after the hard prune.
    assert all(p > 0 for p in history.history["pruning_penalty"][:2])
    assert all(p == 0 for p in history.history["pruning_penalty"][2:])
    stripped = pruner.strip(model)
    report = sparsity_report(stripped)
    assert report.sparsity == pytest.approx(0.8, abs=2e-4)
    for plan, (name, kernel) in zip(pruner.binding.plans, _kernels(stripped).items()):
        assert plan.weight.path == name
        assert np.mean(kernel == 0) == pytest.approx(plan.rate, abs=1e-3)
    stripped.compile(loss=LOSS, metrics=["accuracy"])
    accuracy = stripped.evaluate(digits.x_test, digits.y_test, verbose=0)[1]
    assert accuracy > 0.8  # 10 classes: chance is 0.1.


def test_strip_returns_plain_model_with_exact_zeros(digits):
    model = _lenet(digits, width=0.25)
    model.compile("adam", LOSS)
    pruner = ADMMPruning(0.9, "filter", rho=1e-2, prune_at=1)
    model.fit(digits.x_train[:256], digits.y_train[:256], epochs=2, batch_size=64, verbose=0,
              callbacks=pruner.callbacks())
    stripped = pruner.strip(model)
    assert not stripped.losses
    for layer in stripped.layers:
        if hasattr(layer, "kernel"):
            assert layer.kernel.constraint is None
    kernels = _kernels(stripped)
    # Whole filters of the convolutions are zero (one norm per output channel).
    for name in ("conv1", "conv2", "fc1"):
        per_filter = np.abs(kernels[name]).reshape(-1, kernels[name].shape[-1]).sum(axis=0)
        assert np.any(per_filter == 0)
        filters = kernels[name].reshape(-1, kernels[name].shape[-1])
        assert np.all((filters == 0).all(axis=0) | (filters != 0).all(axis=0))
    # Output logits are never removed: the last layer is pruned by input neurons.
    assert np.all(np.abs(kernels["logits"]).sum(axis=0) > 0)
    np.testing.assert_array_equal(stripped.predict(digits.x_test[:8], verbose=0),
                                  model.predict(digits.x_test[:8], verbose=0))


def test_hard_prune_happens_at_the_chosen_step_and_logs_to_tensorboard(digits, tmp_path):
    model = _lenet(digits, width=0.25)
    model.compile("adam", LOSS)
    pruner = StaticRegularization(0.7, penalty=1e-4, prune_at=5, unit="step")
    watcher = _ZeroWatcher(pruner)
    log_dir = tmp_path / "logs"
    model.fit(digits.x_train[:640], digits.y_train[:640], epochs=1, batch_size=64, verbose=0,
              callbacks=pruner.callbacks(log_dir=str(log_dir)) + [watcher])
    sparsities = watcher.sparsity_at_batch_begin
    assert all(s < 0.1 for s in sparsities[:5])
    assert all(s == pytest.approx(0.7, abs=1e-3) for s in sparsities[5:])
    tags = set()
    for event_file in log_dir.iterdir():
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags.update(value.tag for value in event.summary.value)
    assert {"pruning/sparsity", "pruning/penalty", "pruning/sparsity/fc1"} <= tags


def test_hard_prune_clears_optimizer_moments_of_pruned_weights(digits):
    model = _lenet(digits, width=0.25)
    model.compile(keras.optimizers.Adam(1e-3), LOSS)
    pruner = ReweightedPruning(0.6, penalty=1e-4, prune_at=None)
    model.fit(digits.x_train[:128], digits.y_train[:128], epochs=1, batch_size=64, verbose=0,
              callbacks=pruner.callbacks())
    pruner.hard_prune(model.optimizer)
    kernel = model.get_layer("fc1").kernel
    slots = [v for v in model.optimizer.variables if v.name in ("Adam/m/" + kernel.name,
                                                                "Adam/v/" + kernel.name)]
    assert len(slots) == 2  # Adam's m and v.
    pruned = kernel.numpy() == 0
    for slot in slots:
        assert np.all(slot.numpy()[pruned] == 0) and np.any(slot.numpy()[~pruned] != 0)


def test_save_load_and_continue_training_keeps_masks(digits, tmp_path):
    model = _lenet(digits, width=0.25)
    model.compile("adam", LOSS)
    config = dict(target_sparsity=0.85, structure="unstructured", penalty=1e-4, prune_at=3,
                  unit="step")
    pruner = ReweightedPruning(**config)
    model.fit(digits.x_train[:320], digits.y_train[:320], epochs=1, batch_size=64, verbose=0,
              callbacks=pruner.callbacks())
    zeros_before = {k: v == 0 for k, v in _kernels(model).items()}
    path = str(tmp_path / "pruned.keras")
    model.save(path)

    loaded = keras.models.load_model(path)
    assert int(loaded.optimizer.iterations.numpy()) == 5
    resumed = ReweightedPruning(**config)
    history = loaded.fit(digits.x_train[:320], digits.y_train[:320], epochs=2, batch_size=64,
                         verbose=0, callbacks=resumed.callbacks())
    assert history.history["loss"][-1] < history.history["loss"][0] * 1.5
    for name, kernel in _kernels(loaded).items():
        np.testing.assert_array_equal(kernel == 0, zeros_before[name])


class _WrappedClassifier(keras.Model):
    """A subclassed model with a custom train_step, like a min-max defence."""

    def __init__(self, classifier):
        super().__init__()
        self.pruning_target = classifier

    def call(self, inputs, training=False):
        return self.pruning_target(inputs, training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            logits = self.pruning_target(x, training=True)
            data_loss = LOSS(y, logits)
            penalty = tf.add_n(self.pruning_target.losses)
            loss = data_loss + penalty
        variables = self.pruning_target.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, "penalty": penalty}


def test_pruning_target_of_a_custom_train_step_model(digits):
    classifier = _lenet(digits, width=0.25)
    wrapper = _WrappedClassifier(classifier)
    wrapper.compile(keras.optimizers.Adam(1e-3))
    pruner = ReweightedPruning(0.75, "filter", penalty=1e-3, prune_at=1)
    history = wrapper.fit(digits.x_train[:320], digits.y_train[:320], epochs=3, batch_size=64,
                          verbose=0, callbacks=pruner.callbacks())
    assert pruner.binding.target is classifier
    assert history.history["penalty"][0] > 0 and history.history["penalty"][-1] == 0
    assert sparsity_report(wrapper).sparsity == pytest.approx(0.75, abs=0.02)
    stripped = pruner.strip(wrapper)
    assert stripped.count_params() == classifier.count_params()


def _bounded_pruner(form, target_sparsity, prune_at_epoch, steps_per_epoch):
    """The calibrated bounded form: constant rate (one update an epoch) or ramped."""
    if form == "constant":
        return ReweightedPruning(target_sparsity, prune_at=prune_at_epoch)
    return ReweightedPruning.ramped(target_sparsity, prune_at_epoch=prune_at_epoch,
                                    steps_per_epoch=steps_per_epoch)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["constant", "ramped"])
def test_bounded_regularization_makes_the_hard_prune_nearly_lossless(digits, form):
    # An overfit LeNet-5 (100% on its training images), then the default bounded,
    # self-calibrated reweighted penalty for 8 epochs and the hard prune at 0.9.
    x, y = digits.x_train, digits.y_train
    model = _lenet(digits, width=1.0)
    model.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])
    keras.utils.set_random_seed(0)
    model.fit(x, y, epochs=20, batch_size=32, verbose=0)
    pruner = _bounded_pruner(form, 0.9, 28, int(np.ceil(len(x) / 32)))
    history = model.fit(x, y, initial_epoch=20, epochs=29, batch_size=32, verbose=0,
                        callbacks=pruner.callbacks(prune_data=(x, y)))
    drops = history.history["pruning_accuracy_drop"]
    assert len(drops) == 1  # logged in the epoch of the prune only
    assert abs(drops[0]) < 0.01, (drops, history.history["pruning_outside_mass"])
    assert sparsity_report(pruner.strip(model)).sparsity == pytest.approx(0.9, abs=2e-3)


@pytest.mark.skipif(not _HAS_FASHION_MNIST, reason="Fashion-MNIST IDX files not installed")
@pytest.mark.slow
@pytest.mark.parametrize("form", ["constant", "ramped"])
def test_calibrated_strength_is_within_10x_of_the_tuned_fashion_mnist_lambda(form):
    dataset = load_dataset("fashion_mnist")
    chosen = np.random.default_rng(0).permutation(len(dataset.x_train))[:3000]
    x, y = dataset.x_train[chosen], dataset.y_train[chosen]
    model = make_prunable(build_model("lenet5", dataset.input_shape, dataset.num_classes, seed=0))
    model.compile(keras.optimizers.Adam(1e-3), LOSS)
    keras.utils.set_random_seed(0)
    model.fit(x, y, epochs=2, batch_size=128, verbose=0)
    pruner = _bounded_pruner(form, 0.95, 8, int(np.ceil(len(x) / 128)))
    history = model.fit(x, y, initial_epoch=2, epochs=9, batch_size=128, verbose=0,
                        callbacks=pruner.callbacks())
    calibrated = history.history["pruning_lambda"][-1]
    assert np.isfinite(calibrated)
    assert _TUNED_FASHION_MNIST_LAMBDA / 10 <= calibrated <= 10 * _TUNED_FASHION_MNIST_LAMBDA
