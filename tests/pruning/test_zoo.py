"""Every model of the zoo (tiny widths) trains under every pruner and strips exactly."""

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from mcmia_tf.pruning import ADMMPruning
from mcmia_tf.pruning import make_prunable
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import sparsity_report
from mcmia_tf.pruning import StaticRegularization

SHAPE = (8, 8, 1)


@pytest.mark.parametrize("name,pruner_class,structure", [
    ("lenet5", ReweightedPruning, "unstructured"),
    ("lenet5_classic", StaticRegularization, "filter"),
    pytest.param("vgg16", ReweightedPruning, "filter", marks=pytest.mark.slow),
    pytest.param("resnet18", ADMMPruning, "kernel", marks=pytest.mark.slow),
    pytest.param("mobilenetv2", ReweightedPruning, "filter", marks=pytest.mark.slow),
    ("mlp", ADMMPruning, "block:1x4"),
])
def test_zoo_model_prunes_to_target(name, pruner_class, structure):
    model = make_prunable(build_model(name, SHAPE, 10, width=0.125, seed=0))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, *SHAPE)).astype(np.float32)
    y = rng.integers(0, 10, size=16)
    pruner = pruner_class(0.6, structure, prune_at=1, unit="step")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=pruner.callbacks())
    stripped = pruner.strip(model)
    plans = pruner.binding.plans
    report = sparsity_report(stripped)
    rows = {row.path: row for row in report.layers}
    for plan in plans:
        expected = plan.structure.sparsity_at(plan.rate)
        # Whole groups per layer: at most one (largest) group away from the rate.
        ids = plan.structure.group_ids(plan.weight.shape, plan.weight.depthwise)
        largest_group = np.bincount(ids.ravel()).max()
        error = abs(rows[plan.weight.path].sparsity - expected)
        assert error <= largest_group / plan.weight.size + 1e-6
    assert report.sparsity == pytest.approx(0.6, abs=0.06)
    assert any(p.weight.kind == "depthwise_conv2d" for p in plans) == (name == "mobilenetv2")
