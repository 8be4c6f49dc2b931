"""The one place that handles the stack's two import traps.

1. Keras: tfmot and tensorflow-privacy only work with Keras 2, which on TF 2.21
   is the separate `tf_keras` package (`tf.keras` is Keras 3 there). Every
   module of mcmia_tf imports `keras` from here, and every public function that
   takes a model calls `ensure_tf_keras_model` so that a Keras 3 model fails
   early with an error that says how to rebuild it.
2. tensorflow-privacy: its top-level `__init__` imports `tensorflow_estimator`,
   which is broken on TF >= 2.16. The package checks `sys.skip_tf_privacy_import`
   and skips those imports when it is set, so `import_tf_privacy` sets it before
   importing any submodule.
"""

import importlib
import sys
import types

import tf_keras as keras

__all__ = ["keras", "ensure_tf_keras_model", "import_tf_privacy"]


def ensure_tf_keras_model(model, argument_name: str = "model"):
    """Returns `model` if it is a tf_keras (Keras 2) model, else raises.

    Args:
      model: the object passed by the user.
      argument_name: the name of the argument, used in the error message.

    Returns:
      `model`, unchanged.

    Raises:
      TypeError: if `model` is a Keras 3 model (`tf.keras` on TF >= 2.16 or
        `import keras`) or not a Keras model at all.
    """
    if isinstance(model, keras.Model):
        return model
    module = type(model).__module__ or ""
    if module.startswith("keras") or "keras.src" in module:
        raise TypeError(
            f"Invalid value for argument `{argument_name}`. Expected a tf_keras (Keras 2) "
            f"model; received a Keras 3 model of type {type(model).__name__}. tfmot and "
            "tensorflow-privacy only support Keras 2: build the model with "
            "`import tf_keras as keras` (or the builders in `mcmia_tf.models`) instead of "
            "`tf.keras` / `import keras`, e.g. `keras.Sequential([...])` with "
            "`tf_keras.layers`.")
    raise TypeError(
        f"Invalid value for argument `{argument_name}`. Expected a `tf_keras.Model`. "
        f"Received: {argument_name}={model!r} of type {type(model).__name__}.")


def import_tf_privacy(submodule: str) -> types.ModuleType:
    """Imports a tensorflow-privacy submodule without its broken top-level imports.

    Args:
      submodule: dotted path below `tensorflow_privacy`, e.g.
        "privacy.optimizers.dp_optimizer_keras_vectorized".

    Returns:
      The imported module.
    """
    sys.skip_tf_privacy_import = True
    return importlib.import_module(f"tensorflow_privacy.{submodule}")
