"""Shared pytest configuration: quiet TensorFlow logs, two logical CPUs, the embedded dataset,
and a small synthetic CIFAR-10 prepared by TensorFlow Datasets' own builder.

The CPU is split into two logical devices before TensorFlow initialises (it can
only be done then), so `tf.distribute.MirroredStrategy` tests run two replicas
in this process. Ops without a device scope still run on /cpu:0, so the other
tests are unaffected.
"""

import os
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # pylint: disable=g-import-not-at-top
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


_CIFAR10_NUM_TRAIN = 300
_CIFAR10_NUM_TEST = 60
_CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                    "ship", "truck")


def _write_cifar_binary(path: str, labels: np.ndarray, images: np.ndarray) -> None:
    """The original CIFAR-10 binary format: per image 1 label byte + 3072 bytes, CHW."""
    with open(path, "wb") as f:
        for label, image in zip(labels, images):
            f.write(bytes([int(label)]) + np.ascontiguousarray(image.transpose(2, 0, 1)).tobytes())


@pytest.fixture(scope="session")
def cifar10_data_dir(tmp_path_factory):
    """A TensorFlow Datasets folder holding a synthetic CIFAR-10 (300 train, 60 test images).

    TFDS's own `cifar10` builder prepares it, from files in the original binary format
    written here instead of downloaded, so the folder is what `tfds build cifar10
    --data_dir=DIR` writes and `tfds.load(data_dir=...)` (any process) reads it like the
    real data, offline. Unlike `tfds.testing.mock_data`, train and test differ. Images
    are class-dependent colour plus noise (32x32x3 uint8), learnable in a few steps.
    """
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    root = tmp_path_factory.mktemp("tfds_cifar10")
    source = root / "extracted" / "cifar-10-batches-bin"
    source.mkdir(parents=True)
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (10, 1, 1, 3))

    def images_and_labels(n):
        labels = np.arange(n) % 10
        noise = rng.integers(-40, 41, (n, 32, 32, 3))
        return labels.astype(np.uint8), np.clip(colours[labels] + noise, 0, 255).astype(np.uint8)

    per_file = _CIFAR10_NUM_TRAIN // 5
    for k in range(5):
        _write_cifar_binary(str(source / f"data_batch_{k + 1}.bin"), *images_and_labels(per_file))
    _write_cifar_binary(str(source / "test_batch.bin"), *images_and_labels(_CIFAR10_NUM_TEST))
    (source / "batches.meta.txt").write_text("\n".join(_CIFAR10_CLASSES) + "\n")

    class _LocalFiles:
        """The download manager's one call in the builder, answered with the folder above."""
        downloaded_size = 0

        def download_and_extract(self, url):
            del url
            return str(root / "extracted")

    data_dir = str(root / "tfds")
    with mock.patch.object(tfds.core.DatasetBuilder, "_make_download_manager",
                           lambda *args, **kwargs: _LocalFiles()):
        tfds.builder("cifar10", data_dir=data_dir).download_and_prepare()
    return data_dir
