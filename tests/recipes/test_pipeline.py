"""`shuffled_batches`: seeded epoch orders, fixed-size batches, augmentation of the images only."""

import numpy as np
import tensorflow as tf

from mcmia_tf.recipes.pipeline import shuffled_batches

_N = 10


def _epochs(data, num_epochs=2):
    return [[(x.numpy(), y.numpy()) for x, y in data] for _ in range(num_epochs)]


def _labels(epoch):
    return np.concatenate([y for _, y in epoch])


def _images(n=_N):
    x = np.arange(n * 4 * 4, dtype=np.float32).reshape(n, 4, 4, 1)
    return x, np.arange(n, dtype=np.int64)


def test_each_epoch_is_a_new_permutation_fixed_by_the_seed():
    x, y = _images()
    tf.random.set_seed(0)
    first = _epochs(shuffled_batches(x, y, 4, seed=3))
    tf.random.set_seed(0)
    again = _epochs(shuffled_batches(x, y, 4, seed=3))
    tf.random.set_seed(0)
    other = _epochs(shuffled_batches(x, y, 4, seed=4))
    for epoch, repeat in zip(first, again):
        np.testing.assert_array_equal(_labels(epoch), _labels(repeat))
    assert [len(b[1]) for b in first[0]] == [4, 4, 2]
    for epoch in first:
        assert sorted(_labels(epoch)) == list(range(_N))
        for xb, yb in epoch:
            np.testing.assert_array_equal(xb, x[yb])  # images stay with their labels
    assert not np.array_equal(_labels(first[0]), _labels(first[1]))
    assert not np.array_equal(_labels(first[0]), _labels(other[0]))


def test_drop_remainder_keeps_full_batches_only():
    x, y = _images()
    epoch = _epochs(shuffled_batches(x, y, 4, seed=0, drop_remainder=True), 1)[0]
    assert [len(yb) for _, yb in epoch] == [4, 4]


def test_augmentation_changes_images_not_the_order():
    x, y = _images()
    tf.random.set_seed(0)
    plain = _epochs(shuffled_batches(x, y, 4, seed=1), 1)[0]
    tf.random.set_seed(0)
    augmented = _epochs(shuffled_batches(x, y, 4, seed=1, augmentation="crop_flip"), 1)[0]
    np.testing.assert_array_equal(_labels(plain), _labels(augmented))
    assert all(xa.shape == xp.shape for (xa, _), (xp, _) in zip(augmented, plain))
    assert any(not np.array_equal(xa, xp) for (xa, _), (xp, _) in zip(augmented, plain))
