"""Datasets and disjoint membership splits."""

from mcmia_tf.data.sources import DATASET_NAMES
from mcmia_tf.data.sources import DEFAULT_FASHION_MNIST_DIR
from mcmia_tf.data.sources import Dataset
from mcmia_tf.data.sources import load_dataset
from mcmia_tf.data.sources import Normalization
from mcmia_tf.data.splits import draw_inclusion_masks
from mcmia_tf.data.splits import MembershipSplit

__all__ = [
    "DATASET_NAMES",
    "DEFAULT_FASHION_MNIST_DIR",
    "Dataset",
    "MembershipSplit",
    "Normalization",
    "draw_inclusion_masks",
    "load_dataset",
]
