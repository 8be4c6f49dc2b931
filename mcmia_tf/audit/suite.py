"""`run_audit`: every attack against one target model, in one call.

Data roles (from a `MembershipSplit` over the training split `x, y`):

* candidates = members (label 1) + non-members (label 0): the evaluation set;
* shadow pool (disjoint from the candidates): N shadow models, each trained with
  the target's recipe on a random half of it, give the records the Shokri attack
  and the calibrated thresholds are fitted on;
* LiRA reference models: K models trained with the same recipe on random halves
  of the candidates (Carlini et al.'s setting), so that each candidate has about
  K/2 IN and K/2 OUT models; the offline variant uses only the OUT ones.

The split's `reference` set (the defender's D') is never touched. Every threshold
or classifier is fitted on shadow data only; evaluation scores are threshold-free.
"""

import dataclasses
import os
import tempfile
import time
from typing import Dict, Mapping, Optional, Sequence

import numpy as np

from mcmia_tf.audit import lira
from mcmia_tf.audit import predictors
from mcmia_tf.audit import shadow as shadow_lib
from mcmia_tf.audit import threshold
from mcmia_tf.audit.reference_models import ReferenceModelCache, TrainingRecipe
from mcmia_tf.audit.report import AttackResult, AuditPredictions, AuditReport
from mcmia_tf.data import draw_inclusion_masks

__all__ = ["ATTACK_NAMES", "AuditConfig", "build_model_caches", "check_disjoint_roles",
           "run_audit"]

ATTACK_NAMES = threshold.METRIC_NAMES + ("shadow", "lira_online", "lira_offline")


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """Which attacks to run and how.

    Attributes:
      attacks: subset of `ATTACK_NAMES`.
      num_reference_models: K LiRA reference models (>= 2; 16+ recommended).
      num_shadow_models: N shadow models for the Shokri attack and threshold
        calibration; 0 disables both (metric attacks are then reported as ROCs only).
      class_conditional: also report class-conditional threshold attacks (needs
        shadow models).
      fixed_variance: LiRA with one pooled variance (recommended below 64 models).
      flip: add horizontally flipped LiRA queries (images only).
      shift_pixels: add 4 shifted LiRA queries by this many pixels (images only).
      shadow_classifier: one of `shadow.ATTACK_CLASSIFIERS`.
      num_bootstrap: bootstrap replicates for confidence intervals (0 = none).
      save_models: keep reference / shadow models on disk, not only their outputs.
      batch_size: prediction batch size.
      seed: seed of the inclusion masks, model seeds, classifiers and bootstrap.
    """

    attacks: Sequence[str] = ATTACK_NAMES
    num_reference_models: int = 16
    num_shadow_models: int = 4
    class_conditional: bool = True
    fixed_variance: bool = True
    flip: bool = False
    shift_pixels: int = 0
    shadow_classifier: str = "mlp"
    num_bootstrap: int = 0
    save_models: bool = True
    batch_size: int = 256
    seed: int = 0

    def __post_init__(self):
        object.__setattr__(self, "attacks", tuple(self.attacks))
        unknown = [a for a in self.attacks if a not in ATTACK_NAMES]
        if unknown or not self.attacks:
            raise ValueError(f"Invalid value for argument `attacks`. Expected a non-empty subset "
                             f"of {ATTACK_NAMES}. Received: attacks={self.attacks}")
        if self.uses_lira and self.num_reference_models < 2:
            raise ValueError("Invalid value for argument `num_reference_models`. LiRA needs at "
                             "least 2 reference models (16 or more for a meaningful low-FPR "
                             f"TPR). Received: num_reference_models={self.num_reference_models}")
        if "lira_offline" in self.attacks and self.num_reference_models < 4:
            # Each candidate is OUT for floor(K / 2) models; offline LiRA needs 2 of them.
            raise ValueError("Invalid value for argument `num_reference_models`. Offline LiRA "
                             "needs at least 4 reference models (2 OUT models per candidate). "
                             f"Received: num_reference_models={self.num_reference_models}")
        if "shadow" in self.attacks and self.num_shadow_models < 1:
            raise ValueError("Invalid value for argument `num_shadow_models`. The shadow attack "
                             "needs at least 1 shadow model. Received: "
                             f"num_shadow_models={self.num_shadow_models}")
        if self.shadow_classifier not in shadow_lib.ATTACK_CLASSIFIERS:
            raise ValueError("Invalid value for argument `shadow_classifier`. Expected one of "
                             f"{shadow_lib.ATTACK_CLASSIFIERS}. Received: "
                             f"shadow_classifier={self.shadow_classifier!r}")

    @property
    def uses_lira(self) -> bool:
        return any(a.startswith("lira") for a in self.attacks)

    @property
    def metric_attacks(self) -> Sequence[str]:
        return [a for a in self.attacks if a in threshold.METRIC_NAMES]

    @property
    def uses_shadow_models(self) -> bool:
        return "shadow" in self.attacks or (self.num_shadow_models > 0 and
                                            bool(self.metric_attacks))


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


def build_model_caches(x: np.ndarray, y: np.ndarray, split, recipe: TrainingRecipe,
                       config: AuditConfig, cache_dir: str) -> Dict[str, ReferenceModelCache]:
    """The shadow-model and LiRA reference-model caches an audit needs.

    Training them (`cache.train(shard_index, num_shards)`) is the whole cost of an
    audit; workers sharing `cache_dir` can call this and train their shards before
    one process runs `run_audit`, which then only loads the cached outputs.

    Returns:
      `{"shadow": cache, "lira": cache}`, with only the entries `config` needs.
    """
    members, non_members = np.asarray(split.members), np.asarray(split.non_members)
    shadow_pool = np.asarray(split.shadow_pool)
    check_disjoint_roles(members, non_members, shadow_pool)
    caches = {}
    if config.uses_shadow_models:
        if len(shadow_pool) < 2:
            raise ValueError("Shadow models need a shadow pool of at least 2 examples; the "
                             f"split has {len(shadow_pool)}.")
        caches["shadow"] = ReferenceModelCache(
            os.path.join(cache_dir, "shadow"), recipe, x[shadow_pool], y[shadow_pool],
            draw_inclusion_masks(len(shadow_pool), config.num_shadow_models, config.seed + 1),
            base_seed=config.seed + 1)
    if config.uses_lira:
        candidates = np.r_[members, non_members]
        views = lira.augmented_views(x[candidates], config.flip, config.shift_pixels)
        caches["lira"] = ReferenceModelCache(
            os.path.join(cache_dir, "lira"), recipe, x[candidates], y[candidates],
            draw_inclusion_masks(len(candidates), config.num_reference_models, config.seed),
            x_query=np.concatenate(views),
            query_pool_index=np.tile(np.arange(len(candidates)), len(views)),
            base_seed=config.seed)
    return caches


def _log(verbose: int, message: str) -> None:
    if verbose:
        print(f"[audit] {message}", flush=True)


def run_audit(target, x: np.ndarray, y: np.ndarray, split, recipe: Optional[TrainingRecipe] = None,
              config: AuditConfig = AuditConfig(), cache_dir: Optional[str] = None,
              output_dir: Optional[str] = None, save_predictions: bool = False,
              target_facts: Optional[Mapping[str, object]] = None, shard_index: int = 0,
              num_shards: int = 1, verbose: int = 1) -> AuditReport:
    """Audits `target` with every attack of `config`.

    Args:
      target: a tf_keras model, a saved-model path, a `.tflite` path or a `Predictor`.
      x: the training split the `split` indexes (inputs).
      y: its integer labels.
      split: a `mcmia_tf.data.MembershipSplit` (members = the target's training set).
      recipe: the `TrainingRecipe` the target was trained with; required for shadow,
        class-conditional and LiRA attacks.
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
      An `AuditReport`.
    """
    predictor = predictors.as_predictor(target)
    if len(x) != len(y):
        raise ValueError("Invalid value for arguments `x` and `y`. Expected the same length. "
                         f"Received: len(x)={len(x)}, len(y)={len(y)}")
    members, non_members = np.asarray(split.members), np.asarray(split.non_members)
    shadow_pool = np.asarray(split.shadow_pool)
    check_disjoint_roles(members, non_members, shadow_pool)
    needs_recipe = config.uses_lira or "shadow" in config.attacks
    if needs_recipe and recipe is None:
        raise ValueError("Shadow-model and LiRA attacks need the target's `recipe` to train "
                         "shadow / reference models; pass one (e.g. StandardTrainingRecipe) or "
                         "restrict `attacks` to metric attacks.")
    if cache_dir is None:
        cache_dir = tempfile.mkdtemp(prefix="mcmia_audit_")

    candidates = np.r_[members, non_members]
    is_member = np.r_[np.ones(len(members), bool), np.zeros(len(non_members), bool)]
    x_candidates = x[candidates]
    y_candidates = predictors.validate_labels(y[candidates], predictor.num_classes,
                                              argument_name="y")
    views = lira.augmented_views(x_candidates, config.flip, config.shift_pixels)
    _log(verbose, f"querying the target on {len(candidates)} candidates x {len(views)} views")
    target_view_outputs = [predictors.validate_outputs(
        predictor.predict(view, config.batch_size), predictor.num_classes,
        argument_name="target outputs") for view in views]
    target_outputs = target_view_outputs[0]
    correct = target_outputs.argmax(axis=1) == y_candidates
    facts = {"member_accuracy": float(correct[is_member].mean()),
             "non_member_accuracy": float(correct[~is_member].mean()),
             "output_type": predictor.output_type, **dict(target_facts or {})}

    results = []

    def add(name, family, scores, start, threshold_accuracy=None, **parameters):
        results.append(AttackResult.from_scores(
            name, family, scores, is_member, threshold_accuracy=threshold_accuracy,
            parameters=parameters, seconds=time.time() - start,
            num_bootstrap=config.num_bootstrap, seed=config.seed))
        m = results[-1].metrics
        _log(verbose, f"{name}: AUC {m.auc:.4f}, TPR@0.1%FPR {m.tpr_at_fpr['0.1pct']:.4f}")

    caches = build_model_caches(x, y, split, recipe, config, cache_dir) if recipe else {}
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
        scores = threshold.membership_statistic(metric, target_outputs, y_candidates,
                                                predictor.output_type)
        accuracy = None
        if calibration is not None:
            _, accuracy = threshold.run_metric_attack(metric, target_outputs, y_candidates,
                                                      is_member, predictor.output_type,
                                                      calibration, class_conditional=False)
        add(metric, "threshold", scores, start, accuracy)
        if calibration is not None and config.class_conditional:
            start = time.time()
            scores, accuracy = threshold.run_metric_attack(
                metric, target_outputs, y_candidates, is_member, predictor.output_type,
                calibration, class_conditional=True)
            add(f"{metric}_class_conditional", "threshold", scores, start - shadow_seconds,
                accuracy, num_shadow_models=config.num_shadow_models)

    if "shadow" in config.attacks:
        start = time.time() - shadow_seconds
        attack = shadow_lib.ShadowAttack(config.shadow_classifier, seed=config.seed)
        attack.fit(shadow_outputs, pool_labels)
        scores = attack.score(target_outputs, y_candidates, predictor.output_type)
        accuracy = threshold.thresholded_balanced_accuracy(scores, is_member,
                                                           attack.decision_threshold())
        add(f"shadow_{config.shadow_classifier}", "shadow", scores, start, accuracy,
            num_shadow_models=config.num_shadow_models)

    reference = None
    if config.uses_lira:
        start = time.time()
        num_views = len(views)
        cache = caches["lira"]
        _log(verbose, f"LiRA reference models: {config.num_reference_models} on halves of "
                      f"{len(candidates)} candidates")
        cache.train(shard_index, num_shards, config.save_models, config.batch_size, verbose)
        reference = cache.load_outputs()
        training_seconds = time.time() - start
        num_models = reference.num_models
        flat = reference.outputs.reshape(num_models * num_views * len(candidates), -1)
        reference_phi = predictors.logit_scaled_confidence(
            flat, np.tile(y_candidates, num_models * num_views), reference.output_type
        ).reshape(num_models, num_views, len(candidates))
        target_phi = np.stack([predictors.logit_scaled_confidence(o, y_candidates,
                                                                  predictor.output_type)
                               for o in target_view_outputs])
        query_in = reference.query_in[:, :len(candidates)]
        for variant in ("lira_online", "lira_offline"):
            if variant in config.attacks:
                start = time.time() - training_seconds
                scores = lira.lira_scores(target_phi, reference_phi, query_in,
                                          online=variant == "lira_online",
                                          fixed_variance=config.fixed_variance)
                add(variant, "lira", scores, start, None, num_reference_models=num_models,
                    fixed_variance=config.fixed_variance, num_views=num_views)

    report = AuditReport(attacks=tuple(results), target=facts, num_members=len(members),
                         num_non_members=len(non_members))
    if output_dir is not None:
        predictions = None
        if save_predictions:
            predictions = AuditPredictions(
                target_outputs=target_outputs.astype(np.float32), labels=y_candidates,
                is_member=is_member, output_type=predictor.output_type,
                reference_outputs=(None if reference is None else
                                   reference.outputs[:, :len(candidates)]),
                reference_in=None if reference is None else reference.query_in[:, :len(
                    candidates)],
                scores={r.name: r.scores for r in results})
        report.save(output_dir, predictions)
        _log(verbose, f"report written to {output_dir}")
    return report
