r"""Membership-inference audit benchmark: every attack of `mcmia_tf.audit` on one target.

Fashion-MNIST, LeNet-5 (20-50-500) trained `--epochs` epochs (Adam, batch 128) on
`--num_members` random training images; as many other training images are the
non-members; the shadow pool is `--num_shadow_pool` further training images (by
default twice the members, so that each shadow model trains on as many images as
the target). `--num_reference_models` LiRA reference models train on random halves
of members + non-members; `--num_shadow_models` shadow models on halves of the pool.

Rows: one per attack, with `auc`, `balanced_accuracy`, `advantage`,
`tpr_at_1pct_fpr`, `tpr_at_0.1pct_fpr` (step rule, no interpolation), `seconds`
(the attack's wall time including the training of the shadow / reference models it
uses, when they were not cached) and the target's `train_accuracy` and
`test_accuracy`. Models are cached in `--cache_dir`, so an interrupted run resumes.

    python -m bench.audit --output_json=audit.json           # Fashion-MNIST
    python -m bench.audit --quick --output_json=audit.json   # digits, a few minutes
"""

import os
import tempfile
import time
from typing import Dict, List

from absl import app
from absl import flags
import numpy as np

from bench import output
from mcmia_tf.audit import AuditConfig
from mcmia_tf.audit import run_audit
from mcmia_tf.audit import StandardTrainingRecipe
from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit

_QUICK = flags.DEFINE_bool("quick", False, "Run on `digits` with a small MLP.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the JSON rows.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "If set, the audit report folder.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None,
                                 "Folder caching the target, shadow and reference models "
                                 "(resumable); a temporary folder when unset.")
_NUM_MEMBERS = flags.DEFINE_integer("num_members", None,
                                    "Members (10,000; 300 with --quick).")
_NUM_SHADOW_POOL = flags.DEFINE_integer("num_shadow_pool", None,
                                        "Shadow pool size (default: 2 x num_members).")
_NUM_REFERENCE_MODELS = flags.DEFINE_integer("num_reference_models", 16,
                                             "LiRA reference models K.")
_NUM_SHADOW_MODELS = flags.DEFINE_integer("num_shadow_models", 2, "Shadow models N.")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Training epochs (30; 40 with --quick).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Batch size (128; 32 with --quick).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", None,
                                    "Adam learning rate (1e-3; 5e-3 with --quick).")
_NUM_BOOTSTRAP = flags.DEFINE_integer("num_bootstrap", 0, "Bootstrap replicates for CIs.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split, the models and the attacks.")


def _setting():
    """Dataset, split and recipe of the benchmark."""
    if _QUICK.value:
        dataset = load_dataset("digits")
        defaults = dict(num_members=300, epochs=40, batch_size=32, learning_rate=5e-3)
        model = dict(model_name="mlp", model_kwargs={"hidden_units": [128]})
    else:
        dataset = load_dataset("fashion_mnist")
        defaults = dict(num_members=10_000, epochs=30, batch_size=128, learning_rate=1e-3)
        model = dict(model_name="lenet5")

    def value(flag, name):
        return flag.value if flag.value is not None else defaults[name]

    num_members = value(_NUM_MEMBERS, "num_members")
    split = MembershipSplit.create(
        dataset_name=dataset.name, num_examples=len(dataset.x_train), num_members=num_members,
        num_shadow_pool=(_NUM_SHADOW_POOL.value if _NUM_SHADOW_POOL.value is not None else
                         2 * num_members), seed=_SEED.value)
    recipe = StandardTrainingRecipe(input_shape=dataset.input_shape,
                                    num_classes=dataset.num_classes,
                                    epochs=value(_EPOCHS, "epochs"),
                                    batch_size=value(_BATCH_SIZE, "batch_size"),
                                    learning_rate=value(_LEARNING_RATE, "learning_rate"), **model)
    return dataset, split, recipe


def _accuracy(model, x, y) -> float:
    logits = np.concatenate([model(x[i:i + 1024], training=False).numpy()
                             for i in range(0, len(x), 1024)])
    return float(np.mean(logits.argmax(axis=1) == y))


def _tf_privacy_mia_status() -> str:
    """Whether tensorflow-privacy's membership-inference library can be imported here."""
    try:
        import_tf_privacy("privacy.privacy_tests.membership_inference_attack."
                          "membership_inference_attack")
        return "available"
    except ImportError as error:
        return f"not importable ({error})"


def run() -> List[Dict]:
    dataset, split, recipe = _setting()
    cache_dir = _CACHE_DIR.value or tempfile.mkdtemp(prefix="bench_audit_")
    os.makedirs(cache_dir, exist_ok=True)
    target_path = os.path.join(cache_dir, "target.keras")
    start = time.time()
    if os.path.exists(target_path):
        target = keras.models.load_model(target_path, compile=False)
    else:
        # The target's seed differs from every reference model's seed
        # (SeedSequence([seed, k]) in the reference-model cache).
        target = recipe.train(*split.take("members", dataset.x_train, dataset.y_train),
                              seed=_SEED.value + 10_000)
        target.save(target_path)
    target_seconds = time.time() - start
    train_accuracy = _accuracy(target, *split.take("members", dataset.x_train, dataset.y_train))
    test_accuracy = _accuracy(target, dataset.x_test, dataset.y_test)
    print(f"target {recipe.model_name} on {dataset.name}: train accuracy {train_accuracy:.4f}, "
          f"test accuracy {test_accuracy:.4f} ({target_seconds:.0f} s); split {split}",
          flush=True)
    config = AuditConfig(num_reference_models=_NUM_REFERENCE_MODELS.value,
                         num_shadow_models=_NUM_SHADOW_MODELS.value,
                         num_bootstrap=_NUM_BOOTSTRAP.value, seed=_SEED.value)
    report = run_audit(target, dataset.x_train, dataset.y_train, split, recipe, config,
                       cache_dir=cache_dir, output_dir=_OUTPUT_DIR.value,
                       save_predictions=_OUTPUT_DIR.value is not None,
                       target_facts={"model": recipe.model_name, "dataset": dataset.name,
                                     "train_accuracy": train_accuracy,
                                     "test_accuracy": test_accuracy})
    rows = []
    for attack in report.attacks:
        row = {key: value for key, value in attack.summary_row().items()
               if key not in ("tpr_at_0pct_fpr",)}
        row.update(train_accuracy=train_accuracy, test_accuracy=test_accuracy,
                   dataset=dataset.name, model=recipe.model_name,
                   num_members=len(split.members), num_non_members=len(split.non_members),
                   num_reference_models=config.num_reference_models,
                   num_shadow_models=config.num_shadow_models, epochs=recipe.epochs)
        rows.append(row)
    print(report.to_markdown())
    print(f"strongest attack: {report.strongest.name}")
    print(f"tensorflow-privacy membership-inference library: {_tf_privacy_mia_status()}")
    return rows


def markdown_table(rows: List[Dict]) -> str:
    lines = ["| attack | AUC | balanced acc. | advantage | TPR@1%FPR | TPR@0.1%FPR | seconds |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['attack']} | {row['auc']:.4f} | "
                     f"{100 * row['balanced_accuracy']:.2f}% | {row['advantage']:.4f} | "
                     f"{100 * row['tpr_at_1pct_fpr']:.2f}% | "
                     f"{100 * row['tpr_at_0.1pct_fpr']:.2f}% | {row['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv):
    del argv
    rows = run()
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value)


if __name__ == "__main__":
    app.run(main)
