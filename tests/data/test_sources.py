"""Datasets: shapes, dtypes, ranges, offline error messages."""

import gzip
import os

import numpy as np
import pytest

from mcmia_tf.data import DATASET_NAMES
from mcmia_tf.data import DEFAULT_FASHION_MNIST_DIR
from mcmia_tf.data import load_dataset
from mcmia_tf.data import Normalization


def _require_fashion_mnist():
    if not os.path.exists(os.path.join(DEFAULT_FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz")):
        if os.environ.get("CI"):
            pytest.fail("CI must install the Debian package dataset-fashion-mnist")
        pytest.skip("dataset-fashion-mnist is not installed")


def test_digits_shapes_dtypes_and_range(digits):
    assert digits.input_shape == (8, 8, 1)
    assert digits.x_train.shape == (1500, 8, 8, 1) and digits.x_test.shape == (297, 8, 8, 1)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0
    assert set(np.unique(digits.y_train)) == set(range(10)) and digits.num_classes == 10
    # The fixed split is stratified: every class is in the test set.
    assert set(np.unique(digits.y_test)) == set(range(10))


def test_digits_is_deterministic(digits):
    again = load_dataset("digits")
    np.testing.assert_array_equal(again.x_train, digits.x_train)
    np.testing.assert_array_equal(again.y_test, digits.y_test)


def test_fashion_mnist_from_idx_files():
    _require_fashion_mnist()
    ds = load_dataset("fashion_mnist")
    assert ds.x_train.shape == (60000, 28, 28, 1) and ds.x_test.shape == (10000, 28, 28, 1)
    assert ds.x_train.dtype == np.float32 and 0.0 == ds.x_train.min() and ds.x_train.max() == 1.0
    assert np.bincount(ds.y_train).tolist() == [6000] * 10
    assert ds.class_names[9] == "Ankle boot"


def test_idx_reader_on_a_written_file(tmp_path):
    # A 2-image, 2x3 IDX file written by hand: header, then row-major bytes.
    images = np.array([[[0, 255, 51], [102, 153, 204]], [[1, 2, 3], [4, 5, 6]]], np.uint8)
    labels = np.array([7, 3], np.uint8)
    for name, arr in (("train-images-idx3-ubyte.gz", images), ("t10k-images-idx3-ubyte.gz", images)):
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in arr.shape))
            f.write(arr.tobytes())
    for name in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        with gzip.open(tmp_path / name, "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + labels.tobytes())
    ds = load_dataset("mnist", idx_dir=str(tmp_path))
    assert ds.x_train.shape == (2, 2, 3, 1)
    np.testing.assert_allclose(ds.x_train[0, 0, :, 0], [0.0, 1.0, 0.2])
    assert ds.y_train.tolist() == [7, 3]


def test_unknown_dataset_lists_choices():
    with pytest.raises(ValueError, match="Expected one of") as err:
        load_dataset("svhn")
    for name in DATASET_NAMES:
        assert name in str(err.value)


def test_missing_idx_files_say_how_to_install(tmp_path):
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion_mnist", idx_dir=str(tmp_path))


def test_tfds_absent_offline_names_data_dir_and_download(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_dir=.*download=True") as err:
        load_dataset("cifar10", data_dir=str(tmp_path))
    # The pipelines' flag and how to prepare the folder on a machine with internet access.
    assert "`--data_dir` in the pipelines" in str(err.value)
    assert "tfds build cifar10 --data_dir=DIR" in str(err.value)


def test_cifar10_from_a_prepared_tfds_folder(cifar10_data_dir):
    ds = load_dataset("cifar10", data_dir=cifar10_data_dir)
    assert ds.x_train.shape == (300, 32, 32, 3) and ds.x_test.shape == (60, 32, 32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.class_names[0] == "airplane" and ds.num_classes == 10
    assert np.bincount(ds.y_train).tolist() == [30] * 10
    # Normalised with CIFAR-10's channel statistics: raw 0..255 maps to about [-2, 2.2].
    assert -2.1 < ds.x_train.min() and ds.x_train.max() < 2.2
    assert not np.array_equal(ds.x_train[:60], ds.x_test)  # unlike tfds.testing.mock_data


def test_tfds_path_with_mock_data():
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    # mock_data only checks shapes: its train and test examples are identical.
    with tfds.testing.mock_data(num_examples=12):
        ds = load_dataset("cifar10", data_dir="unused")
    assert ds.x_train.shape == (12, 32, 32, 3) and ds.x_test.shape == (12, 32, 32, 3)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert ds.num_classes == 10 and len(ds.class_names) == 10
    assert ds.normalization.mean == (0.4914, 0.4822, 0.4465)


def test_normalization_formula():
    norm = Normalization(scale=255.0, mean=(0.5,), std=(0.25,))
    np.testing.assert_allclose(norm.apply(np.array([[0, 255]], np.uint8)), [[-2.0, 2.0]])
