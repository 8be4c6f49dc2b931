"""Pruning under tf.distribute: exact target sparsity on every replica after every step.

`MirroredStrategy` runs in this process over the two logical CPUs that
`tests/conftest.py` creates; `MultiWorkerMirroredStrategy` runs as two worker
processes on loopback (`multi_worker_pruning.py`), since a process can hold only
one collective runtime and it must be configured before TensorFlow starts.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.pruning import ADMMPruning
from mcmia_tf.pruning import make_prunable
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import StaticRegularization

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
PRUNE_AT = 5  # steps of regularization, then 5 steps of masked retraining.
PRUNERS = {
    "reweighted": lambda structure, **kw: ReweightedPruning(0.75, structure, penalty=1e-4, **kw),
    "admm": lambda structure, **kw: ADMMPruning(0.75, structure, rho=1e-2, **kw),
    "static_l1": lambda structure, **kw: StaticRegularization(0.75, structure, penalty=1e-4,
                                                              **kw),
}
# conv1 sees one input channel, which N:M (groups along input channels) cannot split.
STRUCTURES = {"unstructured": None, "filter": None, "2:4": {"conv1": "unstructured"}}


def _cnn(seed: int = 0) -> keras.Model:
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=init, name="conv1")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", kernel_initializer=init, name="conv2")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu", kernel_initializer=init, name="fc1")(x)
    outputs = keras.layers.Dense(10, kernel_initializer=init, name="logits")(x)
    return keras.Model(inputs, outputs)


class _EveryReplicaWatcher(keras.callbacks.Callback):
    """After every step once pruned: each replica's kernel has exactly the mask's zeros."""

    def __init__(self, pruner, strategy):
        super().__init__()
        self.pruner, self.strategy = pruner, strategy
        self.checked_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        binding = self.pruner.binding
        if not binding.pruned:
            return
        for plan, mask in zip(binding.plans, binding.masks):
            pruned = mask.numpy() == 0
            for component in self.strategy.experimental_local_results(plan.weight.variable):
                values = component.numpy()
                assert np.all(values[pruned] == 0.0), (plan.weight.path, batch)
                assert np.all(values[~pruned] != 0.0), (plan.weight.path, batch)
        self.checked_steps += 1


def _expected_zeros(plan) -> int:
    """Zeros of the projection to the plan's rate (groups are equal: any values do)."""
    values = np.random.default_rng(0).normal(size=plan.weight.shape).astype(np.float32)
    return int(np.sum(plan.structure.mask(values, plan.rate, plan.weight.depthwise) == 0))


def _prune(strategy, method: str, structure: str, digits):
    with strategy.scope():
        model = make_prunable(_cnn())
        model.compile(keras.optimizers.Adam(3e-3), LOSS)
    pruner = PRUNERS[method](structure, prune_at=PRUNE_AT, unit="step",
                             edge_layer_sparsity=None, layer_structure=STRUCTURES[structure])
    watcher = _EveryReplicaWatcher(pruner, strategy)
    model.fit(digits.x_train[:320], digits.y_train[:320], epochs=1, batch_size=32,
              shuffle=False, verbose=0, callbacks=pruner.callbacks() + [watcher])
    assert watcher.checked_steps == 10 - PRUNE_AT
    return pruner


@pytest.mark.parametrize("structure", list(STRUCTURES))
@pytest.mark.parametrize("method", list(PRUNERS))
@pytest.mark.slow
def test_mirrored_pruning_holds_its_masks_and_matches_one_device(
        digits, mirrored_strategy, method, structure):
    mirrored = _prune(mirrored_strategy, method, structure, digits)
    assert mirrored_strategy.num_replicas_in_sync == 2
    for plan in mirrored.binding.plans:
        assert isinstance(plan.weight.variable, tf.distribute.DistributedValues)
        assert int(np.sum(plan.weight.variable.numpy() == 0)) == _expected_zeros(plan)
    single = _prune(tf.distribute.get_strategy(), method, structure, digits)
    for on_two, on_one in zip(mirrored.binding.masks, single.binding.masks):
        # Same seed, data and steps: the masks may differ only where the two
        # replicas' reduction order moved a weight across the pruning threshold
        # (measured: identical on every layer of every case).
        agreement = np.mean(on_two.numpy() == on_one.numpy())
        assert agreement >= 0.995, (on_two.name, agreement)


def test_mirrored_strip_is_a_plain_model_with_the_masks_zeros(digits, mirrored_strategy):
    pruner = _prune(mirrored_strategy, "reweighted", "filter", digits)
    with mirrored_strategy.scope():
        stripped = pruner.strip(pruner.binding.target)
    for layer_name, mask in zip(("conv1", "conv2", "fc1", "logits"), pruner.binding.masks):
        kernel = stripped.get_layer(layer_name).kernel
        assert kernel.constraint is None
        np.testing.assert_array_equal(kernel.numpy() == 0, mask.numpy() == 0)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_mirrored_pruning_on_two_local_workers(tmp_path):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi_worker_pruning.py")
    processes = []
    for index in range(2):
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
        processes.append(subprocess.Popen(
            [sys.executable, script, str(tmp_path / f"worker{index}.json")], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    results = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    for result in results:
        assert result["num_replicas"] == 2
        assert result["checked_steps"] == result["steps_after_prune"] > 0
        for layer in result["layers"]:
            assert layer["zeros"] == layer["expected_zeros"], layer
    # Both workers hold the same weights and masks (synchronous training).
    assert results[0]["weights_digest"] == results[1]["weights_digest"]
