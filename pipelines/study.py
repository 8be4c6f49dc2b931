"""The study: every method on one model and dataset, audited, exported, reported.

    python -m pipelines.study --preset=quick --output_dir=runs/quick
    python -m pipelines.study --preset=paper --output_dir=runs/paper
    python -m pipelines.study --preset=paper --canaries=500 --output_dir=runs/paper_canaries
    python -m pipelines.study --dataset=fashion_mnist --model=lenet5 --sparsity=0.95 \
        --methods=baseline,dp,minmax,mcmia_pruning,mcmia_pruning_minmax,tfmot_magnitude \
        --num_reference_models=16 --output_dir=DIR
    python -m pipelines.study --preset=cifar10_resnet18 --data_dir=TFDS_DIR \
        --mixed_precision --jit_compile --output_dir=runs/cifar10_resnet18

The CIFAR presets (`cifar10_resnet18`, `cifar10_vgg16`, `cifar10_mobilenetv2`)
are accelerator runs (hours of GPU time each; see `mcmia_tf.study.config`).
Their data is read from `--data_dir`: prepare it with `tfds build cifar10
--data_dir=TFDS_DIR` on a machine with internet access and copy TFDS_DIR.
`--mixed_precision` and `--jit_compile` take effect only where a GPU (XLA: or
TPU) is visible; elsewhere they print one line and are ignored.

Flags given on the command line override the preset's values. Rerunning the
same command resumes an interrupted study. Training (targets, shadow and
reference models) can be sharded: run `--shard_index=i --num_shards=n` on n
workers sharing `--output_dir`, then once more without them to merge and finish
(audits, exports, report).
"""

import dataclasses

from absl import flags
from absl import logging

from pipelines import cli

# The names of `mcmia_tf.study.PRESETS` (not imported here: TensorFlow must not start before
# --logical_cpus splits the CPU; a test checks that the lists agree).
PRESET_NAMES = ("quick", "paper", "cifar10_resnet18", "cifar10_vgg16", "cifar10_mobilenetv2")
_PRESET = flags.DEFINE_enum("preset", "quick", list(PRESET_NAMES), "Starting configuration.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Study folder (resumed if it exists).")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (overrides the preset).")
_IDX_DIR = flags.DEFINE_string("idx_dir", None, "Folder of MNIST / Fashion-MNIST IDX files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TensorFlow Datasets folder where the dataset "
                                "is prepared (`tfds build cifar10 --data_dir=DIR`).")
_MODEL = flags.DEFINE_string("model", None, "Model name (overrides the preset).")
_WIDTH = flags.DEFINE_float("width", None, "Width multiplier of the model.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Total training epochs of every method.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Batch size.")
_AUGMENTATION = flags.DEFINE_enum("augmentation", None, ["none", "crop_flip"],
                                  "Training-time augmentation (overrides the preset).")
_RECOMPUTE_BATCH_NORM = flags.DEFINE_bool(
    "recompute_batch_norm", None, "Recompute every BatchNormalization's statistics on the "
    "members under the final weights, for every method but DP (overrides the preset; "
    "ResNet18 / VGG16 / MobileNetV2 on a few thousand members, pruned above all).")
_SPARSITY = flags.DEFINE_float("sparsity", None, "Target sparsity of the pruning methods.")
_STRUCTURE = flags.DEFINE_string("structure", None, "Sparsity structure of MCMIA pruning.")
_REGULARIZATION_EPOCHS = flags.DEFINE_integer("regularization_epochs", None,
                                              "Epochs of the pruning penalty.")
_RETRAIN_EPOCHS = flags.DEFINE_integer("retrain_epochs", None, "Masked-retraining epochs.")
_METHODS = flags.DEFINE_list("methods", None, "Methods to compare, in order.")
_NUM_MEMBERS = flags.DEFINE_integer("num_members", None, "Target training set size.")
_NUM_REFERENCE = flags.DEFINE_integer("num_reference", None, "Defender's reference set D'.")
_NUM_SHADOW_POOL = flags.DEFINE_integer("num_shadow_pool", None,
                                        "Attacker's pool for shadow models (-1: all the rest).")
_NUM_REFERENCE_MODELS = flags.DEFINE_integer("num_reference_models", None,
                                             "LiRA reference models per method.")
_NUM_SHADOW_MODELS = flags.DEFINE_integer("num_shadow_models", None,
                                          "Shadow models per method.")
_DP_EPSILONS = flags.DEFINE_list("dp_epsilons", None,
                                 "Expand `dp` into one method per epsilon (e.g. 1,3,8,30,1000): "
                                 "the DP frontier of frontier.png and the matched-accuracy "
                                 "comparison of report.md.")
_DP_OVERRIDE = flags.DEFINE_multi_string(
    "dp_override", [], "Per-epsilon DP recipe, repeatable: '<epsilon>:field=value,...' with "
    "fields of the dp section, e.g. '1000:optimizer=adam,learning_rate=0.001,batch_size=128,"
    "l2_norm_clip=1,activation=tanh' (hyper-parameters tuned at that epsilon by bench.dp_tune).")
_CANARIES = flags.DEFINE_integer("canaries", None,
                                 "Canaries planted in the candidate pool (worst-case audit; "
                                 "each IN for a random half of the target and reference "
                                 "models). 0: none.")
_CANARY_KIND = flags.DEFINE_enum("canary_kind", None, ["mislabeled", "noise"],
                                 "Canaries: training images with a flipped label, or "
                                 "out-of-distribution noise images.")
_NUM_BOOTSTRAP = flags.DEFINE_integer("num_bootstrap", None,
                                      "Bootstrap replicates of every 95% interval.")
_NUM_PERMUTATIONS = flags.DEFINE_integer("num_permutations", None,
                                         "Label permutations of the noise floor.")
_EXPORT_MODES = flags.DEFINE_list("export_modes", None, "TFLite modes written per method.")
_SEEDS = flags.DEFINE_list("seeds", None, "Repeat the study for these seeds (e.g. 0,1,2).")
_STRATEGY = flags.DEFINE_enum("strategy", "default",
                              ["default", "mirrored", "multi_worker_mirrored"],
                              "tf.distribute strategy for training.")
_LOGICAL_CPUS = flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical "
                                     "devices (for --strategy=mirrored on a CPU host).")
_SHARD_INDEX = flags.DEFINE_integer("shard_index", 0, "This worker's training shard.")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Workers sharing the model training.")
_MIXED_PRECISION = flags.DEFINE_bool("mixed_precision", False,
                                     "mixed_float16 training when a GPU is visible.")
_JIT_COMPILE = flags.DEFINE_bool("jit_compile", False,
                                 "XLA-compile the training steps when a GPU or TPU is visible.")

flags.mark_flag_as_required("output_dir")


def _overrides(config):
    """The preset fields replaced by the flags the user gave."""
    training, pruning = config.training, config.pruning
    training_updates = {k: v for k, v in (("model", _MODEL.value), ("width", _WIDTH.value),
                                          ("epochs", _EPOCHS.value),
                                          ("batch_size", _BATCH_SIZE.value),
                                          ("augmentation", _AUGMENTATION.value),
                                          ("recompute_batch_norm",
                                           _RECOMPUTE_BATCH_NORM.value))
                        if v is not None}
    pruning_updates = {k: v for k, v in (
        ("target_sparsity", _SPARSITY.value), ("structure", _STRUCTURE.value),
        ("regularization_epochs", _REGULARIZATION_EPOCHS.value),
        ("retrain_epochs", _RETRAIN_EPOCHS.value)) if v is not None}
    updates = {k: v for k, v in (
        ("dataset", _DATASET.value), ("idx_dir", _IDX_DIR.value),
        ("methods", _METHODS.value and tuple(_METHODS.value)),
        ("num_members", _NUM_MEMBERS.value), ("num_reference", _NUM_REFERENCE.value),
        ("num_reference_models", _NUM_REFERENCE_MODELS.value),
        ("num_shadow_models", _NUM_SHADOW_MODELS.value),
        ("canary_kind", _CANARY_KIND.value),
        ("export_modes", _EXPORT_MODES.value and tuple(_EXPORT_MODES.value)),
        ("seeds", _SEEDS.value and tuple(int(s) for s in _SEEDS.value)),
        ("dp_epsilons", _DP_EPSILONS.value and tuple(float(e) for e in _DP_EPSILONS.value)))
        if v}
    # Zero is a meaningful value of these (no canaries, no bootstrap / floor).
    updates.update({k: v for k, v in (
        ("num_canaries", _CANARIES.value), ("num_bootstrap", _NUM_BOOTSTRAP.value),
        ("num_permutations", _NUM_PERMUTATIONS.value)) if v is not None})
    if _DP_OVERRIDE.value:
        from mcmia_tf.study import parse_dp_override  # pylint: disable=g-import-not-at-top
        updates["dp_overrides"] = dict(parse_dp_override(text) for text in _DP_OVERRIDE.value)
    if _NUM_SHADOW_POOL.value is not None:
        updates["num_shadow_pool"] = None if _NUM_SHADOW_POOL.value < 0 else _NUM_SHADOW_POOL.value
    updates["training"] = dataclasses.replace(training, **training_updates)
    updates["pruning"] = dataclasses.replace(pruning, **pruning_updates)
    return updates


def main(argv):
    del argv
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # the converter logs every file it writes
    if _LOGICAL_CPUS.value:
        from mcmia_tf.study import split_cpu  # pylint: disable=g-import-not-at-top
        split_cpu(_LOGICAL_CPUS.value)
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from mcmia_tf import study  # pylint: disable=g-import-not-at-top
    # Seeded training is then bit-reproducible, so a resumed study matches an uninterrupted one.
    tf.config.experimental.enable_op_determinism()
    base = study.preset(_PRESET.value)
    config = dataclasses.replace(base, **_overrides(base))
    # Before any model is built: the policy applies to the layers created after it.
    study.configure_mixed_precision(_MIXED_PRECISION.value)
    study.run_study(config, _OUTPUT_DIR.value, shard_index=_SHARD_INDEX.value,
                    num_shards=_NUM_SHARDS.value, strategy=study.make_strategy(_STRATEGY.value),
                    data_dir=_DATA_DIR.value,
                    jit_compile=study.resolve_jit_compile(_JIT_COMPILE.value))


if __name__ == "__main__":
    cli.run(main)
