"""Tests of the Nasr et al. attack head."""

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from mcmia_tf.privacy.attack_head import attack_features
from mcmia_tf.privacy.attack_head import build_attack_head
from mcmia_tf.privacy.attack_head import default_head_units
from mcmia_tf.privacy.attack_head import logit_scaled_confidences


def _dense_widths(model, prefix):
    return [layer.units for layer in model.layers
            if isinstance(layer, keras.layers.Dense) and layer.name.startswith(prefix)]


def test_branch_widths_scale_with_classes():
    # Nasr et al.'s CIFAR-100 head.
    assert default_head_units(100) == ((1024, 512, 64), (128, 64), (256, 128, 64))
    assert default_head_units(10) == ((64,), (16,), (64,))
    head = build_attack_head(100)
    assert _dense_widths(head, "prediction") == [1024, 512, 64]
    assert _dense_widths(head, "label") == [128, 64]
    assert _dense_widths(head, "combined") == [256, 128, 64]
    head = build_attack_head(10)
    assert _dense_widths(head, "prediction") == [64]
    out = head([np.zeros((3, 10), np.float32), np.eye(10, dtype=np.float32)[:3]])
    assert out.shape == (3, 1)
    assert np.all((out.numpy() > 0) & (out.numpy() < 1))


def test_same_seed_same_head_and_sorted_head_ignores_order():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5)).astype(np.float32)
    labels = np.eye(5, dtype=np.float32)[[0, 1, 2, 3]]
    a = build_attack_head(5, sort_predictions=True, seed=3)
    b = build_attack_head(5, sort_predictions=True, seed=3)
    np.testing.assert_array_equal(a([logits, labels]).numpy(), b([logits, labels]).numpy())
    shuffled = logits[:, rng.permutation(5)]
    np.testing.assert_allclose(a([shuffled, labels]).numpy(), a([logits, labels]).numpy(),
                               rtol=1e-6)


def test_save_and_load_round_trip(tmp_path):
    head = build_attack_head(4, sort_predictions=True, prediction_units=(16, 8),
                             label_units=(8,), combined_units=(8, 4), seed=1)
    path = str(tmp_path / "head.keras")
    head.save(path)
    restored = keras.models.load_model(path)
    logits = np.array([[3.0, 1.0, 0.0, -2.0], [0.5, 0.5, 9.0, 1.0]], np.float32)
    labels = np.eye(4, dtype=np.float32)[[1, 2]]
    np.testing.assert_allclose(restored([logits, labels]).numpy(),
                               head([logits, labels]).numpy())
    assert _dense_widths(restored, "prediction") == [16, 8]
    assert restored.get_layer("sort_predictions") is not None
    assert restored.get_layer("prediction_transform").mode == "logit_scaled"


def test_logit_scaled_confidences_match_the_definition_and_stay_finite():
    logits = np.array([[2.0, 0.0, -1.0], [40.0, 0.0, 0.0]], np.float32)
    phi = logit_scaled_confidences(logits).numpy()
    p = np.exp(logits[0] - np.log(np.sum(np.exp(logits[0]))))
    np.testing.assert_allclose(phi[0], np.log(p / (1 - p)), rtol=1e-5)
    # p_0 rounds to 1 in float32 here; phi_0 = 40 - log(2) exactly.
    np.testing.assert_allclose(phi[1, 0], 40.0 - np.log(2.0), rtol=1e-6)
    np.testing.assert_allclose(phi[1, 1:], -40.0, rtol=1e-5)
    assert np.all(np.isfinite(phi))


@pytest.mark.parametrize("kwargs, argument", [
    ({"num_classes": 1}, "num_classes"),
    ({"num_classes": 10, "prediction_units": ()}, "prediction_units"),
    ({"num_classes": 10, "label_units": (0,)}, "label_units"),
    ({"num_classes": 10, "combined_units": (8.5,)}, "combined_units"),
    ({"num_classes": 10, "prediction_transform": "probit"}, "prediction_transform"),
])
def test_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        build_attack_head(**kwargs)


@pytest.mark.slow
def test_head_separates_members_of_an_overfit_model(digits):
    """Trained on half of the members / non-members, scored on the other half."""
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits.x_train))
    members, non_members = order[:300], order[300:900]
    classifier = build_model("mlp", digits.input_shape, digits.num_classes, seed=0)
    classifier.compile(keras.optimizers.Adam(3e-3),
                       keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = tf.data.Dataset.from_tensor_slices(
        (digits.x_train[members], digits.y_train[members])).shuffle(300, seed=0).batch(32)
    classifier.fit(data, epochs=60, verbose=0)

    def features(index):
        return attack_features(classifier, digits.x_train[index], digits.y_train[index])

    fit_in, test_in = members[:150], members[150:]
    fit_out, test_out = non_members[:300], non_members[300:]
    x_fit = [np.concatenate(p) for p in zip(features(fit_in), features(fit_out))]
    y_fit = np.r_[np.ones(len(fit_in)), np.zeros(len(fit_out))]
    weights = np.r_[np.full(len(fit_in), len(fit_out) / len(fit_in)), np.ones(len(fit_out))]
    head = build_attack_head(digits.num_classes, seed=0)
    head.compile(keras.optimizers.Adam(1e-3), "binary_crossentropy")
    head.fit(x_fit, y_fit, sample_weight=weights, epochs=30, batch_size=64, verbose=0,
             shuffle=False)

    x_test = [np.concatenate(p) for p in zip(features(test_in), features(test_out))]
    y_test = np.r_[np.ones(len(test_in)), np.zeros(len(test_out))]
    auc = roc_auc_score(y_test, head.predict(x_test, verbose=0).ravel())
    assert auc > 0.6, auc
