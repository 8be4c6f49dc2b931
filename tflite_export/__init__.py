"""TFLite export of tf_keras models: converter, structured-pruning surgery, TFLite Micro,
LiteRT runtime and deployed-model evaluation."""

from tflite_export.bias_map_conv import Conv2DWithBiasMap
from tflite_export.converter import convert
from tflite_export.converter import MODES
from tflite_export.converter import representative_dataset
from tflite_export.converter import strip_for_export
from tflite_export.evaluate import evaluate_export
from tflite_export.evaluate import ExportEvaluation
from tflite_export.evaluate import LatencyStats
from tflite_export.evaluate import measure_latency
from tflite_export.exporter import export_model
from tflite_export.exporter import ExportReport
from tflite_export.exporter import load_keras_model
from tflite_export.inspection import summarize
from tflite_export.inspection import TFLiteSummary
from tflite_export.inspection import zipped_size
from tflite_export.metadata import embed_metadata
from tflite_export.metadata import ModelMetadata
from tflite_export.metadata import read_metadata
from tflite_export.micro import CArray
from tflite_export.micro import check_micro_compatible
from tflite_export.micro import MicroModel
from tflite_export.micro import minimum_arena_size
from tflite_export.micro import parse_c_array
from tflite_export.micro import to_c_array
from tflite_export.micro import write_c_array
from tflite_export.runtime import TFLitePredictor
from tflite_export.surgery import remove_pruned_channels
from tflite_export.surgery import SurgeryReport

__all__ = [
    "CArray",
    "Conv2DWithBiasMap",
    "ExportReport",
    "ExportEvaluation",
    "LatencyStats",
    "MODES",
    "MicroModel",
    "ModelMetadata",
    "SurgeryReport",
    "TFLitePredictor",
    "TFLiteSummary",
    "check_micro_compatible",
    "convert",
    "embed_metadata",
    "evaluate_export",
    "export_model",
    "load_keras_model",
    "measure_latency",
    "minimum_arena_size",
    "parse_c_array",
    "read_metadata",
    "remove_pruned_channels",
    "representative_dataset",
    "strip_for_export",
    "summarize",
    "to_c_array",
    "write_c_array",
    "zipped_size",
]
