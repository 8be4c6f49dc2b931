"""Datasets, disjoint membership splits, canaries and training-time augmentation."""

from mcmia_tf.data.augmentation import AUGMENTATIONS
from mcmia_tf.data.augmentation import augment
from mcmia_tf.data.augmentation import augment_batches
from mcmia_tf.data.augmentation import random_crop_flip
from mcmia_tf.data.canaries import Canaries
from mcmia_tf.data.canaries import CANARY_KINDS
from mcmia_tf.data.canaries import plant_canaries
from mcmia_tf.data.sources import DATASET_NAMES
from mcmia_tf.data.sources import DEFAULT_FASHION_MNIST_DIR
from mcmia_tf.data.sources import Dataset
from mcmia_tf.data.sources import load_dataset
from mcmia_tf.data.sources import Normalization
from mcmia_tf.data.splits import draw_inclusion_masks
from mcmia_tf.data.splits import draw_paired_inclusion_masks
from mcmia_tf.data.splits import MembershipSplit

__all__ = [
    "AUGMENTATIONS",
    "CANARY_KINDS",
    "Canaries",
    "DATASET_NAMES",
    "DEFAULT_FASHION_MNIST_DIR",
    "Dataset",
    "MembershipSplit",
    "Normalization",
    "augment",
    "augment_batches",
    "draw_inclusion_masks",
    "draw_paired_inclusion_masks",
    "load_dataset",
    "plant_canaries",
    "random_crop_flip",
]
