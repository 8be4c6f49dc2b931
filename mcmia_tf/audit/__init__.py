"""Membership-inference audits: metric, shadow, LiRA and RMIA attacks, canaries, intervals."""

from mcmia_tf.audit.callback import MembershipAuditCallback
from mcmia_tf.audit.candidates import AuditCandidates
from mcmia_tf.audit.config import ATTACK_NAMES
from mcmia_tf.audit.config import AuditConfig
from mcmia_tf.audit.lira import augmented_views
from mcmia_tf.audit.lira import lira_scores
from mcmia_tf.audit.metrics import AttackMetrics
from mcmia_tf.audit.metrics import compute_attack_metrics
from mcmia_tf.audit.metrics import roc_curve
from mcmia_tf.audit.metrics import RocCurve
from mcmia_tf.audit.metrics import tpr_at_fpr
from mcmia_tf.audit.predictors import as_predictor
from mcmia_tf.audit.predictors import KerasPredictor
from mcmia_tf.audit.predictors import logit_scaled_confidence
from mcmia_tf.audit.predictors import Predictor
from mcmia_tf.audit.predictors import SavedModelPredictor
from mcmia_tf.audit.reference_models import ReferenceModelCache
from mcmia_tf.audit.reference_models import ReferenceOutputs
from mcmia_tf.audit.report import AttackResult
from mcmia_tf.audit.report import AuditPredictions
from mcmia_tf.audit.report import AuditReport
from mcmia_tf.audit.rmia import rmia_scores
from mcmia_tf.audit.rmia import tune_offline_a
from mcmia_tf.audit.shadow import ShadowAttack
from mcmia_tf.audit.significance import NoiseFloor
from mcmia_tf.audit.significance import permutation_floor
from mcmia_tf.audit.significance import select_strongest
from mcmia_tf.audit.significance import StrongestAttack
from mcmia_tf.audit.suite import audit_deployed_model
from mcmia_tf.audit.suite import run_audit
from mcmia_tf.audit.threshold import fit_calibration
from mcmia_tf.audit.threshold import membership_statistic
from mcmia_tf.audit.threshold import METRIC_NAMES

__all__ = [
    "ATTACK_NAMES",
    "METRIC_NAMES",
    "AttackMetrics",
    "AttackResult",
    "AuditCandidates",
    "AuditConfig",
    "AuditPredictions",
    "AuditReport",
    "KerasPredictor",
    "MembershipAuditCallback",
    "NoiseFloor",
    "Predictor",
    "ReferenceModelCache",
    "ReferenceOutputs",
    "RocCurve",
    "SavedModelPredictor",
    "ShadowAttack",
    "StrongestAttack",
    "as_predictor",
    "audit_deployed_model",
    "augmented_views",
    "compute_attack_metrics",
    "fit_calibration",
    "lira_scores",
    "logit_scaled_confidence",
    "membership_statistic",
    "permutation_floor",
    "rmia_scores",
    "roc_curve",
    "run_audit",
    "select_strongest",
    "tpr_at_fpr",
    "tune_offline_a",
]
