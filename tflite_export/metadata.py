"""Self-describing `.tflite` files: labels and input normalisation embedded in the model.

The TFLite flatbuffer schema has a `metadata` table (a list of `(name, buffer)`
pairs) meant for exactly this; the TFLite converter itself uses it to store its
`CONVERSION_METADATA` entry. mcmia_tf adds one more entry, named
`METADATA_NAME`, whose buffer is UTF-8 JSON, so that any tool can read it
without the (deprecated, not installed) tflite-support metadata writer. The
TFLite runtime and TFLite Micro ignore metadata entries they do not know, so
the model runs unchanged everywhere.

Normalisation follows tflite-support's `NormalizationOptions` convention:

        model_input = (raw_input - mean) / std        (per channel)

where `raw_input` is what the device reads (e.g. uint8 pixels in [0, 255]).
"""

import dataclasses
import json
from typing import Any, Optional, Sequence

import numpy as np
# LiteRT's own copies of the flatbuffer schema and its helpers (the same schema as
# TensorFlow's internal `tensorflow.lite.python.schema_py_generated`).
from ai_edge_litert import schema_py_generated as schema_fb
from ai_edge_litert.tools import flatbuffer_utils

__all__ = ["METADATA_NAME", "ModelMetadata", "embed_metadata", "read_metadata"]

METADATA_NAME = "mcmia_tf.model_info"

_OUTPUT_TYPES = ("logits", "probabilities")


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """What a deployed model needs to be used without its training code.

    Attributes:
      labels: class names, one per output unit.
      input_scale: `scale` of the normalisation above.
      input_mean: per-channel (or single) `mean` of the normalisation above.
      input_std: per-channel (or single) `std` of the normalisation above.
      output_type: "logits" (mcmia_tf models never end in a softmax) or
        "probabilities".
      mode: the export mode the file was written with (see `converter.MODES`).
      sparse_encoding: whether the converter stored pruned tensors sparsely.
      description: free text, e.g. how the model was trained and defended.
    """

    labels: Sequence[str]
    input_scale: float = 1.0
    input_mean: Sequence[float] = (0.0,)
    input_std: Sequence[float] = (1.0,)
    output_type: str = "logits"
    mode: str = ""
    sparse_encoding: bool = False
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        object.__setattr__(self, "input_scale", float(self.input_scale))
        object.__setattr__(self, "input_mean", tuple(float(m) for m in self.input_mean))
        object.__setattr__(self, "input_std", tuple(float(s) for s in self.input_std))
        if not self.labels:
            raise ValueError("Invalid value for argument `labels`. Expected one class name per "
                             f"output unit. Received: labels={self.labels!r}")
        if self.output_type not in _OUTPUT_TYPES:
            raise ValueError("Invalid value for argument `output_type`. Expected one of "
                             f"{_OUTPUT_TYPES}. Received: output_type={self.output_type!r}")
        if self.input_scale == 0.0 or not self.input_std or any(s == 0.0 for s in self.input_std):
            raise ValueError("Invalid value for argument `input_std`. Expected non-zero values "
                             f"(model_input = (raw / scale - mean) / std). Received: "
                             f"input_std={self.input_std!r}, input_scale={self.input_scale}")
        if len(self.input_mean) != len(self.input_std):
            raise ValueError("Invalid value for argument `input_mean`. Expected as many values as "
                             f"`input_std` ({len(self.input_std)}). Received: "
                             f"input_mean={self.input_mean!r}")

    def normalize(self, raw_inputs: np.ndarray) -> np.ndarray:
        """Maps raw device inputs to model inputs: `(raw / scale - mean) / std`."""
        scaled = np.asarray(raw_inputs, np.float32) / np.float32(self.input_scale)
        mean = np.asarray(self.input_mean, np.float32)
        std = np.asarray(self.input_std, np.float32)
        return ((scaled - mean) / std).astype(np.float32)

    def to_dict(self) -> dict:
        return {
            "labels": list(self.labels),
            "input_scale": self.input_scale,
            "input_mean": list(self.input_mean),
            "input_std": list(self.input_std),
            "output_type": self.output_type,
            "mode": self.mode,
            "sparse_encoding": self.sparse_encoding,
            "description": self.description,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> "ModelMetadata":
        field_names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in config.items() if key in field_names})

    @classmethod
    def from_json(cls, text: str) -> "ModelMetadata":
        return cls.from_dict(json.loads(text))


def embed_metadata(model_content: bytes, metadata: ModelMetadata) -> bytes:
    """Returns `model_content` with `metadata` stored under `METADATA_NAME`.

    An existing mcmia_tf entry is replaced; other entries (the converter's own
    conversion metadata, TFLite Micro's offline memory plan) are kept.

    Args:
      model_content: a serialised TFLite model.
      metadata: what to embed.

    Returns:
      The serialised model with the metadata buffer added.
    """
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(model_content))
    buffer = schema_fb.BufferT()
    buffer.data = np.frombuffer(metadata.to_json().encode("utf-8"), dtype=np.uint8)
    model.metadata = list(model.metadata or [])
    for entry in model.metadata:
        if entry.name.decode("utf-8") == METADATA_NAME:
            model.buffers[entry.buffer] = buffer
            break
    else:
        model.buffers.append(buffer)
        entry = schema_fb.MetadataT()
        entry.name = METADATA_NAME
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(model_content: bytes) -> Optional[ModelMetadata]:
    """Reads the mcmia_tf metadata of a serialised TFLite model, or None if absent."""
    model = schema_fb.Model.GetRootAsModel(bytearray(model_content), 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name().decode("utf-8") == METADATA_NAME:
            data = model.Buffers(entry.Buffer()).DataAsNumpy()
            return ModelMetadata.from_json(bytes(data).decode("utf-8"))
    return None
