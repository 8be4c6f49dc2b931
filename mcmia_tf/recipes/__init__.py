"""Training recipes: how every model of a study is trained, target and reference alike.

* `RecipeConfig` with its sections `TrainingConfig`, `DPConfig`, `MinMaxConfig`
  and `PruningConfig` (`config`): a frozen, JSON-serializable description.
* `Recipe` (`recipe`): baseline, dp, minmax, mcmia_pruning, mcmia_pruning_minmax
  and tfmot_magnitude, each one call returning a `TrainingResult`.
* `TrainingRecipe` (`protocol`): `train(x, y, *, seed) -> model`, what shadow and
  reference models are trained with; `Recipe` and `StandardTrainingRecipe`
  (`standard`, plain `fit`) implement it.
* `shuffled_batches` (`pipeline`): the seeded, augmented tf.data pipeline both
  kinds of recipe train on; `make_optimizer` / `add_weight_decay`
  (`optimization`): the classifier's optimizer and L2 decay of a `TrainingConfig`.

The defences the recipes train with (`MinMaxModel`, `DPSGDModel`, the DP
accounting) live in `mcmia_tf.privacy`, the pruning in `mcmia_tf.pruning`.
"""

from mcmia_tf.recipes.config import DPConfig
from mcmia_tf.recipes.config import LR_SCHEDULES
from mcmia_tf.recipes.config import METHODS
from mcmia_tf.recipes.config import MinMaxConfig
from mcmia_tf.recipes.config import OPTIMIZERS
from mcmia_tf.recipes.config import PruningConfig
from mcmia_tf.recipes.config import RecipeConfig
from mcmia_tf.recipes.config import SOLVERS
from mcmia_tf.recipes.config import TrainingConfig
from mcmia_tf.recipes.optimization import add_weight_decay
from mcmia_tf.recipes.optimization import make_optimizer
from mcmia_tf.recipes.pipeline import shuffled_batches
from mcmia_tf.recipes.protocol import TrainingRecipe
from mcmia_tf.recipes.recipe import check_reference_disjoint
from mcmia_tf.recipes.recipe import Recipe
from mcmia_tf.recipes.recipe import TrainingResult
from mcmia_tf.recipes.standard import StandardTrainingRecipe

__all__ = [
    "DPConfig",
    "LR_SCHEDULES",
    "METHODS",
    "MinMaxConfig",
    "OPTIMIZERS",
    "PruningConfig",
    "Recipe",
    "RecipeConfig",
    "SOLVERS",
    "StandardTrainingRecipe",
    "TrainingConfig",
    "TrainingRecipe",
    "TrainingResult",
    "add_weight_decay",
    "check_reference_disjoint",
    "make_optimizer",
    "shuffled_batches",
]
