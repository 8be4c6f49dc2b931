"""TFLite Micro: C array round trip, same outputs as LiteRT, measured arena, op checks."""

import numpy as np
import pytest

from tflite_export import converter
from tflite_export import micro
from tflite_export import runtime


@pytest.fixture(scope="module")
def int8_content(lenets, digits):
    return converter.convert(lenets.pruned, "int8", representative_data=digits.x_train)


def test_c_array_round_trips_to_the_same_bytes(int8_content, tmp_path):
    array = micro.to_c_array(int8_content, "lenet_model")
    assert micro.parse_c_array(array.source) == int8_content
    assert "alignas(16) const unsigned char lenet_model[]" in array.source
    assert f"const unsigned int lenet_model_len = {len(int8_content)};" in array.source
    assert "extern const unsigned char lenet_model[];" in array.header
    source_path, header_path = micro.write_c_array(int8_content, tmp_path, "lenet_model")
    with open(source_path) as f:
        assert micro.parse_c_array(f.read()) == int8_content
    with open(header_path) as f:
        assert "#ifndef LENET_MODEL_H_" in f.read()


def test_header_documents_shapes_and_quantisation(int8_content):
    details = runtime.TFLitePredictor(int8_content).input_details
    scale = float(details["quantization_parameters"]["scales"][0])
    zero_point = int(details["quantization_parameters"]["zero_points"][0])
    header = micro.to_c_array(int8_content).header
    assert f"input: int8[1x8x8x1], scale={scale:.9g}, zero_point={zero_point}" in header
    assert "output: int8[1x10]" in header


def test_truncated_c_array_is_detected(int8_content):
    source = micro.to_c_array(int8_content).source.replace("0x", "", 1)
    with pytest.raises(ValueError, match="truncated"):
        micro.parse_c_array(source.replace(" 1c,", " ", 1))


def test_micro_outputs_match_litert_on_the_same_int8_inputs(int8_content, lenets, digits):
    micro_model = micro.MicroModel(int8_content)
    inputs = runtime.quantize(digits.x_test, micro_model.input_details)
    micro_outputs = micro_model.run_native(inputs).astype(np.int32)
    for resolver in (runtime.DEFAULT_RESOLVER, runtime.FALLBACK_RESOLVER):
        litert = runtime.TFLitePredictor(int8_content, op_resolver=resolver)
        litert_outputs = litert.run_native(inputs).astype(np.int32)
        # Kernels may round a requantised value differently: at most one int8 step.
        assert np.abs(micro_outputs - litert_outputs).max() <= 1
        assert np.mean(micro_outputs == litert_outputs) >= 0.98
        assert np.mean(micro_outputs.argmax(1) == litert_outputs.argmax(1)) >= 0.99
    accuracy = np.mean(micro_model.predict(digits.x_test).argmax(1) == digits.y_test)
    keras_accuracy = np.mean(lenets.pruned.predict(digits.x_test, verbose=0).argmax(1)
                             == digits.y_test)
    assert abs(accuracy - keras_accuracy) <= 0.01


@pytest.mark.slow
def test_minimum_arena_is_the_smallest_that_runs(int8_content, tmp_path):
    arena = micro.minimum_arena_size(int8_content)
    assert arena % 16 == 0
    assert arena >= micro.MicroModel(int8_content).recorded_arena_bytes() - 16
    path = tmp_path / "model.tflite"
    path.write_bytes(int8_content)
    assert micro._runs_with_arena(str(path), arena)  # pylint: disable=protected-access
    assert not micro._runs_with_arena(str(path), arena - 16)  # pylint: disable=protected-access


def test_sparse_model_is_rejected_with_the_unsupported_ops(lenets, digits):
    sparse = converter.convert(lenets.pruned, "int8", sparse=True,
                               representative_data=digits.x_train)
    with pytest.raises(ValueError, match="DENSIFY"):
        micro.check_micro_compatible(sparse)
    with pytest.raises(ValueError, match="DENSIFY"):
        micro.to_c_array(sparse)


def test_float_model_is_rejected(lenets):
    with pytest.raises(ValueError, match="full-integer"):
        micro.MicroModel(converter.convert(lenets.pruned, "float32"))


def test_invalid_variable_name_is_rejected(int8_content):
    with pytest.raises(ValueError, match="C identifier"):
        micro.to_c_array(int8_content, "1model")
