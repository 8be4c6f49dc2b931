"""Running a `.tflite` model from Python the way a phone runs it, as an audit `Predictor`.

`TFLitePredictor` wraps the LiteRT interpreter (`ai_edge_litert`, the successor
of `tflite_runtime`, whose 2.14 wheel cannot read models written by the TF 2.21
converter), falling back to `tf.lite.Interpreter` when LiteRT is missing. It

* quantises float inputs with the model's own input parameters,
  `q = clip(round(x / scale) + zero_point)`, and dequantises outputs,
  `y = (q - zero_point) * scale`, so an int8 model is a drop-in replacement
  for the Keras model it came from;
* batches over a dataset by resizing the input tensor (models are converted
  with a dynamic batch dimension);
* picks the op resolver: the default one applies the XNNPACK delegate, which
  (LiteRT 2.3.0) fails to prepare int8 / dynamic-range models holding sparse
  tensors ("failed to delegate FULLY_CONNECTED"); the predictor then falls back
  to the builtin kernels without default delegates and records which one runs
  in `op_resolver`;
* reads the embedded `ModelMetadata` (labels, normalisation, output type).
"""

import os
import time
from typing import Optional, Union

import numpy as np

from mcmia_tf.audit.predictors import Predictor
from tflite_export.metadata import ModelMetadata, read_metadata

try:
    from ai_edge_litert import interpreter as _litert
    _INTERPRETER_BACKEND = "ai_edge_litert"
except ImportError:  # pragma: no cover - exercised only without the LiteRT wheel.
    import tensorflow as tf
    _litert = tf.lite
    _INTERPRETER_BACKEND = "tensorflow"

__all__ = ["DEFAULT_RESOLVER", "FALLBACK_RESOLVER", "TFLitePredictor", "load_model_content",
           "quantize", "dequantize"]

DEFAULT_RESOLVER = "default"
FALLBACK_RESOLVER = "builtin_without_default_delegates"
_RESOLVERS = {
    DEFAULT_RESOLVER: _litert.experimental.OpResolverType.AUTO
    if _INTERPRETER_BACKEND == "tensorflow" else _litert.OpResolverType.AUTO,
    FALLBACK_RESOLVER: _litert.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if _INTERPRETER_BACKEND == "tensorflow"
    else _litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
}


def load_model_content(model: Union[str, os.PathLike, bytes]) -> bytes:
    """Returns the bytes of a `.tflite` path, or `model` itself if it already is bytes."""
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Invalid value for argument `model`. No .tflite file at {path!r}. Write one with "
            "`tflite_export.convert(...)` or `python -m pipelines.export`.")
    with open(path, "rb") as f:
        return f.read()


def _quantization(details: dict) -> tuple:
    parameters = details["quantization_parameters"]
    scales, zero_points = parameters["scales"], parameters["zero_points"]
    if len(scales) == 0:
        return None
    return float(scales[0]), int(zero_points[0])


def quantize(x: np.ndarray, details: dict) -> np.ndarray:
    """Float model inputs -> the tensor's dtype, with its own scale and zero point."""
    dtype = details["dtype"]
    parameters = _quantization(details)
    if parameters is None or not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype)
    scale, zero_point = parameters
    info = np.iinfo(dtype)
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, details: dict) -> np.ndarray:
    """Tensor values -> float32, undoing `quantize`."""
    parameters = _quantization(details)
    if parameters is None or not np.issubdtype(details["dtype"], np.integer):
        return np.asarray(q, np.float32)
    scale, zero_point = parameters
    return ((np.asarray(q, np.float32) - zero_point) * scale).astype(np.float32)


class TFLitePredictor(Predictor):
    """A `.tflite` model behind the audit's `Predictor` interface.

    Args:
      model: a `.tflite` path or the model's bytes.
      output_type: "logits" or "probabilities"; by default read from the
        embedded metadata, else "logits" (mcmia_tf models end without softmax).
      num_threads: interpreter threads; 1 by default so that latencies are
        per-core numbers that do not depend on what else the machine runs.
      op_resolver: `DEFAULT_RESOLVER` (XNNPACK), `FALLBACK_RESOLVER`, or None to
        try the default and fall back when it fails to prepare the model.

    Attributes:
      content: the model bytes.
      metadata: the embedded `ModelMetadata`, or None.
      op_resolver: the resolver actually used.
      backend: "ai_edge_litert" or "tensorflow".
      input_details, output_details: the interpreter's tensor details.
    """

    def __init__(self, model: Union[str, os.PathLike, bytes], output_type: Optional[str] = None,
                 num_threads: int = 1, op_resolver: Optional[str] = None):
        self.content = load_model_content(model)
        self.path = None if isinstance(model, (bytes, bytearray)) else os.fspath(model)
        self.metadata: Optional[ModelMetadata] = read_metadata(self.content)
        self.backend = _INTERPRETER_BACKEND
        self.num_threads = num_threads
        if op_resolver is not None and op_resolver not in _RESOLVERS:
            raise ValueError(f"Invalid value for argument `op_resolver`. Expected one of "
                             f"{sorted(_RESOLVERS)} or None. Received: op_resolver={op_resolver!r}")
        candidates = [op_resolver] if op_resolver else [DEFAULT_RESOLVER, FALLBACK_RESOLVER]
        errors = []
        for resolver in candidates:
            try:
                self.interpreter = self._make_interpreter(resolver)
                self.op_resolver = resolver
                break
            except (RuntimeError, ValueError) as error:
                errors.append(f"{resolver}: {error}")
        else:
            raise RuntimeError("The TFLite interpreter could not prepare the model with any op "
                               "resolver:\n" + "\n".join(errors))
        self.input_details = self.interpreter.get_input_details()[0]
        self.output_details = self.interpreter.get_output_details()[0]
        if len(self.interpreter.get_input_details()) != 1 or len(
                self.interpreter.get_output_details()) != 1:
            raise ValueError("Invalid value for argument `model`. Expected a classifier with one "
                             "input and one output tensor.")
        self.num_classes = int(self.output_details["shape"][-1])
        if output_type is None:
            output_type = self.metadata.output_type if self.metadata else "logits"
        if output_type not in ("logits", "probabilities"):
            raise ValueError("Invalid value for argument `output_type`. Expected 'logits' or "
                             f"'probabilities'. Received: output_type={output_type!r}")
        self.output_type = output_type
        self._batch_size = int(self.input_details["shape"][0])

    def _make_interpreter(self, resolver: str):
        interpreter = _litert.Interpreter(model_content=self.content,
                                          num_threads=self.num_threads,
                                          experimental_op_resolver_type=_RESOLVERS[resolver])
        interpreter.allocate_tensors()
        return interpreter

    @property
    def input_shape(self) -> tuple:
        """Shape of one example (without the batch dimension)."""
        return tuple(int(d) for d in self.input_details["shape"][1:])

    @property
    def is_quantized(self) -> bool:
        """Whether the model takes integer (quantised) inputs."""
        return bool(np.issubdtype(self.input_details["dtype"], np.integer))

    def _resize(self, batch_size: int):
        if batch_size == self._batch_size:
            return
        index = self.input_details["index"]
        self.interpreter.resize_tensor_input(index, [batch_size, *self.input_shape])
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()[0]
        self.output_details = self.interpreter.get_output_details()[0]
        self._batch_size = batch_size

    def run_native(self, inputs: np.ndarray) -> np.ndarray:
        """Runs one batch of inputs already in the model's input dtype; returns raw outputs."""
        inputs = np.asarray(inputs)
        self._resize(len(inputs))
        self.interpreter.set_tensor(self.input_details["index"], inputs)
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output_details["index"]))

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Float outputs for float model inputs (quantised/dequantised as needed)."""
        x = np.asarray(x, np.float32)
        if x.shape[1:] != self.input_shape:
            raise ValueError(f"Invalid value for argument `x`. Expected inputs of shape "
                             f"(n, {', '.join(map(str, self.input_shape))}). Received: "
                             f"x.shape={x.shape}")
        if len(x) == 0:
            return np.zeros((0, self.num_classes), np.float32)
        outputs = []
        for start in range(0, len(x), batch_size):
            batch = quantize(x[start:start + batch_size], self.input_details)
            outputs.append(dequantize(self.run_native(batch), self.output_details))
        return np.concatenate(outputs, axis=0)

    def time_invocations(self, example: np.ndarray, num_runs: int = 100,
                         num_warmup: int = 10) -> np.ndarray:
        """Wall-clock seconds of `num_runs` single-example `invoke()` calls.

        Only `invoke()` is timed (not quantisation or tensor copies), after
        `num_warmup` untimed runs that let XNNPACK pack its weights.
        """
        example = quantize(np.asarray(example, np.float32)[None], self.input_details)
        self._resize(1)
        self.interpreter.set_tensor(self.input_details["index"], example)
        for _ in range(num_warmup):
            self.interpreter.invoke()
        seconds = np.empty(num_runs)
        for run in range(num_runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            seconds[run] = time.perf_counter() - start
        return seconds

    def __repr__(self) -> str:
        source = self.path or f"<{len(self.content)} bytes>"
        return (f"TFLitePredictor({source!r}, input={self.input_details['dtype'].__name__}"
                f"{list(self.input_details['shape'])}, op_resolver={self.op_resolver!r})")
