"""Datasets by name, as float32 NHWC arrays in memory.

Three kinds of source:
  * `digits`: scikit-learn's `load_digits` (1,797 real 8x8 handwritten digits
    shipped inside scikit-learn; no download). Scaled to [0, 1].
  * `fashion_mnist` / `mnist` from IDX files: the four `*-idx?-ubyte.gz` files
    of the original release, read from a folder (by default the Debian package
    `dataset-fashion-mnist`'s `/usr/share/datasets/fashion-mnist/`).
  * TensorFlow Datasets: `mnist`, `fashion_mnist`, `cifar10`, `cifar100`,
    `imagenet2012` through `tfds.load(data_dir=..., download=...)`.

Every source returns a `Dataset` whose images are already normalised the way
the dataset's `Normalization` says, so the same record can be embedded in a
`.tflite` file and applied on device.
"""

import dataclasses
import gzip
import os
import struct
from typing import Optional, Tuple

import numpy as np

__all__ = [
    "DATASET_NAMES",
    "DEFAULT_FASHION_MNIST_DIR",
    "Dataset",
    "Normalization",
    "load_dataset",
]

DEFAULT_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DATASET_NAMES = ("digits", "mnist", "fashion_mnist", "cifar10", "cifar100", "imagenet2012")

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
_FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                          "Shirt", "Sneaker", "Bag", "Ankle boot")
# Per-channel statistics of the training images after scaling to [0, 1].
_CIFAR10_MEAN_STD = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
_CIFAR100_MEAN_STD = ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762))
_IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
# digits has no official test split: a fixed, stratified one keeps results comparable.
_DIGITS_NUM_TEST = 297
_DIGITS_SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class Normalization:
    """How raw pixels become model inputs: `x = (raw / scale - mean) / std`.

    `mean` and `std` are per channel. Stored in exported models so a device
    can apply the same transform to camera or sensor data.
    """
    scale: float
    mean: Tuple[float, ...]
    std: Tuple[float, ...]

    def apply(self, raw: np.ndarray) -> np.ndarray:
        x = raw.astype(np.float32) / np.float32(self.scale)
        return ((x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
                ).astype(np.float32)

    def to_dict(self) -> dict:
        return {"scale": self.scale, "mean": list(self.mean), "std": list(self.std)}


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """An image classification dataset in memory.

    Attributes:
      name: the name it was loaded by.
      x_train, x_test: float32 arrays of shape (n, height, width, channels),
        normalised with `normalization`.
      y_train, y_test: int64 class indices.
      num_classes: number of classes.
      class_names: one readable name per class.
      normalization: the transform applied to the raw pixels.
    """
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    class_names: Tuple[str, ...]
    normalization: Normalization

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"input_shape={self.input_shape}, num_classes={self.num_classes})")


def load_dataset(name: str,
                 *,
                 idx_dir: Optional[str] = None,
                 data_dir: Optional[str] = None,
                 download: bool = False,
                 image_size: Optional[Tuple[int, int]] = None,
                 max_train_examples: Optional[int] = None,
                 max_test_examples: Optional[int] = None) -> Dataset:
    """Loads a dataset by name.

    Args:
      name: one of `DATASET_NAMES`.
      idx_dir: folder with the four IDX `.gz` files of MNIST or Fashion-MNIST.
        For `fashion_mnist` it defaults to `DEFAULT_FASHION_MNIST_DIR` when
        neither `data_dir` nor `download` asks for TensorFlow Datasets.
      data_dir: TensorFlow Datasets data folder (`tfds.load(data_dir=...)`).
      download: let TensorFlow Datasets download and prepare missing data.
      image_size: (height, width) to resize to; required in practice for
        `imagenet2012` (default (64, 64) there), ignored otherwise.
      max_train_examples, max_test_examples: read at most this many examples
        (TensorFlow Datasets sources only; useful for ImageNet).

    Returns:
      A `Dataset`.

    Raises:
      ValueError: unknown name.
      FileNotFoundError: missing IDX files or TensorFlow Datasets data.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"Invalid value for argument `name`. Expected one of {DATASET_NAMES}. "
                         f"Received: name={name!r}")
    if name == "digits":
        return _load_digits()
    wants_tfds = data_dir is not None or download
    if name in ("mnist", "fashion_mnist") and idx_dir is None and not wants_tfds:
        if name == "fashion_mnist":
            idx_dir = DEFAULT_FASHION_MNIST_DIR
    if name in ("mnist", "fashion_mnist") and idx_dir is not None:
        return _load_idx(name, idx_dir)
    return _load_tfds(name, data_dir=data_dir, download=download, image_size=image_size,
                      max_train_examples=max_train_examples, max_test_examples=max_test_examples)


def _load_digits() -> Dataset:
    from sklearn import datasets as sk_datasets  # pylint: disable=g-import-not-at-top
    from sklearn import model_selection  # pylint: disable=g-import-not-at-top
    digits = sk_datasets.load_digits()
    raw = digits.images.astype(np.float32)[..., np.newaxis]  # values 0..16
    labels = digits.target.astype(np.int64)
    train_idx, test_idx = model_selection.train_test_split(
        np.arange(len(labels)), test_size=_DIGITS_NUM_TEST, stratify=labels,
        random_state=_DIGITS_SPLIT_SEED)
    train_idx, test_idx = np.sort(train_idx), np.sort(test_idx)
    norm = Normalization(scale=16.0, mean=(0.0,), std=(1.0,))
    x = norm.apply(raw)
    return Dataset(name="digits", x_train=x[train_idx], y_train=labels[train_idx],
                   x_test=x[test_idx], y_test=labels[test_idx], num_classes=10,
                   class_names=tuple(str(i) for i in range(10)), normalization=norm)


def _read_idx(path: str) -> np.ndarray:
    """Reads one gzipped IDX file (LeCun's format: big-endian header, uint8 data)."""
    with gzip.open(path, "rb") as f:
        magic = f.read(4)
        if len(magic) != 4 or magic[0] != 0 or magic[1] != 0 or magic[2] != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {magic!r}).")
        ndim = magic[3]
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {data.size} bytes.")
    return data.reshape(shape)


def _load_idx(name: str, idx_dir: str) -> Dataset:
    paths = {key: os.path.join(idx_dir, fname) for key, fname in _IDX_FILES.items()}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
        raise FileNotFoundError(
            f"{name}: IDX files not found: {missing}. Install them with "
            "`sudo apt-get install dataset-fashion-mnist` (files land in "
            f"{DEFAULT_FASHION_MNIST_DIR}), or pass `idx_dir=` a folder holding "
            f"{sorted(_IDX_FILES.values())}, or use TensorFlow Datasets with "
            "`data_dir=`/`download=True`.")
    norm = Normalization(scale=255.0, mean=(0.0,), std=(1.0,))
    arrays = {key: _read_idx(path) for key, path in paths.items()}
    class_names = _FASHION_MNIST_CLASSES if name == "fashion_mnist" else tuple(
        str(i) for i in range(10))
    return Dataset(name=name,
                   x_train=norm.apply(arrays["train_images"][..., np.newaxis]),
                   y_train=arrays["train_labels"].astype(np.int64),
                   x_test=norm.apply(arrays["test_images"][..., np.newaxis]),
                   y_test=arrays["test_labels"].astype(np.int64),
                   num_classes=10, class_names=class_names, normalization=norm)


def _tfds_normalization(name: str, channels: int) -> Normalization:
    mean_std = {"cifar10": _CIFAR10_MEAN_STD, "cifar100": _CIFAR100_MEAN_STD,
                "imagenet2012": _IMAGENET_MEAN_STD}.get(name)
    if mean_std is None:
        return Normalization(scale=255.0, mean=(0.0,) * channels, std=(1.0,) * channels)
    return Normalization(scale=255.0, mean=mean_std[0], std=mean_std[1])


def _split_spec(split: str, limit: Optional[int]) -> str:
    return split if limit is None else f"{split}[:{int(limit)}]"


def _load_tfds(name: str, *, data_dir, download, image_size, max_train_examples,
               max_test_examples) -> Dataset:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    if name == "imagenet2012" and image_size is None:
        image_size = (64, 64)
    test_split = "validation" if name == "imagenet2012" else "test"
    try:
        splits, info = tfds.load(
            name, split=[_split_spec("train", max_train_examples),
                         _split_spec(test_split, max_test_examples)],
            data_dir=data_dir, download=download, as_supervised=True, with_info=True)
    except Exception as err:  # tfds raises many types (AssertionError, DatasetNotFoundError, OSError).
        raise FileNotFoundError(
            f"TensorFlow Datasets could not provide {name!r} (data_dir={data_dir!r}, "
            f"download={download}): {type(err).__name__}: {err}. Pass `data_dir=` "
            f"(`--data_dir` in the pipelines) a folder where `{name}` is already prepared: "
            f"on a machine with internet access run `tfds build {name} --data_dir=DIR` (or "
            f"`tfds.builder({name!r}, data_dir=DIR).download_and_prepare()`) and copy DIR "
            f"(it holds `{name}/<version>/`) to this machine; or use `download=True` where "
            "there is internet access"
            + ("; for Fashion-MNIST offline, install `dataset-fashion-mnist` or pass `idx_dir=`."
               if name in ("mnist", "fashion_mnist") else ".")) from err
    num_classes = info.features["label"].num_classes
    class_names = tuple(info.features["label"].names)

    def to_numpy(ds) -> Tuple[np.ndarray, np.ndarray]:
        if image_size is not None:
            ds = ds.map(lambda x, y: (tf.cast(tf.image.resize(x, image_size), tf.uint8), y))
        xs, ys = [], []
        for x, y in tfds.as_numpy(ds.batch(1024)):
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs), np.concatenate(ys).astype(np.int64)

    (x_train_raw, y_train), (x_test_raw, y_test) = (to_numpy(s) for s in splits)
    norm = _tfds_normalization(name, x_train_raw.shape[-1])
    return Dataset(name=name, x_train=norm.apply(x_train_raw), y_train=y_train,
                   x_test=norm.apply(x_test_raw), y_test=y_test, num_classes=num_classes,
                   class_names=class_names, normalization=norm)

