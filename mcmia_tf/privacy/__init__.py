"""Defences against membership inference: the min-max game, DP-SGD and the recipes.

* `build_attack_head` / `MinMaxModel`: Nasr et al.'s adversarial regularization
  (CCS 2018) as a Keras `train_step`, compatible with the pruning callbacks.
* `DPSGDModel`: DP-SGD with per-example clipping and fast (ghost) gradient norms as a
  Keras `train_step`; `poisson_batches` for the sampling the accountant assumes;
  `make_dp_optimizer` (tensorflow-privacy's microbatched optimizers),
  `compute_epsilon`, `find_noise_multiplier`: the accounting.
* `Recipe` + `RecipeConfig`: baseline, dp, minmax, mcmia_pruning,
  mcmia_pruning_minmax and tfmot_magnitude, each one call; `Recipe.train` is the
  audit's `TrainingRecipe` protocol.
"""

from mcmia_tf.privacy.attack_head import attack_features
from mcmia_tf.privacy.attack_head import build_attack_head
from mcmia_tf.privacy.attack_head import PREDICTION_TRANSFORMS
from mcmia_tf.privacy.attack_head import PredictionTransform
from mcmia_tf.privacy.dp import compute_epsilon
from mcmia_tf.privacy.dp import find_noise_multiplier
from mcmia_tf.privacy.dp import make_dp_optimizer
from mcmia_tf.privacy.dp import per_example_loss
from mcmia_tf.privacy.dp import privacy_guarantee
from mcmia_tf.privacy.dp import PrivacyGuarantee
from mcmia_tf.privacy.dp_model import DPSGDModel
from mcmia_tf.privacy.minmax import MinMaxModel
from mcmia_tf.privacy.poisson import poisson_batches
from mcmia_tf.privacy.poisson import steps_per_epoch
from mcmia_tf.privacy.recipe_config import DPConfig
from mcmia_tf.privacy.recipe_config import METHODS
from mcmia_tf.privacy.recipe_config import MinMaxConfig
from mcmia_tf.privacy.recipe_config import PruningConfig
from mcmia_tf.privacy.recipe_config import RecipeConfig
from mcmia_tf.privacy.recipe_config import TrainingConfig
from mcmia_tf.privacy.recipes import check_reference_disjoint
from mcmia_tf.privacy.recipes import Recipe
from mcmia_tf.privacy.recipes import TrainingResult

__all__ = [
    "DPConfig",
    "DPSGDModel",
    "METHODS",
    "MinMaxConfig",
    "MinMaxModel",
    "PREDICTION_TRANSFORMS",
    "PredictionTransform",
    "PrivacyGuarantee",
    "PruningConfig",
    "Recipe",
    "RecipeConfig",
    "TrainingConfig",
    "TrainingResult",
    "attack_features",
    "build_attack_head",
    "check_reference_disjoint",
    "compute_epsilon",
    "find_noise_multiplier",
    "make_dp_optimizer",
    "per_example_loss",
    "poisson_batches",
    "privacy_guarantee",
    "steps_per_epoch",
]
