"""mcmia_tf: deep networks small and private at once, for phones and microcontrollers.

Subpackages:
  data      datasets by name and disjoint membership splits
  models    the model zoo (tf_keras Functional builders)
"""

from mcmia_tf import data
from mcmia_tf import models
from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.models import build_model

__version__ = "0.1.0"

__all__ = [
    "MembershipSplit",
    "build_model",
    "data",
    "ensure_tf_keras_model",
    "import_tf_privacy",
    "keras",
    "load_dataset",
    "models",
]
