"""The Keras callback that drives a pruner during `model.fit`.

Clock: epochs come from `on_epoch_begin(epoch)` (so `initial_epoch` is honoured);
steps are the optimizer's `iterations` when `fit` starts plus the batches run since,
so a model saved and reloaded mid-schedule resumes at the right step. Per-batch
hooks do nothing for epoch-based pruners beyond counting.

At the end of every epoch the callback adds `pruning_sparsity`, `pruning_penalty`
(and for ADMM `admm_residual`, `admm_rho`) to the logs, where `History`, the
progress bar and a later `keras.callbacks.TensorBoard` see them; with `log_dir` it
also writes those scalars and every layer's sparsity as TensorBoard summaries.
"""

from typing import Optional

import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from mcmia_tf.compat import keras

__all__ = ["PruningCallback"]

# TensorBoard's scalar-plugin tag, written with the core `tf.summary.write` op so
# that logging works without the `tensorboard` package installed.
_SCALAR_METADATA = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


def _write_scalar(tag: str, value: float, step: int) -> None:
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step,
                     metadata=_SCALAR_METADATA.SerializeToString())


@keras.utils.register_keras_serializable(package="mcmia_tf")
class PruningCallback(keras.callbacks.Callback):
    """Runs `pruner`'s phases (regularize -> hard prune -> masked retrain) in `fit`.

    Args:
      pruner: a `DynamicRegularizationPruning` (reweighted, ADMM, static).
      log_dir: optional TensorBoard directory for per-layer sparsity and penalty.
    """

    def __init__(self, pruner, log_dir: Optional[str] = None):
        super().__init__()
        # Duck-typed: the pruner module imports this one to build `callbacks()`.
        if not all(hasattr(pruner, name) for name in ("bind", "advance", "metrics", "unit")):
            raise TypeError(
                "Invalid value for argument `pruner`. Expected a ReweightedPruning, "
                f"ADMMPruning or StaticRegularization. Received: pruner={pruner!r}")
        self.pruner = pruner
        self.log_dir = log_dir
        # Logs stay tensors: no per-batch device->host copy of the metrics.
        self._supports_tf_logs = True
        self._epoch_first_step = 0
        self._batches_in_epoch = 0
        self._writer = None

    def _optimizer(self):
        return getattr(self.model, "optimizer", None)

    def on_train_begin(self, logs=None):
        if self.pruner.bind(self.model):
            # The traced train step must see the new loss term and constraints.
            self.model.train_function = self.model.make_train_function(force=True)
        iterations = getattr(self._optimizer(), "iterations", None)
        self._epoch_first_step = int(iterations.numpy()) if iterations is not None else (
            self._epoch_first_step + self._batches_in_epoch)
        self._batches_in_epoch = 0
        if self.log_dir and self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_begin(self, epoch, logs=None):
        self.pruner.advance("epoch", epoch, self._optimizer())

    def on_train_batch_begin(self, batch, logs=None):
        if self.pruner.unit == "step":
            self.pruner.advance("step", self._epoch_first_step + batch, self._optimizer())

    def on_train_batch_end(self, batch, logs=None):
        self._batches_in_epoch = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_first_step += self._batches_in_epoch
        self._batches_in_epoch = 0
        metrics = self.pruner.metrics()
        if logs is not None:
            logs.update({f"pruning_{k}" if not k.startswith("admm") else k: v
                         for k, v in metrics.items()})
        if self._writer is not None:
            with self._writer.as_default(step=epoch):
                for name, value in metrics.items():
                    _write_scalar(f"pruning/{name}", value, epoch)
                for path, value in self.pruner.binding.sparsities().items():
                    _write_scalar(f"pruning/sparsity/{path}", value, epoch)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()

    def get_config(self):
        return {"pruner": keras.utils.serialize_keras_object(self.pruner),
                "log_dir": self.log_dir}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["pruner"] = keras.utils.deserialize_keras_object(config["pruner"])
        return cls(**config)
