"""`results.json`: one entry per method, its schema, and the mean / spread over seeds.

An entry (per method, per seed):

    {"name", "config", "train_accuracy", "test_accuracy", "sparsity", "compression_rate",
     "epsilon" (null unless DP), "privacy" (DP: sigma, C, clipping, sampling, ...),
     "attacks": {attack: {"balanced_accuracy", "auc", "advantage",
                          "tpr_at_fpr": {"0.01", "0.001", "0"},
                          "intervals": {"auc": [low, high], "balanced_accuracy": [...],
                                        "tpr_at_fpr": {"0.01": [...], ...}}}},
     "strongest_attack",
     "strongest": {"attack", "target_fpr", "tpr", "tpr_interval", "auc", "auc_interval",
                   "selection_tpr", "num_selection", "num_report"}  (chosen on a random
                   half of the candidates, measured on the other half),
     "noise_floor": {"target_fpr", "floor", "null_mean", "quantile", "num_permutations"},
     "canary": null or {"kind", "num_canaries", "attacks", "strongest", "noise_floor"}
               (the same audit on IN vs OUT canaries),
     "tflite": {"sizes": {format: {"bytes", "zipped_bytes"}}, "int8_accuracy",
                "agreement", "deployed_format", "deployed_tpr_at_0.1pct_fpr"},
     "layers": [{"path", "sparsity"}], "roc": {"fpr", "tpr"} (strongest attack),
     "wall_time": {"train", "audit", "export"} (seconds)}

With several seeds, `methods` holds the mean of every number over seeds and
`spread` the standard deviations (population, ddof=0) under the same keys;
`per_seed` keeps every seed's entries.
"""

import json
from typing import Dict, List, Mapping, Optional

import numpy as np

from mcmia_tf.study.config import dp_epsilon

__all__ = ["ENTRY_KEYS", "FPR_KEYS", "method_entry", "read_json", "study_results",
           "validate_results", "without_wall_times"]

# AttackMetrics stores TPRs under "1pct" / "0.1pct" / "0pct"; results.json uses the FPR values.
FPR_KEYS = {"0.01": "1pct", "0.001": "0.1pct", "0": "0pct"}
ENTRY_KEYS = ("name", "config", "train_accuracy", "test_accuracy", "sparsity",
              "compression_rate", "epsilon", "attacks", "strongest_attack", "strongest",
              "noise_floor", "canary", "tflite", "layers", "roc", "wall_time")
_ATTACK_KEYS = ("balanced_accuracy", "auc", "advantage", "tpr_at_fpr", "intervals")


def read_json(path: str):
    with open(path) as f:
        return json.load(f)


def _interval(metrics: Mapping, name: str):
    bounds = metrics.get("confidence_intervals", {}).get(name)
    return None if bounds is None else [float(b) for b in bounds]


def _attack_metrics(attack: Mapping) -> dict:
    metrics = attack["metrics"]
    return {"balanced_accuracy": float(metrics["balanced_accuracy"]),
            "auc": float(metrics["auc"]), "advantage": float(metrics["advantage"]),
            "tpr_at_fpr": {key: float(metrics["tpr_at_fpr"][name])
                           for key, name in FPR_KEYS.items()},
            "intervals": {"auc": _interval(metrics, "auc"),
                          "balanced_accuracy": _interval(metrics, "balanced_accuracy"),
                          "tpr_at_fpr": {key: _interval(metrics, f"tpr_at_{name}_fpr")
                                         for key, name in FPR_KEYS.items()}}}


def _strongest(audit: Mapping) -> Mapping:
    return next(a for a in audit["attacks"] if a["name"] == audit["strongest_attack"])


def _selection(audit: Mapping) -> dict:
    """The out-of-sample strongest attack of an `AuditReport.to_dict()`."""
    selection = audit["selection"]
    metrics = selection["metrics"]
    key = next(name for name in metrics["tpr_at_fpr"]
               if abs(float(name[:-3]) / 100 - selection["target_fpr"]) < 1e-12)
    return {"attack": selection["name"], "target_fpr": selection["target_fpr"],
            "tpr": float(metrics["tpr_at_fpr"][key]),
            "tpr_interval": _interval(metrics, f"tpr_at_{key}_fpr"),
            "auc": float(metrics["auc"]), "auc_interval": _interval(metrics, "auc"),
            "selection_tpr": selection["selection_tpr"],
            "num_selection": selection["num_selection"], "num_report": selection["num_report"]}


def _floor(audit: Mapping) -> Optional[dict]:
    floor = audit.get("noise_floor")
    if floor is None:
        return None
    return {key: floor[key] for key in ("target_fpr", "floor", "null_mean", "quantile",
                                        "num_permutations")}


def _audit_summary(audit: Mapping) -> dict:
    return {"attacks": {a["name"]: _attack_metrics(a) for a in audit["attacks"]},
            "strongest_attack": audit["strongest_attack"], "strongest": _selection(audit),
            "noise_floor": _floor(audit)}


def method_entry(method: str, trained: Mapping, audited: Mapping, exported: Mapping,
                 wall_time: Mapping[str, float]) -> dict:
    """Builds one method's entry from its train, audit and export stage results."""
    strongest = _strongest(audited)
    summary = _audit_summary(audited)
    canary = None
    if audited.get("canary") is not None:
        facts = audited["canary"]["target"]
        canary = {"kind": facts["canary_kind"], "num_canaries": facts["num_canaries"],
                  **_audit_summary(audited["canary"])}
    files = exported["files"]
    deployed = exported["deployed_format"]
    deployed_strongest = _strongest(exported["deployed_audit"])
    return {
        "name": method,
        "config": trained["config"],
        "train_accuracy": trained["train_accuracy"],
        "test_accuracy": trained["test_accuracy"],
        "sparsity": trained["sparsity"],
        "compression_rate": trained["compression_rate"],
        "epsilon": trained["epsilon"],
        # How a DP number was trained: sigma, clipping, sampling (null for other methods).
        "privacy": trained.get("privacy"),
        **summary,
        "canary": canary,
        "tflite": {
            "sizes": {name: {"bytes": row["bytes"], "zipped_bytes": row["zipped_bytes"]}
                      for name, row in files.items()},
            "int8_accuracy": files[deployed]["test_accuracy"],
            "agreement": files[deployed]["agreement"],
            "deployed_format": deployed,
            "deployed_strongest_attack": deployed_strongest["name"],
            "deployed_tpr_at_0.1pct_fpr": float(
                deployed_strongest["metrics"]["tpr_at_fpr"]["0.1pct"]),
            # The deployed model's own audit: out-of-sample strongest attack and its floor.
            "strongest": _selection(exported["deployed_audit"]),
            "noise_floor": _floor(exported["deployed_audit"]),
        },
        "layers": [{"path": layer["path"], "sparsity": layer["sparsity"]}
                   for layer in trained["layers"]],
        "roc": {"attack": strongest["name"], "fpr": strongest["roc_fpr"],
                "tpr": strongest["roc_tpr"]},
        "wall_time": {k: float(v) for k, v in wall_time.items()},
    }


def _mean_and_spread(values: List):
    """Mean and standard deviation of equally shaped JSON values (numbers averaged)."""
    first = values[0]
    if isinstance(first, bool) or first is None or isinstance(first, str):
        return first, None
    if isinstance(first, (int, float)):
        if any(v is None for v in values):
            return None, None
        array = np.asarray(values, np.float64)
        return float(array.mean()), float(array.std())
    if isinstance(first, Mapping):
        mean, spread = {}, {}
        for key in first:
            mean[key], s = _mean_and_spread([v[key] for v in values])
            if s is not None:
                spread[key] = s
        return mean, spread or None
    if isinstance(first, list):
        if len({len(v) for v in values}) != 1:
            return first, None
        pairs = [_mean_and_spread([v[i] for v in values]) for i in range(len(first))]
        spreads = [s for _, s in pairs]
        return [m for m, _ in pairs], (spreads if any(s is not None for s in spreads) else None)
    return first, None


def study_results(config, dataset, per_seed: Mapping[int, Mapping[str, dict]]) -> dict:
    """The `results.json` content of a study."""
    seeds = sorted(per_seed)
    methods, spread = [], {}
    for method in config.methods:
        entries = [per_seed[s][method] for s in seeds]
        mean, method_spread = _mean_and_spread(entries)
        if len(seeds) > 1:
            # Data-order choices ("strongest attack") are the first seed's; numbers are means.
            mean["strongest_attack_per_seed"] = [e["strongest_attack"] for e in entries]
            spread[method] = method_spread
        methods.append(mean)
    return {
        "study": config.to_dict(),
        "dataset": dataset.name,
        "model": config.model,
        "target_sparsity": config.sparsity,
        "num_members": config.num_members,
        "num_reference_models": config.num_reference_models,
        "seeds": seeds,
        "methods": methods,
        "spread": spread if len(seeds) > 1 else None,
        "per_seed": {str(s): [per_seed[s][m] for m in config.methods] for s in seeds},
    }


def _problems_in_entry(entry: Mapping) -> List[str]:
    name = entry.get("name", "?")
    problems = [f"{name}: missing key {k!r}" for k in ENTRY_KEYS if k not in entry]
    for key in ("train_accuracy", "test_accuracy", "sparsity"):
        value = entry.get(key)
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            problems.append(f"{name}: {key}={value!r} is not in [0, 1]")
    if not isinstance(entry.get("compression_rate"), (int, float)) or \
            entry["compression_rate"] < 1:
        problems.append(f"{name}: compression_rate={entry.get('compression_rate')!r} < 1")
    if entry.get("name") == "dp" or dp_epsilon(str(entry.get("name"))) is not None:
        if not isinstance(entry.get("epsilon"), (int, float)) or entry["epsilon"] <= 0:
            problems.append(f"{name}: epsilon={entry.get('epsilon')!r} is not a positive number")
    elif entry.get("epsilon") is not None:
        problems.append(f"{name}: epsilon must be null for a non-DP method")
    attacks = entry.get("attacks") or {}
    if not attacks:
        problems.append(f"{name}: no attack results")
    for attack, metrics in attacks.items():
        for key in _ATTACK_KEYS:
            if key not in metrics:
                problems.append(f"{name}/{attack}: missing {key!r}")
        tprs = metrics.get("tpr_at_fpr", {})
        if sorted(tprs) != sorted(FPR_KEYS):
            problems.append(f"{name}/{attack}: tpr_at_fpr keys {sorted(tprs)} != "
                            f"{sorted(FPR_KEYS)}")
        for key in ("balanced_accuracy", "auc"):
            if not 0 <= metrics.get(key, -1) <= 1:
                problems.append(f"{name}/{attack}: {key} outside [0, 1]")
        intervals = metrics.get("intervals", {})
        for key in ("auc", "balanced_accuracy"):
            bounds = intervals.get(key)
            if bounds is not None and not 0 <= bounds[0] <= bounds[1] <= 1:
                problems.append(f"{name}/{attack}: {key} interval {bounds} is not in [0, 1]")
    strongest = entry.get("strongest") or {}
    if strongest.get("attack") != entry.get("strongest_attack"):
        problems.append(f"{name}: strongest.attack {strongest.get('attack')!r} is not "
                        f"strongest_attack {entry.get('strongest_attack')!r}")
    canary = entry.get("canary")
    if canary is not None:
        missing = [k for k in ("kind", "num_canaries", "attacks", "strongest", "noise_floor")
                   if k not in canary]
        if missing:
            problems.append(f"{name}: canary section misses {missing}")
    if entry.get("strongest_attack") not in attacks:
        problems.append(f"{name}: strongest_attack {entry.get('strongest_attack')!r} is not an "
                        "attack of the entry")
    tflite = entry.get("tflite") or {}
    for key in ("sizes", "int8_accuracy", "agreement", "deployed_tpr_at_0.1pct_fpr"):
        if key not in tflite:
            problems.append(f"{name}: tflite.{key} missing")
    for fmt, size in (tflite.get("sizes") or {}).items():
        if not size.get("bytes", 0) > 0 or not size.get("zipped_bytes", 0) > 0:
            problems.append(f"{name}: tflite size of {fmt} is not positive")
    return problems


def validate_results(results: Mapping) -> None:
    """Raises ValueError listing every way `results` departs from the schema above."""
    problems: List[str] = []
    for key in ("study", "dataset", "model", "seeds", "methods", "per_seed"):
        if key not in results:
            problems.append(f"missing top-level key {key!r}")
    for entry in results.get("methods", []):
        problems.extend(_problems_in_entry(entry))
    names = [e.get("name") for e in results.get("methods", [])]
    if len(set(names)) != len(names):
        problems.append(f"repeated method entries: {names}")
    if problems:
        raise ValueError("results.json does not follow the schema:\n  " + "\n  ".join(problems))


def without_wall_times(results: Mapping) -> Dict:
    """A copy without the wall-time fields: what must be identical across resumed runs."""
    def strip(value):
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if k not in ("wall_time", "seconds")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(results)
