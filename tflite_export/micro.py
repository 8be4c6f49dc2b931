"""Microcontroller export: a full-int8 `.tflite` as a C array, proved on TFLite Micro.

A microcontroller has no file system: the model is compiled into the firmware
as a constant byte array, the way `xxd -i` writes it, aligned to 16 bytes so
that TFLite Micro can read its flatbuffer tables and int8 kernels in place.
`write_c_array` writes that `.cc` file and its `.h` header in pure Python, with
a comment giving the input/output shapes and quantisation parameters the
firmware needs to fill the input tensor and read the output.

`MicroModel` runs the same bytes in the TFLite Micro interpreter of the
`tflite-micro` PyPI package (TFLite Micro's reference kernels; an optimised
port such as CMSIS-NN may round a few requantised values differently), so the
accuracy it measures is the device's. Two arena numbers:

* `MicroModel.recorded_arena_bytes()`: what TFLite Micro's
  `RecordingMicroAllocator` reports after an inference (activations, tensor
  structs, persistent buffers). It leaves out temporary allocations made while
  kernels prepare, so it can be slightly too small to run the model.
* `minimum_arena_size(model)`: the smallest `kTensorArenaSize` (to 16 bytes)
  with which the interpreter prepares and runs the model, found by bisection,
  each trial in a child process because TFLite Micro may crash (not just fail)
  on an arena that is far too small. This is the number firmware needs, with
  one caveat: it is measured on a 64-bit host, whose tensor structs and
  pointers are larger than a 32-bit microcontroller's, so it errs on the safe
  side.

TFLite Micro has no DENSIFY kernel and no sparse tensor support: a micro model
is always converted without `EXPERIMENTAL_SPARSITY`. Unstructured zeros then
only shrink a compressed download; `surgery.remove_pruned_channels` shrinks the
firmware itself.
"""

import contextlib
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
from typing import Optional, Union

import numpy as np
from tflite_micro import runtime as micro_runtime  # the package's public alias

from tflite_export.inspection import summarize
from tflite_export.runtime import dequantize, load_model_content, quantize

__all__ = ["MICRO_BUILTIN_OPS", "check_micro_compatible", "CArray", "to_c_array",
           "write_c_array", "parse_c_array", "MicroModel", "minimum_arena_size"]

# The builtin kernels registered by TFLite Micro (the `Register_*` symbols of
# the `tflite-micro` package's interpreter, release 2026-10). DENSIFY is not
# among them: sparse tensors cannot run on a microcontroller.
MICRO_BUILTIN_OPS = frozenset("""
ABS ADD ADD_N ARG_MAX ARG_MIN ASSIGN_VARIABLE AVERAGE_POOL_2D BATCH_MATMUL BATCH_TO_SPACE_ND
BROADCAST_ARGS BROADCAST_TO CALL_ONCE CAST CEIL CONCATENATION CONV_2D COS CUMSUM
DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE DIV DYNAMIC_UPDATE_SLICE ELU EMBEDDING_LOOKUP EQUAL
EXP EXPAND_DIMS FILL FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GATHER_ND GREATER
GREATER_EQUAL HARD_SWISH IF L2_NORMALIZATION L2_POOL_2D LEAKY_RELU LESS LESS_EQUAL LOG
LOGICAL_AND LOGICAL_NOT LOGICAL_OR LOGISTIC LOG_SOFTMAX MAXIMUM MAX_POOL_2D MEAN MINIMUM
MIRROR_PAD MUL NEG NOT_EQUAL PACK PAD PADV2 PRELU QUANTIZE READ_VARIABLE REDUCE_MAX REDUCE_MIN
RELU RELU6 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR REVERSE_V2 ROUND RSQRT SELECT_V2
SHAPE SIN SLICE SOFTMAX SPACE_TO_BATCH_ND SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE
SQUARED_DIFFERENCE SQUEEZE STRIDED_SLICE SUB SUM SVDF TANH TRANSPOSE TRANSPOSE_CONV
UNIDIRECTIONAL_SEQUENCE_LSTM UNPACK VAR_HANDLE WHILE ZEROS_LIKE
""".split())

_ALIGNMENT = 16
_BYTES_PER_LINE = 12
_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


def check_micro_compatible(model_content: bytes) -> None:
    """Raises if the model cannot run on TFLite Micro.

    Raises:
      ValueError: listing the operators TFLite Micro has no kernel for (e.g.
        DENSIFY from a sparse conversion, or select-TF ops), or if the model
        holds sparse tensors or is not full-integer (int8 input).
    """
    summary = summarize(model_content)
    unsupported = sorted(set(summary.operators) - MICRO_BUILTIN_OPS)
    if unsupported:
        raise ValueError(
            f"The model uses operators TFLite Micro does not support: {unsupported}. Convert "
            "it with mode='int8' and sparse=False (micro models are stored dense), and "
            "replace layers that need these operators.")
    if summary.num_sparse_tensors:
        raise ValueError(
            f"The model stores {summary.num_sparse_tensors} tensors in TFLite's sparse format, "
            "which TFLite Micro cannot read. Convert it with sparse=False.")


@dataclasses.dataclass(frozen=True)
class CArray:
    """A model as a C++ source and header pair.

    Attributes:
      variable_name: the C identifier of the byte array (`<name>_len` holds its length).
      source: contents of the `.cc` file.
      header: contents of the `.h` file.
    """

    variable_name: str
    source: str
    header: str


def _tensor_comment(label: str, details: dict) -> str:
    parameters = details["quantization_parameters"]
    shape = "x".join(str(int(d)) for d in details["shape"])
    dtype = np.dtype(details["dtype"]).name
    if len(parameters["scales"]):
        return (f"//   {label}: {dtype}[{shape}], scale={float(parameters['scales'][0]):.9g}, "
                f"zero_point={int(parameters['zero_points'][0])}")
    return f"//   {label}: {dtype}[{shape}] (not quantised)"


def to_c_array(model_content: bytes, variable_name: str = "g_model") -> CArray:
    """Formats a full-int8 model as an aligned C byte array and its header.

    Args:
      model_content: the `.tflite` bytes (checked with `check_micro_compatible`).
      variable_name: a C identifier for the array.

    Returns:
      A `CArray`.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable_name):
        raise ValueError("Invalid value for argument `variable_name`. Expected a C identifier. "
                         f"Received: variable_name={variable_name!r}")
    check_micro_compatible(model_content)
    interpreter = micro_runtime.Interpreter.from_bytes(model_content)
    signature = "\n".join([
        "// Tensor signature (quantise inputs as q = round(x / scale) + zero_point,",
        "// dequantise outputs as x = (q - zero_point) * scale):",
        _tensor_comment("input", interpreter.get_input_details(0)),
        _tensor_comment("output", interpreter.get_output_details(0)),
    ])
    guard = f"{variable_name.upper()}_H_"
    header = "\n".join([
        f"// TFLite model for TFLite Micro ({len(model_content)} bytes).",
        signature,
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        f"extern const unsigned char {variable_name}[];",
        f"extern const unsigned int {variable_name}_len;",
        "",
        f"#endif  // {guard}",
        "",
    ])
    rows = []
    for start in range(0, len(model_content), _BYTES_PER_LINE):
        chunk = model_content[start:start + _BYTES_PER_LINE]
        rows.append("    " + ", ".join(f"0x{byte:02x}" for byte in chunk) + ",")
    source = "\n".join([
        f"// TFLite model for TFLite Micro ({len(model_content)} bytes).",
        signature,
        f'#include "{variable_name}.h"',
        "",
        "// Aligned so that the interpreter can read the flatbuffer and weights in place.",
        f"alignas({_ALIGNMENT}) const unsigned char {variable_name}[] = {{",
        *rows,
        "};",
        f"const unsigned int {variable_name}_len = {len(model_content)};",
        "",
    ])
    return CArray(variable_name=variable_name, source=source, header=header)


def write_c_array(model_content: bytes, output_dir: Union[str, os.PathLike],
                  variable_name: str = "g_model") -> tuple:
    """Writes `<variable_name>.cc` and `<variable_name>.h`; returns their paths."""
    array = to_c_array(model_content, variable_name)
    os.makedirs(output_dir, exist_ok=True)
    source_path = os.path.join(output_dir, f"{variable_name}.cc")
    header_path = os.path.join(output_dir, f"{variable_name}.h")
    with open(source_path, "w") as f:
        f.write(array.source)
    with open(header_path, "w") as f:
        f.write(array.header)
    return source_path, header_path


def parse_c_array(source: str) -> bytes:
    """Reads the bytes back from a source written by `to_c_array`, checking the length."""
    body = re.search(r"\[\]\s*=\s*\{(.*?)\};", source, flags=re.DOTALL)
    length = re.search(r"_len\s*=\s*(\d+);", source)
    if body is None or length is None:
        raise ValueError("Invalid value for argument `source`. Expected a C array written by "
                         "`tflite_export.micro.to_c_array`.")
    content = bytes(int(token, 16) for token in re.findall(r"0x([0-9a-fA-F]{2})", body.group(1)))
    if len(content) != int(length.group(1)):
        raise ValueError(f"The C array holds {len(content)} bytes but declares "
                         f"{length.group(1)}: the file is truncated or edited.")
    return content


@contextlib.contextmanager
def _captured_stderr():
    """Captures what C++ code writes to file descriptor 2 (TFLite Micro's debug log)."""
    captured = {"text": ""}
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured["text"] = sink.read().decode("utf-8", errors="replace")


class MicroModel:
    """A full-int8 model running in the TFLite Micro interpreter (batch size 1).

    Args:
      model: a `.tflite` path or bytes.
      arena_size: tensor arena bytes given to the interpreter; by default 10x
        the model size (the package's heuristic), large enough to measure the
        real need with `arena_bytes`.
    """

    def __init__(self, model: Union[str, os.PathLike, bytes], arena_size: Optional[int] = None):
        self.content = load_model_content(model)
        check_micro_compatible(self.content)
        self.interpreter = micro_runtime.Interpreter.from_bytes(self.content,
                                                                arena_size=arena_size)
        self.input_details = self.interpreter.get_input_details(0)
        self.output_details = self.interpreter.get_output_details(0)
        if not np.issubdtype(self.input_details["dtype"], np.integer):
            raise ValueError("Invalid value for argument `model`. TFLite Micro models must be "
                             "full-integer: convert with mode='int8'.")
        self.input_shape = tuple(int(d) for d in self.input_details["shape"][1:])
        self.num_classes = int(self.output_details["shape"][-1])

    def run_native(self, inputs: np.ndarray) -> np.ndarray:
        """Runs int8 inputs one example at a time; returns the raw int8 outputs."""
        outputs = []
        for example in np.asarray(inputs):
            self.interpreter.set_input(example[None].astype(self.input_details["dtype"]), 0)
            self.interpreter.invoke()
            outputs.append(np.array(self.interpreter.get_output(0)).reshape(-1))
        return np.stack(outputs) if outputs else np.zeros((0, self.num_classes),
                                                          self.output_details["dtype"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float outputs for float model inputs (quantised with the model's parameters)."""
        native = self.run_native(quantize(np.asarray(x, np.float32), self.input_details))
        return dequantize(native, self.output_details)

    def recorded_arena_bytes(self) -> int:
        """Tensor arena bytes reported by TFLite Micro's recording allocator.

        Runs one inference first (some kernels allocate scratch buffers lazily).
        """
        self.interpreter.set_input(np.zeros((1, *self.input_shape), self.input_details["dtype"]),
                                   0)
        self.interpreter.invoke()
        with _captured_stderr() as captured:
            self.interpreter.print_allocations()
        match = _ARENA_TOTAL.search(captured["text"])
        if match is None:
            raise RuntimeError("TFLite Micro did not report its arena allocation; got: "
                               f"{captured['text']!r}")
        return int(match.group(1))


# Runs in a child process: prepare the model with a given arena and invoke it once.
_ARENA_TRIAL = """
import sys
import numpy as np
from tflite_micro import runtime
with open(sys.argv[1], "rb") as f:
    interpreter = runtime.Interpreter.from_bytes(f.read(), arena_size=int(sys.argv[2]))
details = interpreter.get_input_details(0)
interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
interpreter.invoke()
"""


def _runs_with_arena(model_path: str, arena_size: int) -> bool:
    trial = subprocess.run([sys.executable, "-c", _ARENA_TRIAL, model_path, str(arena_size)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return trial.returncode == 0


def minimum_arena_size(model: Union[str, os.PathLike, bytes], granularity: int = 16) -> int:
    """Smallest tensor arena (a multiple of `granularity` bytes) that runs the model.

    Bisects between the recording allocator's total (a lower bound: the
    interpreter cannot run with less than it recorded) and a size that works.

    Args:
      model: a `.tflite` path or bytes (full-int8, micro-compatible).
      granularity: precision of the search; TFLite Micro aligns arena
        allocations to 16 bytes.

    Returns:
      The arena size in bytes.
    """
    content = load_model_content(model)
    lower = MicroModel(content).recorded_arena_bytes()
    lower -= lower % granularity
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.tflite")
        with open(path, "wb") as f:
            f.write(content)
        if _runs_with_arena(path, lower):
            return lower
        upper = 2 * lower
        while not _runs_with_arena(path, upper):
            lower, upper = upper, 2 * upper
            if upper > 64 * len(content) + (1 << 20):
                raise RuntimeError("TFLite Micro could not run the model with any arena up to "
                                   f"{upper} bytes.")
        while upper - lower > granularity:
            middle = (lower + upper) // 2
            middle -= middle % granularity
            if _runs_with_arena(path, middle):
                upper = middle
            else:
                lower = middle
    return upper
