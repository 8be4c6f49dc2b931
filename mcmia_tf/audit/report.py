"""Audit results: one `AttackResult` per attack, an `AuditReport` over all of them.

Both are frozen dataclasses that round-trip through `to_dict()` / JSON. Every
metric carries its 95% bootstrap interval (over candidates) when the audit ran a
bootstrap. The strongest attack is chosen on a random half of the candidates and
reported on the other half (`significance.select_strongest`), next to the noise
floor of the best attack's TPR under permuted labels (`significance.permutation_floor`).
A canary audit is a nested `AuditReport` over the canaries alone. A report
folder holds `report.json`, `report.md`, `roc.png` and, with `save_predictions`,
`predictions.npz` with the raw per-example outputs (target outputs, labels, member
flags, reference-model outputs and every attack's scores) to rerun in other tools.
"""

import dataclasses
import json
import os
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from mcmia_tf.audit import metrics as metrics_lib
from mcmia_tf.audit import plotting
from mcmia_tf.audit import significance

__all__ = ["AttackResult", "AuditPredictions", "AuditReport", "ScoredAttack", "compact_roc",
           "format_metric"]

# 2: intervals, the out-of-sample strongest attack, the noise floor, canaries.
_FORMAT_VERSION = 2
_READABLE_VERSIONS = (1, 2)
# FPR grid of the ROC stored in JSON: dense on the log scale where leakage matters.
_ROC_GRID = np.unique(np.r_[0.0, np.logspace(-5, 0, 201)])


def compact_roc(scores: np.ndarray, is_member: np.ndarray) -> Tuple[Tuple[float, ...],
                                                                   Tuple[float, ...]]:
    """The ROC at a fixed log-spaced FPR grid (step rule of `metrics.tpr_at_fpr`)."""
    roc = metrics_lib.roc_curve(scores, is_member)
    tpr = [metrics_lib.tpr_at_fpr(roc, fpr) for fpr in _ROC_GRID]
    return tuple(float(f) for f in _ROC_GRID), tuple(tpr)


@dataclasses.dataclass(frozen=True, eq=False)
class ScoredAttack:
    """One attack's scores on every candidate, before they are split by role.

    Attributes:
      name: the attack's name.
      family: "threshold", "shadow", "lira" or "rmia".
      scores: `(n,)` scores on all candidates (higher = member).
      seconds: wall time of the attack (with the model training it needed).
      decision_threshold: a threshold fitted on shadow data ("member iff score >=
        threshold"), or None.
      parameters: the attack's settings.
    """

    name: str
    family: str
    scores: np.ndarray
    seconds: float = 0.0
    decision_threshold: Optional[float] = None
    parameters: Mapping[str, object] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AttackResult:
    """The outcome of one attack on the target's members and non-members.

    Attributes:
      name: e.g. "loss", "loss_class_conditional", "shadow_mlp", "lira_online".
      family: "threshold", "shadow" or "lira".
      metrics: threshold-free `AttackMetrics` of the scores.
      roc_fpr: FPR grid of the stored ROC.
      roc_tpr: TPR at those FPRs.
      threshold_accuracy: balanced accuracy of a decision threshold fitted on shadow
        data (never on the evaluation data); None when the attack had none.
      parameters: the attack's settings (e.g. number of reference models).
      seconds: wall time of the attack, excluding shared model training.
      scores: per-example scores (higher = member); kept out of JSON, saved in the npz.
    """

    name: str
    family: str
    metrics: metrics_lib.AttackMetrics
    roc_fpr: Tuple[float, ...]
    roc_tpr: Tuple[float, ...]
    threshold_accuracy: Optional[float] = None
    parameters: Mapping[str, object] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    scores: Optional[np.ndarray] = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def from_scores(cls, name: str, family: str, scores: np.ndarray, is_member: np.ndarray,
                    threshold_accuracy: Optional[float] = None,
                    parameters: Optional[Mapping[str, object]] = None, seconds: float = 0.0,
                    num_bootstrap: int = 0, seed: int = 0) -> "AttackResult":
        """Computes metrics and the compact ROC of an attack's scores."""
        roc_fpr, roc_tpr = compact_roc(scores, is_member)
        return cls(name=name, family=family,
                   metrics=metrics_lib.compute_attack_metrics(scores, is_member,
                                                              num_bootstrap=num_bootstrap,
                                                              seed=seed),
                   roc_fpr=roc_fpr, roc_tpr=roc_tpr, threshold_accuracy=threshold_accuracy,
                   parameters=dict(parameters or {}), seconds=float(seconds),
                   scores=np.asarray(scores, np.float64))

    def to_dict(self) -> dict:
        return {"name": self.name, "family": self.family, "metrics": self.metrics.to_dict(),
                "roc_fpr": list(self.roc_fpr), "roc_tpr": list(self.roc_tpr),
                "threshold_accuracy": self.threshold_accuracy,
                "parameters": dict(self.parameters), "seconds": self.seconds}

    @classmethod
    def from_dict(cls, config: Mapping) -> "AttackResult":
        return cls(name=config["name"], family=config["family"],
                   metrics=metrics_lib.AttackMetrics.from_dict(config["metrics"]),
                   roc_fpr=tuple(config["roc_fpr"]), roc_tpr=tuple(config["roc_tpr"]),
                   threshold_accuracy=config.get("threshold_accuracy"),
                   parameters=dict(config.get("parameters", {})),
                   seconds=float(config.get("seconds", 0.0)))

    def summary_row(self) -> Dict[str, object]:
        """The flat row used by tables and benchmarks."""
        return {
            "attack": self.name,
            "auc": self.metrics.auc,
            "balanced_accuracy": self.metrics.balanced_accuracy,
            "advantage": self.metrics.advantage,
            "tpr_at_1pct_fpr": self.metrics.tpr_at_fpr.get("1pct"),
            "tpr_at_0.1pct_fpr": self.metrics.tpr_at_fpr.get("0.1pct"),
            "tpr_at_0pct_fpr": self.metrics.tpr_at_fpr.get("0pct"),
            "threshold_accuracy": self.threshold_accuracy,
            "seconds": self.seconds,
            # 95% bootstrap intervals as [low, high] (None without a bootstrap).
            **{f"{name}_interval": (list(self.metrics.confidence_intervals[name])
                                    if name in self.metrics.confidence_intervals else None)
               for name in ("auc", "balanced_accuracy", "tpr_at_1pct_fpr",
                            "tpr_at_0.1pct_fpr")},
        }


@dataclasses.dataclass(frozen=True)
class AuditPredictions:
    """Raw per-example audit data, saved as `.npz` for other tools.

    Attributes:
      target_outputs: `(n, num_classes)` target outputs on the candidates.
      labels: `(n,)` labels.
      is_member: `(n,)` member flags.
      output_type: "logits" or "probabilities".
      reference_outputs: `(K, n, num_classes)` LiRA reference-model outputs, or None.
      reference_in: `(K, n)` whether reference model k trained on candidate i, or None.
      scores: attack name -> `(n,)` scores.
    """

    target_outputs: np.ndarray
    labels: np.ndarray
    is_member: np.ndarray
    output_type: str
    reference_outputs: Optional[np.ndarray] = None
    reference_in: Optional[np.ndarray] = None
    scores: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def save(self, path: str) -> None:
        arrays = {"target_outputs": self.target_outputs, "labels": self.labels,
                  "is_member": self.is_member, "output_type": np.array(self.output_type)}
        if self.reference_outputs is not None:
            arrays["reference_outputs"] = self.reference_outputs
            arrays["reference_in"] = self.reference_in
        arrays.update({f"scores/{name}": value for name, value in self.scores.items()})
        tmp = f"{path}.tmp-{os.getpid()}.npz"
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> "AuditPredictions":
        with np.load(path) as data:
            return cls(target_outputs=data["target_outputs"], labels=data["labels"],
                       is_member=data["is_member"], output_type=str(data["output_type"]),
                       reference_outputs=data.get("reference_outputs"),
                       reference_in=data.get("reference_in"),
                       scores={key[len("scores/"):]: data[key] for key in data.files
                               if key.startswith("scores/")})


def format_metric(value: Optional[float], interval: Optional[Tuple[float, float]] = None,
                  percent: bool = True, missing: str = "n/a") -> str:
    """`12.34% [10.00, 14.50]` (or `0.6070 [0.5980, 0.6160]`); `missing` for None."""
    if value is None:
        return missing
    if percent:
        text = f"{100 * value:.2f}%"
        return text if not interval else f"{text} [{100 * interval[0]:.2f}, {100 * interval[1]:.2f}]"
    text = f"{value:.4f}"
    return text if not interval else f"{text} [{interval[0]:.4f}, {interval[1]:.4f}]"


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """All attacks of one audit of one target model.

    Attributes:
      attacks: one `AttackResult` per attack, on all evaluated candidates.
      target: facts about the target (name, train / test accuracy, ...).
      num_members: evaluated members.
      num_non_members: evaluated non-members.
      selection: the strongest attack, chosen on a random half of the candidates
        and measured on the other half; None for reports written before it existed.
      noise_floor: the null distribution of the best attack's TPR at
        `selection.target_fpr` under permuted membership labels, or None.
      canary: the same audit on the canaries alone (IN vs OUT canaries), or None.
    """

    attacks: Tuple[AttackResult, ...]
    target: Mapping[str, object] = dataclasses.field(default_factory=dict)
    num_members: int = 0
    num_non_members: int = 0
    selection: Optional[significance.StrongestAttack] = None
    noise_floor: Optional[significance.NoiseFloor] = None
    canary: Optional["AuditReport"] = None

    def __post_init__(self):
        object.__setattr__(self, "attacks", tuple(self.attacks))
        if not self.attacks:
            raise ValueError("An AuditReport needs at least one attack result.")

    @property
    def strongest(self) -> AttackResult:
        """The out-of-sample choice (`selection`), else the highest TPR at 0.1% FPR."""
        if self.selection is not None:
            return self.attack(self.selection.name)
        return max(self.attacks, key=lambda a: (a.metrics.tpr_at_fpr.get("0.1pct", 0.0),
                                                a.metrics.auc))

    def attack(self, name: str) -> AttackResult:
        for result in self.attacks:
            if result.name == name:
                return result
        raise KeyError(f"No attack named {name!r}; attacks: {[a.name for a in self.attacks]}")

    def to_dict(self) -> dict:
        return {"format_version": _FORMAT_VERSION, "target": dict(self.target),
                "num_members": self.num_members, "num_non_members": self.num_non_members,
                "strongest_attack": self.strongest.name,
                "selection": None if self.selection is None else self.selection.to_dict(),
                "noise_floor": None if self.noise_floor is None else self.noise_floor.to_dict(),
                "attacks": [a.to_dict() for a in self.attacks],
                "canary": None if self.canary is None else self.canary.to_dict()}

    @classmethod
    def from_dict(cls, config: Mapping) -> "AuditReport":
        if config.get("format_version") not in _READABLE_VERSIONS:
            raise ValueError(f"Unsupported report format_version {config.get('format_version')!r}"
                             f"; expected one of {_READABLE_VERSIONS}.")
        selection, floor, canary = (config.get(k) for k in ("selection", "noise_floor", "canary"))
        return cls(attacks=tuple(AttackResult.from_dict(a) for a in config["attacks"]),
                   target=dict(config.get("target", {})), num_members=config["num_members"],
                   num_non_members=config["num_non_members"],
                   selection=None if selection is None else
                   significance.StrongestAttack.from_dict(selection),
                   noise_floor=None if floor is None else significance.NoiseFloor.from_dict(floor),
                   canary=None if canary is None else cls.from_dict(canary))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "AuditReport":
        return cls.from_dict(json.loads(text))

    def _strongest_lines(self) -> list:
        if self.selection is None:
            return []
        chosen = self.selection
        key = metrics_lib.fpr_key(chosen.target_fpr)
        m = chosen.metrics
        interval = m.confidence_intervals.get(f"tpr_at_{key}_fpr")
        lines = [f"Strongest attack: **{chosen.name}**, chosen on a random half of the "
                 f"candidates ({chosen.num_selection}) by TPR at {100 * chosen.target_fpr:g}% "
                 f"FPR and measured on the other half ({chosen.num_report}): TPR "
                 f"{format_metric(chosen.report_tpr, interval)}, AUC "
                 f"{format_metric(m.auc, m.confidence_intervals.get('auc'), percent=False)}."]
        if self.noise_floor is not None:
            floor = self.noise_floor
            verdict = ("above the floor" if floor.is_above(chosen.report_tpr) else
                       "**not above the floor**: indistinguishable from no leakage")
            lines.append(f"Noise floor: {format_metric(floor.floor)} (the {100 * floor.quantile:g}"
                         f"th percentile of the best of {floor.num_attacks} attacks' TPR at "
                         f"{100 * floor.target_fpr:g}% FPR over {floor.num_permutations} "
                         f"permutations of the membership labels); the strongest attack is "
                         f"{verdict}.")
        return lines

    def to_markdown(self, title: Optional[str] = None) -> str:
        """A table of every attack with 95% intervals, the strongest one marked."""
        lines = [] if title is None else [f"## {title}\n"]
        facts = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.target.items())
        if facts:
            lines.append(f"Target: {facts}\n")
        lines.append(f"Evaluated on {self.num_members} members and {self.num_non_members} "
                     "non-members. TPR at FPR uses the step rule (no interpolation); brackets "
                     "are 95% bootstrap intervals over candidates.\n")
        lines.append("| attack | AUC | balanced acc. | advantage | TPR@1%FPR | TPR@0.1%FPR | "
                     "TPR@0%FPR | fitted-threshold acc. | seconds |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        strongest = self.strongest.name
        for a in self.attacks:
            m, ci = a.metrics, a.metrics.confidence_intervals
            name = f"**{a.name}** (strongest)" if a.name == strongest else a.name
            tprs = [format_metric(m.tpr_at_fpr.get(k), ci.get(f"tpr_at_{k}_fpr"))
                    for k in ("1pct", "0.1pct", "0pct")]
            lines.append(f"| {name} | {format_metric(m.auc, ci.get('auc'), percent=False)} | "
                         f"{format_metric(m.balanced_accuracy, ci.get('balanced_accuracy'))} | "
                         f"{m.advantage:.4f} | {' | '.join(tprs)} | "
                         f"{format_metric(a.threshold_accuracy)} | {a.seconds:.1f} |")
        lines += [""] + self._strongest_lines()
        text = "\n".join(lines) + "\n"
        if self.canary is not None:
            text += "\n" + self.canary.to_markdown(
                title="Canaries (worst case: IN vs OUT canaries)")
        return text

    def save(self, directory: str, predictions: Optional[AuditPredictions] = None) -> None:
        """Writes report.json, report.md, roc.png (and predictions.npz) into `directory`."""
        os.makedirs(directory, exist_ok=True)
        for name, text in (("report.json", self.to_json()), ("report.md", self.to_markdown())):
            path = os.path.join(directory, name)
            tmp = f"{path}.tmp-{os.getpid()}"  # One per process: shards may write alike.
            with open(tmp, "w") as f:
                f.write(text)
            os.replace(tmp, path)
        plotting.plot_roc_curves(
            [(f"{a.name} (AUC {a.metrics.auc:.3f})", a.roc_fpr, a.roc_tpr) for a in self.attacks],
            os.path.join(directory, "roc.png"), title="Membership inference ROC")
        if predictions is not None:
            predictions.save(os.path.join(directory, "predictions.npz"))

    @classmethod
    def load(cls, directory: str) -> "AuditReport":
        with open(os.path.join(directory, "report.json")) as f:
            return cls.from_json(f.read())
