r"""Membership-inference audit benchmark: every attack of `mcmia_tf.audit` on one target.

Fashion-MNIST, LeNet-5 (20-50-500) trained `--epochs` epochs (Adam, batch 128) on
`--num_members` random training images; as many other training images are the
non-members; the shadow pool is `--num_shadow_pool` further training images (by
default twice the members, so that each shadow model trains on as many images as
the target; RMIA draws its population from it). `--num_reference_models` reference
models train on random halves of members + non-members (shared by LiRA and RMIA);
`--num_shadow_models` shadow models on halves of the pool.

Two tables, every number with its 95% bootstrap interval over candidates:

1. every attack with all K reference models: `auc`, `balanced_accuracy`,
   `advantage`, `tpr_at_1pct_fpr`, `tpr_at_0.1pct_fpr` (step rule, no
   interpolation) and their `*_interval` pairs, `seconds` (the attack's wall time
   including the training of the shadow / reference models it uses, when they were
   not cached), the target's `train_accuracy` and `test_accuracy`;
2. LiRA and RMIA, online and offline, with the first k of the K reference models for
   every k of `--reference_counts` (no extra training): rows with
   `num_reference_models`; an attack that cannot run at k (LiRA online needs IN and
   OUT models for every candidate, offline 2 OUT models; RMIA offline 1 OUT model)
   is listed with the reason.

The target of the RMIA paper is checked: RMIA with 4 reference models at least as
strong as LiRA with 16 at TPR@0.1%FPR, by a paired bootstrap of the difference on the
same candidates. Models are cached in `--cache_dir`, so an interrupted run resumes.

    python -m bench.audit --output_json=audit.json           # Fashion-MNIST
    python -m bench.audit --quick --output_json=audit.json   # digits, a few minutes
"""

import dataclasses
import os
import tempfile
import time
from typing import Dict, List, Tuple

from absl import app
from absl import flags
import numpy as np

from bench import output
from mcmia_tf.audit import AuditCandidates
from mcmia_tf.audit import AuditConfig
from mcmia_tf.audit import compute_attack_metrics
from mcmia_tf.audit import KerasPredictor
from mcmia_tf.audit import run_audit
from mcmia_tf.audit.lira import augmented_views
from mcmia_tf.audit.reference_attacks import reference_attack_scores
from mcmia_tf.audit.report import format_metric
from mcmia_tf.audit.significance import paired_bootstrap_difference
from mcmia_tf.audit.suite import build_model_caches
from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.recipes import StandardTrainingRecipe

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
_NUM_BOOTSTRAP = flags.DEFINE_integer("num_bootstrap", 200,
                                      "Bootstrap replicates of the 95% intervals.")
_REFERENCE_COUNTS = flags.DEFINE_list("reference_counts", ["1", "2", "4", "8", "16"],
                                      "Numbers k of reference models (the first k of K) of "
                                      "the LiRA / RMIA sweep.")
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


def _interval(metrics, name):
    bounds = metrics.confidence_intervals.get(name)
    return None if bounds is None else [float(b) for b in bounds]


def _metric_row(metrics) -> Dict:
    return {"auc": metrics.auc, "balanced_accuracy": metrics.balanced_accuracy,
            "tpr_at_1pct_fpr": metrics.tpr_at_fpr["1pct"],
            "tpr_at_0.1pct_fpr": metrics.tpr_at_fpr["0.1pct"],
            **{f"{name}_interval": _interval(metrics, name)
               for name in ("auc", "balanced_accuracy", "tpr_at_1pct_fpr",
                            "tpr_at_0.1pct_fpr")}}


def reference_sweep(target, dataset, split, recipe, config: AuditConfig, cache_dir: str,
                    counts) -> Tuple[List[Dict], Dict[Tuple[str, int], np.ndarray]]:
    """LiRA / RMIA with the first k reference models of the trained cache, every k."""
    candidates = AuditCandidates.from_split(split, dataset.x_train, dataset.y_train,
                                            config.rmia_population_size, config.seed)
    cache = build_model_caches(dataset.x_train, dataset.y_train, split, recipe, config,
                               cache_dir)["lira"]
    predictor = KerasPredictor(target)
    views = augmented_views(candidates.x, config.flip, config.shift_pixels)
    target_views = [predictor.predict(view, config.batch_size) for view in views]
    population = predictor.predict(candidates.population_x, config.batch_size)
    average = candidates.average_case
    rows, scores = [], {}
    for k in counts:
        reference = cache.load_outputs(range(k))
        for attack in ("lira_online", "lira_offline", "rmia_online", "rmia_offline"):
            row = {"attack": attack, "num_reference_models": k}
            try:
                scored, = reference_attack_scores(
                    dataclasses.replace(config, attacks=(attack,)),
                    candidates, reference, target_views, predictor.output_type, population)
            except ValueError as error:  # Too few IN / OUT models among the first k.
                rows.append({**row, "not_computable": str(error).split(". ")[0]})
                continue
            scores[(attack, k)] = scored.scores[average]
            metrics = compute_attack_metrics(scored.scores[average],
                                             candidates.is_member[average],
                                             num_bootstrap=config.num_bootstrap, seed=config.seed)
            rows.append({**row, **_metric_row(metrics),
                         "offline_a": scored.parameters.get("offline_a")})
    return rows, scores


def run() -> Tuple[List[Dict], List[Dict], List[str]]:
    """The all-attacks rows, the reference-model sweep rows, and the target's verdict."""
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
    common = dict(train_accuracy=train_accuracy, test_accuracy=test_accuracy,
                  dataset=dataset.name, model=recipe.model_name,
                  num_members=len(split.members), num_non_members=len(split.non_members),
                  num_shadow_models=config.num_shadow_models, epochs=recipe.epochs)
    rows = []
    for attack in report.attacks:
        row = {key: value for key, value in attack.summary_row().items()
               if key not in ("tpr_at_0pct_fpr",)}
        row.update(common, num_reference_models=config.num_reference_models)
        rows.append(row)
    print(report.to_markdown())
    counts = [int(k) for k in _REFERENCE_COUNTS.value if int(k) <= config.num_reference_models]
    sweep, scores = reference_sweep(target, dataset, split, recipe, config, cache_dir, counts)
    for row in sweep:
        row.update(common)
    notes = [f"tensorflow-privacy membership-inference library: {_tf_privacy_mia_status()}"]
    rmia_key, lira_key = ("rmia_online", 4), ("lira_online", config.num_reference_models)
    if rmia_key in scores and lira_key in scores:
        is_member = np.r_[np.ones(len(split.members), bool), np.zeros(len(split.non_members),
                                                                      bool)]
        # 0.1% FPR needs 1,000 non-members; smaller (--quick) runs compare at 1%.
        fpr = "0.1" if len(split.non_members) >= 1000 else "1"
        difference, (low, high) = paired_bootstrap_difference(
            scores[rmia_key], scores[lira_key], is_member, metric=f"tpr_at_{fpr}pct_fpr",
            num_bootstrap=config.num_bootstrap, seed=config.seed)
        verdict = ("met" if low >= 0 else "not met" if high < 0 else
                   "not distinguishable (the interval of the difference contains 0)")
        notes.append(f"target 'RMIA online with K=4 at least as strong as LiRA online with "
                     f"K={lira_key[1]} at TPR@{fpr}%FPR': {verdict}; difference "
                     f"{100 * difference:+.2f} points [{100 * low:+.2f}, {100 * high:+.2f}] "
                     "(paired bootstrap over the same candidates)")
    return rows, sweep, notes


def _cell(row: Dict, name: str, percent: bool = True) -> str:
    """A metric of a row with its 95% interval (the row's `<name>_interval`)."""
    return format_metric(row[name], row[f"{name}_interval"], percent=percent)


def markdown_table(rows: List[Dict]) -> str:
    lines = ["| attack | AUC [95%] | balanced acc. [95%] | advantage | TPR@1%FPR [95%] | "
             "TPR@0.1%FPR [95%] | seconds |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(
            f"| {row['attack']} | {_cell(row, 'auc', percent=False)} | "
            f"{_cell(row, 'balanced_accuracy')} | {row['advantage']:.4f} | "
            f"{_cell(row, 'tpr_at_1pct_fpr')} | {_cell(row, 'tpr_at_0.1pct_fpr')} | "
            f"{row['seconds']:.0f} |")
    return "\n".join(lines)


def sweep_table(rows: List[Dict]) -> str:
    lines = ["| attack | reference models | AUC [95%] | TPR@0.1%FPR [95%] |", "|---|---|---|---|"]
    for row in rows:
        if "not_computable" in row:
            lines.append(f"| {row['attack']} | {row['num_reference_models']} | n/a | "
                         f"n/a ({row['not_computable']}) |")
            continue
        lines.append(f"| {row['attack']} | {row['num_reference_models']} | "
                     f"{_cell(row, 'auc', percent=False)} | {_cell(row, 'tpr_at_0.1pct_fpr')} |")
    return "\n".join(lines)


def main(argv):
    del argv
    rows, sweep, notes = run()
    output.emit(rows + sweep, markdown_table(rows) + "\n\n" + sweep_table(sweep),
                _OUTPUT_JSON.value, notes=notes)


if __name__ == "__main__":
    app.run(main)
