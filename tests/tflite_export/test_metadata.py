"""Metadata: embedded JSON survives conversion, is read back, and leaves the model intact."""

import json

import numpy as np
import pytest

from mcmia_tf.compat import keras
from tflite_export import converter
from tflite_export.metadata import METADATA_NAME, ModelMetadata, embed_metadata, read_metadata
from tflite_export.runtime import TFLitePredictor


@pytest.fixture(scope="module")
def tiny_model_content():
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2, kernel_initializer="ones", bias_initializer="zeros")(inputs)
    return converter.convert(keras.Model(inputs, outputs), "float32")


def test_round_trip_keeps_every_field(tiny_model_content):
    metadata = ModelMetadata(labels=("cat", "dog"), input_scale=255.0, input_mean=(0.5,),
                             input_std=(0.25,), output_type="logits", mode="float32",
                             sparse_encoding=True, description="pruned 90%")
    content = embed_metadata(tiny_model_content, metadata)
    assert read_metadata(content) == metadata
    assert ModelMetadata.from_json(metadata.to_json()) == metadata
    assert json.loads(metadata.to_json())["labels"] == ["cat", "dog"]


def test_model_without_metadata_reads_none(tiny_model_content):
    assert read_metadata(tiny_model_content) is None


def test_embedding_twice_replaces_the_entry(tiny_model_content):
    first = embed_metadata(tiny_model_content, ModelMetadata(labels=("a", "b")))
    second = embed_metadata(first, ModelMetadata(labels=("c", "d")))
    assert read_metadata(second).labels == ("c", "d")
    assert abs(len(second) - len(first)) < 16


def test_model_with_metadata_computes_the_same_outputs(tiny_model_content):
    content = embed_metadata(tiny_model_content, ModelMetadata(labels=("a", "b")))
    x = np.array([[1.0, 2.0, 3.0]], np.float32)
    np.testing.assert_array_equal(TFLitePredictor(content).predict(x), [[6.0, 6.0]])
    assert METADATA_NAME.encode() in content


def test_normalize_applies_scale_mean_and_std():
    metadata = ModelMetadata(labels=("a",), input_scale=255.0, input_mean=(0.5,), input_std=(0.25,))
    raw = np.array([0.0, 127.5, 255.0])
    np.testing.assert_allclose(metadata.normalize(raw), [-2.0, 0.0, 2.0], rtol=1e-6)


@pytest.mark.parametrize("kwargs, argument", [
    ({"labels": ()}, "labels"),
    ({"labels": ("a",), "output_type": "softmax"}, "output_type"),
    ({"labels": ("a",), "input_std": (0.0,)}, "input_std"),
    ({"labels": ("a",), "input_mean": (0.0, 0.0)}, "input_mean"),
])
def test_invalid_metadata_is_rejected(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        ModelMetadata(**kwargs)
