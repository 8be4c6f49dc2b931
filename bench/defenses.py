r"""Defence benchmark: every recipe trained, then audited with the full attack suite.

The benchmark is a study (`mcmia_tf.study.run_study`) read as one flat row per
(method, sparsity), so the study and this table come from the same models:
`python -m pipelines.study --preset=paper --output_dir=DIR` followed by
`python -m bench.defenses --output_dir=DIR` trains nothing twice.

Default setting: the study's `paper` preset, Fashion-MNIST, LeNet-5 (20-50-500),
10,000 members, as many non-members, 5,000 further images as the defender's
reference set D' (min-max game only), the rest as the attacker's shadow pool.
Every method trains its target with `mcmia_tf.privacy.Recipe`; the audit attacks
it with the metric attacks (global and class-conditional thresholds), the Shokri
shadow-model attack and LiRA (online and offline, K = 16 reference models), all
of whose shadow / reference models are retrained with the SAME recipe (same
pruning, same min-max game against the same D', same DP noise). Pruning methods
run once per entry of `--sparsities`: the preset's sparsity in `--output_dir`,
any other in `--output_dir/sparsity_<s>` (same seed, hence the same split).

One row per (method, sparsity): `method`, `train_accuracy`, `test_accuracy`,
`sparsity`, `compression_rate`, `epsilon`, `strongest_attack` (highest TPR at
0.1% FPR, ties by AUC), its `balanced_accuracy`, `auc`, `tpr_at_0.1pct_fpr`,
`seconds` (the study's train + audit stages of the method: the shadow / reference
models count when the audit trained them, not when sharded workers did),
`max_balanced_accuracy` (any attack; the papers' "attack accuracy"), then
`<attack>/<metric>` keys for every attack.

    python -m bench.defenses --quick --output_dir=runs/defenses_quick   # digits, minutes
    python -m bench.defenses --output_dir=runs/paper                    # hours on 2 cores
"""

import dataclasses
import os
import tempfile
from typing import Dict, List, Optional, Sequence

from absl import app
from absl import flags

from bench import output
from mcmia_tf.privacy import METHODS
from mcmia_tf.privacy import PruningConfig
from mcmia_tf.privacy import RecipeConfig
from mcmia_tf.privacy import TrainingConfig
from mcmia_tf.study import preset
from mcmia_tf.study import run_study
from mcmia_tf.study import StudyConfig
from mcmia_tf.study.report import lowest_claim_verdict

_QUICK = flags.DEFINE_bool("quick", False, "digits, a small MLP, 300 members.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the JSON rows.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None,
                                  "Study folder, resumed if it exists (default: temp).")
_METHODS = flags.DEFINE_list("methods", None, "Recipes to benchmark (default: the preset's, "
                              "in its order, so the benchmark resumes a study of that preset).")
_SPARSITIES = flags.DEFINE_list("sparsities", None,
                                "Targets of the pruning methods (default: the preset's).")
_NUM_REFERENCE_MODELS = flags.DEFINE_integer("num_reference_models", None,
                                             "LiRA models K (16).")
_NUM_SHADOW_MODELS = flags.DEFINE_integer("num_shadow_models", None, "Shadow models N.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split, models and attacks.")

# digits, an MLP that overfits 300 members within seconds; K = 16 and the same
# 10 dense / 10 penalty / 10 masked-retraining epochs as the full benchmark.
_QUICK_SETTING = dict(
    dataset="digits", num_members=300, num_reference=300, num_shadow_pool=600,
    num_reference_models=16, num_shadow_models=2,
    training=TrainingConfig(model="mlp", epochs=30, batch_size=32, learning_rate=5e-3,
                            model_kwargs={"hidden_units": [128]}),
    pruning=PruningConfig(target_sparsity=0.95, regularization_epochs=10, retrain_epochs=10),
)
# The methods of the seed paper's table, whose claims `claims` checks.
_SEED_TABLE_METHODS = ("baseline", "minmax", "mcmia_pruning", "mcmia_pruning_minmax")
_PRUNING_METHODS = tuple(m for m in METHODS if RecipeConfig(m).uses("pruning"))


def _base_config() -> StudyConfig:
    overrides = {k: v for k, v in (("num_reference_models", _NUM_REFERENCE_MODELS.value),
                                   ("num_shadow_models", _NUM_SHADOW_MODELS.value))
                 if v is not None}
    overrides["seeds"] = (_SEED.value,)
    if _QUICK.value:
        return preset("quick", **{**_QUICK_SETTING, **overrides})
    return preset("paper", **overrides)


def study_configs(base: StudyConfig, methods: Sequence[str],
                  sparsities: Optional[Sequence[float]], output_dir: str):
    """(folder, StudyConfig) of every study the benchmark needs.

    The preset's sparsity runs every method in `output_dir`; each other sparsity
    runs the pruning methods only, in its own folder (same seed and split).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise app.UsageError(f"Invalid value for flag `--methods`. Expected names among "
                             f"{METHODS}. Received: {list(methods)}")
    sparsities = [base.sparsity] if not sparsities else [float(s) for s in sparsities]
    studies = []
    for sparsity in sparsities:
        pruning = dataclasses.replace(base.pruning, target_sparsity=sparsity)
        if sparsity == base.sparsity:
            folder, chosen = output_dir, list(methods)
        else:
            folder = os.path.join(output_dir, f"sparsity_{sparsity:g}")
            chosen = [m for m in methods if m in _PRUNING_METHODS]
        if chosen:
            studies.append((folder, dataclasses.replace(base, methods=tuple(chosen),
                                                        pruning=pruning)))
    return studies


def rows_from_results(results: Dict) -> List[Dict]:
    """The benchmark's flat rows from a study's `results.json` content."""
    rows = []
    for entry in results["methods"]:
        method = entry["name"]
        label = (f"{method}@{results['target_sparsity']:g}" if method in _PRUNING_METHODS
                 else method)
        attacks = entry["attacks"]
        strongest = attacks[entry["strongest_attack"]]
        row = {"method": label, "train_accuracy": entry["train_accuracy"],
               "test_accuracy": entry["test_accuracy"], "sparsity": entry["sparsity"],
               "compression_rate": entry["compression_rate"], "epsilon": entry["epsilon"],
               "strongest_attack": entry["strongest_attack"],
               "balanced_accuracy": strongest["balanced_accuracy"], "auc": strongest["auc"],
               "tpr_at_0.1pct_fpr": strongest["tpr_at_fpr"]["0.001"],
               # The train and audit stages (reference models included unless sharded).
               "seconds": entry["wall_time"]["train"] + entry["wall_time"]["audit"],
               "max_balanced_accuracy": max(a["balanced_accuracy"] for a in attacks.values())}
        for name, metrics in attacks.items():
            for key in ("balanced_accuracy", "auc", "advantage"):
                row[f"{name}/{key}"] = metrics[key]
            for fpr, tpr in metrics["tpr_at_fpr"].items():
                row[f"{name}/tpr_at_fpr_{fpr}"] = tpr
        rows.append(row)
    return rows


def run() -> List[Dict]:
    output_dir = _OUTPUT_DIR.value or tempfile.mkdtemp(prefix="bench_defenses_")
    base = _base_config()
    rows = []
    for folder, config in study_configs(base, _METHODS.value or list(base.methods),
                                        _SPARSITIES.value, output_dir):
        rows += rows_from_results(run_study(config, folder))
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
    if all(m in by_method for m in _SEED_TABLE_METHODS):
        # The seed's claims compare its own table's four methods (no DP, no tfmot).
        acc = {m: min(r["max_balanced_accuracy"] for r in by_method[m])
               for m in _SEED_TABLE_METHODS}
        verdict, runner_up = lowest_claim_verdict(acc)
        lines += [
            f"seed claim 'mcmia_pruning_minmax has the lowest attack accuracy of the seed's four "
            f"methods': {verdict} ({_pct(acc['mcmia_pruning_minmax'])}; lowest of the others: "
            f"{runner_up}, {_pct(acc[runner_up])})",
            f"mcmia_pruning attack accuracy {_pct(acc['mcmia_pruning'])} vs baseline "
            f"{_pct(acc['baseline'])}: {100 * (acc['baseline'] - acc['mcmia_pruning']):+.2f} "
            "points below (paper: up to 13.6)",
            f"mcmia_pruning attack accuracy vs minmax {_pct(acc['minmax'])}: "
            f"{100 * (acc['minmax'] - acc['mcmia_pruning']):+.2f} points below (paper: up to 10)"]
    baseline, dp = by_label.get("baseline"), by_label.get("dp")
    for label, row in by_label.items():
        if not label.startswith("mcmia_pruning_minmax@"):
            continue
        if baseline is not None:
            ratio = row["tpr_at_0.1pct_fpr"] / max(baseline["tpr_at_0.1pct_fpr"], 1e-12)
            accuracy_change = 100 * (row["test_accuracy"] - baseline["test_accuracy"])
            lines.append(
                f"{label}: TPR@0.1%FPR {_pct(row['tpr_at_0.1pct_fpr'])} = {ratio:.2f} x "
                f"baseline (target <= 0.2), test accuracy {accuracy_change:+.2f} points vs "
                f"baseline (target >= -1), compression {row['compression_rate']:.1f}x "
                "(target >= 20x)")
        if dp is not None:
            gap = 100 * (row["test_accuracy"] - dp["test_accuracy"])
            matched = "matched" if abs(gap) <= 1 else "NOT matched"
            below = "below" if row["tpr_at_0.1pct_fpr"] < dp["tpr_at_0.1pct_fpr"] else "NOT below"
            lines.append(
                f"{label} vs dp: TPR@0.1%FPR {_pct(row['tpr_at_0.1pct_fpr'])} vs "
                f"{_pct(dp['tpr_at_0.1pct_fpr'])} ({below}); test accuracy {gap:+.2f} points "
                f"(accuracy {matched}: the target compares at equal accuracy, within 1 point)")
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
