r"""Defence benchmark: every recipe trained, then audited with the full attack suite.

The benchmark is a study (`mcmia_tf.study.run_study`) read as one flat row per
(method, sparsity), so the study and this table come from the same models:
`python -m pipelines.study --preset=paper --output_dir=DIR` followed by
`python -m bench.defenses --output_dir=DIR` trains nothing twice.

Default setting: the study's `paper` preset, Fashion-MNIST, LeNet-5 (20-50-500),
10,000 members, as many non-members, 5,000 further images as the defender's
reference set D' (min-max game only), the rest as the attacker's shadow pool.
Every method trains its target with `mcmia_tf.recipes.Recipe`; the audit attacks
it with the metric attacks (global and class-conditional thresholds), the Shokri
shadow-model attack and LiRA (online and offline, K = 16 reference models), all
of whose shadow / reference models are retrained with the SAME recipe (same
pruning, same min-max game against the same D', same DP noise). Pruning methods
run once per entry of `--sparsities`: the preset's sparsity in `--output_dir`,
any other in `--output_dir/sparsity_<s>` (same seed, hence the same split).

One row per (method, sparsity): `method`, `train_accuracy`, `test_accuracy`,
`sparsity`, `compression_rate`, `epsilon`, `strongest_attack` (chosen on a random
half of the candidates by TPR at 0.1% FPR, measured on the other half),
`tpr_at_0.1pct_fpr` and `tpr_at_0.1pct_fpr_interval` (its 95% bootstrap interval,
at `strongest_target_fpr`, coarser than 0.1% only where the candidates cannot
resolve 0.1%), `auc` / `auc_interval`, `noise_floor` (95th percentile of the best
attack's TPR under permuted labels), `seconds` (the study's train + audit stages of
the method: the shadow / reference models count when the audit trained them, not
when sharded workers did), `max_balanced_accuracy` / `max_balanced_accuracy_interval`
(any attack; the papers' "attack accuracy"), the canary audit's strongest TPR when
the study planted canaries, then `<attack>/<metric>` keys for every attack. The
claim checks are `mcmia_tf.study.claims.check_claims`, the same as `report.md`.

    python -m bench.defenses --quick --output_dir=runs/defenses_quick   # digits, minutes
    python -m bench.defenses --output_dir=runs/paper                    # hours on 2 cores
"""

import dataclasses
import os
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags

from bench import output
from mcmia_tf.recipes import METHODS
from mcmia_tf.recipes import PruningConfig
from mcmia_tf.recipes import RecipeConfig
from mcmia_tf.recipes import TrainingConfig
from mcmia_tf.study import preset
from mcmia_tf.study import run_study
from mcmia_tf.study import StudyConfig
from mcmia_tf.audit.report import format_metric
from mcmia_tf.study.claims import attack_accuracy
from mcmia_tf.study.claims import check_claims

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
        attacks, strongest = entry["attacks"], entry["strongest"]
        accuracy, accuracy_interval = attack_accuracy(entry)
        floor = entry.get("noise_floor")
        canary = entry.get("canary")
        row = {"method": label, "train_accuracy": entry["train_accuracy"],
               "test_accuracy": entry["test_accuracy"], "sparsity": entry["sparsity"],
               "compression_rate": entry["compression_rate"], "epsilon": entry["epsilon"],
               "strongest_attack": strongest["attack"],
               "strongest_target_fpr": strongest["target_fpr"],
               "tpr_at_0.1pct_fpr": strongest["tpr"],
               "tpr_at_0.1pct_fpr_interval": strongest["tpr_interval"],
               "auc": strongest["auc"], "auc_interval": strongest["auc_interval"],
               "noise_floor": None if floor is None else floor["floor"],
               "canary_tpr": None if canary is None else canary["strongest"]["tpr"],
               "canary_tpr_interval": (None if canary is None else
                                       canary["strongest"]["tpr_interval"]),
               # The train and audit stages (reference models included unless sharded).
               "seconds": entry["wall_time"]["train"] + entry["wall_time"]["audit"],
               "max_balanced_accuracy": accuracy,
               "max_balanced_accuracy_interval": (None if accuracy_interval is None
                                                  else list(accuracy_interval))}
        for name, metrics in attacks.items():
            for key in ("balanced_accuracy", "auc", "advantage"):
                row[f"{name}/{key}"] = metrics[key]
            for fpr, tpr in metrics["tpr_at_fpr"].items():
                row[f"{name}/tpr_at_fpr_{fpr}"] = tpr
        rows.append(row)
    return rows


def run() -> Tuple[List[Dict], List[str]]:
    """Runs (or reads) every study; returns the rows and the claim checks."""
    output_dir = _OUTPUT_DIR.value or tempfile.mkdtemp(prefix="bench_defenses_")
    base = _base_config()
    rows, notes = [], []
    for folder, config in study_configs(base, _METHODS.value or list(base.methods),
                                        _SPARSITIES.value, output_dir):
        results = run_study(config, folder)
        rows += rows_from_results(results)
        notes += [f"sparsity {results['target_sparsity']:g}:"] + claims(results)
    return rows, notes


def _pct(value: Optional[float], interval=None) -> str:
    return format_metric(value, interval, missing="-")


def markdown_table(rows: List[Dict]) -> str:
    lines = ["| method | train acc | test acc | sparsity | compression | epsilon | strongest "
             "attack (held-out half) | TPR@0.1%FPR [95%] | floor | best balanced acc [95%] | "
             "canary TPR [95%] | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        epsilon = "-" if r["epsilon"] is None else f"{r['epsilon']:.3g}"
        fpr = "" if r["strongest_target_fpr"] == 0.001 else \
            f" (at {100 * r['strongest_target_fpr']:g}% FPR)"
        lines.append(
            f"| {r['method']} | {_pct(r['train_accuracy'])} | {_pct(r['test_accuracy'])} | "
            f"{r['sparsity']:.3f} | {r['compression_rate']:.1f}x | {epsilon} | "
            f"{r['strongest_attack']} | "
            f"{_pct(r['tpr_at_0.1pct_fpr'], r['tpr_at_0.1pct_fpr_interval'])}{fpr} | "
            f"{_pct(r['noise_floor'])} | "
            f"{_pct(r['max_balanced_accuracy'], r['max_balanced_accuracy_interval'])} | "
            f"{_pct(r['canary_tpr'], r['canary_tpr_interval'])} | {r['seconds']:.0f} |")
    return "\n".join(lines)


def claims(results: Dict) -> List[str]:
    """The seed paper's claims and the project's targets on one study's results.

    The same checks as the study's `report.md` (`mcmia_tf.study.claims`), with
    intervals: overlapping 95% intervals are "not distinguishable".
    """
    lines = check_claims({entry["name"]: entry for entry in results["methods"]})
    return lines or ["(no claim can be checked on these methods)"]


def main(argv):
    del argv
    rows, notes = run()
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value, notes=notes)


if __name__ == "__main__":
    app.run(main)
