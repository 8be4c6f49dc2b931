"""Defences against membership inference: the min-max game and DP-SGD.

* `build_attack_head` / `MinMaxModel`: Nasr et al.'s adversarial regularization
  (CCS 2018) as a Keras `train_step`, compatible with the pruning callbacks.
* `DPSGDModel`: DP-SGD with per-example clipping and fast (ghost) gradient norms as a
  Keras `train_step`; `poisson_batches` for the sampling the accountant assumes;
  `make_dp_optimizer` (tensorflow-privacy's microbatched optimizers),
  `compute_epsilon`, `find_noise_multiplier`: the accounting.

The training recipes that use these defences (`Recipe`, `RecipeConfig`) live in
`mcmia_tf.recipes`.
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

__all__ = [
    "DPSGDModel",
    "MinMaxModel",
    "PREDICTION_TRANSFORMS",
    "PredictionTransform",
    "PrivacyGuarantee",
    "attack_features",
    "build_attack_head",
    "compute_epsilon",
    "find_noise_multiplier",
    "make_dp_optimizer",
    "per_example_loss",
    "poisson_batches",
    "privacy_guarantee",
    "steps_per_epoch",
]
