"""Training-time augmentation: crops of the zero-padded image and flips, seeded, training only."""

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.data import augment
from mcmia_tf.data import augment_batches
from mcmia_tf.data import AUGMENTATIONS
from mcmia_tf.data import random_crop_flip
from mcmia_tf.privacy.poisson import poisson_batches

PADDING = 4


def _images(n=16, size=32, channels=3, seed=0):
    # Strictly positive pixels: a zero in the output can only come from the padding.
    return np.random.default_rng(seed).uniform(0.1, 1.0, (n, size, size, channels)).astype(
        np.float32)


def _candidates(image, padding=PADDING):
    """Every shift by (dy, dx) in [-padding, padding]^2 with zero fill, plain and mirrored."""
    height, width = image.shape[:2]
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    views = {}
    for oy in range(2 * padding + 1):
        for ox in range(2 * padding + 1):
            crop = padded[oy:oy + height, ox:ox + width]
            views[(oy - padding, ox - padding, False)] = crop
            views[(oy - padding, ox - padding, True)] = crop[:, ::-1]
    return views


def _match(output, image):
    """The (dy, dx, flipped) whose view of `image` equals `output`, or None."""
    for key, view in _candidates(image).items():
        if np.array_equal(view, output):
            return key
    return None


def _seed(a, b=0):
    return tf.constant([a, b], tf.int64)


def test_each_output_is_its_input_shifted_by_at_most_4_pixels_and_maybe_flipped():
    x = _images(64)
    out = random_crop_flip(x, _seed(3)).numpy()
    assert out.shape == x.shape and out.dtype == np.float32
    matches = [_match(o, i) for o, i in zip(out, x)]
    assert all(m is not None for m in matches)
    # Each example gets its own draw: both flip states and several shifts occur, up to 4.
    assert {m[2] for m in matches} == {False, True}
    shifts = {m[:2] for m in matches}
    assert len(shifts) > 10
    assert max(max(abs(dy), abs(dx)) for dy, dx in shifts) == PADDING


def test_the_uncovered_border_is_zero_filled():
    x = _images(32)
    out = random_crop_flip(x, _seed(5)).numpy()
    for o, i in zip(out, x):
        dy, dx, _ = _match(o, i)
        zero_rows = abs(dy)  # the rows the shift uncovered
        assert np.count_nonzero(np.all(o == 0, axis=(1, 2))) == zero_rows
        assert np.count_nonzero(np.all(o == 0, axis=(0, 2))) == abs(dx)


def test_deterministic_for_a_seed_and_different_across_seeds():
    x = _images(32)
    first = random_crop_flip(x, _seed(7)).numpy()
    np.testing.assert_array_equal(first, random_crop_flip(x, _seed(7)).numpy())
    assert not np.array_equal(first, random_crop_flip(x, _seed(8)).numpy())


def test_none_is_the_identity_and_bad_arguments_fail_clearly():
    x = _images(4)
    np.testing.assert_array_equal(augment(x, "none", _seed(0)).numpy(), x)
    assert AUGMENTATIONS == ("none", "crop_flip")
    with pytest.raises(ValueError, match=r"Invalid value for argument `augmentation`\. "
                                         r"Expected one of \('none', 'crop_flip'\)\. "
                                         r"Received: augmentation='cutout'"):
        augment(x, "cutout", _seed(0))
    with pytest.raises(ValueError, match="Expected NHWC images of rank 4"):
        random_crop_flip(np.zeros((4, 10), np.float32), _seed(0))
    with pytest.raises(ValueError, match=r"Received: padding=-1"):
        random_crop_flip(x, _seed(0), padding=-1)


def _epoch(dataset):
    return np.concatenate([b[0].numpy() for b in dataset])


def test_augment_batches_draws_anew_each_epoch_reproducibly_and_keeps_labels():
    x = _images(24)
    y = np.arange(24)
    batches = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)

    def build(seed):
        return augment_batches(batches, "crop_flip", seed=seed)

    data = build(0)
    first, second = _epoch(data), _epoch(data)
    assert not np.array_equal(first, second)  # new crops and flips every epoch
    for epoch in (first, second):
        assert all(_match(o, i) is not None for o, i in zip(epoch, x))
    again = build(0)
    np.testing.assert_array_equal(_epoch(again), first)
    np.testing.assert_array_equal(_epoch(again), second)
    assert not np.array_equal(_epoch(build(1)), first)
    np.testing.assert_array_equal(np.concatenate([b[1].numpy() for b in data]), y)
    assert augment_batches(batches, "none", seed=0) is batches


def test_poisson_batches_augment_the_drawn_examples_as_a_function_of_seed_and_step():
    x = _images(40, size=8, channels=1)
    y = np.arange(40)
    plain = list(poisson_batches(x, y, 10, seed=2).take(3))
    augmented = list(poisson_batches(x, y, 10, seed=2, augmentation="crop_flip").take(3))
    changed = 0
    for (xp, yp), (xa, ya) in zip(plain, augmented):
        np.testing.assert_array_equal(ya.numpy(), yp.numpy())  # the same Poisson draw
        for out, label in zip(xa.numpy(), ya.numpy()):
            assert _match(out, x[label]) is not None
            changed += not np.array_equal(out, x[label])
        assert xa.shape == xp.shape
    assert changed > 0
    repeat = list(poisson_batches(x, y, 10, seed=2, augmentation="crop_flip").take(3))
    for (xa, _), (xr, _) in zip(augmented, repeat):
        np.testing.assert_array_equal(xa.numpy(), xr.numpy())
    with pytest.raises(ValueError, match="Invalid value for argument `augmentation`"):
        poisson_batches(x, y, 10, seed=2, augmentation="flip")
