r"""Exports a trained tf_keras model to TFLite (phones) and a C array (microcontrollers).

    python -m pipelines.export --model_path=model.keras --dataset=fashion_mnist \
        --modes=float32,int8,int8+sparse,micro --output_dir=export/ [--surgery]

Writes `<name>_<mode>.tflite` per mode (`+sparse` stores pruned tensors in TFLite's
sparse format), `<name>_micro.cc/.h` for `micro`, and `export_report.json` (per
file: bytes, zipped bytes, test accuracy, top-1 agreement with the Keras model,
latency, micro arena). Labels and the dataset's input normalisation are embedded in
every file. `--surgery` first removes filters/channels that structured pruning
zeroed. The training split calibrates int8; the test split evaluates. TensorFlow
Datasets sources (cifar10, ...) are read from `--data_dir`. To measure
what a deployed file leaks, audit it: `python -m pipelines.audit
--model_path=export/model_int8.tflite ...`.
"""

from absl import flags

from mcmia_tf.data import DATASET_NAMES
from mcmia_tf.data import load_dataset
from pipelines import cli
from tflite_export import exporter

_MODEL_PATH = flags.DEFINE_string("model_path", None,
                                  "Trained tf_keras model (.keras/.h5/SavedModel folder).")
_MODES = flags.DEFINE_list("modes", ["float32", "int8", "micro"],
                           "Formats: float32, float16, dynamic_int8, int8, each optionally "
                           "with '+sparse', and micro.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Folder for the files and the report.")
_DATASET = flags.DEFINE_string("dataset", "digits", f"Dataset the model was trained on "
                               f"({', '.join(DATASET_NAMES)}): calibration, evaluation, labels.")
_IDX_DIR = flags.DEFINE_string("idx_dir", None, "Folder of the MNIST / Fashion-MNIST IDX files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TensorFlow Datasets folder where the dataset "
                                "is prepared (`tfds build <name> --data_dir=DIR`).")
_SURGERY = flags.DEFINE_bool("surgery", False, "Remove pruned filters/channels first.")
_EVALUATE = flags.DEFINE_bool("evaluate", True, "Evaluate every file on the test split.")
_NUM_CALIBRATION = flags.DEFINE_integer("num_calibration_examples", 256,
                                        "Training examples calibrating int8 ranges.")
_LATENCY_RUNS = flags.DEFINE_integer("latency_runs", 200, "Timed single-example runs per file.")
_NAME = flags.DEFINE_string("name", "model", "File name prefix.")
_DESCRIPTION = flags.DEFINE_string("description", "", "Free text embedded in the metadata.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the calibration draw.")

flags.mark_flags_as_required(["model_path", "output_dir"])


def main(argv):
    del argv
    for name in _MODES.value:
        exporter.parse_format(name)  # fail on a typo before loading anything
    model = exporter.load_keras_model(_MODEL_PATH.value)
    dataset = load_dataset(_DATASET.value, idx_dir=_IDX_DIR.value, data_dir=_DATA_DIR.value)
    normalization = dataset.normalization
    report = exporter.export_model(
        model, _MODES.value, _OUTPUT_DIR.value, labels=dataset.class_names,
        x_train=dataset.x_train,
        x_test=dataset.x_test if _EVALUATE.value else None,
        y_test=dataset.y_test if _EVALUATE.value else None,
        input_scale=normalization.scale, input_mean=normalization.mean,
        input_std=normalization.std, surgery=_SURGERY.value,
        num_calibration_examples=_NUM_CALIBRATION.value, latency_runs=_LATENCY_RUNS.value,
        seed=_SEED.value, name=_NAME.value, description=_DESCRIPTION.value)
    for row in report.to_dict()["files"]:
        accuracy = row.get("test_accuracy")
        print(f"{row['format']:>20}  {row['path']}  "
              + ("" if accuracy is None else
                 f"bytes={row['bytes']} zipped={row['zipped_bytes']} acc={accuracy:.4f} "
                 f"agreement={row['agreement']:.4f}"))


if __name__ == "__main__":
    cli.run(main)
