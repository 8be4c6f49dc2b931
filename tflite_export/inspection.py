"""Reads what is inside a serialised TFLite model: operators, sparse tensors, weight zeros, size.

Used to check a model against TFLite Micro's kernels, to prove that sparsity
survived conversion, and to report sizes the way deployment engineers compare
them (raw bytes and zip-compressed bytes, as tfmot's pruning guide does).
"""

import dataclasses
import io
import zipfile

import numpy as np
# LiteRT's copy of the flatbuffer schema (TensorFlow's is internal:
# `tensorflow.lite.python.schema_py_generated`).
from ai_edge_litert import schema_py_generated as schema_fb

__all__ = ["TFLiteSummary", "summarize", "operator_names", "zipped_size"]

_BUILTIN_NAMES = {code: name for name, code in vars(schema_fb.BuiltinOperator).items()
                  if not name.startswith("_")}
_NUMPY_TYPES = {
    schema_fb.TensorType.FLOAT32: np.float32,
    schema_fb.TensorType.FLOAT16: np.float16,
    schema_fb.TensorType.INT8: np.int8,
    schema_fb.TensorType.UINT8: np.uint8,
    schema_fb.TensorType.INT32: np.int32,
    schema_fb.TensorType.INT64: np.int64,
    schema_fb.TensorType.INT16: np.int16,
}


@dataclasses.dataclass(frozen=True)
class TFLiteSummary:
    """What a `.tflite` file holds.

    Attributes:
      operators: builtin (or custom) operator names, in execution order.
      num_sparse_tensors: constant tensors stored in TFLite's sparse format.
      num_weight_parameters: elements of the dense constant tensors with at least
        2 dimensions (kernels), i.e. the prunable weights.
      num_zero_weight_parameters: how many of those are exactly zero (for a
        quantised tensor: equal to zero, since symmetric int8 weights have zero
        point 0).
      bytes: size of the serialised model.
    """

    operators: tuple
    num_sparse_tensors: int
    num_weight_parameters: int
    num_zero_weight_parameters: int
    bytes: int

    @property
    def weight_sparsity(self) -> float:
        """Fraction of zeros among the dense kernels (sparse-encoded ones not counted)."""
        return self.num_zero_weight_parameters / max(self.num_weight_parameters, 1)

    def to_dict(self) -> dict:
        result = dataclasses.asdict(self)
        result["operators"] = list(self.operators)
        result["weight_sparsity"] = self.weight_sparsity
        return result


def _operator_name(model, opcode_index: int) -> str:
    opcode = model.OperatorCodes(opcode_index)
    # Builtin codes above 127 live in `BuiltinCode`; older files use the
    # deprecated int8 field, so the larger of the two is the real code.
    code = max(opcode.BuiltinCode(), opcode.DeprecatedBuiltinCode())
    if code == schema_fb.BuiltinOperator.CUSTOM:
        return opcode.CustomCode().decode("utf-8")
    return _BUILTIN_NAMES.get(code, f"BUILTIN_{code}")


def operator_names(model_content: bytes) -> list:
    """Operator names of every subgraph, in execution order."""
    model = schema_fb.Model.GetRootAsModel(bytearray(model_content), 0)
    names = []
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        for op_index in range(subgraph.OperatorsLength()):
            names.append(_operator_name(model, subgraph.Operators(op_index).OpcodeIndex()))
    return names


def summarize(model_content: bytes) -> TFLiteSummary:
    """Summarises a serialised TFLite model (see `TFLiteSummary`)."""
    model = schema_fb.Model.GetRootAsModel(bytearray(model_content), 0)
    num_sparse = num_weights = num_zeros = 0
    for subgraph_index in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(subgraph_index)
        for tensor_index in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(tensor_index)
            if tensor.Sparsity() is not None:
                num_sparse += 1
                continue
            buffer = model.Buffers(tensor.Buffer())
            if buffer is None or buffer.DataLength() == 0 or tensor.ShapeLength() < 2:
                continue
            dtype = _NUMPY_TYPES.get(tensor.Type())
            if dtype is None:
                continue
            values = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype)
            num_weights += values.size
            num_zeros += int(np.count_nonzero(values == 0))
    return TFLiteSummary(operators=tuple(operator_names(model_content)),
                         num_sparse_tensors=num_sparse,
                         num_weight_parameters=num_weights,
                         num_zero_weight_parameters=num_zeros,
                         bytes=len(model_content))


def zipped_size(model_content: bytes) -> int:
    """Size of the model in a DEFLATE zip archive (how pruning shrinks a download)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("model.tflite", model_content)
    return len(archive.getvalue())
