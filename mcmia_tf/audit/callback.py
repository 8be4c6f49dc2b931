"""A cheap membership audit during `model.fit`.

Every N epochs, `MembershipAuditCallback` runs the metric attacks (loss,
confidence, entropy, modified entropy; see `threshold.py`) on a fixed subsample of
members and non-members and reports their threshold-free AUC, attacker advantage
and TPR at 1% FPR. The numbers go into `logs` (so `History` and other callbacks see
them, as `mia_loss_auc`, ...) and, with `log_dir`, to TensorBoard. It shows when
training starts to memorize; it is no substitute for `run_audit` (shadow models,
LiRA), which is much stronger at low FPR.
"""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from mcmia_tf.audit import metrics as metrics_lib
from mcmia_tf.audit import predictors
from mcmia_tf.audit import threshold
from mcmia_tf.compat import keras

__all__ = ["MembershipAuditCallback"]

# (`tf.compat.v1.SummaryMetadata` is TF's public export of the summary proto.)
_SCALAR_METADATA = tf.compat.v1.SummaryMetadata(
    plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))


def _subsample(x: np.ndarray, y: np.ndarray, size: int, rng: np.random.Generator,
               name: str) -> Tuple[np.ndarray, np.ndarray]:
    if len(x) != len(y):
        raise ValueError(f"Invalid value for arguments `x_{name}` and `y_{name}`. Expected the "
                         f"same length. Received: {len(x)} and {len(y)}")
    if len(x) == 0:
        raise ValueError(f"Invalid value for argument `x_{name}`. Expected at least one example.")
    keep = np.sort(rng.choice(len(x), min(size, len(x)), replace=False))
    return np.asarray(x)[keep], np.asarray(y)[keep]


class MembershipAuditCallback(keras.callbacks.Callback):
    """Metric attacks on a fixed subsample every `every_n_epochs` epochs.

    Args:
      x_members: training examples of the model (members).
      y_members: their integer labels.
      x_non_members: examples the model never trains on.
      y_non_members: their integer labels.
      every_n_epochs: audit frequency (the last epoch of each period).
      num_examples: members and non-members subsampled once (each), with `seed`.
      attacks: metric attacks to run, from `threshold.METRIC_NAMES`.
      log_dir: if set, TensorBoard scalars are written to `log_dir/membership_audit`.
      prefix: prefix of the logged metric names.
      batch_size: prediction batch size.
      seed: seed of the subsample.

    Attributes:
      audit_history: `[(epoch, {metric name: value})]` for every audited epoch.
    """

    def __init__(self, x_members: np.ndarray, y_members: np.ndarray, x_non_members: np.ndarray,
                 y_non_members: np.ndarray, every_n_epochs: int = 1, num_examples: int = 500,
                 attacks: Sequence[str] = ("loss", "confidence"), log_dir: Optional[str] = None,
                 prefix: str = "mia_", batch_size: int = 256, seed: int = 0):
        super().__init__()
        if isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or \
                every_n_epochs < 1:
            raise ValueError("Invalid value for argument `every_n_epochs`. Expected a positive "
                             f"integer. Received: every_n_epochs={every_n_epochs!r}")
        if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 1:
            raise ValueError("Invalid value for argument `num_examples`. Expected a positive "
                             f"integer. Received: num_examples={num_examples!r}")
        unknown = [a for a in attacks if a not in threshold.METRIC_NAMES]
        if unknown or not attacks:
            raise ValueError(f"Invalid value for argument `attacks`. Expected a non-empty subset "
                             f"of {threshold.METRIC_NAMES}. Received: attacks={tuple(attacks)}")
        rng = np.random.default_rng(seed)
        x_in, y_in = _subsample(x_members, y_members, num_examples, rng, "members")
        x_out, y_out = _subsample(x_non_members, y_non_members, num_examples, rng, "non_members")
        self._x = np.concatenate([x_in, x_out])
        self._y = np.concatenate([y_in, y_out])
        self._is_member = np.r_[np.ones(len(x_in), bool), np.zeros(len(x_out), bool)]
        self.every_n_epochs = every_n_epochs
        self.attacks = tuple(attacks)
        self.log_dir = log_dir
        self.prefix = prefix
        self.batch_size = batch_size
        self.audit_history: List[Tuple[int, Dict[str, float]]] = []
        self._writer = None

    def audit(self) -> Dict[str, float]:
        """Runs the attacks on the current model; returns `{name: value}`."""
        predictor = predictors.KerasPredictor(self.model)
        outputs = predictors.validate_outputs(predictor.predict(self._x, self.batch_size),
                                              predictor.num_classes,
                                              argument_name="model outputs")
        results = {}
        for attack in self.attacks:
            scores = threshold.membership_statistic(attack, outputs, self._y,
                                                    predictor.output_type)
            attack_metrics = metrics_lib.compute_attack_metrics(scores, self._is_member,
                                                                fpr_targets=(0.01,))
            results[f"{self.prefix}{attack}_auc"] = attack_metrics.auc
            results[f"{self.prefix}{attack}_advantage"] = attack_metrics.advantage
            results[f"{self.prefix}{attack}_tpr_at_1pct_fpr"] = attack_metrics.tpr_at_fpr["1pct"]
        return results

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        results = self.audit()
        self.audit_history.append((epoch, results))
        if logs is not None:
            logs.update(results)  # History runs after user callbacks and records these
        if self.log_dir:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(f"{self.log_dir}/membership_audit")
            with self._writer.as_default():
                for name, value in results.items():
                    # `tf.summary.write` with the scalars plugin tag is what
                    # `tf.summary.scalar` does, without requiring the tensorboard package.
                    tf.summary.write(name, tf.constant(value, tf.float32), step=epoch,
                                     metadata=_SCALAR_METADATA)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
