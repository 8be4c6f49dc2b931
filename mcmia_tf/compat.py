"""The one place that handles the stack's import traps and internals.

1. Keras: tfmot and tensorflow-privacy only work with Keras 2, which on TF 2.21
   is the separate `tf_keras` package (`tf.keras` is Keras 3 there). Every
   module of mcmia_tf imports `keras` from here, and every public function that
   takes a model calls `ensure_tf_keras_model` so that a Keras 3 model fails
   early with an error that says how to rebuild it.
2. tensorflow-privacy: its top-level `__init__` imports `tensorflow_estimator`,
   which is broken on TF >= 2.16. The package checks `sys.skip_tf_privacy_import`
   and skips those imports when it is set, so `import_tf_privacy` sets it before
   importing any submodule.
3. Internals: mcmia_tf, tflite_export and pipelines use no private attribute or
   internal module of TensorFlow, tf_keras or tfmot; where one looked needed,
   the public route is used instead (and named here, so that a future private
   use lands in this module with its reason):
   * "does this model have a layer graph?" -> `has_layer_graph` (`Model.inputs`,
     not `Model._is_graph_network`);
   * the layer graph -> `model.get_config()` (`mcmia_tf.pruning.coupling.layer_graph`),
     not `Model._nodes_by_depth`;
   * tfmot's `PruneLowMagnitude` class, which `tfmot.sparsity.keras` does not
     export -> the class its public `prune_scope()` registers
     (`tflite_export.converter`), not `tensorflow_model_optimization.python...`;
   * the TFLite flatbuffer schema -> LiteRT's `ai_edge_litert.schema_py_generated`,
     not TensorFlow's internal `tensorflow.lite.python.schema_py_generated`;
   * the TensorBoard summary proto -> `tf.compat.v1.SummaryMetadata`, not
     `tensorflow.core.framework.summary_pb2`;
   * TFLite Micro's interpreter -> `tflite_micro.runtime` (its public alias), not
     `tflite_micro.python.tflite_micro.runtime`.
   tensorflow-privacy's submodules (item 2) stay: they are its only importable API.
"""

import importlib
import sys
import types

import tf_keras as keras

__all__ = ["keras", "ensure_tf_keras_model", "has_layer_graph", "import_tf_privacy"]


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


def has_layer_graph(model) -> bool:
    """Whether `model` is a graph of layers: Functional, or Sequential with a known input.

    tf_keras sets the public `Model.inputs` exactly when it builds the layer graph
    (the same moment it sets the private `_is_graph_network`); subclassed models and
    Sequential models not built yet have `inputs=None`.
    """
    return isinstance(model, keras.Model) and model.inputs is not None


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
