"""The classifier's optimizer of a `TrainingConfig`: optimizer, learning-rate schedule, L2 decay.

Defaults reproduce the package's original recipe exactly (`Adam(learning_rate)`,
constant, no decay). The CIFAR presets use kuangliu/pytorch-cifar's recipe:
`SGD(0.1, momentum=0.9)`, cosine decay over the whole budget (SGDR without
restarts, Loshchilov & Hutter, ICLR 2017) and weight decay 5e-4, coupled as in
PyTorch's SGD (the gradient of `weight_decay / 2 * ||W||^2` is added to the
gradient, so it passes through the momentum buffer; AdamW's decoupled decay,
Loshchilov & Hutter, ICLR 2019, differs). DP-SGD keeps `DPConfig`'s optimizer.
"""

import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.privacy.poisson import steps_per_epoch
from mcmia_tf.recipes.config import TrainingConfig

__all__ = ["add_weight_decay", "make_optimizer", "named_optimizer"]


def named_optimizer(name: str, learning_rate, momentum: float = 0.0
                    ) -> keras.optimizers.Optimizer:
    """A new Keras optimizer by name: "adam", "sgd" (with `momentum`) or "adagrad".

    The one place the recipes turn a configured name into an optimizer (the
    classifier's, DP-SGD's and the audit's standard recipe's). Adam and Adagrad
    have no momentum argument; the configs refuse or ignore one for them.
    """
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "adagrad":
        return keras.optimizers.Adagrad(learning_rate)
    raise ValueError("Invalid value for argument `name`. Expected one of ('adam', 'sgd', "
                     f"'adagrad'). Received: name={name!r}")


def make_optimizer(training: TrainingConfig, num_examples: int,
                   initial_step: int = 0) -> keras.optimizers.Optimizer:
    """A new optimizer for the classifier of `training`.

    Args:
      training: the recipe's training section.
      num_examples: training examples; with `lr_schedule="cosine"` the schedule
        spans T = `epochs * ceil(num_examples / batch_size)` steps.
      initial_step: optimizer steps already taken by an earlier phase with
        another optimizer (tfmot's pruning phase), so a decaying schedule continues;
        ignored at a constant rate.

    Returns:
      An uncompiled `keras.optimizers.Adam` or `SGD`.
    """
    learning_rate = training.learning_rate
    if training.lr_schedule == "cosine":
        # lr_t = lr / 2 * (1 + cos(pi * min(t, T) / T)), evaluated at the optimizer's step t.
        total_steps = training.epochs * steps_per_epoch(num_examples, training.batch_size)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            training.learning_rate, decay_steps=max(1, total_steps))
    optimizer = named_optimizer(training.optimizer, learning_rate, training.momentum)
    if initial_step and training.lr_schedule != "constant":
        # Only a schedule needs the step; a constant rate keeps a fresh optimizer at step 0
        # (Adam's bias correction counts from it: the original recipe's behaviour).
        optimizer.iterations.assign(initial_step)
    return optimizer


def add_weight_decay(model: keras.Model, weight_decay: float) -> None:
    """Adds `weight_decay / 2 * sum ||W||^2` over the kernels to `model.losses`.

    Kernels are the trainable weights of rank >= 2 (Dense, Conv2D,
    DepthwiseConv2D), not biases or normalization parameters. Call it on the
    model that `fit` differentiates, after any cloning (`make_prunable`,
    tfmot's wrappers): Keras' `train_step` and `MinMaxModel`'s add
    `model.losses` (scaled for the replicas) to the objective.

    Args:
      model: the tf_keras model to regularise.
      weight_decay: the coefficient; 0 adds nothing.
    """
    if not weight_decay:
        return
    kernels = [w for w in model.trainable_weights if w.shape.rank >= 2]
    if kernels:
        decay = float(weight_decay)
        model.add_loss(lambda: 0.5 * decay * tf.add_n(
            [tf.reduce_sum(tf.square(tf.cast(w, tf.float32))) for w in kernels]))
