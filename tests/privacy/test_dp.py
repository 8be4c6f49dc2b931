"""Tests of DP-SGD optimizers and (epsilon, delta) accounting."""

import re

import numpy as np
import pytest

from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras
from mcmia_tf.privacy import dp


def _statement_epsilons(**kwargs):
    """(once-per-epoch, Poisson) epsilons printed by tensorflow-privacy."""
    lib = import_tf_privacy("privacy.analysis.compute_dp_sgd_privacy_lib")
    text = lib.compute_dp_sgd_privacy_statement(**kwargs)
    once = float(re.search(r"once per epoch:\s+([0-9.]+)", text).group(1))
    poisson = float(re.search(r"Poisson sampling \(\*\):\s+([0-9.]+)", text).group(1))
    return once, poisson


@pytest.mark.parametrize("n, batch_size, epochs, sigma, delta, microbatching", [
    (10_000, 128, 30, 1.1, 1e-5, True),
    (60_000, 256, 15, 1.1, 1e-5, False),
    (1_437, 32, 5.5, 2.0, 1e-4, True),
])
def test_epsilon_matches_tensorflow_privacy_statement(n, batch_size, epochs, sigma, delta,
                                                      microbatching):
    once, poisson = _statement_epsilons(
        number_of_examples=n, batch_size=batch_size, num_epochs=epochs,
        noise_multiplier=sigma, delta=delta, used_microbatching=microbatching)
    common = dict(used_microbatching=microbatching)
    # The statement prints three decimals.
    assert dp.compute_epsilon(n, batch_size, epochs, sigma, delta, **common) == \
        pytest.approx(poisson, abs=5e-4)
    assert dp.compute_epsilon(n, batch_size, epochs, sigma, delta, sampling="shuffled",
                              **common) == pytest.approx(once, abs=5e-4)


def test_privacy_guarantee_infers_microbatching():
    # 128 examples in 16 microbatches of 8: sensitivity doubles.
    guarantee = dp.privacy_guarantee(num_examples=10_000, batch_size=128, epochs=30,
                                     noise_multiplier=1.1, l2_norm_clip=1.0, delta=1e-5,
                                     num_microbatches=16)
    assert guarantee.epsilon == pytest.approx(
        dp.compute_epsilon(10_000, 128, 30, 1.1, 1e-5, used_microbatching=True))
    per_example = dp.privacy_guarantee(num_examples=10_000, batch_size=128, epochs=30,
                                       noise_multiplier=1.1, l2_norm_clip=1.0, delta=1e-5)
    assert per_example.num_microbatches == 128
    assert per_example.epsilon < guarantee.epsilon
    assert per_example.epsilon_shuffled > per_example.epsilon
    assert per_example.to_dict()["noise_multiplier"] == 1.1


def test_noise_search_is_tight():
    args = (10_000, 128, 30, 1e-5)
    sigma = dp.find_noise_multiplier(3.0, *args, tolerance=1e-3)
    assert dp.compute_epsilon(args[0], args[1], args[2], sigma, args[3]) <= 3.0
    assert dp.compute_epsilon(args[0], args[1], args[2], sigma - 2e-3, args[3]) > 3.0


def test_unreachable_epsilon_and_bad_accounting_arguments():
    with pytest.raises(ValueError, match="unreachable"):
        dp.find_noise_multiplier(0.01, 100, 100, 1000, 1e-3, max_noise_multiplier=10.0)
    with pytest.raises(ValueError, match="`target_epsilon`"):
        dp.find_noise_multiplier(0.0, 1000, 10, 1, 1e-5)
    with pytest.raises(ValueError, match="`delta`"):
        dp.compute_epsilon(1000, 10, 1, 1.0, 0.0)
    with pytest.raises(ValueError, match="`sampling`"):
        dp.compute_epsilon(1000, 10, 1, 1.0, 1e-5, sampling="uniform")
    assert dp.compute_epsilon(1000, 10, 1, 0.0, 1e-5) == float("inf")


def test_batch_size_must_be_divisible_by_microbatches():
    with pytest.raises(ValueError, match="num_microbatches=16"):
        dp.make_dp_optimizer(num_microbatches=20, batch_size=128)
    with pytest.raises(ValueError, match="`num_microbatches`"):
        dp.check_microbatches(10, 0)
    assert dp.check_microbatches(128, None) == 128
    assert dp.check_microbatches(128, 16) == 16


def test_per_example_loss_is_not_reduced():
    loss = dp.per_example_loss()(np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]]))
    assert loss.shape == (2,)


def _linear_model():
    model = keras.Sequential([keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros",
                                                 input_shape=(2,))])
    return model


def test_zero_noise_step_is_the_mean_of_clipped_per_example_gradients():
    """Squared error on w.x: per-example gradient 2 (w.x - y) x = -2 y x at w = 0."""
    x = np.array([[3.0, 4.0], [0.0, 0.1], [1.0, 0.0], [0.0, 2.0]], np.float32)
    y = np.array([1.0, 1.0, -1.0, 1.0], np.float32)
    clip = 1.0
    grads = -2 * y[:, None] * x
    clipped = grads / np.maximum(np.linalg.norm(grads, axis=1, keepdims=True) / clip, 1.0)
    expected = -0.5 * clipped.mean(axis=0)   # SGD, learning rate 0.5

    for vectorized in (True, False):
        model = _linear_model()
        optimizer = dp.make_dp_optimizer("sgd", l2_norm_clip=clip, noise_multiplier=0.0,
                                         learning_rate=0.5, batch_size=4, vectorized=vectorized)
        assert isinstance(optimizer, keras.optimizers.legacy.Optimizer)
        model.compile(optimizer, keras.losses.MeanSquaredError(
            reduction=keras.losses.Reduction.NONE))
        model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
        np.testing.assert_allclose(model.get_weights()[0].ravel(), expected, rtol=1e-5)


@pytest.mark.slow
def test_noise_has_the_documented_scale():
    """With zero gradients, the update is -lr * N(0, (sigma C)^2) / num_microbatches."""
    sigma, clip, batch = 2.0, 0.5, 8
    model = _linear_model()
    optimizer = dp.make_dp_optimizer("sgd", l2_norm_clip=clip, noise_multiplier=sigma,
                                     learning_rate=1.0, num_microbatches=batch, batch_size=batch)
    model.compile(optimizer, keras.losses.MeanSquaredError(reduction=keras.losses.Reduction.NONE))
    x = np.zeros((batch * 100, 2), np.float32)
    y = np.zeros(batch * 100, np.float32)
    updates = []
    previous = model.get_weights()[0].ravel()
    for start in range(0, len(x), batch):
        model.train_on_batch(x[start:start + batch], y[start:start + batch])
        current = model.get_weights()[0].ravel()
        updates.append(current - previous)
        previous = current
    std = np.std(np.concatenate(updates))
    assert std == pytest.approx(sigma * clip / batch, rel=0.1)
