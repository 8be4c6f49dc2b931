"""mcmia_tf: deep networks small and private at once, for phones and microcontrollers.

Subpackages:
  data      datasets by name, disjoint membership splits, training-time augmentation
  models    the model zoo (tf_keras Functional builders, logits output)
  pruning   dynamic-regularization pruning (reweighted, ADMM, static) as Keras callbacks
  privacy   defences: Min-Max game, DP-SGD (per-example clipping, Poisson sampling, accounting)
  recipes   training recipes: configs, the six methods, the shadow / reference-model protocol
  audit     membership-inference attacks (metric, shadow, LiRA, RMIA) and reports
  study     every method on one model and dataset, audited, exported, reported
TFLite export lives in the sibling package `tflite_export`.
"""

from mcmia_tf import audit
from mcmia_tf import data
from mcmia_tf import models
from mcmia_tf import privacy
from mcmia_tf import pruning
from mcmia_tf import recipes
from mcmia_tf import study
from mcmia_tf.audit import AuditConfig
from mcmia_tf.audit import run_audit
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.models import build_model
from mcmia_tf.pruning import ReweightedPruning
from mcmia_tf.pruning import sparsity_report
from mcmia_tf.recipes import Recipe
from mcmia_tf.recipes import RecipeConfig

__version__ = "0.1.0"

__all__ = [
    "AuditConfig",
    "MembershipSplit",
    "Recipe",
    "RecipeConfig",
    "ReweightedPruning",
    "audit",
    "build_model",
    "data",
    "load_dataset",
    "models",
    "privacy",
    "pruning",
    "recipes",
    "run_audit",
    "sparsity_report",
    "study",
]
