"""`report.md` and the study's plots, from `results.json` alone.

Tables: the MCMIA paper's layout (model, dataset, prune rate, test accuracy,
attack accuracy per method), then the low-FPR metrics reviewers require
(Carlini et al., S&P 2022), then the deployed TFLite models, then the seed
paper's claims checked against the measured numbers, whatever they say.

Plots (PNG): `frontier.png` (test accuracy vs TPR at 0.1% FPR, marker area
proportional to compression), `roc.png` (each method's strongest attack on
log-log axes) and `sparsity.png` (per-layer sparsity).
"""

import os
from typing import List, Mapping, Optional, Tuple

from mcmia_tf.audit.plotting import plot_roc_curves

__all__ = ["attack_accuracy", "lowest_claim_verdict", "render_markdown", "write_report"]

_LABELS = {"baseline": "Baseline", "dp": "DP-SGD", "minmax": "Min-Max",
           "mcmia_pruning": "MCMIA-Pruning", "mcmia_pruning_minmax": "MCMIA-Pruning & Min-Max",
           "tfmot_magnitude": "tfmot magnitude"}


def _label(name: str) -> str:
    return _LABELS.get(name, name)


def _lookup(spread: Optional[Mapping], path: List[str]):
    value = spread
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) else None


def _pct(value, spread=None) -> str:
    if value is None:
        return "—"
    text = f"{100 * value:.2f}%"
    return text if spread is None else f"{text} ± {100 * spread:.2f}"


def _num(value, digits: int = 3, spread=None) -> str:
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    return text if spread is None else f"{text} ± {spread:.{digits}f}"


_TIE_TOLERANCE = 1e-9


def attack_accuracy(entry: Mapping) -> float:
    """The seed paper's metric: the best balanced attack accuracy over all attacks."""
    return max(a["balanced_accuracy"] for a in entry["attacks"].values())


def lowest_claim_verdict(attack_accuracies: Mapping[str, float],
                         method: str = "mcmia_pruning_minmax") -> Tuple[str, str]:
    """Whether `method` has the strictly lowest attack accuracy: (verdict, runner-up).

    The verdict is "holds", "tied with <runner-up label>" or "does not hold here".
    Equal accuracies (the same counts of correct guesses, up to float rounding in
    (TPR + TNR) / 2) are a tie, not a win.
    """
    ours = attack_accuracies[method]
    others = {name: value for name, value in attack_accuracies.items() if name != method}
    runner_up = min(others, key=others.get)
    if abs(ours - others[runner_up]) < _TIE_TOLERANCE:
        return f"tied with {_label(runner_up)}", runner_up
    return ("holds" if ours < others[runner_up] else "does not hold here"), runner_up


def _claims(entries: Mapping[str, Mapping]) -> List[str]:
    lines = []
    acc = {name: attack_accuracy(e) for name, e in entries.items()}
    if "mcmia_pruning_minmax" in acc and len(acc) > 1:
        ours = acc["mcmia_pruning_minmax"]
        verdict, runner_up = lowest_claim_verdict(acc)
        lines.append(f"- *MCMIA-Pruning & Min-Max has the lowest attack accuracy*: {verdict} "
                     f"(MCMIA-Pruning & Min-Max: {_pct(ours)}; lowest of the others: "
                     f"{_label(runner_up)}, {_pct(acc[runner_up])}).")
    for other, paper in (("baseline", "up to 13.6"), ("minmax", "up to 10")):
        if "mcmia_pruning" in acc and other in acc:
            gap = 100 * (acc[other] - acc["mcmia_pruning"])
            verdict = "holds" if gap > 0 else "does not hold here"
            lines.append(f"- *MCMIA-Pruning attack accuracy below {_label(other)}* (paper: "
                         f"{paper} points): {verdict}, {gap:+.2f} points.")
    if "mcmia_pruning" in entries and "tfmot_magnitude" in entries:
        ours, peer = entries["mcmia_pruning"], entries["tfmot_magnitude"]
        lines.append(
            f"- *MCMIA-Pruning vs tfmot magnitude pruning at the same sparsity*: test accuracy "
            f"{_pct(ours['test_accuracy'])} vs {_pct(peer['test_accuracy'])}; strongest-attack "
            f"TPR@0.1%FPR {_pct(ours['attacks'][ours['strongest_attack']]['tpr_at_fpr']['0.001'])}"
            f" vs {_pct(peer['attacks'][peer['strongest_attack']]['tpr_at_fpr']['0.001'])}.")
    return lines


def render_markdown(results: Mapping) -> str:
    """The text of `report.md`."""
    entries = {e["name"]: e for e in results["methods"]}
    spread = results.get("spread") or {}
    seeds = results["seeds"]
    study = results["study"]
    lines = [
        f"# Study: {results['model']} on {results['dataset']}",
        "",
        f"{results['num_members']} members and as many non-members; "
        f"{results['num_reference_models']} LiRA reference models and "
        f"{study['num_shadow_models']} shadow models per method, trained with that method's "
        f"own recipe; target sparsity {results['target_sparsity']}; "
        f"{study['training']['epochs']} epochs; seeds {seeds}"
        + (" (mean ± standard deviation over seeds)." if len(seeds) > 1 else "."),
        "",
        "## Accuracy and attack accuracy (the MCMIA paper's table)",
        "",
        "Attack accuracy: the best balanced accuracy of any attack on the balanced "
        "member / non-member set (50% = chance).",
        "",
        "| model | dataset | method | prune rate | compression | test accuracy | attack accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, e in entries.items():
        s = spread.get(name)
        lines.append(
            f"| {results['model']} | {results['dataset']} | {_label(name)} | "
            f"{_pct(e['sparsity'])} | {e['compression_rate']:.1f}x | "
            f"{_pct(e['test_accuracy'], _lookup(s, ['test_accuracy']))} | "
            f"{_pct(attack_accuracy(e))} |")
    lines += [
        "",
        "## Low-FPR leakage",
        "",
        "| method | train acc | strongest attack | AUC | advantage | TPR@1%FPR | TPR@0.1%FPR | "
        "TPR@0%FPR | LiRA online TPR@0.1%FPR | epsilon |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, e in entries.items():
        s = spread.get(name)
        strongest = e["strongest_attack"]
        metrics = e["attacks"][strongest]
        lira = e["attacks"].get("lira_online")
        path = ["attacks", strongest]
        lines.append(
            f"| {_label(name)} | {_pct(e['train_accuracy'])} | {strongest} | "
            f"{_num(metrics['auc'], 3, _lookup(s, path + ['auc']))} | "
            f"{_num(metrics['advantage'], 3)} | "
            f"{_pct(metrics['tpr_at_fpr']['0.01'])} | "
            f"{_pct(metrics['tpr_at_fpr']['0.001'], _lookup(s, path + ['tpr_at_fpr', '0.001']))} | "
            f"{_pct(metrics['tpr_at_fpr']['0'])} | "
            f"{_pct(None if lira is None else lira['tpr_at_fpr']['0.001'])} | "
            f"{_num(e['epsilon'], 2)} |")
    lines += [
        "",
        "## Deployed models (TFLite)",
        "",
        "| method | deployed format | bytes | zipped bytes | deployed accuracy | agreement with Keras "
        "| deployed TPR@0.1%FPR | all formats (bytes / zipped) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, e in entries.items():
        t = e["tflite"]
        size = t["sizes"][t["deployed_format"]]
        formats = "; ".join(f"{fmt}: {int(v['bytes']):,} / {int(v['zipped_bytes']):,}"
                            for fmt, v in t["sizes"].items())
        lines.append(
            f"| {_label(name)} | {t['deployed_format']} | {int(size['bytes']):,} | "
            f"{int(size['zipped_bytes']):,} | {_pct(t['int8_accuracy'])} | "
            f"{_pct(t['agreement'])} | {_pct(t['deployed_tpr_at_0.1pct_fpr'])} | {formats} |")
    claims = _claims(entries)
    if claims:
        lines += ["", "## The seed paper's claims, checked on these numbers", ""] + claims
    lines += ["", "## Plots", "", "![frontier](frontier.png)", "", "![roc](roc.png)", "",
              "![sparsity](sparsity.png)", ""]
    return "\n".join(lines)


def _plot_frontier(entries: List[Mapping], path: str) -> None:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
    figure, axis = plt.subplots(figsize=(6.0, 4.5))
    for e in entries:
        tpr = e["attacks"][e["strongest_attack"]]["tpr_at_fpr"]["0.001"]
        axis.scatter([100 * tpr], [100 * e["test_accuracy"]], s=20 * e["compression_rate"],
                     alpha=0.7, label=f"{_label(e['name'])} ({e['compression_rate']:.0f}x)")
    axis.set_xlabel("TPR at 0.1% FPR of the strongest attack (%)  ← more private")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title("privacy-utility-compression frontier\n(marker area ~ compression)", fontsize=10)
    axis.grid(True, alpha=0.3)
    axis.margins(0.15)  # room for the largest markers
    legend = axis.legend(fontsize=7, loc="best")
    for handle in legend.legend_handles:
        handle.set_sizes([30])  # the plot shows compression; the legend names it
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _plot_sparsity(entries: List[Mapping], path: str) -> None:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
    figure, axis = plt.subplots(figsize=(7.0, 4.0))
    layers = [layer["path"] for layer in entries[0]["layers"]]
    width = 0.8 / max(1, len(entries))
    for i, e in enumerate(entries):
        values = {layer["path"]: layer["sparsity"] for layer in e["layers"]}
        axis.bar([j + i * width for j in range(len(layers))],
                 [100 * values.get(name, 0.0) for name in layers], width=width,
                 label=_label(e["name"]))
    axis.set_xticks([j + 0.4 - width / 2 for j in range(len(layers))])
    axis.set_xticklabels(layers, rotation=30, ha="right", fontsize=7)
    axis.set_ylabel("sparsity (%)")
    axis.set_title("per-layer sparsity")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(results: Mapping, output_dir: str) -> None:
    """Writes `report.md`, `frontier.png`, `roc.png` and `sparsity.png` into `output_dir`."""
    entries = list(results["methods"])
    with open(os.path.join(output_dir, "report.md"), "w") as f:
        f.write(render_markdown(results))
    _plot_frontier(entries, os.path.join(output_dir, "frontier.png"))
    plot_roc_curves([(f"{_label(e['name'])} ({e['roc']['attack']})", e["roc"]["fpr"],
                      e["roc"]["tpr"]) for e in entries], os.path.join(output_dir, "roc.png"),
                    title="strongest attack per method")
    _plot_sparsity(entries, os.path.join(output_dir, "sparsity.png"))
