r"""The benchmark pages of the documentation, generated from the benchmarks' JSON.

Every measured table in `docs/benchmarks/` comes from one file of `bench/results/`:
the rows a benchmark (`bench.*`) or a study (`pipelines.study`) wrote, under a
`meta` entry that says how they were measured (`command`, `date`, `machine`,
`source`, and the notes the benchmark printed). One page per file; the study pages
are the study's own `report.md` (`mcmia_tf.study.report.render_markdown`).

    python -m bench.pages            # writes docs/benchmarks/*.md
    python -m bench.pages --check    # exit status 1 if a page differs from its JSON

To add a measurement: copy the benchmark's `--output_json` (or a study's
`results.json`) into `bench/results/`, add its `meta`, add a `Page` below, run
`python -m bench.pages`. No flags of the benchmarks are defined here, so this runs
next to any of them; only the study pages import `mcmia_tf` (and TensorFlow).
"""

import argparse
import dataclasses
import json
import os
import sys
from typing import Callable, Dict, List, Mapping, Optional, Sequence

from bench import architectures_lib
from bench import seed_stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "bench", "results")
PAGES_DIR = os.path.join(ROOT, "docs", "benchmarks")

__all__ = ["PAGES", "Page", "render", "render_all", "write_all"]


def _pct(value: Optional[float], interval: Optional[Sequence[float]] = None,
         digits: int = 2) -> str:
    if value is None:
        return "-"
    text = f"{100 * value:.{digits}f}%"
    if interval:
        text += f" [{100 * interval[0]:.{digits}f}, {100 * interval[1]:.{digits}f}]"
    return text


def _num(value: float, interval: Optional[Sequence[float]] = None, digits: int = 3) -> str:
    text = f"{value:.{digits}f}"
    if interval:
        text += f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return text


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# --- studies: the study's own report ------------------------------------------------


def _study_report(data: Mapping) -> str:
    """`report.md` of the study, without its title and its plots (not kept here)."""
    from mcmia_tf.study.report import render_markdown  # pylint: disable=g-import-not-at-top
    lines = render_markdown(data["results"]).splitlines()
    body = lines[1:]  # "# Study: ..." is the page's title
    if "## Plots" in body:
        body = body[:body.index("## Plots")]
    # The report's sections go under the page's "Results".
    body = [f"#{line}" if line.startswith("## ") else line for line in body]
    return "\n".join(body).strip()


# --- bench.pruning -----------------------------------------------------------------

_PRUNING_COLUMNS = (("reweighted", "reweighted (bounded, ramped: default)"),
                    ("reweighted:drop", "drop / lambda"),
                    ("reweighted_constant", "bounded, constant rate"),
                    ("reweighted_constant:drop", "drop / lambda"),
                    ("reweighted_progressive", "progressive"),
                    ("reweighted_unbounded", "unbounded"),
                    ("reweighted_unbounded:drop", "drop"),
                    ("admm", "ADMM"),
                    ("static_l1", "static L1"),
                    ("tfmot", "tfmot"),
                    ("tfmot_oneshot", "tfmot one-shot"))
# Runs before the ramp (`pruning_fashion_constant.json`...) called the constant-rate
# bounded form "reweighted"; their `meta` says so with `"reweighted_is": "constant"`.
_CALIBRATED = ("reweighted", "reweighted_constant")


def _pruning_pivot(data: Mapping) -> str:
    """Accuracy by target sparsity (rows) and method (columns); best in bold.

    Only the methods the run has get a column. A run over several seeds gets
    `_pruning_seeds_pivot` instead.
    """
    rows = data["rows"]
    if len({r.get("seed", 0) for r in rows}) > 1:
        return _pruning_seeds_pivot(data)
    renamed = data["meta"].get("reweighted_is") == "constant"
    dense = next(r for r in rows if r["method"] == "dense")
    by_rate: Dict[float, Dict[str, Mapping]] = {}
    for r in rows:
        if r["method"] != "dense" and r["structure"] == "unstructured":
            method = "reweighted_constant" if renamed and r["method"] == "reweighted" else \
                r["method"]
            by_rate.setdefault(r["target_sparsity"], {})[method] = r
    present = {m for methods in by_rate.values() for m in methods}
    columns = [(key, name) for key, name in _PRUNING_COLUMNS
               if key.partition(":")[0] in present]
    table = []
    for rate in sorted(by_rate):
        methods = by_rate[rate]
        best = max(r["test_accuracy"] for r in methods.values())
        compression = next(iter(methods.values()))["compression_rate"]
        cells = [f"{rate:g} ({compression:g}x)"]
        for key, _ in columns:
            method, _, what = key.partition(":")
            r = methods.get(method)
            if r is None:
                cells.append("-")
            elif what == "drop":
                drop = _pct(r["prune_accuracy_drop"])
                lam = r["final_lambda"]
                cells.append(drop if method not in _CALIBRATED or lam is None
                             else f"{drop} / {lam:.3f}")
            else:
                text = _pct(r["test_accuracy"])
                cells.append(f"**{text}**" if r["test_accuracy"] == best else text)
        table.append(cells)
    header = ["sparsity"] + [name for _, name in columns]
    evaluated_on = data["meta"].get("evaluated_on", "test")
    return (f"Dense model: {_pct(dense['test_accuracy'])} {evaluated_on} accuracy. "
            f"{evaluated_on.capitalize()} accuracy of every method after its budget (best of a "
            "row in bold); `drop`: training accuracy lost by the hard prune itself (on the "
            "first 2,000 training images, `callbacks(prune_data=...)`); `lambda`: where the "
            "bounded form's calibration stopped.\n\n" + _table(header, table))


def _pruning_seeds_pivot(data: Mapping) -> str:
    """Mean accuracy [95%] by target sparsity and method, and each method minus tfmot.

    Unstructured rows only; differences are paired by seed (`bench.seed_stats`).
    """
    summaries = [s for s in seed_stats.summarize(data["rows"])
                 if s.structure in ("unstructured", "none")]
    dense = next(s for s in summaries if s.method == "dense")
    by_rate: Dict[float, Dict[str, seed_stats.SeedSummary]] = {}
    for s in summaries:
        if s.method != "dense":
            by_rate.setdefault(s.target_sparsity, {})[s.method] = s
    present = {m for methods in by_rate.values() for m in methods}
    names = dict(_PRUNING_COLUMNS)
    methods = [key for key, _ in _PRUNING_COLUMNS if key in present]
    compared = [m for m in methods if m != "tfmot"] if "tfmot" in present else []
    table = []
    for rate in sorted(by_rate):
        cells = by_rate[rate]
        row = [f"{rate:g}"]
        row += [_pct(cells[m].mean, cells[m].interval) if m in cells else "-" for m in methods]
        for m in compared:
            s = cells.get(m)
            if s is None or s.difference is None:
                row.append("-")
                continue
            text = seed_stats.format_percent(s.difference, s.difference_interval, signed=True)
            row.append(f"{text} ({s.wins}/{len(s.seeds)})")
        table.append(row)
    header = (["sparsity"] + [names[m] for m in methods]
              + [f"{names[m]} - tfmot (seeds >= tfmot)" for m in compared])
    evaluated_on = data["meta"].get("evaluated_on", "test")
    return (f"{len(dense.seeds)} seeds ({dense.seeds[0]}-{dense.seeds[-1]}); each seed draws "
            "its own data, initialisation and dense checkpoint, and every method of that seed "
            "starts from it. Dense model: "
            f"{_pct(dense.mean, dense.interval)} {evaluated_on} accuracy. Mean {evaluated_on} "
            "accuracy over the seeds [95% t interval of the mean]; `- tfmot`: the paired "
            "difference in points [95% t interval] (an interval excluding 0 separates the "
            "methods) and on how many seeds the method was at least tfmot's accuracy.\n\n"
            + _table(header, table))


def _lambda_table(data: Mapping) -> str:
    fixed, calibrated = [], []
    for rows in data["runs"].values():
        for r in rows:
            if r["method"] == "reweighted_fixed":
                fixed.append(r)
            elif r["method"] == "reweighted":
                calibrated.append(r)
    table = [[f"{r['final_lambda']:.0e}", _pct(r["test_accuracy"]),
              _pct(r["prune_accuracy_drop"])]
             for r in sorted(fixed, key=lambda r: r["final_lambda"])]
    table += [[f"calibrated (stopped at {r['final_lambda']:.1e})", _pct(r["test_accuracy"]),
               _pct(r["prune_accuracy_drop"])] for r in calibrated]
    dense = next(r for r in next(iter(data["runs"].values())) if r["method"] == "dense")
    return (f"Dense model: {_pct(dense['test_accuracy'])} on the held-out images.\n\n"
            + _table(["lambda", "held-out accuracy", "drop at the hard prune"], table))


# --- bench.dp, bench.dp_tune --------------------------------------------------------

_DP_LABELS = {
    "plain": "plain",
    "dp_per_example": "dp_per_example (`DPSGDModel`)",
    "dp_microbatches": "dp_microbatches (tensorflow-privacy)",
    "tf_privacy_per_example": "tf_privacy_per_example (Jacobians, steps extrapolated)",
}


def _seconds(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.1f}"


def _ratio(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _dp_table(data: Mapping) -> str:
    rows = data["rows"]
    by = {r["method"]: r for r in rows}
    plain = by["plain"]["cpu_seconds_per_epoch"]
    epochs = rows[0]["epochs"]
    table = []
    for r in rows:
        clipping = {"per-example (Jacobians)": "per-example"}.get(r["clipping"], r["clipping"])
        table.append([
            _DP_LABELS.get(r["method"], r["method"]), clipping or "-",
            "Poisson" if r["sampling"] == "poisson" else r["sampling"],
            _seconds(r["cpu_seconds_per_epoch"]), _ratio(r["cpu_seconds_per_epoch"] / plain),
            f"{r['seconds_per_epoch']:.1f}", _pct(r["test_accuracy"]),
            "-" if r["epsilon"] is None else f"{r['epsilon']:.2f}"])
    header = ["method", "clipping", "batches", "CPU s / epoch", "x plain (CPU)",
              "wall s / epoch", f"test acc ({epochs} epochs)", f"epsilon ({epochs} epochs)"]
    per_example = by["dp_per_example"]["cpu_seconds_per_epoch"]
    jacobians = by["tf_privacy_per_example"]["cpu_seconds_per_epoch"]
    checks = (f"\n\nIn CPU time: per-example clipping costs {per_example / plain:.2f}x a plain "
              f"epoch (target <= 3x) and is {jacobians / per_example:.1f}x faster than "
              "tensorflow-privacy's per-example path (target >= 30x).")
    return _table(header, table) + checks


def _dp_tune_table(data: Mapping) -> str:
    rows = data["rows"]
    rates = sorted({r["learning_rate"] for r in rows})
    best = max(r["validation_accuracy"] for r in rows)
    table = []
    for batch in sorted({r["batch_size"] for r in rows}):
        runs = {r["learning_rate"]: r for r in rows if r["batch_size"] == batch}
        cells = [str(batch), f"{next(iter(runs.values()))['sigma']:.2f}"]
        for rate in rates:
            r = runs.get(rate)
            text = "-" if r is None else _pct(r["validation_accuracy"])
            cells.append(f"**{text}**" if r is not None and r["validation_accuracy"] == best
                         else text)
        table.append(cells)
    header = ["batch", "sigma"] + [f"lr {rate:g}" for rate in rates]
    first = rows[0]
    return (f"Held-out accuracy after {first['epochs']} epochs, trained on "
            f"{first['num_train']:,} examples at epsilon {first['epsilon']:.2f} "
            f"(delta 1e-5); best in bold.\n\n" + _table(header, table))


def _dp_tune_rows(data: Mapping) -> str:
    """Every grid point as a row (grids too small to pivot)."""
    rows = data["rows"]
    best = max(r["validation_accuracy"] for r in rows)
    table = []
    for r in rows:
        text = _pct(r["validation_accuracy"])
        table.append([r["optimizer"], f"{r['learning_rate']:g}", str(r["batch_size"]),
                      f"{r['l2_norm_clip']:g}", str(r["epochs"]), r["activation"],
                      f"{r['sigma']:.3f}", f"{r['epsilon']:.1f}",
                      f"**{text}**" if r["validation_accuracy"] == best else text])
    header = ["optimizer", "lr", "batch", "C", "epochs", "activation", "sigma", "epsilon",
              "held-out accuracy"]
    return (f"Trained on {rows[0]['num_train']:,} members, accuracy on the held-out rest "
            "(delta 1e-5); best in bold.\n\n" + _table(header, table))


# --- bench.architectures ------------------------------------------------------------

def _architectures_table(data: Mapping) -> str:
    """The benchmark's own table and its targets (`bench.architectures_lib`)."""
    rows = data["rows"]
    return (architectures_lib.markdown_table(rows) + "\n\n"
            + "\n".join(f"- {line}" for line in architectures_lib.targets(rows)))


# --- bench.audit --------------------------------------------------------------------


def _audit_tables(data: Mapping) -> str:
    # bench.audit writes the attacks' rows (timed: `seconds`), then the sweep's.
    rows = [r for r in data["rows"] if "seconds" in r]
    sweep = [r for r in data["rows"] if "seconds" not in r]
    strongest, floor = data["strongest"], data["noise_floor"]
    table = []
    for r in rows:
        bold = r["attack"] == strongest["name"]
        name = f"**{r['attack']}**" if bold else r["attack"]
        auc = _num(r["auc"], r["auc_interval"], 4)
        tpr = _pct(r["tpr_at_0.1pct_fpr"], r["tpr_at_0.1pct_fpr_interval"])
        if bold:
            auc = auc.replace(f"{r['auc']:.4f}", f"**{r['auc']:.4f}**", 1)
            tpr = tpr.replace(_pct(r["tpr_at_0.1pct_fpr"]),
                              f"**{_pct(r['tpr_at_0.1pct_fpr'])}**", 1)
        table.append([name, auc, _pct(r["balanced_accuracy"], r["balanced_accuracy_interval"]),
                      _pct(r["tpr_at_1pct_fpr"], r["tpr_at_1pct_fpr_interval"]), tpr])
    metrics = strongest["metrics"]
    intervals = metrics["confidence_intervals"]
    target = data["target"]
    text = [
        f"Target: train accuracy {_pct(target['train_accuracy'])}, test accuracy "
        f"{_pct(target['test_accuracy'])}. Brackets are 95% bootstrap intervals over "
        "candidates; the attack the audit selects is in bold.",
        "",
        _table(["attack", "AUC [95%]", "balanced acc. [95%]", "TPR@1%FPR [95%]",
                "TPR@0.1%FPR [95%]"], table),
        "",
        f"Strongest attack, chosen on a random half of the candidates and measured on the "
        f"other half: {strongest['name']}, TPR@0.1%FPR "
        f"{_pct(metrics['tpr_at_fpr']['0.1pct'], intervals['tpr_at_0.1pct_fpr'])}, AUC "
        f"{_num(metrics['auc'], intervals['auc'])}; the noise floor of the best of these "
        f"{floor['num_attacks']} attacks under {floor['num_permutations']} permutations of "
        f"the membership labels is {_pct(floor['floor'])}.",
        "",
        "## Fewer reference models",
        "",
        "The same reference models, the first k of them (`--reference_counts`):",
        "",
    ]
    counts = sorted({r["num_reference_models"] for r in sweep})
    lines = []
    for attack, label, metric in (
            ("lira_online", "LiRA online, AUC", "auc"),
            ("lira_online", "LiRA online, TPR@0.1%", "tpr"),
            ("lira_offline", "LiRA offline, TPR@0.1%", "tpr"),
            ("rmia_online", "RMIA online, AUC", "auc"),
            ("rmia_online", "RMIA online, TPR@0.1%", "tpr"),
            ("rmia_offline", "RMIA offline, TPR@0.1%", "tpr")):
        cells = [label]
        for k in counts:
            r = next(r for r in sweep if r["attack"] == attack and r["num_reference_models"] == k)
            if "not_computable" in r:
                cells.append("n/a")
            elif metric == "auc":
                cells.append(f"{r['auc']:.4f}")
            else:
                cells.append(_pct(r["tpr_at_0.1pct_fpr"], r["tpr_at_0.1pct_fpr_interval"]))
        lines.append(cells)
    text.append(_table(["attack"] + [f"k = {k}" for k in counts], lines))
    return "\n".join(text)


# --- pages --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Page:
    """One generated page: `docs/benchmarks/<output>` from `bench/results/<source>`."""
    source: str
    output: str
    title: str
    setting: str
    body: Callable[[Mapping], str]
    reading: str = ""


_QUICK_SETTING = """\
digits, LeNet-5 20-50-500 ('same' padding for 8x8 inputs), 500 members / 500 non-members /
200 D' / 300 shadow pool, 24 epochs (pruning methods: 8 dense, 8 regularization, 8 masked
retraining; bounded reweighted pruning with its calibrated lambda), batch 32, target sparsity
0.95, DP-SGD with per-example clipping on Poisson batches (sigma 1.1, C 1); K = 4 reference
models (LiRA and RMIA) and 2 shadow models per method, trained with that method's recipe; 200
bootstrap replicates and label permutations; seed 0. With 250 non-members in each half, the
strongest attack is selected and reported at 1% FPR (TPR@0.1%FPR is the TPR at zero false
positives here): small-sample numbers for checking the pipeline, not the headline benchmark."""

_QUICK_READING = """\
At 500 members nothing but the baseline's leakage is above its noise floor, and no defence is
distinguishable from another in attack accuracy: the intervals say what such a small study can
and cannot rank. DP-SGD (epsilon 7.8) keeps 32% accuracy on 500 examples."""

_HEADLINE_SETTING = """\
The paper preset (Fashion-MNIST LeNet-5 20-50-500, 10,000 members and as many non-members, 5,000
images as the defender's D', a 20,000-image shadow pool; 30 epochs for every method, Adam 1e-3,
batch 128; pruning methods: 10 dense, 10 regularization, 10 masked retraining to 95%, MCMIA-Pruning
with the bounded, self-calibrated reweighted penalty at a constant rate, the recipes' default when
this ran (they now ramp the rate); Min-Max lambda 3, k 1) with 500 mislabeled
canaries (250 IN the target) and, for time on 2 cores, K = 4 reference models (LiRA and RMIA) and 2
shadow models per method, each trained with that method's recipe. DP-SGD: per-example clipping,
Poisson sampling, delta 1e-5, at epsilon 1, 3, 8 and 30 with the recipe tuned at epsilon 3 (tanh
LeNet-5, SGD momentum 0.9, lr 2, C 0.1, batch 1024; [DP-SGD tuning](dp-tuning.md)) and at epsilon
1000 with the recipe tuned there (Adam 1e-3, batch 128, C 1, tanh; [tuning at epsilon
1000](dp-tuning-large-epsilon.md)): the epsilon-3 recipe stays near 82% at any epsilon (81.71% at
30), its clipping and 300 steps, not its noise, capping the accuracy. The "DP-SGD runs" table
below lists each point's recipe and sigma. 95% bootstrap intervals; the strongest attack chosen on
one half of the candidates and measured on the other; the floor from 200 label permutations."""

_HEADLINE_READING = """\
![paper preset with canaries and the DP-SGD frontier](../paper_dp_frontier.png)

- **At matched accuracy there is no DP-SGD model**: the defences (86.90-87.84%) are more accurate
  than the non-private baseline (86.17%) and than DP-SGD's most accurate point (epsilon 1000,
  85.69%). Against that point, the average-case TPR@0.1%FPR (0.64% [0.42, 0.94]) is not
  distinguishable from any defence's (0.48-0.78%): the defences buy 1.2-2.2 points of accuracy (and
  20x compression for the pruned ones) at indistinguishable leakage. On the canaries, DP-SGD's 4.0%
  [0.0, 9.6] (under its floor) is below Min-Max (20.8% [14.4, 32.1]), MCMIA-Pruning (22.4% [15.2,
  41.6]) and tfmot (28.8% [21.6, 41.6]) with separated intervals; only MCMIA-Pruning & Min-Max
  (6.4% [1.6, 16.8]) is not distinguishable from it.
- **Below 82% DP-SGD wins outright**: at epsilon 1, 3, 8 and 30 it is under its noise floor on
  average and on the canaries, which no heuristic defence is.
- **Every defence leaks less than the baseline** on the canaries (6.4-28.8% vs 84.0% [76.8, 96.8]
  at 1% FPR, separated intervals); in the average case all do too except Min-Max, whose interval
  [0.50, 1.80] touches the baseline's [1.76, 3.18].
- **Among the heuristic defences the canaries rank one**: MCMIA-Pruning & Min-Max (6.4% [1.6,
  16.8]) is below tfmot (28.8% [21.6, 41.6]) and Min-Max (20.8% [14.4, 32.1]) with separated
  intervals, at 0.25 point less accuracy than tfmot; MCMIA-Pruning alone (22.4% [15.2, 41.6]) is
  not distinguishable from Min-Max or tfmot. In the average case the four overlap.
- In attack accuracy (the seed paper's metric), MCMIA-Pruning is below the baseline (+4.27 points)
  and Min-Max (+2.35) with separated intervals; MCMIA-Pruning & Min-Max is not distinguishable from
  MCMIA-Pruning and is above every DP-SGD model (the seed's "lowest of all methods" does not hold
  once DP-SGD is tuned).
- The deployed int8 files leak as their Keras models do."""

_PRUNING_PROTOCOL = """\
Every row starts from the same dense checkpoint and gets the same epoch budget; our pruners
regularize until `--prune_at`, hard-prune, then retrain with fixed masks; tfmot ramps
`PolynomialDecay` from 0 to the target over the same epochs (4 mask updates an epoch), then
fine-tunes; every method prunes each layer to the same planned rate (first and last layers capped
at 80%). `reweighted` is the recipes' default: the bounded form with its rate ramped on the same
cubic schedule, 4 keep-set updates an epoch (`ReweightedPruning.ramped`); `bounded, constant rate`
is the earlier default (the final rate's keep-set from the first epoch, one update an epoch). Both
calibrate lambda on the run (no per-dataset value); reweighted_unbounded lambda 1e-5, ADMM rho
3e-3, L1 3e-4 (chosen on held-out Fashion-MNIST images at 0.95)."""

_ONE_SEED = """\
One run each, seed 0: accuracy differences of a few tenths of a point are within run-to-run noise
([Fashion-MNIST over 4 seeds](pruning-fashion-mnist-seeds.md))."""

_FASHION_SETTING = f"""\
Fashion-MNIST LeNet-5, 10,000 training images, 30-epoch budget after 10 dense epochs, hard prune
at epoch 20 (the ramps span epochs 0-19). Unbounded, progressive and static-L1 rows of this budget
are on [the run before the ramp](pruning-fashion-mnist-constant.md).

{_PRUNING_PROTOCOL} {_ONE_SEED}"""

_FASHION_READING = """\
- **The ramp closes the gap to tfmot.** The ramped bounded form is level with tfmot at 0.90-0.98
  (-0.13, -0.10, +0.02 points) and above it at 0.99 (+0.16) and 0.995 (+0.43) in this seed; over
  [4 seeds](pruning-fashion-mnist-seeds.md) it is level at 0.95-0.99 and behind at 0.995 (-0.67).
  The constant-rate form was 1.2 points behind at 0.95 and 1.0 at 0.99, and ADMM is 0.3-1.0
  behind.
- Its hard prune stays lossless (drop <= 0.4 point) with lambda calibrated to 1e-2 at every rate.
- **>= 50x within 1 point of dense: met** (0.98: 87.84% vs 88.20%, -0.36; tfmot -0.38). Largest
  rate within 1 point of dense: 0.98 for the ramped form and for tfmot; 0.95 for ADMM and the
  constant-rate form.
- Why the constant-rate form fell behind: [the control runs](pruning-diagnosis.md)."""

_FASHION_CONSTANT_SETTING = f"""\
The same budget as [the current run](pruning-fashion-mnist.md), measured before the ramp, when
`reweighted` was the bounded form at a constant rate (shown here under that name). The run was
stopped after the rows below to free the machine, so 0.99 has two rows and 0.995 none; in this run
the progressive rows' calibration grew lambda at every reweighting (today's rule grows it only
while the data term holds penalised groups up, and not at a stage change).

{_PRUNING_PROTOCOL} {_ONE_SEED}"""

_FASHION_CONSTANT_READING = """\
- The bounded form's hard prune cost at most 0.10 point of training accuracy at every rate,
  against 23-53 points for the unbounded form.
- tfmot's gradual magnitude pruning was 1.2-1.3 points better than the constant-rate bounded form
  at 0.95 and 0.98, ADMM 0.3-0.45 better; progressive targets added 0.4-0.5 point at 0.98-0.99."""

_DIGITS_SETTING = f"""\
digits LeNet-5, all 1,500 training images, 10-epoch budget, hard prune at epoch 6, 10 seeds (each
its own initialisation, dense checkpoint and shuffling; the test set's 297 images are shared, one
image is 0.34 point). 0.995 cannot be planned on this small LeNet-5 with the 80% cap and is
skipped.

{_PRUNING_PROTOCOL}"""

_DIGITS_READING = """\
- **0.95 (20x): the ramped bounded form beats tfmot**, +0.98 point [+0.30, +1.65], at least
  tfmot's accuracy on 8 of 10 seeds; ADMM and static L1 are ahead of tfmot too.
- **0.90 and 0.98: level** (+0.07 [-0.44, +0.57], +0.40 [-0.26, +1.06]).
- **0.99 (100x): every method breaks down** (dense 98.01%): tfmot 63.60%, the ramped form 59.26%,
  -4.34 [-11.80, +3.11] (not distinguishable, ahead on 4 of 10 seeds); ADMM, static L1 and the
  unbounded form lose 31-43 points to tfmot. With a 6-epoch ramp the hard prune is not lossless
  at 0.98-0.99 (drop 5-66 points of training accuracy): the last groups to leave the keep-set have
  too few steps to reach zero (Adam moves a weight about its learning rate per step whatever lambda
  is).
- Within 1 point of dense (98.01%): 0.90 for the ramped form (-0.70), tfmot (-0.77), static L1
  and the unbounded form; nothing at 0.95."""

_FASHION_SEEDS_SETTING = f"""\
The [30-epoch Fashion-MNIST budget](pruning-fashion-mnist.md) repeated over 4 seeds for the two
methods the target compares, at the rates >= 0.95: each seed draws its own 10,000 training images,
initialisation and dense checkpoint, which every method of that seed starts from.

{_PRUNING_PROTOCOL}"""

_FASHION_SEEDS_READING = """\
- **The ramped bounded form and tfmot are level at 0.95-0.99**: paired differences -0.06 [-0.37,
  +0.24], -0.10 [-0.47, +0.27], -0.08 [-0.41, +0.24] point, every interval holding 0.
- **At 0.995 (200x) tfmot is ahead**, -0.67 [-1.89, +0.55]: not separated at 4 seeds, but below
  tfmot on 3 of 4 (seed 0's +0.43 was the exception); the single-seed page's "ahead at
  100x-200x" does not hold.
- Within 1 point of dense (87.97%): up to 0.98 (50x) for both (-0.54 and -0.44 on average)."""

_DIAGNOSIS_SETTING = f"""\
Why the constant-rate bounded form trailed tfmot: Fashion-MNIST LeNet-5, `bench.pruning`'s default
budget (10 dense epochs, then 10 with the prune / end of the ramps at epoch 6), accuracy on 5,000
held-out training images. `tfmot one-shot` prunes every layer to its rate at the first step, then
fine-tunes (`OneShotAfter(rate, 1)`), the control for tfmot's gradual ramp. The 30-epoch rows of
tfmot one-shot are in the notes below.

{_PRUNING_PROTOCOL} {_ONE_SEED}"""

_DIAGNOSIS_READING = """\
- In this short budget (a 6-epoch ramp) tfmot's gradual ramp is worth nothing at 0.95 (86.78% vs
  one-shot 86.80%) and 0.7 point at 0.98 (84.90% vs 84.18%); the constant-rate bounded form, which
  pushes the final rate's groups out from the first step, sits with or above tfmot (87.08%,
  84.50%).
- The ramped bounded form is the best row at both rates (87.44%, 85.30%): +0.66 and +0.40 point
  over tfmot on held-out images.
- In the 30-epoch budget (20-epoch ramps, test set) the gradual ramp matters: tfmot one-shot
  (87.58% at 0.95, 86.39% at 0.98, notes above) is where the constant-rate bounded form is (87.43%,
  86.49%), 1.1-1.4 points below tfmot's ramp (88.65%, 87.82%) and the ramped bounded form (88.55%,
  87.84%) on the [Fashion-MNIST page](pruning-fashion-mnist.md): the constant-rate form behaved as
  a one-shot prune, and ramping its constraint recovers what tfmot's ramp gains."""

_LAMBDA_SETTING = """\
The bounded reweighted penalty at a constant rate with a fixed lambda instead of the calibration
(`reweighted_fixed`), Fashion-MNIST LeNet-5 at 0.95 unstructured, accuracy on held-out training
images (`--evaluate_on=validation`), `bench.pruning`'s default budget (10 dense epochs, then 10
with the hard prune at epoch 6). Measured before the ramp and the current calibration rule: the
calibrated row is the constant-rate form whose lambda grew x4 at each reweighting while the
outside mass was above 1e-3."""

_LAMBDA_READING = """\
The bounded form is flat within 0.1 point from 1e-4 to 1e-1; 1e-2 is the smallest value whose
hard prune is lossless, and the calibration stopped at the same order of magnitude (so does
today's rule: 1e-2 to 4e-2 on Fashion-MNIST)."""

_HEADLINE_RAMP_SETTING = """\
The [headline study](headline-study.md) with MCMIA-Pruning and MCMIA-Pruning & Min-Max retrained,
re-audited and re-exported with today's recipe, the bounded reweighted penalty with its rate ramped
over the 10 regularization epochs (4 keep-set updates an epoch); the same split, canaries, seed and
settings, and the other eight methods' models and audits reused from the headline run."""

_HEADLINE_RAMP_READING = """\
- MCMIA-Pruning with the ramp: 87.75% test accuracy (constant rate: 87.17%), level with tfmot
  (87.84%); average-case TPR@0.1%FPR 0.76% [0.24, 1.40] (was 0.70% [0.34, 1.00]); on canaries
  33.6% [26.4, 50.4] (was 22.4% [15.2, 41.6]): not distinguishable from either earlier number or
  from tfmot's 28.8% [21.6, 41.6]. The ramp makes it more accurate and, like tfmot, no less leaky.
- MCMIA-Pruning & Min-Max: 87.51% (was 87.59%), 0.74% [0.28, 1.00] (was 0.48% [0.26, 0.98]),
  canaries 8.0% [3.2, 16.0] (was 6.4% [1.6, 16.8]): still below tfmot on canaries with separated
  intervals; against Min-Max (20.8% [14.4, 32.1]) the intervals now touch.
- Against DP-SGD's most accurate point (epsilon 1000, 85.69%, 0.64% [0.42, 0.94]; canaries 4.0%
  [0.0, 9.6]) nothing changes: both are more accurate at average-case leakage not distinguishable
  from it; on canaries MCMIA-Pruning is above it and MCMIA-Pruning & Min-Max not distinguishable."""

_ARCH_STUDY_MOVING_SETTING = """\
The [audited ResNet18 study](architecture-study.md)'s first run: the same split, recipe, K and
seed, but every model kept Keras's moving batch norm averages (momentum 0.99), as the recipes did
before `recompute_batch_norm`. 24 ResNet18 trainings, 95% bootstrap intervals, floors from 200
label permutations, no canaries."""

_ARCH_STUDY_SETTING = """\
The study pipeline on a larger architecture: ResNet18 at width 0.25 (the most accurate of the
zoo in [Architectures](architectures.md)) on Fashion-MNIST at its 28x28 size, 5,000 members and as
many non-members, 2,500 images as the defender's D', a 10,000-image shadow pool; 20 epochs for
every method, Adam 1e-3, batch 128 (the paper preset's recipe with fewer epochs); pruning methods:
10 dense, 6 regularization (tfmot: its ramp), 4 masked retraining to 95%, MCMIA-Pruning with the
ramped bounded reweighted penalty; Min-Max lambda 3, k 1. K = 4 reference models (LiRA, RMIA; RMIA
gets most of its power from 1-4, see [Audit](audit.md)) and 1 shadow model per method, each
trained with that method's recipe: 24 ResNet18 trainings. 95% bootstrap intervals; the strongest
attack chosen on one half of the candidates, measured on the other; floors from 200 label
permutations. No canaries. Every model but DP's ends with its batch norm statistics recomputed on
its training examples (`--recompute_batch_norm`; the [first run](architecture-study-moving-bn.md) kept
Keras's moving averages, which lag the pruning)."""

_ARCH_STUDY_READING = """\
- **Pruned to 20x, ResNet18 keeps its accuracy and stops leaking measurably.** MCMIA-Pruning
  83.10% and MCMIA-Pruning & Min-Max 83.04% test accuracy against the baseline's 83.70%; their
  strongest attacks' TPR@0.1%FPR, 0.20% [0.00, 1.16] and 0.16% [0.04, 0.60], are under their floors
  (0.34-0.36%), where the baseline's RMIA reaches 4.16% [1.28, 7.52] (floor 0.34%); AUC 0.585 and
  0.569 against 0.719, attack accuracy 56.0% and 54.6% against 64.7%, every one separated from the
  baseline. The report's target (<= 1/5 of the baseline's TPR within 1 point at >= 20x) is met by
  the point estimates (0.04x, -0.66 point) but not established by the intervals at 5,000 members.
- **Against tfmot at the same 20x**: MCMIA-Pruning is 2.15 points more accurate (tfmot 80.95%) at
  leakage not distinguishable (tfmot 0.12% [0.04, 0.53], AUC 0.561 [0.547, 0.578] against 0.585
  [0.570, 0.601]): more accuracy, not less leakage. The Min-Max game adds nothing measurable here
  (AUC 0.569, attack accuracy 54.6% [54.0, 55.6] against MCMIA-Pruning's 56.0% [55.4, 57.2]).
- The deployed int8 files leak as their Keras models do and agree with them on 98.3-98.8% of the
  test images; pruned to 20x, their zipped size is 108 KB against the baseline's 682 KB.
- The [first run](architecture-study-moving-bn.md), identical but for the recomputed batch norm
  statistics, had the pruned models at 50-64%: the moving averages' lag, not the pruning."""

_ARCH_STUDY_MOVING_READING = """\
- **These accuracies are the moving averages' lag, not underfitting.** The pruned models score
  50-64% in inference mode (training accuracy 52-66%, also measured in inference mode); the same
  tfmot recipe retrained with its statistics recomputed on the members scores 83.3% (43.3% before,
  on the same weights). With 40 steps an epoch on 5,000 members, the averages still describe the
  weights of the pruning ramp when training ends.
- What the run does show: the baseline leaks clearly (RMIA offline TPR@0.1%FPR 1.40% [0.32, 3.00]
  over a 0.34% floor, AUC 0.679) and its int8 file as its Keras model does; models whose inference
  statistics are wrong leak nothing measurable (AUC 0.51), at 17-30 points of accuracy.
- The study with the statistics recomputed: [Audited study: ResNet18](architecture-study.md)."""

_DP_SETTING = """\
Fashion-MNIST LeNet-5, 10,000 members, batch 128, Adam 1e-3, sigma 1.1, C 1, delta 1e-5, 3 epochs
(the first, tracing, excluded from the timings). `tf_privacy_per_example` is tensorflow-privacy's
optimizer with one example per microbatch (per-example Jacobians), timed on 3 steps and
extrapolated to an epoch. Every row ran single-threaded (`TF_NUM_INTRAOP_THREADS=1
TF_NUM_INTEROP_THREADS=1`) with two other training jobs on the machine, so the CPU-time column is
the one to read."""

_DP_READING = """\
At the same sigma, true per-example clipping gives a 6.6x smaller epsilon than 16 microbatches
(which halve the effective sigma) and a better model."""

_DP_TUNE_SETTING = """\
DP-SGD with SGD momentum 0.9 on a tanh LeNet-5, C 0.1, 30 epochs; 8,000 of the paper preset's
10,000 members train, the other 2,000 are held out (training images, never the test set); sigma
found for epsilon 3 at delta 1e-5 on 8,000 examples. One seed."""

_DP_TUNE_READING = """\
The best point (batch 1024, lr 2, C 0.1, momentum 0.9, tanh, 30 epochs) is the paper preset's
DP-SGD recipe, with `target_epsilon` per method. On all 10,000 members (test set, the
[headline study](headline-study.md)): 73.77% at epsilon 1, 80.90% at epsilon 3, 81.48% at
epsilon 8, 81.71% at epsilon 30 (Tramer & Boneh's 86.0% at epsilon 3 uses 60,000 examples). At
large epsilons it is no longer the best recipe: see [tuning at epsilon
1000](dp-tuning-large-epsilon.md)."""

_DP_TUNE_LARGE_SETTING = """\
The same held-out search as at [epsilon 3](dp-tuning.md), at epsilon 1000, where the noise no
longer dominates: the epsilon-3 recipe (C 0.1, lr 2, batch 1024, 300 steps) caps the accuracy at
about 82% at any epsilon (81.71% on the test set at epsilon 30), so the large-epsilon point of the
frontier gets a recipe of its own: more steps (batch 128) and a larger clip norm."""

_DP_TUNE_LARGE_READING = """\
The 30-epoch point (Adam 1e-3, batch 128, C 1, tanh) is the headline study's epsilon-1000 recipe
(`--dp_override=1000:optimizer=adam,learning_rate=0.001,batch_size=128,l2_norm_clip=1,
activation=tanh`); 60 epochs gain 1 point more but every method of the study trains 30."""

_ARCHITECTURES_SETTING = """\
Fashion-MNIST padded to 32x32, ResNet18, MobileNetV2 and VGG16 of `mcmia_tf.models` at width
0.25, 10,000 training images, the 10,000 test images; per architecture every row starts from the
same dense checkpoint (10 epochs of Adam 1e-3, batch 128) and gets the same 10 more epochs: dense;
reweighted (the recipes' default: bounded, self-calibrated lambda, rate ramped on the cubic
schedule), ADMM (rho 3e-3) and static L1 (3e-4) regularizing 6 epochs, hard prune, 4 of masked
retraining; tfmot ramping to the same per-layer rates over the same 6 epochs. ADMM's rho and L1's
lambda are `bench.pruning`'s LeNet-5 values, not re-tuned here. Every row's batch norm statistics
are recomputed on the 10,000 training images under its final weights before it is measured
(`recompute_batch_norm`; the [first run](architectures-moving-bn.md) kept Keras's moving
averages). Unstructured rows at 10x and 20x; on MobileNetV2 also with its depthwise kernels left
dense ("depthwise dense", `--noprune_depthwise`: tfmot's allocation, which cannot prune them).
Filter rows at 50% of the filters, slimmed by surgery (residual groups pruned together, depthwise
layers following their expansion layer) before FLOPs, sizes and latency are measured. Seven runs
(commands below), one seed; each model's dense row is the one timed in the same job as its filter
rows."""

_ARCHITECTURES_READING = """\
- **Filter pruning at 50% with surgery makes every model 2.3-2.9x faster on LiteRT.** ResNet18:
  3.98x fewer FLOPs, 0.741 -> 0.253 ms per image (2.93x), reweighted 86.29% against dense 86.15%,
  static L1 86.19%, ADMM 85.45%; VGG16: 4.0x fewer FLOPs, 0.449 -> 0.158-0.161 ms (2.8x),
  86.08-86.13% against 86.89% (0.76-0.81 point under); MobileNetV2: 3.4-3.5x fewer FLOPs, 0.119 ->
  0.053 ms (2.27x), 79.67-80.03% against 82.10%, 2.07-2.43 points under. The target (>= 2x FLOPs,
  >= 1.8x faster, within 1 point, on ResNet18 and MobileNetV2) is met on ResNet18 and VGG16, not
  on MobileNetV2.
- **Unstructured at 20x, against tfmot on the same per-layer rates**: VGG16 reweighted 86.89%
  against tfmot's 86.80% (dense 86.89%), ResNet18 86.81% against 86.86% (dense 86.15%): level,
  within what one seed separates. At 10x reweighted 87.54% / 87.02% against 87.43% / 87.69%.
  ADMM and static L1 with LeNet-5's rho / lambda trail by 2-5 points on both. The target
  (reweighted >= tfmot at 20x on two of the three) is met on VGG16 only, by 0.09 point.
- **MobileNetV2 is lost to magnitude pruning by our regularized pruners.** On tfmot's allocation
  (depthwise kernels dense, 84% / 88% overall) reweighted scores 79.32% at 10x and 71.01% at 20x
  against tfmot's 81.53% and 77.66%. Pruning the depthwise kernels too (3x3 kernels, 9 weights a
  channel, at a 95.8% rate) costs every method more: at 20x reweighted and static L1 10.00%, ADMM
  44.38%; at 10x 68.00-70.56%.
- **Where MobileNetV2 breaks** (separate diagnostic runs of the reweighted pruner at 20x): the
  damage happens during regularization, before the prune (with depthwise kernels pruned, test
  accuracy in training mode 81% -> 29% over the 6 penalty epochs, where tfmot's ramp on the same
  allocation ends at 68%). Two causes measured: (1) under Adam the weights the penalty pushes to
  zero never reach it, they oscillate at about the learning rate, and in thin layers whose channels
  lie entirely outside the keep-set that noise is all the channel outputs, which batch norm then
  scales up: setting them to exactly zero at every reweighting (those under 1e-2) lifts 9.75% to
  40.45%; (2) the thinnest layers (64-384 weights at a 95.8% rate, root-mean-square weight about
  0.5) hold weights Adam at 1e-3 cannot drive to zero within 6 epochs: 37-57% of their squared norm
  is still outside the keep-set at the prune. On tfmot's allocation, three shuffling orders each
  (the same dense checkpoint): the penalty through the loss gives 68.32%, 10.00% and 71.56%; applied
  instead as a proximal step after each Adam step (soft threshold lr * lambda * alpha, so outside
  weights reach exactly zero) 72.98%, 10.00% and 10.00%; snapping the outside weights under 1e-2 to
  zero at every reweighting, which lifted the depthwise-pruned run, 10.00% on the first order. At
  20x our regularized pruning of MobileNetV2 is unstable: whether it survives the prune depends on
  the shuffling order, and neither remedy fixes that; none is in the library.
- One seed per row; on MobileNetV2 at 20x the reweighted row (71.01%) is one draw of a pruner
  that collapses to chance on some shuffling orders (above)."""

_ARCHITECTURES_MOVING_SETTING = """\
The first run of [Architectures](architectures.md), with VGG16: every model kept Keras's moving
batch norm averages (momentum 0.99), as the benchmark did before it recomputed them.
Fashion-MNIST padded to 32x32, ResNet18, VGG16 and MobileNetV2 of `mcmia_tf.models` at width 0.25,
10,000 training images, the 10,000 test images; per architecture every row starts from the same
dense checkpoint (10 epochs of Adam 1e-3, batch 128) and gets the same 10 more epochs: dense;
reweighted (the recipes' default: bounded, self-calibrated lambda, rate ramped on the cubic
schedule), ADMM (rho 3e-3) and static L1 (3e-4) regularizing 6 epochs, hard prune, 4 of masked
retraining; tfmot ramping to the same per-layer rates over the same 6 epochs. ADMM's rho and L1's
lambda are `bench.pruning`'s LeNet-5 values, not re-tuned here. Unstructured rows at 10x and 20x;
filter rows at 50% of the filters (10x / 20x of the filters leaves 2-13 channels a layer at this
width), slimmed by surgery (residual groups pruned together, depthwise layers following their
expansion layer) before FLOPs, sizes and latency are measured. Two runs per architecture
(unstructured, filter), one seed; each model's dense row is the one timed in the same job as its
filter rows (the two dense rows agree in accuracy)."""

_ARCHITECTURES_MOVING_READING = """\
- **Read with care: the moving averages lag the pruning.** Rerun with the statistics recomputed
  ([Architectures](architectures.md)), MobileNetV2 at 20x goes from 51.30% to 77.66% with tfmot
  and from 10.00% to 44.38% with ADMM, at 10x ADMM from 16.53% to 70.56%; ResNet18's dense row from
  83.15% to 86.15%, VGG16's from 83.08% to 86.89%. The collapse of MobileNetV2 described below is
  mostly that lag.
- **Surgery makes filter pruning fast on LiteRT**: at 50% of the filters ResNet18 and VGG16 need
  about 4x fewer FLOPs and run 2.6-3.0x faster (ResNet18 0.750 -> 0.253 ms per image, VGG16 0.449
  -> 0.161-0.175 ms), MobileNetV2 3.4-3.5x fewer FLOPs and 1.9-2.0x faster (0.104 -> 0.052 ms).
  **Within 1 point of dense**: ResNet18 with ADMM (84.26%, 1.11 points above dense: met for
  ResNet18), VGG16 with every method (reweighted 83.61%, 0.53 above); MobileNetV2 loses 5.7-7.6 points with every
  method, so the target (both ResNet18 and MobileNetV2) is not met.
- **At 20x (unstructured)** the ramped reweighted form is level with tfmot on VGG16 (85.39% vs
  85.45%) and 1.2 points behind on ResNet18 (84.40% vs 85.63%; the constant-rate form was 6.7
  behind); both are above dense (83.15%, 83.08%). At 10x it is 0.09 (VGG16) and 0.43 (ResNet18)
  point below tfmot. ADMM and static L1 with LeNet-5's rho / lambda lose 13-26 points at 20x: their strength does not
  transfer, which is what the reweighted form's calibration is for.
- **MobileNetV2 at width 0.25 does not survive our pruners at 10x unstructured**: they prune the
  depthwise kernels too (9 weights a channel) and collapse to 10-16%; tfmot cannot prune depthwise
  kernels, stops at 84-88% overall sparsity and reaches 70.09% (10x) and 51.30% (20x). The
  depthwise kernels are not the whole cause: with them left dense (`--noprune_depthwise`, the same
  allocation as tfmot, run separately with `--models=mobilenetv2 --methods=reweighted,admm,static_l1
  --structures=unstructured --sparsities=0.9,0.95`) reweighted / ADMM / static L1 reach 38.03 /
  16.53 / 22.60% at 10x and 10.00 / 10.15 / 13.05% at 20x, still far under tfmot: the regularized
  pruners lose this network where magnitude pruning does not.
- One seed per row: differences of a few tenths of a point are within run-to-run noise (see the
  LeNet-5 seed runs)."""

_AUDIT_SETTING = """\
Fashion-MNIST LeNet-5 trained 30 epochs (Adam 1e-3, batch 128) on 10,000 members; 10,000
non-members; a 20,000-image shadow pool (RMIA's 5,000 population points come from it); K = 16
reference models in complementary pairs; 2 shadow models; seed 0; 200 bootstrap replicates and 200
label permutations. `--quick` runs the same on digits in under a minute."""

_AUDIT_READING = """\
- The class-conditional modified-entropy attack ranks by score minus a per-class threshold; its
  most confident candidates then tie at the top, which zeroes its low-FPR TPR. The global attacks
  rank the raw statistic.
- n/a: the attack needs IN and OUT models for every candidate (LiRA online), 2 OUT models (LiRA
  offline) or 1 OUT model (RMIA offline).
- The RMIA paper's claim holds here in AUC: RMIA with 1 reference model (0.5875) is within reach
  of LiRA with 8 (0.5925), and with 2 (0.6146) above LiRA with 16 (0.6066). RMIA with K = 4
  against LiRA with K = 16 at TPR@0.1%FPR (1.52% vs 1.30%) is **not distinguishable** at 10,000
  non-members (see the note above; met in AUC); with K = 8 RMIA is clearly stronger (2.82% [2.27,
  3.63]).
- [tensorflow-privacy's attacks on the same kind of outputs](tf-privacy-mia.md)."""

PAGES = (
    Page("quick_study.json", "quick-study.md", "Quick study (the main job)",
         _QUICK_SETTING, _study_report, _QUICK_READING),
    Page("headline_study.json", "headline-study.md",
         "Headline study: intervals, canaries and DP-SGD", _HEADLINE_SETTING, _study_report,
         _HEADLINE_READING),
    Page("pruning_fashion.json", "pruning-fashion-mnist.md",
         "Pruning: Fashion-MNIST LeNet-5, 30-epoch budget", _FASHION_SETTING, _pruning_pivot,
         _FASHION_READING),
    Page("pruning_fashion_seeds.json", "pruning-fashion-mnist-seeds.md",
         "Pruning: Fashion-MNIST LeNet-5, 30-epoch budget, 4 seeds", _FASHION_SEEDS_SETTING,
         _pruning_pivot, _FASHION_SEEDS_READING),
    Page("pruning_fashion_constant.json", "pruning-fashion-mnist-constant.md",
         "Pruning: Fashion-MNIST LeNet-5, 30-epoch budget, before the ramp",
         _FASHION_CONSTANT_SETTING, _pruning_pivot, _FASHION_CONSTANT_READING),
    Page("pruning_digits.json", "pruning-digits.md", "Pruning: digits LeNet-5, 10-epoch budget, 10 seeds",
         _DIGITS_SETTING, _pruning_pivot, _DIGITS_READING),
    Page("pruning_diagnosis.json", "pruning-diagnosis.md",
         "Pruning: gradual or one-shot, held-out control runs", _DIAGNOSIS_SETTING,
         _pruning_pivot, _DIAGNOSIS_READING),
    Page("lambda_tune.json", "pruning-lambda.md", "Pruning: the bounded penalty's lambda",
         _LAMBDA_SETTING, _lambda_table, _LAMBDA_READING),
    Page("dp.json", "dp-cost.md", "DP-SGD: the cost of per-example clipping", _DP_SETTING,
         _dp_table, _DP_READING),
    Page("dp_tune.json", "dp-tuning.md", "DP-SGD: tuning at epsilon 3", _DP_TUNE_SETTING,
         _dp_tune_table, _DP_TUNE_READING),
    Page("dp_tune_large_epsilon.json", "dp-tuning-large-epsilon.md",
         "DP-SGD: tuning at epsilon 1000", _DP_TUNE_LARGE_SETTING, _dp_tune_rows,
         _DP_TUNE_LARGE_READING),
    Page("architectures.json", "architectures.md",
         "Architectures: ResNet18, MobileNetV2 and VGG16 pruned, slimmed and timed on LiteRT",
         _ARCHITECTURES_SETTING, _architectures_table, _ARCHITECTURES_READING),
    Page("architectures_moving_bn.json", "architectures-moving-bn.md",
         "Architectures: the first run, with Keras's moving batch norm averages",
         _ARCHITECTURES_MOVING_SETTING, _architectures_table, _ARCHITECTURES_MOVING_READING),
    Page("headline_study_ramp.json", "headline-study-ramp.md",
         "Headline study: the pruning methods with the ramped recipe", _HEADLINE_RAMP_SETTING,
         _study_report, _HEADLINE_RAMP_READING),
    Page("architecture_study.json", "architecture-study.md",
         "Audited study: ResNet18 on Fashion-MNIST", _ARCH_STUDY_SETTING, _study_report,
         _ARCH_STUDY_READING),
    Page("architecture_study_moving_bn.json", "architecture-study-moving-bn.md",
         "Audited study: ResNet18, the first run with Keras's moving batch norm averages",
         _ARCH_STUDY_MOVING_SETTING, _study_report, _ARCH_STUDY_MOVING_READING),
    Page("audit.json", "audit.md", "Audit: every attack on one target, K = 16", _AUDIT_SETTING,
         _audit_tables, _AUDIT_READING),
)


def _header(page: Page, meta: Mapping) -> List[str]:
    lines = [
        f"<!-- Generated by `python -m bench.pages` from bench/results/{page.source}; "
        "edit those, not this page. -->",
        "",
        f"# {page.title}",
        "",
        "```bash",
        meta["command"],
        "```",
        "",
        f"- **Date:** {meta['date']}",
        f"- **Machine:** {meta['machine']}",
        f"- **Results:** `bench/results/{page.source}`, a copy of the run's "
        f"`{meta['source']}`." + (f" {meta['remark']}" if meta.get("remark") else ""),
    ]
    return lines


def render(page: Page, data: Mapping) -> str:
    """The text of one page."""
    meta = data["meta"]
    lines = _header(page, meta) + ["", "## Setting", "", page.setting, "", "## Results", "",
                                   page.body(data)]
    if meta.get("notes"):
        lines += ["", "Printed by the benchmark:", ""]
        lines += [f"- {note}" for note in meta["notes"]]
    if page.reading:
        lines += ["", "## Reading", "", page.reading]
    return "\n".join(lines).rstrip() + "\n"


def render_all(results_dir: str = RESULTS_DIR) -> Dict[str, str]:
    """{page file name: text} for every page."""
    pages = {}
    for page in PAGES:
        with open(os.path.join(results_dir, page.source)) as f:
            pages[page.output] = render(page, json.load(f))
    return pages


def write_all(pages_dir: str = PAGES_DIR, results_dir: str = RESULTS_DIR) -> List[str]:
    """Writes every page; returns the paths written."""
    os.makedirs(pages_dir, exist_ok=True)
    written = []
    for name, text in render_all(results_dir).items():
        path = os.path.join(pages_dir, name)
        with open(path, "w") as f:
            f.write(text)
        written.append(path)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="Write nothing; exit 1 if a page differs from its JSON.")
    args = parser.parse_args(argv)
    if not args.check:
        for path in write_all():
            print(f"wrote {os.path.relpath(path, ROOT)}")
        return 0
    stale = []
    for name, text in render_all().items():
        path = os.path.join(PAGES_DIR, name)
        current = open(path).read() if os.path.exists(path) else None
        if current != text:
            stale.append(os.path.relpath(path, ROOT))
    for path in stale:
        print(f"out of date: {path} (run `python -m bench.pages`)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
