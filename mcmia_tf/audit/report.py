"""Audit results: one `AttackResult` per attack, an `AuditReport` over all of them.

Both are frozen dataclasses that round-trip through `to_dict()` / JSON. A report
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

__all__ = ["AttackResult", "AuditPredictions", "AuditReport", "compact_roc"]

_FORMAT_VERSION = 1
# FPR grid of the ROC stored in JSON: dense on the log scale where leakage matters.
_ROC_GRID = np.unique(np.r_[0.0, np.logspace(-5, 0, 201)])


def compact_roc(scores: np.ndarray, is_member: np.ndarray) -> Tuple[Tuple[float, ...],
                                                                   Tuple[float, ...]]:
    """The ROC at a fixed log-spaced FPR grid (step rule of `metrics.tpr_at_fpr`)."""
    roc = metrics_lib.roc_curve(scores, is_member)
    tpr = [metrics_lib.tpr_at_fpr(roc, fpr) for fpr in _ROC_GRID]
    return tuple(float(f) for f in _ROC_GRID), tuple(tpr)


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


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """All attacks of one audit of one target model.

    Attributes:
      attacks: one `AttackResult` per attack.
      target: facts about the target (name, train / test accuracy, ...).
      num_members: evaluated members.
      num_non_members: evaluated non-members.
    """

    attacks: Tuple[AttackResult, ...]
    target: Mapping[str, object] = dataclasses.field(default_factory=dict)
    num_members: int = 0
    num_non_members: int = 0

    def __post_init__(self):
        object.__setattr__(self, "attacks", tuple(self.attacks))
        if not self.attacks:
            raise ValueError("An AuditReport needs at least one attack result.")

    @property
    def strongest(self) -> AttackResult:
        """The attack with the highest TPR at 0.1% FPR (ties: highest AUC)."""
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
                "attacks": [a.to_dict() for a in self.attacks]}

    @classmethod
    def from_dict(cls, config: Mapping) -> "AuditReport":
        if config.get("format_version") != _FORMAT_VERSION:
            raise ValueError(f"Unsupported report format_version {config.get('format_version')!r}"
                             f"; expected {_FORMAT_VERSION}.")
        return cls(attacks=tuple(AttackResult.from_dict(a) for a in config["attacks"]),
                   target=dict(config.get("target", {})), num_members=config["num_members"],
                   num_non_members=config["num_non_members"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "AuditReport":
        return cls.from_dict(json.loads(text))

    def to_markdown(self) -> str:
        """A table of every attack, the strongest one marked."""
        lines = []
        facts = ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.target.items())
        if facts:
            lines.append(f"Target: {facts}\n")
        lines.append(f"Evaluated on {self.num_members} members and {self.num_non_members} "
                     "non-members. TPR at FPR uses the step rule (no interpolation).\n")
        lines.append("| attack | AUC | balanced acc. | advantage | TPR@1%FPR | TPR@0.1%FPR | "
                     "TPR@0%FPR | fitted-threshold acc. | seconds |")
        lines.append("|---|---|---|---|---|---|---|---|---|")
        strongest = self.strongest.name

        def pct(value):
            return "n/a" if value is None else f"{100 * value:.2f}%"

        for a in self.attacks:
            row = a.summary_row()
            name = f"**{a.name}** (strongest)" if a.name == strongest else a.name
            lines.append(f"| {name} | {row['auc']:.4f} | {pct(row['balanced_accuracy'])} | "
                         f"{row['advantage']:.4f} | {pct(row['tpr_at_1pct_fpr'])} | "
                         f"{pct(row['tpr_at_0.1pct_fpr'])} | {pct(row['tpr_at_0pct_fpr'])} | "
                         f"{pct(row['threshold_accuracy'])} | {row['seconds']:.1f} |")
        return "\n".join(lines) + "\n"

    def save(self, directory: str, predictions: Optional[AuditPredictions] = None) -> None:
        """Writes report.json, report.md, roc.png (and predictions.npz) into `directory`."""
        os.makedirs(directory, exist_ok=True)
        for name, text in (("report.json", self.to_json()), ("report.md", self.to_markdown())):
            path = os.path.join(directory, name)
            with open(f"{path}.tmp", "w") as f:
                f.write(text)
            os.replace(f"{path}.tmp", path)
        plotting.plot_roc_curves(
            [(f"{a.name} (AUC {a.metrics.auc:.3f})", a.roc_fpr, a.roc_tpr) for a in self.attacks],
            os.path.join(directory, "roc.png"), title="Membership inference ROC")
        if predictions is not None:
            predictions.save(os.path.join(directory, "predictions.npz"))

    @classmethod
    def load(cls, directory: str) -> "AuditReport":
        with open(os.path.join(directory, "report.json")) as f:
            return cls.from_json(f.read())
