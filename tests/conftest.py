"""Shared pytest configuration: quiet TensorFlow logs, skip helpers for optional data."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top

from mcmia_tf.data import DEFAULT_FASHION_MNIST_DIR  # pylint: disable=g-import-not-at-top


def fashion_mnist_available() -> bool:
    return os.path.exists(os.path.join(DEFAULT_FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))


@pytest.fixture(scope="session")
def digits():
    """The embedded `digits` dataset, loaded once per session."""
    from mcmia_tf.data import load_dataset  # pylint: disable=g-import-not-at-top
    return load_dataset("digits")
