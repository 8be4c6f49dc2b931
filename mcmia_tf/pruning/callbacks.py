"""The Keras callback that drives a pruner during `model.fit`.

Clock: epochs come from `on_epoch_begin(epoch)` (so `initial_epoch` is honoured);
steps are the optimizer's `iterations` when `fit` starts plus the batches run since,
so a model saved and reloaded mid-schedule resumes at the right step. Per-batch
hooks do nothing for epoch-based pruners beyond counting.

At the end of every epoch the callback adds `pruning_sparsity`, `pruning_penalty`
(and for ADMM `admm_residual`, `admm_rho`) to the logs, where `History`, the
progress bar and a later `keras.callbacks.TensorBoard` see them; with `log_dir` it
also writes those scalars and every layer's sparsity as TensorBoard summaries.

With `prune_data=(x, y)` (integer labels) the callback measures the pruned
network's accuracy on it just before and just after the hard prune and logs the
difference as `pruning_accuracy_drop` in that epoch's logs: ~0 when the
regularization has already moved the removed weights to zero.
"""

from typing import Optional, Tuple

import numpy as np
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning import registry

__all__ = ["PruningCallback"]

# TensorBoard's scalar-plugin tag, written with the core `tf.summary.write` op so
# that logging works without the `tensorboard` package installed.
# (`tf.compat.v1.SummaryMetadata` is TF's public export of the summary proto.)
_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))


def _write_scalar(tag: str, value: float, step: int) -> None:
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step,
                     metadata=_SCALAR_METADATA.SerializeToString())


@keras.utils.register_keras_serializable(package="mcmia_tf")
class PruningCallback(keras.callbacks.Callback):
    """Runs `pruner`'s phases (regularize -> hard prune -> masked retrain) in `fit`.

    Args:
      pruner: a `DynamicRegularizationPruning` (reweighted, ADMM, static).
      log_dir: optional TensorBoard directory for per-layer sparsity and penalty.
      prune_data: optional (x, y) on which to measure the accuracy drop of the
        hard prune (e.g. a slice of the training data).
    """

    def __init__(self, pruner, log_dir: Optional[str] = None,
                 prune_data: Optional[Tuple[np.ndarray, np.ndarray]] = None):
        super().__init__()
        # Duck-typed: the pruner module imports this one to build `callbacks()`.
        if not all(hasattr(pruner, name) for name in ("bind", "advance", "metrics", "unit")):
            raise TypeError(
                "Invalid value for argument `pruner`. Expected a ReweightedPruning, "
                f"ADMMPruning or StaticRegularization. Received: pruner={pruner!r}")
        if prune_data is not None and (not isinstance(prune_data, (tuple, list))
                                       or len(prune_data) != 2):
            raise ValueError("Invalid value for argument `prune_data`. Expected a pair (x, y) "
                             f"of arrays. Received: prune_data={type(prune_data).__name__}")
        self.pruner = pruner
        self.log_dir = log_dir
        self.prune_data = prune_data
        self.accuracy_drop: Optional[float] = None  # Set at the hard prune.
        self._report_drop = False
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

    def _prune_data_accuracy(self) -> float:
        x, y = self.prune_data
        classifier = registry.resolve_pruning_target(self.model)
        predictions = classifier.predict(x, batch_size=1024, verbose=0)
        return float(np.mean(np.argmax(predictions, axis=-1) == np.asarray(y).reshape(-1)))

    def _advance(self, unit: str, position: int) -> None:
        binding = self.pruner.binding
        measure = (self.prune_data is not None and unit == self.pruner.unit
                   and binding is not None and not binding.pruned
                   and self.pruner.prune_at is not None and position >= self.pruner.prune_at)
        before = self._prune_data_accuracy() if measure else None
        self.pruner.advance(unit, position, self._optimizer())
        if measure:
            self.accuracy_drop = before - self._prune_data_accuracy()
            self._report_drop = True

    def on_epoch_begin(self, epoch, logs=None):
        self._advance("epoch", epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.pruner.unit == "step":
            self._advance("step", self._epoch_first_step + batch)

    def on_train_batch_end(self, batch, logs=None):
        self._batches_in_epoch = batch + 1

    def on_epoch_end(self, epoch, logs=None):
        self._epoch_first_step += self._batches_in_epoch
        self._batches_in_epoch = 0
        metrics = self.pruner.metrics()
        if self._report_drop:
            metrics["accuracy_drop"] = self.accuracy_drop
            self._report_drop = False
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
        # prune_data (arrays) is not serialized.
        return {"pruner": keras.utils.serialize_keras_object(self.pruner),
                "log_dir": self.log_dir}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["pruner"] = keras.utils.deserialize_keras_object(config["pruner"])
        return cls(**config)
