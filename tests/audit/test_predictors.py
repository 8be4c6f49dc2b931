"""Prediction access and the numerically stable per-example statistics."""

import numpy as np
import pytest
from scipy import special

from mcmia_tf.audit import predictors
from mcmia_tf.compat import keras


def _dense_model(activation=None, seed=0):
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, activation=activation,
                                 kernel_initializer=keras.initializers.GlorotUniform(seed))(inputs)
    return keras.Model(inputs, outputs)


def test_keras_predictor_detects_output_type_and_batches():
    x = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    logits_model = _dense_model()
    predictor = predictors.as_predictor(logits_model)
    assert (predictor.output_type, predictor.num_classes) == ("logits", 3)
    np.testing.assert_allclose(predictor.predict(x, batch_size=3), logits_model(x).numpy(),
                               rtol=1e-6)
    assert predictors.as_predictor(_dense_model("softmax")).output_type == "probabilities"
    softmax_layer = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                      keras.layers.Softmax()])
    assert predictors.KerasPredictor(softmax_layer).output_type == "probabilities"
    assert predictors.as_predictor(predictor) is predictor


def test_saved_model_predictor_matches_in_memory_model(tmp_path):
    model = _dense_model()
    path = str(tmp_path / "model.keras")
    model.save(path)
    x = np.ones((5, 4), np.float32)
    loaded = predictors.as_predictor(path)
    assert isinstance(loaded, predictors.SavedModelPredictor)
    np.testing.assert_allclose(loaded.predict(x), model(x).numpy(), rtol=1e-6)


def test_missing_paths_raise_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="saved model"):
        predictors.as_predictor(str(tmp_path / "missing.keras"))
    # The audit does not load LiteRT itself: the message names the predictor to pass.
    with pytest.raises(ValueError, match=r"tflite_export.TFLitePredictor\(path\)"):
        predictors.as_predictor(str(tmp_path / "model.tflite"))


def test_non_models_and_keras_3_models_are_rejected():
    with pytest.raises(TypeError, match="tf_keras"):
        predictors.as_predictor(object())
    keras_3 = pytest.importorskip("keras")
    model = keras_3.Sequential([keras_3.Input((3,)), keras_3.layers.Dense(2)])
    with pytest.raises(TypeError, match="Keras 3"):
        predictors.as_predictor(model)


def test_logit_scaled_confidence_matches_definition():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 5))
    labels = rng.integers(0, 5, size=50)
    p = special.softmax(logits, axis=1)[np.arange(50), labels]
    expected = np.log(p / (1 - p))
    np.testing.assert_allclose(predictors.logit_scaled_confidence(logits, labels, "logits"),
                               expected, rtol=1e-10)
    probabilities = special.softmax(logits, axis=1)
    np.testing.assert_allclose(
        predictors.logit_scaled_confidence(probabilities, labels, "probabilities"), expected,
        rtol=1e-8)


def test_logit_scaled_confidence_is_stable_for_confident_models():
    # p_y rounds to 1.0 in float64; phi must still be z_y - logsumexp(others) exactly.
    logits = np.array([[60.0, 0.0, 0.0], [0.0, -80.0, 0.0]])
    phi = predictors.logit_scaled_confidence(logits, np.array([0, 1]), "logits")
    np.testing.assert_allclose(phi, [60.0 - np.log(2.0), -80.0 - np.log(2.0)])
    loss = predictors.per_example_loss(logits, np.array([0, 1]), "logits")
    assert np.all(np.isfinite(loss)) and loss[1] == pytest.approx(80.0 + np.log(2.0))


def test_log_probabilities_of_probabilities_never_minus_inf():
    log_p = predictors.log_probabilities(np.array([[1.0, 0.0]]), "probabilities")
    assert np.all(np.isfinite(log_p))


@pytest.mark.parametrize("outputs, labels, message", [
    (np.array([[0.0, np.nan]]), np.array([0]), "NaN or inf"),
    (np.array([[0.0, np.inf]]), np.array([0]), "NaN or inf"),
    (np.zeros((2, 3)), np.array([0, 3]), r"labels in \[0, 3\)"),
    (np.zeros((2, 3)), np.array([0, -1]), r"labels in \[0, 3\)"),
    (np.zeros((2, 3)), np.array([0]), "length 2"),
    (np.zeros((2, 3)), np.array([0.5, 1.0]), "integer class"),
    (np.zeros(3), np.array([0, 1, 2]), "shape"),
])
def test_bad_outputs_and_labels_raise(outputs, labels, message):
    with pytest.raises(ValueError, match=message):
        predictors.logit_scaled_confidence(outputs, labels, "logits")


def test_bad_output_type_raises():
    with pytest.raises(ValueError, match="output_type"):
        predictors.log_probabilities(np.zeros((1, 2)), "softmax")
