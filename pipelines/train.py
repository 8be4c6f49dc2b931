r"""Trains one defended (or baseline) model and saves it with its split and summary.

    python -m pipelines.train --method=mcmia_pruning_minmax --model=lenet5 \
        --dataset=fashion_mnist --sparsity=0.95 --output_dir=runs/pmm

    python -m pipelines.train --method=baseline --model=resnet18 --dataset=cifar10 \
        --data_dir=DIR --epochs=200 --learning_rate=0.1 --optimizer=sgd --momentum=0.9 \
        --lr_schedule=cosine --weight_decay=5e-4 --augmentation=crop_flip \
        --mixed_precision --jit_compile --output_dir=runs/resnet18

Methods: baseline, dp, minmax, mcmia_pruning, mcmia_pruning_minmax,
tfmot_magnitude. `--flagfile=FILE` reads flags from a file (one `--flag=value`
per line). TensorFlow Datasets sources (cifar10, cifar100, ...) are read from
`--data_dir` (prepare them with `tfds build cifar10 --data_dir=DIR` on a machine
with internet access, then copy DIR). `--mixed_precision` and `--jit_compile`
take effect only where a GPU (XLA: or TPU) is visible; elsewhere they print one
line and are ignored. The output folder holds:

* `model.keras`: the deployable classifier (logits; pruning stripped);
* `split.json`: the `MembershipSplit` (members = the training set, reference =
  the min-max game's D'), for `pipelines.audit --split`;
* `recipe.json`: `Recipe.to_dict()`, to retrain shadow / reference models the
  same way (`Recipe.from_dict(..., reference_data=...)`);
* `train_summary.json`: method, config, epochs, train (member) and test
  accuracy and cross-entropy, sparsity, compression rate, epsilon (dp), wall
  time, history.

Flags are read only in `main`; the work is library calls.
"""

import json
import os

from absl import app
from absl import flags
import numpy as np

from mcmia_tf.compat import keras
from mcmia_tf.data import AUGMENTATIONS
from mcmia_tf.data import DATASET_NAMES
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.models import model_names
from mcmia_tf.privacy.minmax import PRIVACY_GAINS
from mcmia_tf.recipes import DPConfig
from mcmia_tf.recipes import LR_SCHEDULES
from mcmia_tf.recipes import METHODS
from mcmia_tf.recipes import MinMaxConfig
from mcmia_tf.recipes import OPTIMIZERS
from mcmia_tf.recipes import PruningConfig
from mcmia_tf.recipes import Recipe
from mcmia_tf.recipes import RecipeConfig
from mcmia_tf.recipes import SOLVERS
from mcmia_tf.recipes import TrainingConfig
from mcmia_tf.study import configure_mixed_precision
from mcmia_tf.study import resolve_jit_compile
from pipelines import cli

_METHOD = flags.DEFINE_enum("method", "baseline", list(METHODS), "Training recipe.")
_MODEL = flags.DEFINE_enum("model", "lenet5", list(model_names()), "Architecture.")
_DATASET = flags.DEFINE_enum("dataset", "digits", list(DATASET_NAMES), "Dataset.")
_IDX_DIR = flags.DEFINE_string("idx_dir", None, "Folder of the Fashion-MNIST IDX files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TensorFlow Datasets folder where the dataset "
                                "is prepared (`tfds build <name> --data_dir=DIR`).")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output folder.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the weights, data order and split.")
_SPLIT = flags.DEFINE_string("split", None, "Existing MembershipSplit JSON to train on "
                             "(default: draw one from the --num_* flags and --seed).")
_NUM_MEMBERS = flags.DEFINE_integer("num_members", 500, "Training members.")
_NUM_NON_MEMBERS = flags.DEFINE_integer("num_non_members", None,
                                        "Audit non-members (default: --num_members).")
_NUM_REFERENCE = flags.DEFINE_integer("num_reference", 250, "Defender's reference set D'.")
# Training.
_WIDTH = flags.DEFINE_float("width", 1.0, "Width multiplier.")
_EPOCHS = flags.DEFINE_integer("epochs", 30, "Total epochs (all phases).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Batch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Learning rate (the initial one "
                                     "with --lr_schedule=cosine).")
_OPTIMIZER = flags.DEFINE_enum("optimizer", TrainingConfig.optimizer, list(OPTIMIZERS),
                               "Optimizer of the classifier (DP uses its own).")
_MOMENTUM = flags.DEFINE_float("momentum", TrainingConfig.momentum, "SGD momentum.")
_LR_SCHEDULE = flags.DEFINE_enum("lr_schedule", TrainingConfig.lr_schedule, list(LR_SCHEDULES),
                                 "Learning-rate schedule over the whole epoch budget.")
_WEIGHT_DECAY = flags.DEFINE_float("weight_decay", TrainingConfig.weight_decay,
                                   "Coupled L2 weight decay on the kernels (e.g. 5e-4).")
_AUGMENTATION = flags.DEFINE_enum("augmentation", TrainingConfig.augmentation,
                                  list(AUGMENTATIONS), "Training-time augmentation (crop_flip: "
                                  "random 4-pixel-padded crop + horizontal flip).")
_RECOMPUTE_BATCH_NORM = flags.DEFINE_bool(
    "recompute_batch_norm", TrainingConfig.recompute_batch_norm,
    "After training, recompute every BatchNormalization's statistics on the training "
    "examples under the final weights (PreciseBN; not for --method=dp).")
# Accelerators (no-ops without one).
_MIXED_PRECISION = flags.DEFINE_bool("mixed_precision", False,
                                     "mixed_float16 training when a GPU is visible.")
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", False,
                                 "XLA-compile the training step when a GPU or TPU is visible.")
# Pruning (mcmia_pruning, mcmia_pruning_minmax, tfmot_magnitude).
_SPARSITY = flags.DEFINE_float("sparsity", 0.95, "Target sparsity of the pruned kernels.")
_STRUCTURE = flags.DEFINE_string("structure", "unstructured", "Sparsity structure.")
_SOLVER = flags.DEFINE_enum("solver", "reweighted", list(SOLVERS), "Pruning solver.")
_PENALTY = flags.DEFINE_float("penalty", None, "Reweighted penalty lambda (default: calibrated "
                              "on the run by the bounded reweighted form).")
_RHO = flags.DEFINE_float("rho", PruningConfig.rho, "ADMM rho.")
_REGULARIZATION_EPOCHS = flags.DEFINE_integer("regularization_epochs", 10,
                                              "Epochs with the penalty (tfmot: the ramp).")
_RETRAIN_EPOCHS = flags.DEFINE_integer("retrain_epochs", 10, "Masked-retraining epochs.")
_LAYER_SPARSITY = flags.DEFINE_list("layer_sparsity", [],
                                    "Per-layer rates, e.g. conv1=0.5,fc1=0.99.")
_EDGE_LAYER_SPARSITY = flags.DEFINE_float(
    "edge_layer_sparsity", 0.8, "Cap of the first/last pruned layers' rates (<0: no cap).")
# Min-max.
_PRIVACY_WEIGHT = flags.DEFINE_float("privacy_weight", MinMaxConfig.privacy_weight,
                                     "lambda of the min-max game.")
_ATTACK_STEPS = flags.DEFINE_integer("attack_steps", MinMaxConfig.attack_steps,
                                     "Attack-head steps per classifier step (k).")
_PRIVACY_GAIN = flags.DEFINE_enum("privacy_gain", MinMaxConfig.privacy_gain,
                                  list(PRIVACY_GAINS), "Classifier's privacy term.")
# DP-SGD.
_L2_NORM_CLIP = flags.DEFINE_float("l2_norm_clip", 1.0, "DP-SGD clipping norm C.")
_NOISE_MULTIPLIER = flags.DEFINE_float("noise_multiplier", 1.1, "DP-SGD sigma.")
_TARGET_EPSILON = flags.DEFINE_float("target_epsilon", None,
                                     "If set, sigma is searched to reach this epsilon.")
_NUM_MICROBATCHES = flags.DEFINE_integer("num_microbatches", 0,
                                         "DP microbatches per batch (0: per-example clipping "
                                         "with fast gradient norms).")
_DP_SAMPLING = flags.DEFINE_enum("dp_sampling", None, ["poisson", "shuffled"],
                                 "DP batches: Poisson subsampling (what the accountant assumes; "
                                 "default with per-example clipping) or shuffled fixed-size "
                                 "batches (required with microbatches).")
_DELTA = flags.DEFINE_float("delta", 1e-5, "DP delta.")

flags.mark_flag_as_required("output_dir")


def _layer_sparsity(entries):
    if not entries:
        return None
    rates = {}
    for entry in entries:
        name, sep, value = entry.partition("=")
        if not sep:
            raise app.UsageError(f"--layer_sparsity entries are layer=rate; got {entry!r}.")
        rates[name] = float(value)
    return rates


def _recipe_config() -> RecipeConfig:
    return RecipeConfig(
        method=_METHOD.value,
        training=TrainingConfig(model=_MODEL.value, width=_WIDTH.value, epochs=_EPOCHS.value,
                                batch_size=_BATCH_SIZE.value,
                                learning_rate=_LEARNING_RATE.value, optimizer=_OPTIMIZER.value,
                                momentum=_MOMENTUM.value, lr_schedule=_LR_SCHEDULE.value,
                                weight_decay=_WEIGHT_DECAY.value,
                                augmentation=_AUGMENTATION.value,
                                recompute_batch_norm=_RECOMPUTE_BATCH_NORM.value),
        dp=DPConfig(l2_norm_clip=_L2_NORM_CLIP.value, noise_multiplier=_NOISE_MULTIPLIER.value,
                    target_epsilon=_TARGET_EPSILON.value,
                    num_microbatches=_NUM_MICROBATCHES.value or None, delta=_DELTA.value,
                    sampling=_DP_SAMPLING.value or (
                        "shuffled" if _NUM_MICROBATCHES.value else "poisson")),
        minmax=MinMaxConfig(privacy_weight=_PRIVACY_WEIGHT.value,
                            attack_steps=_ATTACK_STEPS.value,
                            privacy_gain=_PRIVACY_GAIN.value),
        pruning=PruningConfig(
            target_sparsity=_SPARSITY.value, structure=_STRUCTURE.value, solver=_SOLVER.value,
            penalty=_PENALTY.value, rho=_RHO.value,
            regularization_epochs=_REGULARIZATION_EPOCHS.value,
            retrain_epochs=_RETRAIN_EPOCHS.value,
            layer_sparsity=_layer_sparsity(_LAYER_SPARSITY.value),
            edge_layer_sparsity=(None if _EDGE_LAYER_SPARSITY.value < 0
                                 else _EDGE_LAYER_SPARSITY.value)))


def _accuracy_and_loss(model, x, y):
    """Accuracy and mean cross-entropy of a logits model."""
    logits = model.predict(x, batch_size=512, verbose=0)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)
    return float(np.mean(logits.argmax(axis=1) == y)), float(loss)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = _recipe_config()
    # Before any model is built: the policy applies to the layers created after it.
    configure_mixed_precision(_MIXED_PRECISION.value)
    jit_compile = resolve_jit_compile(_JIT_COMPILE.value)
    kwargs = {"idx_dir": _IDX_DIR.value} if _IDX_DIR.value else {}
    dataset = load_dataset(_DATASET.value, data_dir=_DATA_DIR.value, **kwargs)
    if _SPLIT.value:
        split = MembershipSplit.load(_SPLIT.value, expected_dataset=dataset.name)
    else:
        split = MembershipSplit.create(
            dataset_name=dataset.name, num_examples=len(dataset.x_train),
            num_members=_NUM_MEMBERS.value, num_non_members=_NUM_NON_MEMBERS.value,
            num_reference=_NUM_REFERENCE.value, seed=_SEED.value)
    x, y = split.take("members", dataset.x_train, dataset.y_train)
    reference = (split.take("reference", dataset.x_train, dataset.y_train)
                 if config.uses("minmax") else None)
    recipe = Recipe(config, dataset.input_shape, dataset.num_classes, reference_data=reference,
                    jit_compile=jit_compile)
    result = recipe.fit(x, y, seed=_SEED.value,
                        validation_data=(dataset.x_test, dataset.y_test), verbose=2)

    output_dir = _OUTPUT_DIR.value
    os.makedirs(output_dir, exist_ok=True)
    result.model.save(os.path.join(output_dir, "model.keras"))
    split.save(os.path.join(output_dir, "split.json"))
    with open(os.path.join(output_dir, "recipe.json"), "w") as f:
        json.dump(recipe.to_dict(), f, indent=1)
    train_accuracy, train_loss = _accuracy_and_loss(result.model, x, y)
    test_accuracy, test_loss = _accuracy_and_loss(result.model, dataset.x_test, dataset.y_test)
    summary = {
        **result.to_dict(),
        "dataset": dataset.name,
        "model": config.training.model,
        "seed": _SEED.value,
        "epochs": config.training.epochs,
        "num_members": int(len(x)),
        "train_accuracy": train_accuracy,
        "test_accuracy": test_accuracy,
        # Cross-entropy on the members and on the test split; their difference is
        # the generalization gap the min-max game is meant to shrink.
        "train_loss": train_loss,
        "test_loss": test_loss,
        "wall_time_seconds": result.seconds,
    }
    with open(os.path.join(output_dir, "train_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    epsilon = "" if result.epsilon is None else f", epsilon {result.epsilon:.3g}"
    print(f"{config.method} {config.training.model} on {dataset.name}: train accuracy "
          f"{summary['train_accuracy']:.4f}, test accuracy {summary['test_accuracy']:.4f}, "
          f"sparsity {result.sparsity:.4f} ({result.compression_rate:.1f}x){epsilon}, "
          f"{result.seconds:.1f} s -> {output_dir}")


if __name__ == "__main__":
    cli.run(main)
