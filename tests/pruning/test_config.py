"""Pruners and the callback survive get_config / from_config and JSON."""

import json

import pytest

from mcmia_tf.compat import keras
from mcmia_tf.pruning import ADMMPruning
from mcmia_tf.pruning import PruningCallback
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import StaticRegularization

PRUNERS = [
    ReweightedPruning(0.93, "block:2x8", penalty=3e-5, form="squared", epsilon=1e-2,
                      reweight_every=3, prune_at=17, unit="step",
                      layer_sparsity={"fc1": 0.97}, layer_structure={"conv1": "unstructured"},
                      exclude=["logits"], edge_layer_sparsity=0.5),
    ReweightedPruning(0.9, "pattern", reweight_at=[0, 10, 20], prune_at=30),
    ADMMPruning(0.95, "2:4", rho=2e-3, rho_growth=1.3, rho_max=0.1, update_every=2, prune_at=8,
                edge_layer_sparsity=None),
    StaticRegularization(0.8, "channel", penalty=5e-4, form="group", prune_at=None),
]


@pytest.mark.parametrize("pruner", PRUNERS, ids=lambda p: type(p).__name__)
def test_pruner_config_round_trip_through_json(pruner):
    config = pruner.get_config()
    rebuilt = type(pruner).from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    for field in ("target_sparsity", "prune_at", "unit", "exclude", "edge_layer_sparsity"):
        assert getattr(rebuilt, field) == getattr(pruner, field)
    assert rebuilt.structure.get_config() == pruner.structure.get_config()


@pytest.mark.parametrize("pruner", PRUNERS, ids=lambda p: type(p).__name__)
def test_callback_config_round_trip(pruner):
    callback = PruningCallback(pruner, log_dir="logs/pruning")
    serialized = keras.utils.serialize_keras_object(callback)
    restored = keras.utils.deserialize_keras_object(json.loads(json.dumps(serialized)))
    assert isinstance(restored, PruningCallback)
    assert type(restored.pruner) is type(pruner)
    assert restored.pruner.get_config() == pruner.get_config()
    assert restored.log_dir == "logs/pruning"


def test_callable_layer_sparsity_is_not_serializable():
    pruner = ReweightedPruning(0.9, layer_sparsity=lambda layer: None)
    with pytest.raises(ValueError, match="callable"):
        pruner.get_config()
