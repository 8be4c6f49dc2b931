"""Shared pytest configuration: quiet TensorFlow logs, the embedded dataset as a fixture."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top


@pytest.fixture(scope="session")
def digits():
    """The embedded `digits` dataset, loaded once per session."""
    from mcmia_tf.data import load_dataset  # pylint: disable=g-import-not-at-top
    return load_dataset("digits")
