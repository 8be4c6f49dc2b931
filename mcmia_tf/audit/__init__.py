"""Membership-inference audits: metric, shadow-model and LiRA attacks, reports, callback."""

from mcmia_tf.audit.callback import MembershipAuditCallback
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
from mcmia_tf.audit.reference_models import StandardTrainingRecipe
from mcmia_tf.audit.reference_models import TrainingRecipe
from mcmia_tf.audit.report import AttackResult
from mcmia_tf.audit.report import AuditPredictions
from mcmia_tf.audit.report import AuditReport
from mcmia_tf.audit.shadow import ShadowAttack
from mcmia_tf.audit.suite import ATTACK_NAMES
from mcmia_tf.audit.suite import AuditConfig
from mcmia_tf.audit.suite import run_audit
from mcmia_tf.audit.threshold import fit_calibration
from mcmia_tf.audit.threshold import membership_statistic
from mcmia_tf.audit.threshold import METRIC_NAMES

__all__ = [
    "ATTACK_NAMES",
    "METRIC_NAMES",
    "AttackMetrics",
    "AttackResult",
    "AuditConfig",
    "AuditPredictions",
    "AuditReport",
    "KerasPredictor",
    "MembershipAuditCallback",
    "Predictor",
    "ReferenceModelCache",
    "ReferenceOutputs",
    "RocCurve",
    "SavedModelPredictor",
    "ShadowAttack",
    "StandardTrainingRecipe",
    "TrainingRecipe",
    "as_predictor",
    "augmented_views",
    "compute_attack_metrics",
    "fit_calibration",
    "lira_scores",
    "logit_scaled_confidence",
    "membership_statistic",
    "roc_curve",
    "run_audit",
    "tpr_at_fpr",
]
