"""Fixtures of the export tests: one small LeNet-5 on `digits`, dense and 90% pruned."""

import collections

import pytest
import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model

TARGET_SPARSITY = 0.9

LeNets = collections.namedtuple("LeNets", ["dense", "pruned_wrapped", "pruned"])


def _compile(model):
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


@pytest.fixture(scope="session")
def lenets(digits):
    """LeNet-5 (width 0.5) trained on digits, then pruned to 90% with tfmot."""
    dense = _compile(build_model("lenet5", input_shape=digits.input_shape,
                                 num_classes=digits.num_classes, width=0.5, seed=0))
    dense.fit(digits.x_train, digits.y_train, epochs=8, batch_size=64, shuffle=False, verbose=0)
    schedule = tfmot.sparsity.keras.ConstantSparsity(TARGET_SPARSITY, begin_step=0, frequency=1)
    copy = keras.models.clone_model(dense)
    copy.set_weights(dense.get_weights())
    wrapped = _compile(tfmot.sparsity.keras.prune_low_magnitude(copy, pruning_schedule=schedule))
    wrapped.fit(digits.x_train, digits.y_train, epochs=3, batch_size=64, shuffle=False, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    pruned = tfmot.sparsity.keras.strip_pruning(wrapped)
    return LeNets(dense=dense, pruned_wrapped=wrapped, pruned=pruned)

