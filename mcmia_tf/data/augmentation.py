"""Training-time data augmentation: the standard CIFAR random crop and horizontal flip.

`random_crop_flip` is the augmentation of the CIFAR ResNet / VGG / MobileNet
recipes (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
Section 4.2; kuangliu/pytorch-cifar's `RandomCrop(32, padding=4)` +
`RandomHorizontalFlip()`): pad every image with `padding` zero pixels on each
side, crop a window of the original size at a uniformly random offset, and
mirror it left-right with probability 1/2. Each example gets its own offset and
flip. The zeros are zeros of the model input, i.e. the dataset's mean colour
after `Normalization` (torchvision pads raw black pixels before normalising;
only the fill colour differs).

Randomness is stateless: the output is a function of `(images, seed)` alone, so
a training run is reproducible and resumable without global random state.
Augmentation is for training batches only: evaluation, validation and audit
queries always see the original images (LiRA's query views are separate, see
`mcmia_tf.audit.lira.augmented_views`).

```python
data = augment_batches(tf.data.Dataset.from_tensor_slices((x, y)).batch(128),
                       "crop_flip", seed=0)
model.fit(data, epochs=200)
```
"""

import numpy as np
import tensorflow as tf

__all__ = ["AUGMENTATIONS", "augment", "augment_batches", "random_crop_flip"]

AUGMENTATIONS = ("none", "crop_flip")
CROP_PADDING = 4  # pixels: the CIFAR recipe's crop padding


def _check_augmentation(augmentation: str) -> None:
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"Invalid value for argument `augmentation`. Expected one of "
                         f"{AUGMENTATIONS}. Received: augmentation={augmentation!r}")


def random_crop_flip(images, seed, padding: int = CROP_PADDING) -> tf.Tensor:
    """Random crop of the zero-padded images + random horizontal flip, per example.

    Output pixel `(i, j)` of example `b` is `padded[b, oy + i, ox + j']` with
    `j' = W - 1 - j` if the example is flipped else `j`, where `padded` is the
    batch with `padding` zeros on each side and `oy, ox` are uniform in
    `[0, 2 * padding]`: the image shifted by `(oy - padding, ox - padding)`
    pixels (zeros fill the uncovered border), then mirrored with probability 1/2.

    Args:
      images: `(batch, height, width, channels)` float images (NHWC).
      seed: a shape-`[2]` integer tensor, the stateless seed
        (`tf.random.stateless_uniform`); the same seed gives the same output.
      padding: maximum shift in pixels (4 for CIFAR's 32x32 images).

    Returns:
      A tensor shaped like `images`.

    Raises:
      ValueError: if `images` is not rank 4 or `padding` is not an integer >= 0.
    """
    if isinstance(padding, bool) or not isinstance(padding, (int, np.integer)) or padding < 0:
        raise ValueError("Invalid value for argument `padding`. Expected an integer >= 0. "
                         f"Received: padding={padding!r}")
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError("Invalid value for argument `images`. Expected NHWC images of rank 4 "
                         f"(crop and flip need height and width). Received: shape={images.shape}")
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    offset_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    offsets = tf.random.stateless_uniform([batch, 2], seed=offset_seed, minval=0,
                                          maxval=2 * int(padding) + 1, dtype=tf.int32)
    flipped = tf.random.stateless_uniform([batch], seed=flip_seed) < 0.5
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    rows = offsets[:, :1] + tf.range(height)[tf.newaxis]                    # (batch, height)
    columns = tf.range(width)[tf.newaxis]
    columns = tf.where(flipped[:, tf.newaxis], width - 1 - columns, columns)  # crop, then flip
    columns = offsets[:, 1:] + columns                                      # (batch, width)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(cropped, columns, axis=2, batch_dims=1)


def augment(images, augmentation: str, seed) -> tf.Tensor:
    """Applies the named augmentation to a batch of images.

    Args:
      images: `(batch, height, width, channels)` images.
      augmentation: one of `AUGMENTATIONS` ("none" returns `images` unchanged).
      seed: a shape-`[2]` integer tensor, the stateless seed.

    Returns:
      The augmented batch, shaped like `images`.
    """
    _check_augmentation(augmentation)
    if augmentation == "none":
        return tf.convert_to_tensor(images)
    return random_crop_flip(images, seed)


def augment_batches(dataset: tf.data.Dataset, augmentation: str, seed: int) -> tf.data.Dataset:
    """Augments the images of a dataset of `(x_batch, y_batch)` training batches.

    Every pass over the returned dataset (every epoch of `model.fit`) draws new
    crops and flips; the sequence of passes is a function of `seed` (an op seed
    of `tf.data.Dataset.random`, drawn from a stream independent of the one a
    shuffle with op seed `seed` uses).

    Args:
      dataset: batches `(x, y)` with NHWC `x`.
      augmentation: one of `AUGMENTATIONS`; "none" returns `dataset` itself.
      seed: integer seed of the augmentation.

    Returns:
      A dataset of augmented `(x, y)` batches.
    """
    _check_augmentation(augmentation)
    if augmentation == "none":
        return dataset
    seed = int(seed)
    # A different op seed from the shuffle's: both would otherwise draw from one stream.
    stream = int(np.random.SeedSequence([seed, 0xA06]).generate_state(1)[0])
    draws = tf.data.Dataset.random(seed=stream, rerandomize_each_iteration=True)

    def apply(batch, draw):
        x, y = batch
        return augment(x, augmentation, tf.stack([tf.constant(seed, tf.int64), draw])), y

    return tf.data.Dataset.zip((dataset, draws)).map(
        apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
