"""Poisson subsampling: the batches DP-SGD's privacy accounting assumes.

The RDP / PLD analyses of DP-SGD (Abadi et al., CCS 2016; Mironov et al., 2019)
amplify privacy by *Poisson* subsampling: at every step each of the n examples
joins the batch independently with probability q = B / n, so batch sizes vary
around B. Shuffled fixed-size batches, the common practice, are not covered
exactly by that analysis (Chua et al., "How Private are DP-SGD Implementations?",
ICML 2024), so reports say which sampler a number was trained with.

`poisson_batches` is an endless `tf.data.Dataset`; train with
`model.fit(data, steps_per_epoch=steps_per_epoch(n, B), epochs=E)`. Step t's batch
is a function of `(seed, t)` alone (stateless sampling), so a run is reproducible
and resumable; so are its crops and flips with `augmentation="crop_flip"`
(`mcmia_tf.data.augmentation`, drawn per example from a seed folded from
`(seed, t)`). A DP step normalises the noisy clipped sum by the *expected* batch
size B, not the drawn one, which would leak the batch size (Abadi et al.).
"""

import math

import numpy as np
import tensorflow as tf

from mcmia_tf.data import augmentation as augmentation_lib

__all__ = ["poisson_batches", "steps_per_epoch"]


def steps_per_epoch(num_examples: int, expected_batch_size: int) -> int:
    """Steps of one epoch, `ceil(n / B)`: each example is used once per epoch on average."""
    return int(math.ceil(num_examples / expected_batch_size))


def poisson_batches(x: np.ndarray, y: np.ndarray, expected_batch_size: int,
                    seed: int, augmentation: str = "none") -> tf.data.Dataset:
    """Endless batches in which every example appears with probability B / n.

    Args:
      x: `(n, ...)` inputs.
      y: `(n,)` labels.
      expected_batch_size: B, with `1 <= B <= n`.
      seed: the batches are a function of `(seed, step)`.
      augmentation: one of `mcmia_tf.data.AUGMENTATIONS`, applied to every
        drawn example (training-time augmentation; "none" by default).

    Returns:
      A `tf.data.Dataset` of `(x_batch, y_batch)` of varying (possibly zero) size.

    Raises:
      ValueError: if B is outside [1, n], x and y differ in length, or the
        augmentation is unknown.
    """
    num_examples = len(x)
    if len(y) != num_examples:
        raise ValueError("Invalid value for arguments `x` and `y`. Expected the same length. "
                         f"Received: len(x)={num_examples}, len(y)={len(y)}")
    if isinstance(expected_batch_size, bool) or not isinstance(
            expected_batch_size, (int, np.integer)) or not 1 <= expected_batch_size <= num_examples:
        raise ValueError("Invalid value for argument `expected_batch_size`. Expected an integer "
                         f"in [1, {num_examples}] (the number of examples). Received: "
                         f"expected_batch_size={expected_batch_size!r}")
    if augmentation not in augmentation_lib.AUGMENTATIONS:
        raise ValueError(f"Invalid value for argument `augmentation`. Expected one of "
                         f"{augmentation_lib.AUGMENTATIONS}. Received: "
                         f"augmentation={augmentation!r}")
    rate = float(expected_batch_size) / num_examples
    x_all, y_all = tf.constant(x), tf.constant(y)

    def draw(step):
        # Stateless: step t's batch depends on (seed, t) only, whatever ran before.
        step_seed = tf.stack([tf.constant(int(seed), tf.int64), step])
        keep = tf.random.stateless_uniform([num_examples], seed=step_seed) < rate
        index = tf.reshape(tf.where(keep), [-1])
        x_batch = tf.gather(x_all, index)
        if augmentation != "none":
            # Its own stream, folded from the step's seed (not the sampling draw's).
            x_batch = augmentation_lib.augment(
                x_batch, augmentation, tf.random.experimental.stateless_fold_in(step_seed, 1))
        return x_batch, tf.gather(y_all, index)

    return tf.data.Dataset.counter().map(draw, num_parallel_calls=tf.data.AUTOTUNE,
                                         deterministic=True).prefetch(2)
