"""Runs tensorflow-privacy's membership-inference library on an audit's `predictions.npz`.

    python -m bench.tf_privacy_mia --predictions=audit_report/predictions.npz \
        --output_json=tf_privacy_mia.json

Prints, side by side, tensorflow-privacy's attacks (threshold, entropy threshold,
logistic regression, MLP, random forest, k-NN; its trained attacks fit on part of
the member / non-member records and are scored on the rest, as that library
does) and mcmia_tf's attacks stored in the same file, with the same metrics: AUC,
attacker advantage and TPR at 1% and 0.1% FPR (step rule max{TPR : FPR <= t}).

tensorflow-privacy 0.9.0's wheel no longer ships this library (its
`privacy_tests` package is missing). The 0.8.12 wheel has it; install it beside
the project without touching the pinned stack, e.g.

    pip install --no-deps --target=/opt/tfp08 tensorflow-privacy==0.8.12
    pip install --target=/opt/tfp08_deps statsmodels pandas patsy
    PYTHONPATH=/opt/tfp08:/opt/tfp08_deps python -m bench.tf_privacy_mia ...
"""

import sys
from typing import Dict, List

from absl import app
from absl import flags
import numpy as np

from bench import output
from mcmia_tf.audit import metrics as metrics_lib

_PREDICTIONS = flags.DEFINE_string("predictions", None, "predictions.npz of an audit.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Write the rows here as JSON.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of tensorflow-privacy's trained attacks.")
flags.mark_flag_as_required("predictions")

_FPRS = (0.01, 0.001)


def _import_tf_privacy_mia():
    """tensorflow-privacy's MIA modules, or a SystemExit saying how to install them."""
    sys.skip_tf_privacy_import = True
    # scikit-learn >= 1.5 moved `parallel_backend` to joblib; the 0.8.x library imports the
    # old name. Provide it so the unchanged library runs on the pinned scikit-learn.
    import joblib  # pylint: disable=g-import-not-at-top
    import sklearn.utils  # pylint: disable=g-import-not-at-top
    if not hasattr(sklearn.utils, "parallel_backend"):
        sklearn.utils.parallel_backend = joblib.parallel_backend
    try:
        from tensorflow_privacy.privacy.privacy_tests.membership_inference_attack import (  # pylint: disable=g-import-not-at-top
            data_structures, membership_inference_attack)
    except ImportError as err:
        raise SystemExit(
            f"tensorflow-privacy's membership-inference library is not importable ({err}). "
            "The 0.9.0 wheel does not ship it; see this module's docstring for installing "
            "the 0.8.12 wheel beside the project.") from err
    return data_structures, membership_inference_attack


def _tpr_at(fpr: np.ndarray, tpr: np.ndarray, target: float) -> float:
    allowed = fpr <= target
    return float(tpr[allowed].max()) if allowed.any() else 0.0


def _row(source: str, attack: str, fpr: np.ndarray, tpr: np.ndarray, auc: float) -> Dict:
    return {"source": source, "attack": attack, "auc": float(auc),
            "advantage": float(np.max(tpr - fpr)),
            "tpr_at_1pct_fpr": _tpr_at(fpr, tpr, 0.01),
            "tpr_at_0.1pct_fpr": _tpr_at(fpr, tpr, 0.001)}


def run(path: str, seed: int) -> List[Dict]:
    data_structures, mia = _import_tf_privacy_mia()
    saved = np.load(path)
    outputs, labels, is_member = saved["target_outputs"], saved["labels"], saved["is_member"]
    logits_or_probs = {"logits_train": outputs[is_member], "logits_test": outputs[~is_member]} \
        if str(saved["output_type"]) == "logits" else {
            "probs_train": outputs[is_member], "probs_test": outputs[~is_member]}
    attack_input = data_structures.AttackInputData(
        labels_train=labels[is_member], labels_test=labels[~is_member], **logits_or_probs)
    attack_types = [data_structures.AttackType.THRESHOLD_ATTACK,
                    data_structures.AttackType.THRESHOLD_ENTROPY_ATTACK,
                    data_structures.AttackType.LOGISTIC_REGRESSION,
                    data_structures.AttackType.MULTI_LAYERED_PERCEPTRON,
                    data_structures.AttackType.RANDOM_FOREST,
                    data_structures.AttackType.K_NEAREST_NEIGHBORS]
    np.random.seed(seed)  # the library's trained attacks draw their split from numpy's state
    results = mia.run_attacks(attack_input, data_structures.SlicingSpec(entire_dataset=True),
                              attack_types=attack_types)
    rows = []
    for result in results.single_attack_results:
        roc = result.roc_curve
        rows.append(_row("tensorflow-privacy", result.attack_type.name.lower(),
                         np.asarray(roc.fpr), np.asarray(roc.tpr), result.get_auc()))
    for key in saved.files:
        if key.startswith("scores/"):
            curve = metrics_lib.roc_curve(saved[key], is_member)
            rows.append(_row("mcmia_tf", key[len("scores/"):], curve.fpr, curve.tpr,
                             metrics_lib.compute_attack_metrics(saved[key], is_member).auc))
    return rows


def markdown_table(rows: List[Dict]) -> str:
    lines = ["| library | attack | AUC | advantage | TPR@1%FPR | TPR@0.1%FPR |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['source']} | {row['attack']} | {row['auc']:.4f} | "
                     f"{row['advantage']:.4f} | {100 * row['tpr_at_1pct_fpr']:.2f}% | "
                     f"{100 * row['tpr_at_0.1pct_fpr']:.2f}% |")
    return "\n".join(lines)


def main(argv):
    del argv
    rows = run(_PREDICTIONS.value, _SEED.value)
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value)


if __name__ == "__main__":
    app.run(main)
