r"""Defence benchmark: every recipe trained, then audited with the full attack suite.

Fashion-MNIST, LeNet-5 (20-50-500), `--num_members` (10,000) random training
images as members, as many other images as the audit's non-members, `--num_reference`
(10,000) further images as the defender's reference set D' (min-max game only)
and a shadow pool of twice the members. Each method of `--methods` trains its
target with `mcmia_tf.privacy.Recipe`, then `mcmia_tf.audit.run_audit` attacks
it with the metric attacks (global and class-conditional thresholds), the Shokri
shadow-model attack and LiRA (online and offline, `--num_reference_models` K = 16),
all of whose shadow / reference models are retrained with the SAME recipe (same
pruning, same min-max game against the same D', same DP noise). Pruning methods
run once per entry of `--sparsities`.

One row per (method, sparsity): `method`, `train_accuracy`, `test_accuracy`,
`sparsity`, `compression_rate`, `epsilon`, `strongest_attack` (highest TPR at
0.1% FPR, ties by AUC), its `balanced_accuracy`, `auc`, `tpr_at_0.1pct_fpr`, and
`seconds` (target training + audit, including the shadow / reference models);
then `<attack>/<metric>` keys for every attack. Models and audit caches live in
`--cache_dir`, so an interrupted run resumes.

    python -m bench.defenses --quick --output_json=defenses_quick.json  # digits, minutes
    python -m bench.defenses --output_json=defenses.json                # hours on 2 cores
"""

import json
import os
import tempfile
import time
from typing import Dict, List, Optional

from absl import app
from absl import flags
import numpy as np

from bench import output
from mcmia_tf.audit import AuditConfig
from mcmia_tf.audit import run_audit
from mcmia_tf.compat import keras
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.privacy import DPConfig
from mcmia_tf.privacy import METHODS
from mcmia_tf.privacy import MinMaxConfig
from mcmia_tf.privacy import PruningConfig
from mcmia_tf.privacy import Recipe
from mcmia_tf.privacy import RecipeConfig
from mcmia_tf.privacy import TrainingConfig

_QUICK = flags.DEFINE_bool("quick", False, "digits, a small MLP, 300 members.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the JSON rows.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "Resumable model cache (default: temp).")
_METHODS = flags.DEFINE_list("methods", list(METHODS), "Recipes to benchmark.")
_SPARSITIES = flags.DEFINE_list("sparsities", ["0.95"], "Targets of the pruning methods.")
_NUM_MEMBERS = flags.DEFINE_integer("num_members", None, "Members (10,000; 300 quick).")
_NUM_REFERENCE = flags.DEFINE_integer("num_reference", None, "D' size (10,000; 300 quick).")
_NUM_REFERENCE_MODELS = flags.DEFINE_integer("num_reference_models", 16, "LiRA models K.")
_NUM_SHADOW_MODELS = flags.DEFINE_integer("num_shadow_models", 2, "Shadow models N.")
_EPOCHS = flags.DEFINE_integer("epochs", 30, "Total epochs of every recipe.")
_REGULARIZATION_EPOCHS = flags.DEFINE_integer("regularization_epochs", 10,
                                              "Pruning: epochs with the penalty / ramp.")
_RETRAIN_EPOCHS = flags.DEFINE_integer("retrain_epochs", 10, "Pruning: masked retraining.")
_NOISE_MULTIPLIER = flags.DEFINE_float("noise_multiplier", 1.1, "DP-SGD sigma.")
_NUM_MICROBATCHES = flags.DEFINE_integer("num_microbatches", 16, "DP microbatches.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split, models and attacks.")


def _setting():
    if _QUICK.value:
        dataset = load_dataset("digits")
        members, reference = 300, 300
        training = TrainingConfig(model="mlp", epochs=_EPOCHS.value, batch_size=32,
                                  learning_rate=5e-3, model_kwargs={"hidden_units": [128]})
    else:
        dataset = load_dataset("fashion_mnist")
        members, reference = 10_000, 10_000
        training = TrainingConfig(model="lenet5", epochs=_EPOCHS.value, batch_size=128,
                                  learning_rate=1e-3)
    members = _NUM_MEMBERS.value or members
    reference = _NUM_REFERENCE.value or reference
    split = MembershipSplit.create(dataset_name=dataset.name, num_examples=len(dataset.x_train),
                                   num_members=members, num_reference=reference,
                                   num_shadow_pool=2 * members, seed=_SEED.value)
    return dataset, split, training


def _configs(training: TrainingConfig):
    """(label, RecipeConfig) for every requested method and sparsity."""
    num_microbatches = _NUM_MICROBATCHES.value
    if training.batch_size % num_microbatches:
        num_microbatches = np.gcd(training.batch_size, num_microbatches).item()
    dp = DPConfig(noise_multiplier=_NOISE_MULTIPLIER.value, num_microbatches=num_microbatches)
    for method in _METHODS.value:
        if method not in METHODS:
            raise app.UsageError(f"Unknown method {method!r}; expected one of {METHODS}.")
        sparsities = _SPARSITIES.value if RecipeConfig(method).uses("pruning") else [None]
        for sparsity in sparsities:
            pruning = PruningConfig() if sparsity is None else PruningConfig(
                target_sparsity=float(sparsity),
                regularization_epochs=_REGULARIZATION_EPOCHS.value,
                retrain_epochs=_RETRAIN_EPOCHS.value)
            label = method if sparsity is None else f"{method}@{sparsity}"
            yield label, RecipeConfig(method, training=training, dp=dp, minmax=MinMaxConfig(),
                                      pruning=pruning)


def _accuracy(model, x, y) -> float:
    return float(np.mean(model.predict(x, batch_size=1024, verbose=0).argmax(axis=1) == y))


def _train_target(recipe: Recipe, x, y, folder: str, seed: int):
    """Trains (or reloads) the target; returns the model and its training facts."""
    model_path = os.path.join(folder, "target.keras")
    facts_path = os.path.join(folder, "target.json")
    if os.path.exists(model_path) and os.path.exists(facts_path):
        with open(facts_path) as f:
            return keras.models.load_model(model_path, compile=False), json.load(f)
    result = recipe.fit(x, y, seed=seed)
    facts = {"sparsity": result.sparsity, "compression_rate": result.compression_rate,
             "epsilon": result.epsilon, "training_seconds": result.seconds}
    result.model.save(model_path)
    with open(facts_path, "w") as f:
        json.dump(facts, f)
    return result.model, facts


def run() -> List[Dict]:
    dataset, split, training = _setting()
    cache_dir = _CACHE_DIR.value or tempfile.mkdtemp(prefix="bench_defenses_")
    x_members, y_members = split.take("members", dataset.x_train, dataset.y_train)
    reference = split.take("reference", dataset.x_train, dataset.y_train)
    audit_config = AuditConfig(num_reference_models=_NUM_REFERENCE_MODELS.value,
                               num_shadow_models=_NUM_SHADOW_MODELS.value, seed=_SEED.value)
    print(f"{dataset.name}, {training.model}: split {split}", flush=True)
    rows = []
    for label, config in _configs(training):
        folder = os.path.join(cache_dir, label.replace("@", "_"))
        os.makedirs(folder, exist_ok=True)
        recipe = Recipe(config, dataset.input_shape, dataset.num_classes,
                        reference_data=reference if config.uses("minmax") else None)
        # The target's seed differs from every reference model's seed.
        target, facts = _train_target(recipe, x_members, y_members, folder,
                                      seed=_SEED.value + 10_000)
        audit_start = time.time()
        train_accuracy = _accuracy(target, x_members, y_members)
        test_accuracy = _accuracy(target, dataset.x_test, dataset.y_test)
        print(f"[{label}] train {train_accuracy:.4f} test {test_accuracy:.4f} sparsity "
              f"{facts['sparsity']:.4f} epsilon {facts['epsilon']}", flush=True)
        report = run_audit(target, dataset.x_train, dataset.y_train, split, recipe,
                           audit_config, cache_dir=os.path.join(folder, "audit"),
                           target_facts={"method": label, "test_accuracy": test_accuracy},
                           verbose=1)
        strongest = report.strongest
        row = {"method": label, "train_accuracy": train_accuracy,
               "test_accuracy": test_accuracy, "sparsity": facts["sparsity"],
               "compression_rate": facts["compression_rate"], "epsilon": facts["epsilon"],
               "strongest_attack": strongest.name,
               "balanced_accuracy": strongest.metrics.balanced_accuracy,
               "auc": strongest.metrics.auc,
               "tpr_at_0.1pct_fpr": strongest.metrics.tpr_at_fpr["0.1pct"],
               # Target training (as first measured, also when reloaded) + audit.
               "seconds": facts["training_seconds"] + time.time() - audit_start,
               "max_balanced_accuracy": max(a.metrics.balanced_accuracy
                                            for a in report.attacks)}
        for attack in report.attacks:
            for key, value in attack.summary_row().items():
                if key not in ("attack", "seconds", "threshold_accuracy"):
                    row[f"{attack.name}/{key}"] = value
        rows.append(row)
        print(markdown_table(rows[-1:]), flush=True)
    return rows


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def markdown_table(rows: List[Dict]) -> str:
    lines = ["| method | train acc | test acc | sparsity | compression | epsilon | strongest "
             "attack | balanced acc | AUC | TPR@0.1%FPR | best balanced acc (any attack) | "
             "seconds |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        epsilon = "-" if r["epsilon"] is None else f"{r['epsilon']:.3g}"
        lines.append(
            f"| {r['method']} | {_pct(r['train_accuracy'])} | {_pct(r['test_accuracy'])} | "
            f"{r['sparsity']:.3f} | {r['compression_rate']:.1f}x | {epsilon} | "
            f"{r['strongest_attack']} | {_pct(r['balanced_accuracy'])} | {r['auc']:.4f} | "
            f"{_pct(r['tpr_at_0.1pct_fpr'])} | {_pct(r['max_balanced_accuracy'])} | "
            f"{r['seconds']:.0f} |")
    return "\n".join(lines)


def claims(rows: List[Dict]) -> List[str]:
    """The seed paper's claims and the project's targets, checked on these rows.

    Attack accuracy is the best balanced accuracy of any attack (the papers'
    metric); low-FPR leakage is the strongest attack's TPR at 0.1% FPR.
    """
    by_label = {r["method"]: r for r in rows}
    by_method: Dict[str, List[Dict]] = {}
    for r in rows:
        by_method.setdefault(r["method"].split("@")[0], []).append(r)
    lines = []
    if all(m in by_method for m in ("baseline", "minmax", "mcmia_pruning",
                                    "mcmia_pruning_minmax")):
        acc = {m: min(r["max_balanced_accuracy"] for r in rs) for m, rs in by_method.items()}
        lowest = min(acc, key=acc.get)
        verdict = "holds" if lowest == "mcmia_pruning_minmax" else "NOT observed"
        lines += [
            f"lowest attack accuracy: {lowest} ({_pct(acc[lowest])}); seed claim "
            f"'mcmia_pruning_minmax is lowest': {verdict}",
            f"mcmia_pruning attack accuracy {_pct(acc['mcmia_pruning'])} vs baseline "
            f"{_pct(acc['baseline'])}: {100 * (acc['baseline'] - acc['mcmia_pruning']):+.2f} "
            "points below (paper: up to 13.6)",
            f"mcmia_pruning attack accuracy vs minmax {_pct(acc['minmax'])}: "
            f"{100 * (acc['minmax'] - acc['mcmia_pruning']):+.2f} points below (paper: up to 10)"]
    baseline = by_label.get("baseline")
    for label, row in by_label.items():
        if not label.startswith("mcmia_pruning_minmax@") or baseline is None:
            continue
        ratio = row["tpr_at_0.1pct_fpr"] / max(baseline["tpr_at_0.1pct_fpr"], 1e-12)
        accuracy_change = 100 * (row["test_accuracy"] - baseline["test_accuracy"])
        lines.append(
            f"{label}: TPR@0.1%FPR {_pct(row['tpr_at_0.1pct_fpr'])} = {ratio:.2f} x baseline "
            f"(target <= 0.2), test accuracy {accuracy_change:+.2f} points vs baseline "
            f"(target >= -1), compression {row['compression_rate']:.1f}x (target >= 20x)")
    for label, row in by_label.items():
        if not label.startswith("mcmia_pruning"):
            continue
        peer = by_label.get("tfmot_magnitude@" + label.split("@")[1])
        if peer is None:
            continue
        dominates = (row["test_accuracy"] > peer["test_accuracy"]
                     and row["tpr_at_0.1pct_fpr"] < peer["tpr_at_0.1pct_fpr"])
        verdict = "dominates" if dominates else "does NOT dominate"
        lines.append(
            f"{label} vs tfmot_magnitude: test accuracy {_pct(row['test_accuracy'])} vs "
            f"{_pct(peer['test_accuracy'])}, TPR@0.1%FPR {_pct(row['tpr_at_0.1pct_fpr'])} vs "
            f"{_pct(peer['tpr_at_0.1pct_fpr'])}: {verdict}")
    return lines or ["(no claim can be checked on these rows)"]


def main(argv):
    del argv
    rows = run()
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value, notes=claims(rows))


if __name__ == "__main__":
    app.run(main)
