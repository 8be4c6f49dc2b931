r"""Architecture benchmark: pruning ResNet18, MobileNetV2 and VGG16, then what LiteRT makes of it.

Fashion-MNIST (28x28x1, zero-padded to 32x32 and centred: a black pixel is 0 after
the [0, 1] scaling, so the border is black), ResNet18 / MobileNetV2 / VGG16 of
`mcmia_tf.models` at `--width` 0.25, trained on 10,000 training images (seeded
draw), evaluated on the 10,000 test images. Per architecture, every row starts from
the SAME dense checkpoint (`--pretrain_epochs` of Adam) and gets the SAME budget of
`--epochs` epochs:

* dense: the checkpoint trained `--epochs` more epochs without pruning (the
  reference for accuracy, FLOPs and latency);
* reweighted / admm / static_l1 at `--sparsities` 0.9 and 0.95 (10x, 20x),
  structures `unstructured` and `filter`: regularize for `--prune_at` epochs, hard
  prune, masked retraining for the rest (`mcmia_tf.pruning`; filter pruning couples
  residual additions and depthwise convolutions so that surgery applies);
* tfmot (unstructured only): `prune_low_magnitude` ramped over the same first
  `--prune_at` epochs, each layer to the rate our pruners plan for it
  (`prune_low_magnitude_planned`). tfmot cannot prune depthwise kernels: on
  MobileNetV2 its Conv2D / Dense kernels reach the target together and the
  depthwise ones stay dense, so its overall sparsity is below the target.

The pruners' hyper-parameters are `bench.pruning`'s (chosen on held-out
Fashion-MNIST for LeNet-5, `bench.compression.PrunerSettings`), not re-tuned for
these architectures; `--admm_rho` and `--l1_penalty` override them (reweighted
calibrates its own lambda). A rate a model's layers cannot absorb is skipped.

Columns: `sparsity` and `compression` (weights / non-zero weights) over the
Conv2D, DepthwiseConv2D and Dense kernels of the pruned model; `flops` per image
(2 per multiply-accumulate, those kernels only; `mcmia_tf.pruning.sparsity_report`)
of the model after `tflite_export.surgery.remove_pruned_channels`: the dense count
of the slimmed network for `filter` and `dense` rows (what a dense runtime
computes), the count over NON-ZERO weights for unstructured and tfmot rows (what a
sparse kernel could skip; no runtime here does); `flops_reduction` = dense /
this; `params`: all parameters after surgery (batch norm included). `.tflite`
sizes (raw and zip-compressed) are of the model after surgery (what ships), in
float32 and full int8 (calibrated on 256 training images). `latency_ms` /
`latency_ms_slimmed`: median of `--latency_runs` single-image `invoke()` calls of
the float32 file before / after surgery, LiteRT, one thread, XNNPACK
(`tflite_export.evaluate.measure_latency`); surgery removes nothing from dense and
(usually) unstructured models, whose file is then timed once. `seconds_per_epoch`
/ `cpu_seconds_per_epoch`: wall and process-CPU time of the row's `fit` over its
epochs (tracing included). If surgery fails on a model (a library bug), its row
keeps the pruned model's FLOPs, parameters and sizes, has no `latency_ms_slimmed`,
and `surgery.error` in the JSON says why.

`--noprune_depthwise` leaves the DepthwiseConv2D kernels dense in our pruners'
unstructured rows, tfmot's allocation (MobileNetV2's 3x3 depthwise kernels have 9
weights a channel); the overall sparsity of those rows is then below the target,
as tfmot's is. Rows carry `prune_depthwise` (None for dense and tfmot rows), the
table labels ours "(depthwise dense)" when False, and the tfmot target compares such
a row, when there is one, instead of the row that prunes every layer.

Every row's model ends with its BatchNormalization statistics recomputed on the
training images under its final weights (`mcmia_tf.models.recompute_batch_norm`,
PreciseBN) before anything is measured; `--norecompute_batch_norm` keeps Keras's
moving averages, which lag the pruning: with them MobileNetV2 pruned to 90% by the
reweighted pruner scores 17% in inference mode against 68% with the same weights in
training mode, and tfmot's 95% one 8% against 73%.

Under the table, the benchmark's targets (`bench.architectures_lib.targets`), each
"met", "not met" or "not checked" (rows missing) with the numbers behind it:
a filter row of ResNet18 and of MobileNetV2 with `flops_reduction` >= 2, float32
latency after surgery >= 1.8x faster than dense and accuracy at most 1 point below
dense; reweighted (unstructured) accuracy >= tfmot's at 0.95 on >= 2 architectures.

    python -m bench.architectures --output_json=architectures.json   # Fashion-MNIST, hours
    python -m bench.architectures --models=resnet18 --methods=reweighted,tfmot \
        --sparsities=0.95 --output_json=resnet18.json
    python -m bench.architectures --quick --output_json=architectures_quick.json

`--quick`: `digits` (8x8x1 zero-padded to 32x32; all 1,500 training images, its 297
test images), width 0.125, 2 + 2 epochs (hard prune after 1), 50 latency runs, all
three architectures, but only the rows the targets compare: dense, reweighted
(unstructured and filter) and tfmot at 0.95 (`--methods` / `--sparsities` widen it).
Each row costs two or three TFLite conversions, which dominate its time: 12 rows in
8 minutes on a loaded 2-core machine. It checks the plumbing, not the methods: in 4
epochs the dense models reach 10-30% on digits and every 95%-pruned model predicts
one class.
"""

import time
from typing import Dict, List, Optional, Tuple

from absl import app
from absl import flags
import numpy as np

from bench import compression
from bench import output
from bench.architectures_lib import format_row
from bench.architectures_lib import markdown_table
from bench.architectures_lib import pad_to
from bench.architectures_lib import targets
from mcmia_tf import pruning
from mcmia_tf.compat import keras
from mcmia_tf.data import load_dataset
from mcmia_tf.models import build_model
from mcmia_tf.models import recompute_batch_norm
from mcmia_tf.privacy.poisson import steps_per_epoch
from tflite_export import converter
from tflite_export.evaluate import measure_latency
from tflite_export.inspection import zipped_size
from tflite_export.runtime import TFLitePredictor
from tflite_export.surgery import remove_pruned_channels

ARCHITECTURES = ("resnet18", "mobilenetv2", "vgg16")
METHODS = ("reweighted", "admm", "static_l1", "tfmot")
# --quick keeps the rows the targets compare: conversions and latency runs, not
# training, dominate its time.
QUICK_METHODS = ("reweighted", "tfmot")
QUICK_SPARSITIES = ("0.95",)

_DEFAULTS = compression.PrunerSettings()
_QUICK = flags.DEFINE_bool("quick", False, "digits, width 0.125, 2 + 2 epochs: minutes.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the JSON rows.")
_MODELS = flags.DEFINE_list("models", list(ARCHITECTURES), "Architectures.")
_METHODS = flags.DEFINE_list("methods", list(METHODS),
                             f"Compression methods: {compression.PRUNER_METHODS} or "
                             f"{tuple(compression.TFMOT_EDGE_LAYER_SPARSITY)} (dense always runs; "
                             f"{','.join(QUICK_METHODS)} with --quick unless set).")
_SPARSITIES = flags.DEFINE_list("sparsities", ["0.90", "0.95"],
                                f"Target sparsities ({','.join(QUICK_SPARSITIES)} with --quick "
                                "unless set).")
_STRUCTURES = flags.DEFINE_list("structures", ["unstructured", "filter"], "Structures.")
_WIDTH = flags.DEFINE_float("width", None, "Channel multiplier (0.25; 0.125 with --quick).")
_NUM_TRAIN = flags.DEFINE_integer("num_train", None,
                                  "Training images (10,000; all 1,500 with --quick).")
_PRETRAIN_EPOCHS = flags.DEFINE_integer("pretrain_epochs", None,
                                        "Dense epochs before pruning (10; 2 with --quick).")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epoch budget of every row after pretraining "
                               "(10; 2 with --quick).")
_PRUNE_AT = flags.DEFINE_integer("prune_at", None, "Epoch of the hard prune, end of the ramp "
                                 "(6; 1 with --quick).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Batch size (128; 32 with --quick).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
_ADMM_RHO = flags.DEFINE_float("admm_rho", _DEFAULTS.admm_rho, "ADMM rho.")
_L1_PENALTY = flags.DEFINE_float("l1_penalty", _DEFAULTS.l1_penalty,
                                 "Static L1 / group lasso lambda.")
_LATENCY_RUNS = flags.DEFINE_integer("latency_runs", None,
                                     "Timed single-image runs (200; 50 with --quick).")
_PRUNE_DEPTHWISE = flags.DEFINE_bool(
    "prune_depthwise", True, "Let our pruners prune DepthwiseConv2D kernels in unstructured "
    "rows. --noprune_depthwise leaves them dense, as tfmot does (filter rows always prune them "
    "with their expansion layer's filters, which surgery needs).")
_RECOMPUTE_BATCH_NORM = flags.DEFINE_bool(
    "recompute_batch_norm", True, "Recompute every row's BatchNormalization statistics on the "
    "training images under its final weights before measuring it (PreciseBN).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the data draw, initialisation and shuffling.")

_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
_VERIFY_SIZE = 32  # test images on which surgery's outputs are checked against the model's


def _value(flag, full, quick):
    if flag.value is not None:
        return flag.value
    return quick if _QUICK.value else full


def _listed(flag, quick) -> List[str]:
    return list(quick) if _QUICK.value and not flag.present else flag.value


def _load():
    """(x_train, y_train, x_test, y_test, num_classes), images padded to 32x32."""
    dataset = load_dataset("digits" if _QUICK.value else "fashion_mnist")
    order = np.random.default_rng(_SEED.value).permutation(len(dataset.x_train))
    num_train = min(len(order), _value(_NUM_TRAIN, 10_000, len(order)))
    train = np.sort(order[:num_train])
    return (pad_to(dataset.x_train[train]), dataset.y_train[train], pad_to(dataset.x_test),
            dataset.y_test, dataset.num_classes)


def _compile(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(_LEARNING_RATE.value), loss=_LOSS,
                  metrics=["accuracy"])
    return model


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.predict(x, batch_size=1024, verbose=0).argmax(axis=1) == y))


def _latency_ms(content: bytes, example: np.ndarray) -> float:
    predictor = TFLitePredictor(content)  # one thread, XNNPACK when the model allows it
    return measure_latency(predictor, example, num_runs=_value(_LATENCY_RUNS, 200, 50)).median_ms


def _measure(architecture: str, method: str, structure: str, target: float,
             model: keras.Model, seconds: Tuple[float, float], data, batch_size: int) -> Dict:
    """Accuracy, FLOPs, surgery, `.tflite` sizes and latencies of one trained model
    (its batch norm statistics recomputed first, unless `--norecompute_batch_norm`)."""
    x, _, x_test, y_test, _ = data
    if _RECOMPUTE_BATCH_NORM.value:
        recompute_batch_norm(model, x, batch_size)
    report = pruning.sparsity_report(model)
    surgery_error = None
    try:
        slimmed, surgery = remove_pruned_channels(model, verify_inputs=x_test[:_VERIFY_SIZE])
    except Exception as error:  # pylint: disable=broad-except
        # A surgery bug must not cost the hours of training behind the other rows: keep
        # the row (sizes of the pruned model, no latency after surgery) and say why.
        surgery_error = f"{type(error).__name__}: {error}"
        print(f"surgery failed on {architecture} {method} {structure} {target}: "
              f"{surgery_error}", flush=True)
        slimmed, surgery = None, None
    removed = surgery is not None and surgery.channels_after != surgery.channels_before
    shipped = slimmed if removed else model
    shipped_report = pruning.sparsity_report(shipped) if removed else report
    flops = (shipped_report.flops_sparse if structure == "unstructured"
             else shipped_report.flops_dense)
    float_content = converter.convert(model, "float32")
    latency = _latency_ms(float_content, x_test[0])
    if removed:
        shipped_content = converter.convert(shipped, "float32")
        latency_slimmed = _latency_ms(shipped_content, x_test[0])
    else:
        shipped_content = float_content
        latency_slimmed = None if surgery is None else latency
    int8_content = converter.convert(shipped, "int8", representative_data=x, seed=_SEED.value)
    wall, cpu = seconds
    return {
        "model": architecture, "method": method, "structure": structure,
        "target_sparsity": target, "sparsity": round(report.sparsity, 4),
        "compression": round(report.compression_rate, 2),
        "test_accuracy": round(_accuracy(model, x_test, y_test), 4),
        "flops": int(flops), "flops_reduction": round(report.flops_dense / max(flops, 1), 2),
        "params": int(shipped.count_params()),
        "tflite_bytes": len(shipped_content), "tflite_zipped_bytes": zipped_size(shipped_content),
        "int8_bytes": len(int8_content), "int8_zipped_bytes": zipped_size(int8_content),
        "latency_ms": round(latency, 4),
        "latency_ms_slimmed": None if latency_slimmed is None else round(latency_slimmed, 4),
        "surgery": {"error": surgery_error} if surgery is None else {
            "channels_before": surgery.channels_before, "channels_after": surgery.channels_after,
            "parameter_reduction": round(surgery.parameter_reduction, 3)},
        "seconds_per_epoch": round(wall, 3), "cpu_seconds_per_epoch": round(cpu, 3),
        "recompute_batch_norm": _RECOMPUTE_BATCH_NORM.value,
        "prune_depthwise": _prunes_depthwise(method, structure),
    }


def _prunes_depthwise(method: str, structure: str) -> Optional[bool]:
    """Whether our pruner pruned the row's DepthwiseConv2D kernels: always in filter
    rows (with their expansion layer's filters), in unstructured rows unless
    `--noprune_depthwise`; None for dense and tfmot rows, which have no such choice."""
    if method == "dense" or method in compression.TFMOT_EDGE_LAYER_SPARSITY:
        return None
    return structure != "unstructured" or _PRUNE_DEPTHWISE.value


def _left_dense(model: keras.Model, method: str, structure: str) -> List[str]:
    """Paths of the layers our pruner leaves dense: the depthwise ones with
    `--noprune_depthwise` in unstructured rows, else none."""
    if _prunes_depthwise(method, structure):
        return []
    return [w.path for w in pruning.find_prunable_weights(model) if w.depthwise]


def _run_architecture(architecture: str, data) -> List[Dict]:
    x, y, x_test, _, num_classes = data
    width = _value(_WIDTH, 0.25, 0.125)
    epochs = _value(_EPOCHS, 10, 2)
    prune_at = _value(_PRUNE_AT, 6, 1)
    batch_size = _value(_BATCH_SIZE, 128, 32)

    def fresh_model():
        return build_model(architecture, x.shape[1:], num_classes, width=width, seed=_SEED.value)

    keras.backend.clear_session()
    keras.utils.set_random_seed(_SEED.value)  # Shuffling order of `fit`.
    start = time.perf_counter()
    dense = _compile(fresh_model())
    dense.fit(x, y, epochs=_value(_PRETRAIN_EPOCHS, 10, 2), batch_size=batch_size, verbose=0)
    checkpoint = dense.get_weights()
    print(f"== {architecture} width {width}: {dense.count_params():,} parameters, dense "
          f"checkpoint in {time.perf_counter() - start:.0f} s", flush=True)

    def from_checkpoint():
        keras.backend.clear_session()  # Keeps graph memory flat over dozens of models.
        keras.utils.set_random_seed(_SEED.value)
        model = fresh_model()
        model.set_weights(checkpoint)
        return model

    settings = compression.PrunerSettings(admm_rho=_ADMM_RHO.value, l1_penalty=_L1_PENALTY.value)
    model = _compile(from_checkpoint())
    seconds = compression.timed_fit(model, x, y, epochs, batch_size)
    rows = [_measure(architecture, "dense", "none", 0.0, model, seconds, data, batch_size)]
    print(format_row(rows[-1]), flush=True)
    for structure in _STRUCTURES.value:
        for target in [float(s) for s in _listed(_SPARSITIES, QUICK_SPARSITIES)]:
            for method in _listed(_METHODS, QUICK_METHODS):
                if method in compression.TFMOT_EDGE_LAYER_SPARSITY:
                    if structure != "unstructured":
                        continue  # tfmot prunes magnitudes only.
                    pruned, seconds = compression.tfmot_prune(
                        from_checkpoint(), x, y, target, compile_fn=_compile, prune_at=prune_at,
                        epochs=epochs, batch_size=batch_size,
                        edge_layer_sparsity=compression.TFMOT_EDGE_LAYER_SPARSITY[method],
                        one_shot=method in compression.TFMOT_ONE_SHOT)
                else:
                    model = _compile(pruning.make_prunable(from_checkpoint()))
                    pruner = compression.make_pruner(
                        method, structure, target, prune_at, steps_per_epoch(len(x), batch_size),
                        settings, _left_dense(model, method, structure))
                    try:
                        pruner.plan(model)
                    except ValueError as error:  # e.g. a rate the layers cannot absorb
                        print(f"skipped {architecture} {method} {structure} {target}: {error}",
                              flush=True)
                        continue
                    seconds = compression.timed_fit(model, x, y, epochs, batch_size,
                                                    pruner.callbacks())
                    pruned = pruner.strip(model)
                rows.append(_measure(architecture, method, structure, target, pruned, seconds,
                                     data, batch_size))
                print(format_row(rows[-1]), flush=True)
    return rows


def _check_flags():
    unknown = [m for m in _MODELS.value if m not in ARCHITECTURES]
    if unknown:
        raise app.UsageError(f"Invalid value for flag `models`: {unknown}. Expected names from "
                             f"{ARCHITECTURES}.")
    known = compression.PRUNER_METHODS + tuple(compression.TFMOT_EDGE_LAYER_SPARSITY)
    unknown = [m for m in _listed(_METHODS, QUICK_METHODS) if m not in known]
    if unknown:
        raise app.UsageError(f"Invalid value for flag `methods`: {unknown}. Expected names from "
                             f"{known}.")
    if _value(_PRUNE_AT, 6, 1) >= _value(_EPOCHS, 10, 2):
        raise app.UsageError("Invalid value for flag `prune_at`. Expected fewer than `--epochs` "
                             "epochs, so that masked retraining follows the hard prune.")


def run() -> List[Dict]:
    """Runs every selected configuration and returns the table rows."""
    _check_flags()
    data = _load()
    rows = []
    for architecture in _MODELS.value:
        rows.extend(_run_architecture(architecture, data))
    return rows


def main(argv):
    del argv
    start = time.time()
    rows = run()
    notes = targets(rows) + [f"total {time.time() - start:.0f} s"]
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value, notes=notes)


if __name__ == "__main__":
    app.run(main)
