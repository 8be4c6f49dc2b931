"""Poisson subsampling: batch sizes, inclusion rates, determinism, errors."""

import itertools

import numpy as np
import pytest

from mcmia_tf.privacy.poisson import poisson_batches
from mcmia_tf.privacy.poisson import steps_per_epoch


def _take(dataset, steps):
    return [(x.numpy(), y.numpy()) for x, y in itertools.islice(dataset, steps)]


def test_batches_have_the_expected_mean_size_and_each_example_the_expected_rate():
    n, batch, steps = 1000, 50, 400
    x = np.arange(n, dtype=np.float32)[:, None]
    batches = _take(poisson_batches(x, np.arange(n), batch, seed=3), steps)
    sizes = np.array([len(b[1]) for b in batches])
    # Binomial(n, q): mean q n = 50, sd sqrt(n q (1 - q)) = 6.9; the mean of 400 has sd 0.34.
    assert abs(sizes.mean() - batch) < 4 * np.sqrt(n * 0.05 * 0.95 / steps)
    assert sizes.std() == pytest.approx(np.sqrt(n * 0.05 * 0.95), rel=0.15)
    counts = np.bincount(np.concatenate([b[1] for b in batches]), minlength=n)
    # Each example joins each step independently with q = 0.05: 20 times in 400 steps.
    assert abs(counts.mean() - 20) < 0.5 and counts.std() == pytest.approx(np.sqrt(19), rel=0.15)
    for x_batch, y_batch in batches[:5]:
        np.testing.assert_array_equal(x_batch[:, 0], y_batch)  # pairs stay together


def test_batches_are_a_function_of_seed_and_step():
    x, y = np.zeros((200, 2), np.float32), np.arange(200)
    first = _take(poisson_batches(x, y, 20, seed=1), 5)
    again = _take(poisson_batches(x, y, 20, seed=1), 5)
    other = _take(poisson_batches(x, y, 20, seed=2), 5)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[1], b[1])
    assert any(not np.array_equal(a[1], b[1]) for a, b in zip(first, other))
    assert not np.array_equal(first[0][1], first[1][1])  # steps differ


def test_steps_per_epoch_and_errors():
    assert steps_per_epoch(10_000, 128) == 79
    with pytest.raises(ValueError, match="expected_batch_size"):
        poisson_batches(np.zeros((10, 1)), np.zeros(10), 11, seed=0)
    with pytest.raises(ValueError, match="same length"):
        poisson_batches(np.zeros((10, 1)), np.zeros(9), 2, seed=0)
