"""Converter: every mode matches Keras, sparsity survives, bad input fails clearly."""

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.pruning import prune_preserving_quantization
from tflite_export import converter
from tflite_export.inspection import summarize
from tflite_export.runtime import TFLitePredictor

# Largest |tflite - keras| logit difference, relative to the largest |logit|:
# float16 weights keep 11 significant bits (~5e-4 relative error per weight);
# int8 weights and activations have 255 levels per tensor (~0.4% per step).
RELATIVE_TOLERANCE = {"float32": 1e-5, "float16": 5e-3, "dynamic_int8": 5e-2, "int8": 5e-2}


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("mode", converter.MODES)
def test_every_mode_matches_keras(lenets, digits, mode, sparse):
    content = converter.convert(lenets.pruned, mode, sparse=sparse,
                                representative_data=digits.x_train)
    keras_outputs = lenets.pruned.predict(digits.x_test, verbose=0)
    outputs = TFLitePredictor(content).predict(digits.x_test)
    scale = np.abs(keras_outputs).max()
    assert np.abs(outputs - keras_outputs).max() <= RELATIVE_TOLERANCE[mode] * scale
    agreement = np.mean(outputs.argmax(1) == keras_outputs.argmax(1))
    assert agreement >= 0.99
    assert summarize(content).num_sparse_tensors > 0 if sparse else (
        summarize(content).num_sparse_tensors == 0)


def test_int8_model_has_int8_input_and_output(lenets, digits):
    predictor = TFLitePredictor(converter.convert(lenets.pruned, "int8",
                                                  representative_data=digits.x_train))
    assert predictor.input_details["dtype"] == np.int8
    assert predictor.output_details["dtype"] == np.int8


def test_sparse_encoding_is_smaller_at_90_percent_sparsity(lenets):
    dense_file = converter.convert(lenets.pruned, "float32")
    sparse_file = converter.convert(lenets.pruned, "float32", sparse=True)
    assert len(sparse_file) < 0.5 * len(dense_file)


def test_pruning_wrappers_are_stripped_and_zeros_kept(lenets):
    from_wrapped = converter.convert(lenets.pruned_wrapped, "float32")
    from_stripped = converter.convert(lenets.pruned, "float32")
    summary = summarize(from_wrapped)
    assert "PruneLowMagnitude" not in "".join(summary.operators)
    assert summary.num_weight_parameters == summarize(from_stripped).num_weight_parameters
    assert summary.weight_sparsity >= converter_kernel_sparsity(lenets.pruned) - 1e-9


def converter_kernel_sparsity(model) -> float:
    kernels = [w.numpy() for w in model.weights if "kernel" in w.name]
    return sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)


@pytest.mark.slow
def test_prune_preserving_qat_model_keeps_its_zeros(lenets, digits):
    # tfmot's Default8BitPrunePreserveQuantizeScheme, as the pruning package applies it.
    qat = prune_preserving_quantization(lenets.pruned)
    qat.compile(optimizer=keras.optimizers.Adam(1e-4),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    qat.fit(digits.x_train[:256], digits.y_train[:256], epochs=1, batch_size=64, verbose=0)
    assert converter.is_quantization_aware(qat)
    content = converter.convert(qat, "int8")  # QAT ranges: no calibration data needed
    int8_sparsity = summarize(content).weight_sparsity
    assert int8_sparsity >= 0.85
    keras_outputs = qat.predict(digits.x_test, verbose=0)
    outputs = TFLitePredictor(content).predict(digits.x_test)
    assert np.mean(outputs.argmax(1) == keras_outputs.argmax(1)) >= 0.97


def test_metadata_is_embedded(lenets, digits):
    from tflite_export.metadata import ModelMetadata  # pylint: disable=g-import-not-at-top
    metadata = ModelMetadata(labels=digits.class_names, mode="float32")
    predictor = TFLitePredictor(converter.convert(lenets.pruned, metadata=metadata))
    assert predictor.metadata == metadata


def test_int8_without_representative_data_fails(lenets):
    with pytest.raises(ValueError, match="representative_data"):
        converter.convert(lenets.pruned, "int8")


def test_unknown_mode_fails(lenets):
    with pytest.raises(ValueError, match="Expected one of"):
        converter.convert(lenets.pruned, "int4")


def test_keras_3_model_is_rejected():
    # `tf.keras` may already resolve to tf_keras once tfmot is imported, so build the
    # Keras 3 model from the `keras` package itself.
    import keras as keras3  # pylint: disable=g-import-not-at-top
    keras3_model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(TypeError, match="tf_keras"):
        converter.convert(keras3_model)


def test_representative_dataset_draws_distinct_training_examples():
    x = np.arange(20, dtype=np.float32).reshape(20, 1)
    drawn = [batch[0][0, 0] for batch in converter.representative_dataset(x, 8, seed=3)()]
    assert len(drawn) == len(set(drawn)) == 8
    assert drawn == [b[0][0, 0] for b in converter.representative_dataset(x, 8, seed=3)()]


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2"])
@pytest.mark.slow
def test_batch_norm_is_folded_into_the_convolutions_exactly(name):
    from collections import Counter  # pylint: disable=g-import-not-at-top
    from mcmia_tf.models import build_model  # pylint: disable=g-import-not-at-top
    from tflite_export.inspection import operator_names  # pylint: disable=g-import-not-at-top
    from tests.helpers import randomize_batch_norms  # pylint: disable=g-import-not-at-top
    model = build_model(name, (32, 32, 3), 10, width=0.125, seed=0)
    randomize_batch_norms(model, seed=0)
    rng = np.random.default_rng(0)
    content = converter.convert(model, mode="float32")
    operators = Counter(operator_names(content))
    residual_adds = sum(isinstance(layer, keras.layers.Add) for layer in model.layers)
    # No multiply and no add beyond the residual sums: every BatchNorm became conv weights.
    assert operators["MUL"] == 0 and operators["ADD"] == residual_adds
    x = rng.uniform(size=(4, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(TFLitePredictor(content).predict(x), model.predict(x, verbose=0),
                               atol=1e-4)
