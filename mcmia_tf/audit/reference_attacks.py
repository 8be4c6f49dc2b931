"""LiRA and RMIA from the reference models' cached outputs.

Both attacks share the K reference models of `suite.build_model_caches` (trained on
random halves of the candidates, queried on every view of the candidates and on the
RMIA population), so RMIA costs no training beyond LiRA's; a subset of the models
(`ReferenceModelCache.load_outputs(indices)`) gives the attacks at a smaller K.
"""

import time
from typing import List, Optional

import numpy as np

from mcmia_tf.audit import lira
from mcmia_tf.audit import predictors
from mcmia_tf.audit import rmia
from mcmia_tf.audit.candidates import AuditCandidates
from mcmia_tf.audit.config import AuditConfig
from mcmia_tf.audit.reference_models import ReferenceOutputs
from mcmia_tf.audit.report import ScoredAttack

__all__ = ["reference_attack_scores"]

# Tuning RMIA's `a` attacks one reference model with the others, which needs OUT models
# for both its members and non-members: with K = 2 every non-member of one model is a
# member of the other. Below that, the paper's CIFAR-10 value is used (and reported).
_MIN_MODELS_TO_TUNE_A = 3
_PAPER_OFFLINE_A = 0.3


def reference_attack_scores(config: AuditConfig, candidates: AuditCandidates,
                            reference: ReferenceOutputs, target_view_outputs,
                            target_output_type: str,
                            population_outputs: Optional[np.ndarray] = None,
                            training_seconds: float = 0.0) -> List[ScoredAttack]:
    """LiRA and RMIA scores of every candidate from the reference models' outputs.

    Args:
      config: which of lira_* / rmia_* to run, and their settings.
      candidates: the `AuditCandidates` the reference models were queried on.
      reference: their outputs: V views of the candidates, then the population
        (`build_model_caches`); a subset of the models (`load_outputs(indices)`)
        gives the attacks with fewer reference models.
      target_view_outputs: the target's outputs on the V views.
      target_output_type: "logits" or "probabilities".
      population_outputs: the target's outputs on the population (RMIA).
      training_seconds: time spent training the models, added to each attack's time.

    Returns:
      `ScoredAttack`s (name, family, scores on all candidates, parameters).
    """
    n, num_views = len(candidates), len(target_view_outputs)
    num_models = reference.num_models
    candidate_outputs = reference.outputs[:, :num_views * n].reshape(num_models, num_views, n, -1)
    query_in = reference.query_in[:, :n]
    attacks = []
    if config.uses_lira:
        reference_phi = predictors.logit_scaled_confidence(
            candidate_outputs.reshape(-1, candidate_outputs.shape[-1]),
            np.tile(candidates.y, num_models * num_views), reference.output_type
        ).reshape(num_models, num_views, n)
        target_phi = np.stack([predictors.logit_scaled_confidence(o, candidates.y,
                                                                  target_output_type)
                               for o in target_view_outputs])
        for variant in ("lira_online", "lira_offline"):
            if variant in config.attacks:
                begin = time.time() - training_seconds
                scores = lira.lira_scores(target_phi, reference_phi, query_in,
                                          online=variant == "lira_online",
                                          fixed_variance=config.fixed_variance)
                attacks.append(ScoredAttack(variant, "lira", scores, time.time() - begin,
                                            parameters={
                                                "num_reference_models": num_models,
                                                "fixed_variance": config.fixed_variance,
                                                "num_views": num_views}))
    if config.uses_rmia:
        temperature = config.rmia_temperature

        def p(outputs, labels, output_type):
            return rmia.true_label_probability(outputs, labels, output_type, temperature)

        reference_p = p(candidate_outputs, candidates.y, reference.output_type)  # (K, V, n)
        target_p = np.stack([p(o, candidates.y, target_output_type)
                             for o in target_view_outputs])
        population_reference_p = p(reference.outputs[:, num_views * n:],
                                   candidates.population_y, reference.output_type)
        population_target_p = p(population_outputs, candidates.population_y,
                                target_output_type)
        offline_a, a_source = config.rmia_offline_a, "config"
        if offline_a is None and num_models >= _MIN_MODELS_TO_TUNE_A:
            # Tuned with reference models as pseudo-targets; the target is never looked at.
            offline_a = rmia.tune_offline_a(reference_p[:, 0], query_in, population_reference_p,
                                            gamma=config.rmia_gamma, seed=config.seed).a
            a_source = "tuned on reference models"
        elif offline_a is None:
            offline_a, a_source = _PAPER_OFFLINE_A, f"paper default (K < {_MIN_MODELS_TO_TUNE_A})"
        for variant in ("rmia_online", "rmia_offline"):
            if variant in config.attacks:
                begin = time.time() - training_seconds
                scores = rmia.rmia_scores(target_p, reference_p, query_in, population_target_p,
                                          population_reference_p, online=variant == "rmia_online",
                                          offline_a=offline_a, gamma=config.rmia_gamma,
                                          break_ties=True)
                attacks.append(ScoredAttack(variant, "rmia", scores, time.time() - begin,
                                            parameters={
                                                "num_reference_models": num_models,
                                                "offline_a": float(offline_a),
                                                "offline_a_source": a_source,
                                                "gamma": config.rmia_gamma,
                                                "temperature": temperature,
                                                "num_population": len(candidates.population_y),
                                                "num_views": num_views}))
    return attacks
