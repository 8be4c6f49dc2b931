"""`StandardTrainingRecipe`: plain `model.fit` with cross-entropy, e.g. for shadow models.

The simplest `TrainingRecipe`: a `mcmia_tf.models` architecture trained with Adam
or SGD at a constant learning rate on the recipes' shuffled batches
(`mcmia_tf.recipes.pipeline`). Use it to audit a model trained outside
`Recipe`; a model trained by `Recipe` is audited with that `Recipe`.
"""

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from mcmia_tf.recipes.config import OPTIMIZERS
from mcmia_tf.recipes.optimization import named_optimizer
from mcmia_tf.recipes.pipeline import shuffled_batches

__all__ = ["StandardTrainingRecipe"]


@dataclasses.dataclass(frozen=True)
class StandardTrainingRecipe:
    """Plain `model.fit` of a `mcmia_tf.models` architecture with cross-entropy.

    Attributes:
      model_name: a name accepted by `mcmia_tf.models.build_model`.
      input_shape: shape of one example.
      num_classes: number of classes.
      width: width multiplier of the architecture.
      epochs: training epochs.
      batch_size: mini-batch size.
      learning_rate: optimizer learning rate.
      optimizer: "adam" or "sgd".
      model_kwargs: extra builder arguments (e.g. `{"hidden_units": [64]}` for "mlp").
    """

    model_name: str
    input_shape: Sequence[int]
    num_classes: int
    width: float = 1.0
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adam"
    model_kwargs: Mapping[str, object] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Invalid value for argument `{name}`. Expected a positive "
                                 f"integer. Received: {name}={value!r}")
        if not self.learning_rate > 0:
            raise ValueError("Invalid value for argument `learning_rate`. Expected a positive "
                             f"float. Received: learning_rate={self.learning_rate!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Invalid value for argument `optimizer`. Expected one of "
                             f"{OPTIMIZERS}. Received: optimizer={self.optimizer!r}")

    def build(self, seed: int) -> keras.Model:
        """The compiled, untrained model."""
        model = build_model(self.model_name, self.input_shape, self.num_classes,
                            width=self.width, seed=int(seed), **dict(self.model_kwargs))
        model.compile(optimizer=named_optimizer(self.optimizer, self.learning_rate),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        return model

    def train(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> keras.Model:
        """Builds the model with `seed` and fits it on `(x, y)`; returns logits outputs."""
        model = self.build(seed)
        model.fit(shuffled_batches(x, y, self.batch_size, int(seed)), epochs=self.epochs,
                  verbose=0)
        return model

    def to_dict(self) -> dict:
        config = dataclasses.asdict(self)
        config["input_shape"] = list(self.input_shape)
        config["model_kwargs"] = dict(self.model_kwargs)
        return config

    @classmethod
    def from_dict(cls, config: Mapping) -> "StandardTrainingRecipe":
        return cls(**config)
