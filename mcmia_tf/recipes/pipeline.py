"""The tf.data pipeline of every training recipe: seeded shuffled batches, augmented.

Both kinds of recipe read their training data from here: `Recipe` (every method
but DP's Poisson sampling) and `StandardTrainingRecipe`, the plain recipe of
shadow and reference models. An epoch's order is a function of the fit seed
alone (an op-level shuffle seed, reshuffled every epoch), so a target and the
reference models trained with its recipe see their data the same way.

With `augmentation="crop_flip"`, batches are randomly cropped and flipped per
example (`mcmia_tf.data.augmentation`, seeded from the same seed); "none" leaves
them untouched. DP-SGD's Poisson-sampled batches, the sampling its accountant
assumes, come from `mcmia_tf.privacy.poisson_batches` (same augmentation).
"""

import numpy as np
import tensorflow as tf

from mcmia_tf.data import augmentation as augmentation_lib

__all__ = ["shuffled_batches"]


def shuffled_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, *,
                     drop_remainder: bool = False,
                     augmentation: str = "none") -> tf.data.Dataset:
    """Batches of `(x, y)` in a new order every epoch, the sequence of orders fixed by `seed`.

    Args:
      x: `(n, ...)` training inputs.
      y: `(n,)` integer labels.
      batch_size: examples per batch.
      seed: op-level seed of the shuffle (and of the augmentation).
      drop_remainder: drop the last, smaller batch of each epoch (DP-SGD's
        microbatches need fixed-size batches).
      augmentation: one of `mcmia_tf.data.AUGMENTATIONS`.

    Returns:
      A prefetching `tf.data.Dataset` of `(x_batch, y_batch)`; one pass is one epoch.
    """
    # An op-level shuffle seed makes the epoch order a function of `seed` alone,
    # without touching TensorFlow's global random state.
    data = (tf.data.Dataset.from_tensor_slices((x, y))
            .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size, drop_remainder=drop_remainder))
    return augmentation_lib.augment_batches(data, augmentation, seed).prefetch(2)
