"""One worker of the MultiWorkerMirroredStrategy pruning test (run by test_distributed.py).

Reads its role from TF_CONFIG, prunes a small CNN on `digits` with
`ReweightedPruning` and writes, as JSON to the path given as argument: the
replica count, each layer's zeros against the plan's exact count, how many
steps after the hard prune had every masked weight at exactly zero, and a
digest of the final weights (equal on both workers when training is in sync).
"""

import hashlib
import json
import sys

import numpy as np
import tensorflow as tf

# The collective runtime must be configured before any other TensorFlow call.
STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()

from mcmia_tf.compat import keras  # pylint: disable=g-import-not-at-top,wrong-import-position
from mcmia_tf.data import load_dataset  # pylint: disable=g-import-not-at-top,wrong-import-position
from mcmia_tf.pruning import make_prunable  # pylint: disable=g-import-not-at-top,wrong-import-position
from mcmia_tf.pruning import ReweightedPruning  # pylint: disable=g-import-not-at-top,wrong-import-position

PRUNE_AT = 4
STEPS = 10


class _ZeroWatcher(keras.callbacks.Callback):
    def __init__(self, pruner):
        super().__init__()
        self.pruner = pruner
        self.checked_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        binding = self.pruner.binding
        if binding.pruned and all(
                np.all(plan.weight.variable.numpy()[mask.numpy() == 0] == 0)
                for plan, mask in zip(binding.plans, binding.masks)):
            self.checked_steps += 1


def main(output_path: str) -> None:
    digits = load_dataset("digits")
    init = keras.initializers.GlorotUniform(seed=0)
    with STRATEGY.scope():
        inputs = keras.Input((8, 8, 1))
        x = keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=init,
                                name="conv1")(inputs)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(32, activation="relu", kernel_initializer=init, name="fc1")(x)
        outputs = keras.layers.Dense(10, kernel_initializer=init, name="logits")(x)
        model = make_prunable(keras.Model(inputs, outputs))
        model.compile(keras.optimizers.Adam(3e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruner = ReweightedPruning(0.75, "unstructured", penalty=1e-4, prune_at=PRUNE_AT, unit="step",
                               edge_layer_sparsity=None)
    watcher = _ZeroWatcher(pruner)
    # Every worker reads the same batches; the strategy splits each global batch.
    data = tf.data.Dataset.from_tensor_slices(
        (digits.x_train[:32 * STEPS], digits.y_train[:32 * STEPS])).batch(32)
    model.fit(data, epochs=1, verbose=0, callbacks=pruner.callbacks() + [watcher])
    layers = []
    for plan in pruner.binding.plans:
        values = np.random.default_rng(0).normal(size=plan.weight.shape)
        layers.append({
            "path": plan.weight.path,
            "zeros": int(np.sum(plan.weight.variable.numpy() == 0)),
            "expected_zeros": int(np.sum(plan.structure.mask(values, plan.rate) == 0))})
    digest = hashlib.sha256()
    for array in model.get_weights() + [m.numpy() for m in pruner.binding.masks]:
        digest.update(np.ascontiguousarray(array).tobytes())
    with open(output_path, "w", encoding="utf-8") as handle:
        json.dump({"num_replicas": STRATEGY.num_replicas_in_sync, "layers": layers,
                   "checked_steps": watcher.checked_steps, "steps_after_prune": STEPS - PRUNE_AT,
                   "weights_digest": digest.hexdigest()}, handle)


if __name__ == "__main__":
    main(sys.argv[1])
