r"""Audits a trained model for membership leakage and writes the report folder.

    python -m pipelines.audit --model_path=model.keras --split=split.json \
        --attacks=loss,shadow,lira_online,lira_offline --model=lenet5 --epochs=30 \
        --output_dir=audit/

`--model_path` is a tf_keras model (`.keras`, `.h5`, SavedModel folder) or a deployed
`.tflite` file; `--split` a `MembershipSplit` JSON (`split.save(path)`), whose
members are the model's training set. Shadow-model and LiRA attacks retrain models
with the target's recipe, given by `--model`, `--width`, `--epochs`, `--batch_size`,
`--learning_rate`, `--optimizer` (a plain `StandardTrainingRecipe`), or by
`--recipe_json`: the `recipe.json` that `pipelines.train` writes next to the model
(a `Recipe.to_dict()`: the defence, optimizer, schedule and training augmentation
are all retrained alike; use it for every model `pipelines.train` made) or a
`StandardTrainingRecipe.to_dict()` file. Models are cached in `--cache_dir`:
rerunning resumes, and several workers can share the training with
`--shard_index=i --num_shards=n --train_only`, then one final run without
`--train_only` writes the report. The folder holds report.json, report.md, roc.png
and, with `--save_predictions`, predictions.npz. TensorFlow Datasets sources
(cifar10, ...) are read from `--data_dir` (`tfds build cifar10 --data_dir=DIR`
on a machine with internet access, then copy DIR).
"""

import json
import os

from absl import app
from absl import flags

from mcmia_tf.audit import ATTACK_NAMES
from mcmia_tf.audit import AuditConfig
from mcmia_tf.audit import run_audit
from mcmia_tf.audit.suite import build_model_caches
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.models import model_names
from mcmia_tf.recipes import Recipe
from mcmia_tf.recipes import StandardTrainingRecipe
from pipelines import cli
from tflite_export.runtime import TFLitePredictor

_MODEL_PATH = flags.DEFINE_string("model_path", None, "The audited model (.keras/.h5/"
                                  "SavedModel folder/.tflite).")
_SPLIT = flags.DEFINE_string("split", None, "MembershipSplit JSON; members = training set.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Report folder.")
_ATTACKS = flags.DEFINE_list("attacks", list(ATTACK_NAMES), "Attacks to run.")
_DATASET = flags.DEFINE_string("dataset", None, "Dataset name (default: the split's).")
_IDX_DIR = flags.DEFINE_string("idx_dir", None, "Folder of the MNIST / Fashion-MNIST IDX files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TensorFlow Datasets folder where the dataset "
                                "is prepared (`tfds build <name> --data_dir=DIR`).")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None,
                                 "Folder of shadow / reference models (default: "
                                 "OUTPUT_DIR/models).")
_RECIPE_JSON = flags.DEFINE_string("recipe_json", None,
                                   "The target's recipe: the recipe.json of pipelines.train "
                                   "(Recipe.to_dict()) or a StandardTrainingRecipe JSON file.")
_MODEL = flags.DEFINE_enum("model", None, list(model_names()), "Architecture of the target.")
_WIDTH = flags.DEFINE_float("width", 1.0, "Width multiplier of the target.")
_EPOCHS = flags.DEFINE_integer("epochs", 30, "Training epochs of the target.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Training batch size of the target.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Learning rate of the target.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "adam", ["adam", "sgd"], "Optimizer of the target.")
_NUM_REFERENCE_MODELS = flags.DEFINE_integer("num_reference_models", 16, "LiRA models K.")
_NUM_SHADOW_MODELS = flags.DEFINE_integer("num_shadow_models", 4, "Shadow models N.")
_FIXED_VARIANCE = flags.DEFINE_bool("fixed_variance", True, "LiRA with one pooled variance.")
_FLIP = flags.DEFINE_bool("flip", False, "LiRA: add horizontally flipped queries.")
_SHIFT_PIXELS = flags.DEFINE_integer("shift_pixels", 0, "LiRA: add 4 shifted queries.")
_NUM_BOOTSTRAP = flags.DEFINE_integer("num_bootstrap", 200,
                                      "Bootstrap replicates of the 95% intervals (0: none).")
_NUM_PERMUTATIONS = flags.DEFINE_integer("num_permutations", 200,
                                         "Label permutations of the noise floor (0: none).")
_RMIA_TEMPERATURE = flags.DEFINE_float("rmia_temperature", 2.0, "RMIA softmax temperature.")
_RMIA_GAMMA = flags.DEFINE_float("rmia_gamma", 1.0, "RMIA likelihood-ratio threshold gamma.")
_RMIA_OFFLINE_A = flags.DEFINE_float("rmia_offline_a", None,
                                     "RMIA offline correction a (default: tuned on the "
                                     "reference models).")
_RMIA_POPULATION_SIZE = flags.DEFINE_integer("rmia_population_size", 5000,
                                             "RMIA population points from the shadow pool.")
_SAVE_PREDICTIONS = flags.DEFINE_bool("save_predictions", False, "Write predictions.npz.")
_SHARD_INDEX = flags.DEFINE_integer("shard_index", 0, "This worker's shard of the models.")
_NUM_SHARDS = flags.DEFINE_integer("num_shards", 1, "Workers sharing --cache_dir.")
_TRAIN_ONLY = flags.DEFINE_bool("train_only", False,
                                "Only train this shard's shadow / reference models.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the masks, models and attacks.")

flags.mark_flags_as_required(["model_path", "split", "output_dir"])


def _recipe(dataset, split):
    if _RECIPE_JSON.value:
        with open(_RECIPE_JSON.value) as f:
            description = json.load(f)
        if "recipe" in description:  # Recipe.to_dict(): pipelines.train's recipe.json
            reference = split.take("reference", dataset.x_train, dataset.y_train)
            return Recipe.from_dict(description,
                                    reference_data=reference if len(reference[0]) else None)
        return StandardTrainingRecipe.from_dict(description)
    if _MODEL.value is None:
        return None
    return StandardTrainingRecipe(_MODEL.value, dataset.input_shape, dataset.num_classes,
                                  width=_WIDTH.value, epochs=_EPOCHS.value,
                                  batch_size=_BATCH_SIZE.value,
                                  learning_rate=_LEARNING_RATE.value, optimizer=_OPTIMIZER.value)


def main(argv):
    del argv
    split = MembershipSplit.load(_SPLIT.value, expected_dataset=_DATASET.value)
    dataset = load_dataset(_DATASET.value or split.dataset_name, idx_dir=_IDX_DIR.value,
                           data_dir=_DATA_DIR.value)
    recipe = _recipe(dataset, split)
    if recipe is None and any(a == "shadow" or a.startswith(("lira", "rmia"))
                              for a in _ATTACKS.value):
        raise app.UsageError("Shadow-model, LiRA and RMIA attacks retrain models like the "
                             "target: pass its recipe with --model (and --epochs, ...) or --recipe_json, "
                             "or restrict --attacks to loss,confidence,entropy,modified_entropy.")
    config = AuditConfig(attacks=_ATTACKS.value, num_reference_models=_NUM_REFERENCE_MODELS.value,
                         num_shadow_models=_NUM_SHADOW_MODELS.value if recipe else 0,
                         fixed_variance=_FIXED_VARIANCE.value, flip=_FLIP.value,
                         shift_pixels=_SHIFT_PIXELS.value, num_bootstrap=_NUM_BOOTSTRAP.value,
                         num_permutations=_NUM_PERMUTATIONS.value,
                         rmia_temperature=_RMIA_TEMPERATURE.value, rmia_gamma=_RMIA_GAMMA.value,
                         rmia_offline_a=_RMIA_OFFLINE_A.value,
                         rmia_population_size=_RMIA_POPULATION_SIZE.value, seed=_SEED.value)
    cache_dir = _CACHE_DIR.value or os.path.join(_OUTPUT_DIR.value, "models")
    if _TRAIN_ONLY.value:
        if recipe is None:
            raise app.UsageError("--train_only needs the target's recipe (--model or "
                                 "--recipe_json).")
        # Same caches (folders, masks, seeds) as `run_audit` builds from this config.
        for name, cache in build_model_caches(dataset.x_train, dataset.y_train, split, recipe,
                                              config, cache_dir).items():
            trained = cache.train(_SHARD_INDEX.value, _NUM_SHARDS.value)
            print(f"{name}: trained models {trained}; missing {cache.missing_models()}")
        return
    # A deployed file runs on LiteRT: the export package provides its predictor.
    target = (TFLitePredictor(_MODEL_PATH.value) if _MODEL_PATH.value.endswith(".tflite")
              else _MODEL_PATH.value)
    report = run_audit(target, dataset.x_train, dataset.y_train, split, recipe,
                       config, cache_dir=cache_dir, output_dir=_OUTPUT_DIR.value,
                       save_predictions=_SAVE_PREDICTIONS.value,
                       target_facts={"model_path": _MODEL_PATH.value},
                       shard_index=_SHARD_INDEX.value, num_shards=_NUM_SHARDS.value)
    print(report.to_markdown())
    print(f"Strongest attack: {report.strongest.name}. Report: {_OUTPUT_DIR.value}")


if __name__ == "__main__":
    cli.run(main)
