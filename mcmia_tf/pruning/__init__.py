"""Dynamic-regularization weight pruning for tf_keras models.

Reweighted group regularization (the core method), ADMM and static L1 / group
lasso, each as callbacks for a plain `model.fit`: regularize -> hard prune ->
masked retraining; `strip` returns a plain model with exact zeros. The masks
are kernel constraints that `make_prunable` gives the model's layers, so they
hold on every `tf.distribute` strategy.
"""

from mcmia_tf.pruning.admm import ADMMPruning
from mcmia_tf.pruning.callbacks import PruningCallback
from mcmia_tf.pruning.magnitude import prune_low_magnitude_planned
from mcmia_tf.pruning.masks import make_prunable
from mcmia_tf.pruning.masks import PruningMask
from mcmia_tf.pruning.masks import strip_masks
from mcmia_tf.pruning.pruner import DynamicRegularizationPruning
from mcmia_tf.pruning.quantization import prune_preserving_quantization
from mcmia_tf.pruning.quantization import quantization_scope
from mcmia_tf.pruning.registry import find_prunable_weights
from mcmia_tf.pruning.registry import plan_layers
from mcmia_tf.pruning.regularizers import ReweightedPruning
from mcmia_tf.pruning.regularizers import StaticRegularization
from mcmia_tf.pruning.report import LayerSparsity
from mcmia_tf.pruning.report import SparsityReport
from mcmia_tf.pruning.report import sparsity_report
from mcmia_tf.pruning.schedules import GradualAfter
from mcmia_tf.pruning.schedules import OneShotAfter
from mcmia_tf.pruning.schedules import pruning_scope
from mcmia_tf.pruning.structures import get_structure
from mcmia_tf.pruning.structures import group_norms
from mcmia_tf.pruning.structures import project
from mcmia_tf.pruning.structures import STRUCTURE_NAMES

__all__ = [
    "ADMMPruning",
    "DynamicRegularizationPruning",
    "GradualAfter",
    "LayerSparsity",
    "OneShotAfter",
    "PruningCallback",
    "PruningMask",
    "ReweightedPruning",
    "STRUCTURE_NAMES",
    "SparsityReport",
    "StaticRegularization",
    "find_prunable_weights",
    "get_structure",
    "group_norms",
    "make_prunable",
    "plan_layers",
    "project",
    "prune_low_magnitude_planned",
    "prune_preserving_quantization",
    "pruning_scope",
    "quantization_scope",
    "sparsity_report",
    "strip_masks",
]
