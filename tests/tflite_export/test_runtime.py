"""LiteRT runtime wrapper: quantisation, batching, resolver fallback, audit interface."""

import numpy as np
import pytest

from mcmia_tf.audit.predictors import Predictor, as_predictor
from tflite_export import converter
from tflite_export import runtime


def _details(dtype, scale, zero_point):
    return {"dtype": dtype, "quantization_parameters": {
        "scales": np.array([scale], np.float32), "zero_points": np.array([zero_point])}}


def test_quantize_and_dequantize_use_the_tensor_parameters():
    details = _details(np.int8, 0.5, -3)
    q = runtime.quantize(np.array([0.0, 1.0, 1.24, 100.0, -100.0]), details)
    np.testing.assert_array_equal(q, [-3, -1, -1, 127, -128])  # round(x / 0.5) - 3, clipped
    np.testing.assert_array_equal(runtime.dequantize(q, details),
                                  [0.0, 1.0, 1.0, 65.0, -62.5])


def test_float_tensors_pass_through():
    details = {"dtype": np.float32, "quantization_parameters": {
        "scales": np.array([], np.float32), "zero_points": np.array([], np.int32)}}
    x = np.array([0.3, -1.7], np.float32)
    np.testing.assert_array_equal(runtime.dequantize(runtime.quantize(x, details), details), x)


def test_batched_predictions_equal_single_example_predictions(lenets, digits):
    predictor = runtime.TFLitePredictor(converter.convert(lenets.pruned, "int8",
                                                          representative_data=digits.x_train))
    x = digits.x_test[:37]
    batched = predictor.predict(x, batch_size=16)
    single = np.concatenate([predictor.predict(x[i:i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(batched, single)
    assert batched.shape == (37, digits.num_classes)


def test_sparse_int8_falls_back_from_xnnpack_and_says_so(lenets, digits):
    dense = runtime.TFLitePredictor(converter.convert(lenets.pruned, "int8",
                                                      representative_data=digits.x_train))
    sparse = runtime.TFLitePredictor(converter.convert(lenets.pruned, "int8", sparse=True,
                                                       representative_data=digits.x_train))
    assert dense.op_resolver == runtime.DEFAULT_RESOLVER
    assert sparse.op_resolver == runtime.FALLBACK_RESOLVER
    with pytest.raises(RuntimeError, match="could not prepare"):
        runtime.TFLitePredictor(sparse.content, op_resolver=runtime.DEFAULT_RESOLVER)


def test_tflite_predictor_is_an_audit_predictor(lenets, digits, tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(converter.convert(lenets.pruned, "float32"))
    predictor = as_predictor(runtime.TFLitePredictor(str(path)))
    assert isinstance(predictor, runtime.TFLitePredictor) and isinstance(predictor, Predictor)
    assert predictor.output_type == "logits" and predictor.num_classes == digits.num_classes
    np.testing.assert_allclose(predictor.predict(digits.x_test[:8]),
                               lenets.pruned.predict(digits.x_test[:8], verbose=0), atol=1e-4)


def test_missing_file_and_wrong_shapes_fail_clearly(lenets, tmp_path):
    with pytest.raises(FileNotFoundError, match="No .tflite file"):
        runtime.TFLitePredictor(str(tmp_path / "missing.tflite"))
    predictor = runtime.TFLitePredictor(converter.convert(lenets.pruned, "float32"))
    with pytest.raises(ValueError, match="Expected inputs of shape"):
        predictor.predict(np.zeros((2, 4, 4, 1), np.float32))


def test_time_invocations_returns_positive_durations(lenets, digits):
    predictor = runtime.TFLitePredictor(converter.convert(lenets.pruned, "float32"))
    seconds = predictor.time_invocations(digits.x_test[0], num_runs=5, num_warmup=1)
    assert seconds.shape == (5,) and np.all(seconds > 0)
