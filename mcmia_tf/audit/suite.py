"""`run_audit`: every attack against one target model, in one call.

`audit_deployed_model` runs it on a deployed model (e.g. a `.tflite` file) behind
its `Predictor`.

Data roles (from a `MembershipSplit` over the training split `x, y`; see
`candidates.AuditCandidates`):

* candidates = members (label 1) + non-members (label 0) + canaries, if the split
  has any (label 1 for those the target trained on): every attack scores them all;
* shadow pool (disjoint from the candidates): N shadow models, each trained with
  the target's recipe on a random half of it, give the records the Shokri attack
  and the calibrated thresholds are fitted on; RMIA draws its population from it;
* reference models: K models trained with the same recipe on random halves of the
  candidates (Carlini et al.'s setting), in complementary pairs (ML Privacy Meter's),
  so that each candidate has exactly K/2 IN and K/2 OUT models, also among the first
  k models for every even k; LiRA (online / offline) and RMIA (online / offline)
  share them.

The split's `reference` set (the defender's D') is never touched. Every threshold
or classifier is fitted on shadow data only; evaluation scores are threshold-free.

Reported: every attack's metrics with 95% bootstrap intervals on members vs
non-members (and, separately, on IN vs OUT canaries); the strongest attack chosen
on a random half of those candidates and measured on the other half; the noise
floor of the best attack's TPR under permuted labels.
"""

import dataclasses
import os
import tempfile
import time
from typing import Dict, Mapping, Optional

import numpy as np

from mcmia_tf.audit import lira
from mcmia_tf.audit import predictors
from mcmia_tf.audit import shadow as shadow_lib
from mcmia_tf.audit import significance
from mcmia_tf.audit import threshold
from mcmia_tf.audit.candidates import AuditCandidates
from mcmia_tf.audit.config import ATTACK_NAMES
from mcmia_tf.audit.config import AuditConfig
from mcmia_tf.audit.reference_attacks import reference_attack_scores
from mcmia_tf.audit.reference_models import ReferenceModelCache
from mcmia_tf.audit.report import AttackResult, AuditPredictions, AuditReport, ScoredAttack
from mcmia_tf.data import draw_inclusion_masks
from mcmia_tf.data import draw_paired_inclusion_masks
from mcmia_tf.recipes.protocol import TrainingRecipe

__all__ = ["ATTACK_NAMES", "AuditConfig", "audit_deployed_model", "build_model_caches",
           "check_disjoint_roles", "run_audit"]

# The FPR the strongest attack is ranked and floored at, when the candidates resolve it.
_HEADLINE_FPR = 0.001
_COARSER_FPRS = (0.01, 0.1)


def check_disjoint_roles(members: np.ndarray, non_members: np.ndarray,
                         shadow_pool: np.ndarray) -> None:
    """Raises if members, non-members and the shadow pool share an index."""
    for (name_a, a), (name_b, b) in (
            (("members", members), ("non_members", non_members)),
            (("members", members), ("shadow_pool", shadow_pool)),
            (("non_members", non_members), ("shadow_pool", shadow_pool))):
        overlap = np.intersect1d(a, b)
        if overlap.size:
            raise ValueError(
                f"Invalid membership split: `{name_a}` and `{name_b}` overlap in {overlap.size} "
                f"indices (first: {overlap[:5].tolist()}). An example cannot play both roles; "
                "draw the split with `MembershipSplit.create`.")
    for name, index in (("members", members), ("non_members", non_members)):
        if len(index) == 0:
            raise ValueError(f"Invalid membership split: `{name}` is empty.")


def _candidates(x, y, split, config: AuditConfig) -> AuditCandidates:
    check_disjoint_roles(np.asarray(split.members), np.asarray(split.non_members),
                         np.asarray(split.shadow_pool))
    candidates = AuditCandidates.from_split(
        split, x, y, config.rmia_population_size if config.uses_rmia else 0, config.seed)
    if config.uses_rmia and len(candidates.population_y) == 0:
        raise ValueError("RMIA needs population data (known non-members no model trained on), "
                         "drawn from the split's shadow pool, which is empty. Create the split "
                         "with num_shadow_pool > 0, or remove rmia_* from `attacks`.")
    return candidates


def build_model_caches(x: np.ndarray, y: np.ndarray, split, recipe: TrainingRecipe,
                       config: AuditConfig, cache_dir: str) -> Dict[str, ReferenceModelCache]:
    """The shadow-model and reference-model caches an audit needs.

    Training them (`cache.train(shard_index, num_shards)`) is the whole cost of an
    audit; workers sharing `cache_dir` can call this and train their shards before
    one process runs `run_audit`, which then only loads the cached outputs.
    The reference models are queried on every view of the candidates and, for
    RMIA, on the population points (never trained on: query index -1).

    Returns:
      `{"shadow": cache, "lira": cache}`, with only the entries `config` needs.
    """
    candidates = _candidates(x, y, split, config)
    views = lira.augmented_views(candidates.x, config.flip, config.shift_pixels)
    return _build_caches(candidates, views, x, y, split, recipe, config, cache_dir)


def _build_caches(candidates: AuditCandidates, views, x, y, split, recipe: TrainingRecipe,
                  config: AuditConfig, cache_dir: str) -> Dict[str, ReferenceModelCache]:
    """`build_model_caches` on candidates and query views `run_audit` already built."""
    shadow_pool = np.asarray(split.shadow_pool)
    caches = {}
    if config.uses_shadow_models:
        if len(shadow_pool) < 2:
            raise ValueError("Shadow models need a shadow pool of at least 2 examples; the "
                             f"split has {len(shadow_pool)}.")
        caches["shadow"] = ReferenceModelCache(
            os.path.join(cache_dir, "shadow"), recipe, x[shadow_pool], y[shadow_pool],
            draw_inclusion_masks(len(shadow_pool), config.num_shadow_models, config.seed + 1),
            base_seed=config.seed + 1)
    if config.uses_reference_models:
        population = candidates.population_x
        caches["lira"] = ReferenceModelCache(
            os.path.join(cache_dir, "lira"), recipe, candidates.x, candidates.y,
            # Complementary pairs: the first 2, 4, ... models are balanced too, so the
            # attacks can also be measured with fewer of them (bench.audit's sweep).
            draw_paired_inclusion_masks(len(candidates), config.num_reference_models,
                                        config.seed),
            x_query=np.concatenate(views + ([population] if len(population) else [])),
            query_pool_index=np.r_[np.tile(np.arange(len(candidates)), len(views)),
                                   np.full(len(population), -1)],
            base_seed=config.seed)
    return caches


def _log(verbose: int, message: str) -> None:
    if verbose:
        print(f"[audit] {message}", flush=True)


def _headline_fpr(num_non_members: int) -> float:
    """0.1% FPR if half the non-members resolve it (>= 1 false positive), else coarser."""
    for fpr in (_HEADLINE_FPR,) + _COARSER_FPRS:
        if (num_non_members // 2) * fpr >= 1:
            return fpr
    return _COARSER_FPRS[-1]


def _report(attacks, index: np.ndarray, is_member: np.ndarray, config: AuditConfig,
            target_facts: Mapping) -> AuditReport:
    """Metrics of every attack on the candidates `index`, selection and noise floor."""
    labels = is_member[index]
    results = []
    for attack in attacks:
        accuracy = None
        if attack.decision_threshold is not None:
            accuracy = threshold.thresholded_balanced_accuracy(attack.scores[index], labels,
                                                               attack.decision_threshold)
        results.append(AttackResult.from_scores(
            attack.name, attack.family, attack.scores[index], labels,
            threshold_accuracy=accuracy, parameters=attack.parameters, seconds=attack.seconds,
            num_bootstrap=config.num_bootstrap, seed=config.seed))
    scores = {attack.name: attack.scores[index] for attack in attacks}
    fpr = _headline_fpr(int((~labels).sum()))
    selection = significance.select_strongest(scores, labels, seed=config.seed, target_fpr=fpr,
                                              num_bootstrap=config.num_bootstrap)
    floor = None
    if config.num_permutations:
        floor = significance.permutation_floor(scores, labels, target_fpr=fpr,
                                               num_permutations=config.num_permutations,
                                               seed=config.seed)
    return AuditReport(attacks=tuple(results), target=dict(target_facts),
                       num_members=int(labels.sum()), num_non_members=int((~labels).sum()),
                       selection=selection, noise_floor=floor)


def run_audit(target, x: np.ndarray, y: np.ndarray, split, recipe: Optional[TrainingRecipe] = None,
              config: AuditConfig = AuditConfig(), cache_dir: Optional[str] = None,
              output_dir: Optional[str] = None, save_predictions: bool = False,
              target_facts: Optional[Mapping[str, object]] = None, shard_index: int = 0,
              num_shards: int = 1, verbose: int = 1) -> AuditReport:
    """Audits `target` with every attack of `config`.

    Args:
      target: a tf_keras model, a saved-model path or a `Predictor` (for a `.tflite`
        file, `tflite_export.TFLitePredictor`).
      x: the training split the `split` indexes (inputs).
      y: its integer labels.
      split: a `mcmia_tf.data.MembershipSplit` (members = the target's training set;
        with canaries, the target also trained on the IN canaries).
      recipe: the `TrainingRecipe` the target was trained with; required for shadow,
        class-conditional, LiRA and RMIA attacks.
      config: an `AuditConfig`.
      cache_dir: folder for shadow / reference models and outputs (resumable). A
        temporary folder when None.
      output_dir: if set, the report folder (JSON, markdown, PNG ROC) is written there.
      save_predictions: also write `predictions.npz` into `output_dir`.
      target_facts: extra facts stored in the report (e.g. test accuracy).
      shard_index: with `num_shards`, train only this worker's share of the models.
      num_shards: number of workers training models into `cache_dir`.
      verbose: 1 prints progress.

    Returns:
      An `AuditReport` (members vs non-members), with `canary` set to the same audit
      on the canaries when the split has them.
    """
    predictor = predictors.as_predictor(target)
    if len(x) != len(y):
        raise ValueError("Invalid value for arguments `x` and `y`. Expected the same length. "
                         f"Received: len(x)={len(x)}, len(y)={len(y)}")
    candidates = _candidates(x, y, split, config)
    shadow_pool = np.asarray(split.shadow_pool)
    needs_recipe = config.uses_reference_models or "shadow" in config.attacks
    if needs_recipe and recipe is None:
        raise ValueError("Shadow-model, LiRA and RMIA attacks need the target's `recipe` to "
                         "train shadow / reference models; pass one (e.g. "
                         "StandardTrainingRecipe) or restrict `attacks` to metric attacks.")
    if cache_dir is None:
        cache_dir = tempfile.mkdtemp(prefix="mcmia_audit_")

    is_member = candidates.is_member
    y_candidates = predictors.validate_labels(candidates.y, predictor.num_classes,
                                              argument_name="y")
    views = lira.augmented_views(candidates.x, config.flip, config.shift_pixels)
    _log(verbose, f"querying the target on {len(candidates)} candidates x {len(views)} views")

    def predict(inputs):
        return predictors.validate_outputs(predictor.predict(inputs, config.batch_size),
                                           predictor.num_classes,
                                           argument_name="target outputs")

    target_view_outputs = [predict(view) for view in views]
    target_outputs = target_view_outputs[0]
    average = candidates.average_case
    correct = target_outputs.argmax(axis=1) == y_candidates
    facts = {"member_accuracy": float(correct[average][is_member[average]].mean()),
             "non_member_accuracy": float(correct[average][~is_member[average]].mean()),
             "output_type": predictor.output_type, **dict(target_facts or {})}

    attacks = []
    caches = (_build_caches(candidates, views, x, y, split, recipe, config, cache_dir)
              if recipe else {})
    shadow_outputs, shadow_seconds = None, 0.0
    if "shadow" in caches:
        start = time.time()
        _log(verbose, f"shadow models: {config.num_shadow_models} on halves of "
                      f"{len(shadow_pool)} shadow-pool examples")
        caches["shadow"].train(shard_index, num_shards, config.save_models, config.batch_size,
                               verbose)
        shadow_outputs = caches["shadow"].load_outputs()
        shadow_seconds = time.time() - start
    pool_labels = y[shadow_pool]

    for metric in config.metric_attacks:
        start = time.time()
        calibration = None
        if shadow_outputs is not None:
            calibration = threshold.fit_calibration(
                metric, shadow_outputs.outputs.reshape(-1, predictor.num_classes),
                np.tile(pool_labels, shadow_outputs.num_models),
                shadow_outputs.query_in.reshape(-1), shadow_outputs.output_type)
        # The raw statistic is the threshold-free attack; a shadow-calibrated global
        # threshold only adds a fitted decision on the same scale. (Shifting the scores
        # by the threshold instead would round away differences far below its size:
        # modified-entropy scores of confident examples differ around 1e-30.)
        scores = threshold.membership_statistic(metric, target_outputs, y_candidates,
                                                predictor.output_type)
        decision = None
        if calibration is not None and np.isfinite(calibration.global_threshold):
            decision = float(calibration.global_threshold)
        attacks.append(ScoredAttack(metric, "threshold", scores, time.time() - start,
                                    decision))
        if calibration is not None and config.class_conditional:
            start = time.time()
            scores = threshold.calibrated_scores(calibration, target_outputs, y_candidates,
                                                 predictor.output_type, class_conditional=True)
            attacks.append(ScoredAttack(
                f"{metric}_class_conditional", "threshold", scores,
                time.time() - start + shadow_seconds, 0.0,
                parameters={"num_shadow_models": config.num_shadow_models}))

    if "shadow" in config.attacks:
        start = time.time() - shadow_seconds
        attack = shadow_lib.ShadowAttack(config.shadow_classifier, seed=config.seed)
        attack.fit(shadow_outputs, pool_labels)
        scores = attack.score(target_outputs, y_candidates, predictor.output_type)
        attacks.append(ScoredAttack(
            f"shadow_{config.shadow_classifier}", "shadow", scores, time.time() - start,
            attack.decision_threshold(),
            parameters={"num_shadow_models": config.num_shadow_models}))

    reference = None
    if config.uses_reference_models:
        start = time.time()
        _log(verbose, f"reference models: {config.num_reference_models} on halves of "
                      f"{len(candidates)} candidates")
        caches["lira"].train(shard_index, num_shards, config.save_models, config.batch_size,
                             verbose)
        reference = caches["lira"].load_outputs()
        population_outputs = (predict(candidates.population_x) if config.uses_rmia else None)
        attacks.extend(reference_attack_scores(
            config, candidates, reference, target_view_outputs, predictor.output_type,
            population_outputs, training_seconds=time.time() - start))

    report = _report(attacks, average, is_member, config, facts)
    for result in report.attacks:
        m = result.metrics
        _log(verbose, f"{result.name}: AUC {m.auc:.4f}, TPR@0.1%FPR {m.tpr_at_fpr['0.1pct']:.4f}")
    if candidates.canaries is not None:
        canary_facts = {"canary_kind": split.canaries.kind, "num_canaries": candidates.num_canaries}
        report = dataclasses.replace(report, canary=_report(
            attacks, candidates.canaries, is_member, config, canary_facts))
    if output_dir is not None:
        predictions = None
        if save_predictions:
            n = len(candidates)
            predictions = AuditPredictions(
                target_outputs=target_outputs.astype(np.float32), labels=y_candidates,
                is_member=is_member, output_type=predictor.output_type,
                reference_outputs=None if reference is None else reference.outputs[:, :n],
                reference_in=None if reference is None else reference.query_in[:, :n],
                scores={a.name: a.scores for a in attacks})
        report.save(output_dir, predictions)
        _log(verbose, f"report written to {output_dir}")
    return report


def audit_deployed_model(predictor: predictors.Predictor, x: np.ndarray, y: np.ndarray, split,
                         recipe: Optional[TrainingRecipe] = None,
                         config: AuditConfig = AuditConfig(), cache_dir: Optional[str] = None,
                         verbose: int = 0) -> AuditReport:
    """Runs `run_audit` on what ships: the deployed model, behind its `Predictor`.

    Every attack queries exactly the deployed file (for a `.tflite` file,
    `tflite_export.TFLitePredictor(model_content)`). Quantisation perturbs the
    confidences that membership attacks read, so the deployed model's leakage can
    differ from the Keras model's; audit both with the same `cache_dir` to share
    the shadow and reference models, which are trained with the source model's recipe.

    Args:
      predictor: the deployed model as a `Predictor`.
      x, y: the training split indexed by `split`.
      split: the `MembershipSplit` the source model was trained with.
      recipe: the source model's `TrainingRecipe` (for shadow / reference models).
      config: which attacks to run.
      cache_dir: shared with the Keras model's audit to reuse its models.
      verbose: 1 prints progress.

    Returns:
      The `AuditReport` of the deployed model (`target["deployed"]` is True).

    Raises:
      TypeError: if `predictor` is not a `Predictor` (e.g. the file's bytes).
    """
    if not isinstance(predictor, predictors.Predictor):
        raise TypeError("Invalid value for argument `predictor`. Expected a "
                        "`mcmia_tf.audit.Predictor` of the deployed model, e.g. "
                        "`tflite_export.TFLitePredictor(model_content)` for a `.tflite` file. "
                        f"Received: {type(predictor).__name__}")
    return run_audit(predictor, x, y, split, recipe=recipe, config=config, cache_dir=cache_dir,
                     target_facts={"deployed": True}, verbose=verbose)
