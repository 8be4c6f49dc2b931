"""Shared pytest configuration: quiet TensorFlow logs, two logical CPUs, the embedded dataset.

The CPU is split into two logical devices before TensorFlow initialises (it can
only be done then), so `tf.distribute.MirroredStrategy` tests run two replicas
in this process. Ops without a device scope still run on /cpu:0, so the other
tests are unaffected.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # pylint: disable=g-import-not-at-top
import tensorflow as tf  # pylint: disable=g-import-not-at-top

NUM_LOGICAL_CPUS = 2
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration() for _ in range(NUM_LOGICAL_CPUS)])


@pytest.fixture(scope="session")
def digits():
    """The embedded `digits` dataset, loaded once per session."""
    from mcmia_tf.data import load_dataset  # pylint: disable=g-import-not-at-top
    return load_dataset("digits")


@pytest.fixture(scope="session")
def mirrored_strategy():
    """A `MirroredStrategy` over the two logical CPUs (two replicas).

    One for the whole session: on CPUs the strategy all-reduces with collective
    ops, whose instance keys each strategy object numbers from the same start, so
    two strategies in one process mix up their reductions.
    """
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(NUM_LOGICAL_CPUS)])
