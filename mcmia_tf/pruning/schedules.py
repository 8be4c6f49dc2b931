"""tfmot `PruningSchedule`s for "regularize first, then prune" with `prune_low_magnitude`.

tfmot's wrapper calls `schedule(step) -> (should_prune, sparsity)` at every training
step and, when `should_prune`, recomputes the layer's magnitude mask at `sparsity`.
These schedules express the phases of dynamic-regularization pruning for tfmot's
unstructured magnitude pruning:

* `OneShotAfter(target_sparsity, prune_step)`: nothing before `prune_step` (the
  regularization phase, e.g. with `StaticRegularization(prune_at=None)` or
  `ReweightedPruning(prune_at=None)` shaping the weights), one hard prune to the
  target at `prune_step`, then the mask is frozen (masked retraining).
* `GradualAfter(target_sparsity, begin_step, end_step, power=3, frequency=100)`: the
  cubic ramp of Zhu & Gupta ("To prune, or not to prune", 2017),

      s_t = s_f * (1 - (1 - (t - t_0) / (t_1 - t_0))^power),   t_0 <= t <= t_1,

  from 0 at `begin_step` to `target_sparsity` at `end_step`, then frozen.

Both are registered Keras serializables; `pruning_scope()` restores models wrapped
with them through `keras.models.load_model`.
"""

import contextlib

import tensorflow as tf
import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import keras
from mcmia_tf.pruning import arguments

__all__ = ["OneShotAfter", "GradualAfter", "pruning_scope", "custom_objects"]



class _PruningSchedule(tfmot.sparsity.keras.PruningSchedule):
    """tfmot's base; `from_config` also takes tfmot's nested {'class_name', 'config'}.

    tfmot schedules return the nested form from `get_config` (the form
    `PruneLowMagnitude` stores), so `keras.utils.serialize_keras_object` wraps it
    once more; accepting both forms makes either round trip work.
    """

    @classmethod
    def from_config(cls, config):
        if set(config) == {"class_name", "config"}:
            config = config["config"]
        return cls(**config)


@keras.utils.register_keras_serializable(package="mcmia_tf")
class OneShotAfter(_PruningSchedule):
    """Prunes once, to `target_sparsity`, at `prune_step`; the mask stays fixed after.

    Args:
      target_sparsity: sparsity of the hard prune, in [0, 1).
      prune_step: training step (tfmot's `pruning_step`) of the hard prune; the
        steps before it are the regularization phase. tfmot's wrapper increments
        `pruning_step` before it asks the schedule, so the first training step is
        step 1 (a schedule never sees step 0): 1 prunes at the first step.
    """

    def __init__(self, target_sparsity: float, prune_step: int):
        self.target_sparsity = arguments.fraction("target_sparsity", target_sparsity)
        # Step 0 would never come (see `prune_step`): refuse it rather than never prune.
        self.prune_step = arguments.integer("prune_step", prune_step, 1)

    def __call__(self, step):
        should_prune = tf.math.equal(tf.cast(step, tf.int64), self.prune_step)
        return should_prune, tf.constant(self.target_sparsity, dtype=tf.float32)

    def get_config(self):
        return {"class_name": type(self).__name__,
                "config": {"target_sparsity": self.target_sparsity,
                           "prune_step": self.prune_step}}


@keras.utils.register_keras_serializable(package="mcmia_tf")
class GradualAfter(_PruningSchedule):
    """Cubic ramp from 0 at `begin_step` to `target_sparsity` at `end_step`, then frozen.

    Args:
      target_sparsity: final sparsity, in [0, 1).
      begin_step: first pruning step (end of the regularization phase).
      end_step: last pruning step (> begin_step).
      power: exponent of the ramp (3 in Zhu & Gupta 2017).
      frequency: prune every this many steps inside [begin_step, end_step].
    """

    def __init__(self, target_sparsity: float, begin_step: int, end_step: int,
                 power: float = 3.0, frequency: int = 100):
        self.target_sparsity = arguments.fraction("target_sparsity", target_sparsity)
        self.begin_step = arguments.integer("begin_step", begin_step)
        self.end_step = arguments.integer("end_step", end_step, self.begin_step + 1)
        self.power = arguments.positive("power", power)
        self.frequency = arguments.integer("frequency", frequency, 1)

    def __call__(self, step):
        step = tf.cast(step, tf.int64)
        progress = tf.clip_by_value(
            tf.cast(step - self.begin_step, tf.float32) / float(self.end_step - self.begin_step),
            0.0, 1.0)
        sparsity = self.target_sparsity * (1.0 - tf.pow(1.0 - progress, self.power))
        # Prune on the frequency grid, and always at end_step so the target is reached.
        in_range = tf.logical_and(step >= self.begin_step, step <= self.end_step)
        on_grid = tf.logical_or(tf.math.equal((step - self.begin_step) % self.frequency, 0),
                                tf.math.equal(step, self.end_step))
        return tf.logical_and(in_range, on_grid), sparsity

    def get_config(self):
        return {"class_name": type(self).__name__,
                "config": {"target_sparsity": self.target_sparsity,
                           "begin_step": self.begin_step, "end_step": self.end_step,
                           "power": self.power, "frequency": self.frequency}}


def custom_objects() -> dict:
    """Names of the schedules, for `custom_objects=` of Keras loaders."""
    return {"OneShotAfter": OneShotAfter, "GradualAfter": GradualAfter}


@contextlib.contextmanager
def pruning_scope():
    """Scope for `keras.models.load_model` of a model wrapped with these schedules.

    Enters tfmot's `prune_scope()` (the `PruneLowMagnitude` wrapper) and a custom
    object scope with the schedules.

    ```python
    with mcmia_tf.pruning.pruning_scope():
        model = keras.models.load_model(path)
    ```
    """
    with tfmot.sparsity.keras.prune_scope(), keras.utils.custom_object_scope(custom_objects()):
        yield
