"""ROC curves on log-log axes, the view that shows low-FPR leakage (Carlini et al. 2022)."""

from typing import Sequence

import numpy as np

__all__ = ["plot_roc_curves"]


def plot_roc_curves(curves: Sequence[tuple], path: str, title: str = "") -> None:
    """Writes a PNG with one ROC curve per attack on log-log axes.

    Args:
      curves: `(label, fpr, tpr)` triples; points with FPR = 0 are not drawable on a
        log axis and are dropped.
      path: output PNG path.
      title: figure title.
    """
    import matplotlib  # pylint: disable=g-import-not-at-top
    matplotlib.use("Agg")  # headless: audits run on servers and in CI
    from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

    figure, axis = plt.subplots(figsize=(8.0, 5.0))
    # tab10, then the same colors dashed: an audit reports about 11 attacks.
    colors = plt.get_cmap("tab10").colors
    smallest = 1.0
    for index, (label, fpr, tpr) in enumerate(curves):
        fpr, tpr = np.asarray(fpr), np.asarray(tpr)
        drawable = fpr > 0
        if drawable.any():
            smallest = min(smallest, float(fpr[drawable].min()))
            axis.plot(fpr[drawable], np.maximum(tpr[drawable], 1e-6), label=label, linewidth=1.2,
                      color=colors[index % len(colors)],
                      linestyle="-" if index < len(colors) else "--")
    grid = np.logspace(np.log10(smallest), 0, 50)
    axis.plot(grid, grid, "k--", linewidth=0.8, label="chance")
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlim(smallest, 1.0)
    axis.set_ylim(smallest, 1.0)
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    if title:
        axis.set_title(title)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    axis.grid(True, which="both", alpha=0.2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
