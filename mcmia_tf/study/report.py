"""`report.md` and the study's plots, from `results.json` alone.

Tables: the MCMIA paper's layout (model, dataset, prune rate, test accuracy,
attack accuracy per method), then the low-FPR metrics reviewers require
(Carlini et al., S&P 2022), then the deployed TFLite models, then the seed
paper's claims checked against the measured numbers, whatever they say.

Every attack metric carries its 95% bootstrap interval; the strongest attack is
the out-of-sample choice of the audit, shown with the noise floor of permuted
labels; claims come from `claims.check_claims` (shared with `bench.defenses`).
With canaries, a worst-case table repeats the leakage on IN vs OUT canaries.

Plots (PNG): `frontier.png` (test accuracy vs the strongest attack's TPR at 0.1%
FPR with its interval and the noise floor, marker area proportional to
compression; a second panel for the canaries), `roc.png` (each method's strongest
attack on log-log axes) and `sparsity.png` (per-layer sparsity).
"""

import os
from typing import List, Mapping, Optional

import numpy as np

from mcmia_tf.audit.plotting import plot_roc_curves
from mcmia_tf.study import claims as claims_lib

__all__ = ["render_markdown", "write_report"]

_label = claims_lib.label


def _lookup(spread: Optional[Mapping], path: List[str]):
    value = spread
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) else None


def _pct(value, spread=None, interval=None) -> str:
    if value is None:
        return "—"
    text = f"{100 * value:.2f}%"
    if spread is not None:
        text += f" ± {100 * spread:.2f}"
    if interval:
        text += f" [{100 * interval[0]:.2f}, {100 * interval[1]:.2f}]"
    return text


def _num(value, digits: int = 3, spread=None, interval=None) -> str:
    if value is None:
        return "—"
    text = f"{value:.{digits}f}"
    if spread is not None:
        text += f" ± {spread:.{digits}f}"
    if interval:
        text += f" [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"
    return text


def _leakage_cells(e: Mapping) -> List[str]:
    """Strongest attack (held-out half), its TPR with interval, the floor and the verdict."""
    strongest, floor = e["strongest"], e.get("noise_floor")
    tpr = _pct(strongest["tpr"], interval=strongest.get("tpr_interval"))
    if floor is None:
        return [strongest["attack"], tpr, "—"]
    above = strongest["tpr"] > floor["floor"]
    return [strongest["attack"], tpr if above else f"{tpr} (under the floor)",
            _pct(floor["floor"])]


def _leakage_table(entries: Mapping[str, Mapping], key: Optional[str] = None) -> List[str]:
    rows = [(name, e if key is None else e[key]) for name, e in entries.items()
            if key is None or e.get(key)]
    if not rows:
        return []
    fprs = sorted({100 * view["strongest"]["target_fpr"] for _, view in rows})
    fpr_text = "/".join(f"{f:g}%" for f in fprs)
    lines = [f"| method | strongest attack (held-out half) | TPR@{fpr_text}FPR [95%] | "
             f"floor | AUC [95%] | best balanced acc. [95%] |", "|---|---|---|---|---|---|"]
    for name, view in rows:
        strongest = view["strongest"]
        accuracy, interval = claims_lib.attack_accuracy(view)
        lines.append(f"| {_label(name)} | " + " | ".join(_leakage_cells(view)) + " | "
                     f"{_num(strongest['auc'], 3, interval=strongest.get('auc_interval'))} | "
                     f"{_pct(accuracy, interval=interval)} |")
    return lines


def _dp_recipe_table(entries: Mapping[str, Mapping]) -> List[str]:
    """One row per DP-SGD method: the hyper-parameters and sampling its numbers come from."""
    def cell(value, form="{:g}"):
        return "—" if value is None else form.format(value)

    rows = []
    for name, e in entries.items():
        if not claims_lib.is_dp(name):
            continue
        dp = e["config"].get("dp") or {}
        training = e["config"].get("training") or {}
        # Older results lack "privacy"; the config's sigma is ignored under a target epsilon.
        privacy = e.get("privacy") or {}
        sigma = privacy.get("noise_multiplier",
                            None if dp.get("target_epsilon") else dp.get("noise_multiplier"))
        batch = dp.get("batch_size") or training.get("batch_size")
        epochs = training.get("epochs")
        rows.append(" | ".join([
            f"| {_label(name)}", _num(e["epsilon"], 2), cell(dp.get("delta")),
            _num(sigma, 3), cell(dp.get("l2_norm_clip")),
            privacy.get("clipping") or ("per-example" if dp and not dp.get("num_microbatches")
                                        else cell(dp.get("num_microbatches"),
                                                  "{} microbatches")),
            privacy.get("trained_with") or cell(dp.get("sampling"), "{}"),
            cell(dp.get("optimizer"), "{}"),
            cell(dp.get("learning_rate") or training.get("learning_rate")),
            cell(None if batch is None else int(batch), "{}"),
            dp.get("activation") or ("model default" if dp else "—"),
            cell(None if epochs is None else int(epochs), "{}")]) + " |")
    if not rows:
        return []
    return ["", "## DP-SGD runs", "",
            "The recipe behind each DP-SGD number (sampling: how the batches were drawn; "
            "epsilon: the RDP bound for Poisson sampling).", "",
            "| method | epsilon | delta | sigma | C | clipping | sampling | optimizer | lr | batch "
            "| activation | epochs |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"] + rows


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
        accuracy, interval = claims_lib.attack_accuracy(e)
        lines.append(
            f"| {results['model']} | {results['dataset']} | {_label(name)} | "
            f"{_pct(e['sparsity'])} | {e['compression_rate']:.1f}x | "
            f"{_pct(e['test_accuracy'], _lookup(s, ['test_accuracy']))} | "
            f"{_pct(accuracy, interval=interval)} |")
    lines += [
        "",
        "## Low-FPR leakage",
        "",
        "The strongest attack is chosen on a random half of the candidates and measured on "
        "the other half. Brackets: 95% bootstrap intervals over candidates. Floor: the 95th "
        "percentile of the best attack's TPR when the membership labels are permuted; a TPR "
        "under it is indistinguishable from no leakage.",
        "",
    ] + _leakage_table(entries) + [
        "",
        "| method | train acc | LiRA online TPR@0.1%FPR [95%] | RMIA online TPR@0.1%FPR [95%] "
        "| epsilon |",
        "|---|---|---|---|---|",
    ]
    for name, e in entries.items():
        cells = []
        for attack in ("lira_online", "rmia_online"):
            metrics = e["attacks"].get(attack)
            cells.append("—" if metrics is None else _pct(
                metrics["tpr_at_fpr"]["0.001"],
                interval=metrics["intervals"]["tpr_at_fpr"]["0.001"]))
        lines.append(f"| {_label(name)} | {_pct(e['train_accuracy'])} | {' | '.join(cells)} | "
                     f"{_num(e['epsilon'], 2)} |")
    lines += _dp_recipe_table(entries)
    canary_table = _leakage_table(entries, "canary")
    if canary_table:
        first = next(e["canary"] for e in entries.values() if e.get("canary"))
        lines += ["", "## Worst case: canaries", "",
                  f"{int(first['num_canaries'])} {first['kind']} canaries, each IN for a random half "
                  "of the target and reference models (Aerni, Zhang and Tramer, CCS 2024); "
                  "attacks scored on IN vs OUT canaries alone.", ""] + canary_table
    lines += [
        "",
        "## Deployed models (TFLite)",
        "",
        "| method | deployed format | bytes | zipped bytes | deployed accuracy | agreement with Keras "
        "| deployed strongest TPR [95%] | all formats (bytes / zipped) |",
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
            f"{_pct(t['agreement'])} | {_leakage_cells(t)[1]} | {formats} |")
    claims = claims_lib.check_claims(entries)
    if claims:
        lines += ["", "## The seed paper's claims, checked on these numbers", "",
                  "Two numbers whose 95% intervals overlap are \"not distinguishable\".", ""]
        lines += claims
    lines += ["", "## Plots", "", "![frontier](frontier.png)", "", "![roc](roc.png)", "",
              "![sparsity](sparsity.png)", ""]
    return "\n".join(lines)


def _plot_frontier(entries: List[Mapping], path: str) -> None:
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
    panels = [("average case", None)]
    if any(e.get("canary") for e in entries):
        panels.append(("canaries (worst case)", "canary"))
    figure, axes = plt.subplots(1, len(panels), figsize=(6.0 * len(panels), 4.5), squeeze=False)
    for axis, (title, key) in zip(axes[0], panels):
        fprs = set()
        for e in entries:
            view = e if key is None else e.get(key)
            if not view:
                continue
            strongest = view["strongest"]
            fprs.add(100 * strongest["target_fpr"])
            tpr, interval = strongest["tpr"], strongest.get("tpr_interval")
            error = None if not interval else [[100 * (tpr - interval[0])],
                                               [100 * (interval[1] - tpr)]]
            marker = axis.scatter([100 * tpr], [100 * e["test_accuracy"]],
                                  s=20 * e["compression_rate"], alpha=0.7,
                                  label=f"{_label(e['name'])} ({e['compression_rate']:.0f}x)")
            color = marker.get_facecolor()[0]
            axis.errorbar([100 * tpr], [100 * e["test_accuracy"]], xerr=error, fmt="none",
                          ecolor=color, alpha=0.6, capsize=3)
            floor = view.get("noise_floor")
            if floor is not None:  # Each model's own floor, in its color.
                axis.axvline(100 * floor["floor"], color=color, linestyle=":", linewidth=1)
        frontier = sorted((100 * (e if key is None else e[key])["strongest"]["tpr"],
                           100 * e["test_accuracy"]) for e in entries
                          if claims_lib.is_dp(e["name"]) and (key is None or e.get(key)))
        if len(frontier) > 1:  # DP-SGD at several epsilons: draw its frontier.
            axis.plot(*zip(*frontier), color="gray", linewidth=1, alpha=0.7, zorder=0)
        fpr_text = "/".join(f"{f:g}%" for f in sorted(fprs))
        axis.set_xlabel(f"TPR at {fpr_text} FPR, strongest attack, held-out half (%)  "
                        "← more private")
        axis.set_ylabel("test accuracy (%)")
        axis.set_title(f"{title}\n(marker area ~ compression; bars: 95% interval; "
                       "dotted: noise floor)", fontsize=9)
        axis.grid(True, alpha=0.3)
        axis.margins(0.15)  # room for the largest markers
        legend = axis.legend(fontsize=7, loc="best")
        for handle in legend.legend_handles:
            handle.set_sizes([30])  # the plot shows compression; the legend names it
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# Above this many pruned layers a grouped bar chart is unreadable: draw a heat map.
_MAX_BAR_CHART_LAYERS = 12


def _plot_sparsity(entries: List[Mapping], path: str) -> None:
    """Per-layer sparsity of every method that prunes.

    Up to `_MAX_BAR_CHART_LAYERS` layers: grouped bars. More (ResNet18 has 21
    prunable layers, MobileNetV2 53): a layers x methods heat map whose height
    grows with the number of layers, one labelled row per layer.
    """
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
    layers = [layer["path"] for layer in entries[0]["layers"]]
    pruned = [e for e in entries if any(layer["sparsity"] > 0 for layer in e["layers"])] or entries
    table = np.array([[100 * {layer["path"]: layer["sparsity"] for layer in e["layers"]}
                       .get(name, 0.0) for e in pruned] for name in layers])
    if len(layers) <= _MAX_BAR_CHART_LAYERS:
        figure, axis = plt.subplots(figsize=(7.0, 4.0))
        width = 0.8 / max(1, len(pruned))
        for i, e in enumerate(pruned):
            axis.bar([j + i * width for j in range(len(layers))], table[:, i], width=width,
                     label=_label(e["name"]))
        axis.set_xticks([j + 0.4 - width / 2 for j in range(len(layers))])
        axis.set_xticklabels(layers, rotation=30, ha="right", fontsize=7)
        axis.set_ylabel("sparsity (%)")
        axis.legend(fontsize=7)
    else:
        figure, axis = plt.subplots(figsize=(2.5 + 1.1 * len(pruned), 1.5 + 0.2 * len(layers)))
        image = axis.imshow(table, aspect="auto", cmap="viridis", vmin=0, vmax=100)
        axis.set_yticks(range(len(layers)))
        axis.set_yticklabels(layers, fontsize=6)
        axis.set_xticks(range(len(pruned)))
        axis.set_xticklabels([_label(e["name"]) for e in pruned], rotation=30, ha="right",
                             fontsize=7)
        figure.colorbar(image, ax=axis, label="sparsity (%)")
    axis.set_title("per-layer sparsity")
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
