"""The shadow-model attack of Shokri et al. (S&P 2017).

N shadow models are trained with the target's recipe, each on a random half of
the attacker's shadow pool (disjoint from the target's members and non-members).
Every (shadow model, pool example) pair is a labelled record: the model's output
on the example, its label, and whether the model trained on it. One attack
classifier with the label as input (instead of Shokri et al.'s one model per class,
which starves rare classes) learns IN vs. OUT from those records, and then scores
the target's outputs on its members and non-members.

Features of a record with log-probabilities `log p` and label `y`:
`[log p (clipped at -50), one_hot(y), log p_y, phi]`, with `phi` the logit-scaled
confidence; standardized on the training records.
"""

from typing import Optional

import numpy as np
from sklearn import ensemble, linear_model, neural_network, pipeline, preprocessing

from mcmia_tf.audit import predictors
from mcmia_tf.audit.reference_models import ReferenceOutputs

__all__ = ["ATTACK_CLASSIFIERS", "ShadowAttack", "attack_features"]

ATTACK_CLASSIFIERS = ("mlp", "logistic_regression", "gradient_boosting")
_LOG_P_FLOOR = -50.0  # log-probabilities below this carry no extra signal, only scale


def attack_features(outputs: np.ndarray, labels: np.ndarray, output_type: str) -> np.ndarray:
    """The attack classifier's `(n, 2 * num_classes + 2)` feature matrix."""
    log_p = predictors.log_probabilities(outputs, output_type)
    num_classes = log_p.shape[1]
    labels = predictors.validate_labels(labels, num_classes, length=len(log_p))
    rows = np.arange(len(labels))
    phi = predictors.logit_scaled_confidence(outputs, labels, output_type)
    return np.concatenate([
        np.maximum(log_p, _LOG_P_FLOOR),
        np.eye(num_classes)[labels],
        np.maximum(log_p[rows, labels], _LOG_P_FLOOR)[:, None],
        np.clip(phi, -2 * abs(_LOG_P_FLOOR), 2 * abs(_LOG_P_FLOOR))[:, None],
    ], axis=1)


def _make_classifier(name: str, seed: int):
    if name == "mlp":
        classifier = neural_network.MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=200,
                                                  early_stopping=True, random_state=seed)
    elif name == "logistic_regression":
        classifier = linear_model.LogisticRegression(max_iter=1000)
    elif name == "gradient_boosting":
        classifier = ensemble.HistGradientBoostingClassifier(random_state=seed)
    else:
        raise ValueError(f"Invalid value for argument `classifier`. Expected one of "
                         f"{ATTACK_CLASSIFIERS}. Received: classifier={name!r}")
    return pipeline.make_pipeline(preprocessing.StandardScaler(), classifier)


class ShadowAttack:
    """Shokri et al.'s attack: fit on shadow records, score the target's outputs.

    Args:
      classifier: one of `ATTACK_CLASSIFIERS`.
      max_records: cap on the training records (a random subset is used above it).
      seed: seed of the subsampling and of the classifier.
    """

    def __init__(self, classifier: str = "mlp", max_records: int = 100_000, seed: int = 0):
        self._model = _make_classifier(classifier, seed)  # validates the name first
        if isinstance(max_records, bool) or not isinstance(max_records, int) or max_records < 2:
            raise ValueError("Invalid value for argument `max_records`. Expected an integer "
                             f">= 2. Received: max_records={max_records!r}")
        self.classifier = classifier
        self.max_records = max_records
        self.seed = seed
        self._fitted = False

    def fit(self, shadow: ReferenceOutputs, pool_labels: np.ndarray) -> "ShadowAttack":
        """Fits the attack on every (shadow model, pool example) record.

        Args:
          shadow: outputs of the shadow models on their pool (`query_in` = trained on it).
          pool_labels: `(pool_size,)` labels of the pool.

        Returns:
          self.
        """
        num_models, pool_size, _ = shadow.outputs.shape
        if len(pool_labels) != pool_size:
            raise ValueError("Invalid value for argument `pool_labels`. Expected "
                             f"{pool_size} labels (one per shadow query). Received: "
                             f"{len(pool_labels)}")
        is_in = shadow.query_in.reshape(-1)
        if is_in.all() or not is_in.any():
            raise ValueError("The shadow records must contain both IN and OUT examples; "
                             "train shadow models on random halves of the shadow pool.")
        features = attack_features(shadow.outputs.reshape(num_models * pool_size, -1),
                                   np.tile(np.asarray(pool_labels), num_models),
                                   shadow.output_type)
        if len(features) > self.max_records:
            keep = np.random.default_rng(self.seed).choice(len(features), self.max_records,
                                                           replace=False)
            features, is_in = features[keep], is_in[keep]
        self._model.fit(features, is_in.astype(np.int64))
        self._fitted = True
        return self

    def score(self, outputs: np.ndarray, labels: np.ndarray, output_type: str) -> np.ndarray:
        """Membership probability the fitted attack assigns to each target output."""
        if not self._fitted:
            raise RuntimeError("Call `fit` on shadow records before `score`.")
        return self._model.predict_proba(attack_features(outputs, labels, output_type))[:, 1]

    def decision_threshold(self) -> Optional[float]:
        """The classifier's own decision threshold on `score` (fitted on shadow data)."""
        return 0.5 if self._fitted else None
