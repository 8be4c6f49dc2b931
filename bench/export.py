r"""Export benchmark: what TFLite does to size, speed, accuracy and leakage of LeNet-5.

Models (Fashion-MNIST by default; `digits` with `--quick`):

* `dense`: LeNet-5 20-50-500 trained on the split's members
  (`--dense_model` to use the defences benchmark's model instead);
* `pruned`: the dense model pruned to `--sparsity` (0.95) unstructured, with
  `mcmia_tf.pruning.ReweightedPruning` (`--pruned_model` to use the defences
  benchmark's MCMIA-Pruning & Min-Max model instead);
* `filter50`: the dense model with 50% of the filters of every hidden layer pruned
  (`ReweightedPruning(structure="filter")`), exported as is and after
  `remove_pruned_channels` (`filter50+surgery`): the latency comparison.

For each model and format: raw and zip-compressed bytes, test accuracy, top-1
agreement with the Keras model, median / p90 single-example latency in LiteRT
(1 thread, XNNPACK unless the model cannot use it), TFLite Micro arena (micro),
and LiRA (online, fixed variance) TPR at 0.1% FPR of the `.tflite` file itself,
with `--num_reference_models` reference models trained by the dense recipe on
random halves of the candidates (shared by every target, so the numbers differ only
by the target). Rows with mode `keras` audit the Keras model for comparison.

    python -m bench.export --quick --output_json=export.json
    python -m bench.export --output_json=export.json \
        [--dense_model=... --pruned_model=... --split=split.json]
"""

import tempfile
import time
from typing import Dict, List, Optional

from absl import app
from absl import flags
import numpy as np

from bench import output
from mcmia_tf.audit import AuditConfig, KerasPredictor, run_audit
from mcmia_tf.compat import keras
from mcmia_tf.data import MembershipSplit, load_dataset
from mcmia_tf.recipes import StandardTrainingRecipe
from tflite_export import converter, evaluate, exporter
from tflite_export.runtime import TFLitePredictor
from tflite_export.surgery import remove_pruned_channels

_QUICK = flags.DEFINE_bool("quick", False, "Run on `digits` in a few minutes.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the JSON rows.")
_DENSE_MODEL = flags.DEFINE_string("dense_model", None, "Saved dense LeNet-5 (else trained).")
_PRUNED_MODEL = flags.DEFINE_string("pruned_model", None, "Saved pruned LeNet-5 (else trained).")
_SPLIT = flags.DEFINE_string("split", None, "MembershipSplit JSON of the given models.")
_NUM_MEMBERS = flags.DEFINE_integer("num_members", None, "Members (10,000; 500 with --quick).")
_EPOCHS = flags.DEFINE_integer("epochs", None, "Dense training epochs (30; 40 with --quick).")
_PRUNE_EPOCHS = flags.DEFINE_integer("prune_epochs", 10, "Pruning + retraining epochs.")
_PRUNE_AT = flags.DEFINE_integer("prune_at", 6, "Epoch of the hard prune.")
_SPARSITY = flags.DEFINE_float("sparsity", 0.95, "Unstructured target sparsity.")
_FORMATS = flags.DEFINE_list("formats", ["float32", "float32+sparse", "float16",
                                         "dynamic_int8", "int8", "int8+sparse", "micro"],
                             "Export formats.")
_NUM_REFERENCE_MODELS = flags.DEFINE_integer("num_reference_models", None,
                                             "LiRA reference models (16; 4 with --quick); "
                                             "0 skips the audit.")
_LATENCY_RUNS = flags.DEFINE_integer("latency_runs", 500, "Timed single-example runs.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", None, "LiRA reference models (default: temp).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split, models and calibration.")

_COLUMNS = ("model", "mode", "bytes", "zipped_bytes", "test_accuracy", "agreement",
            "latency_ms_median", "arena_bytes", "tpr_at_0.1pct_fpr")


def _value(flag, full, quick):
    if flag.value is not None:
        return flag.value
    return quick if _QUICK.value else full


def _recipe(dataset) -> StandardTrainingRecipe:
    return StandardTrainingRecipe("lenet5", dataset.input_shape, dataset.num_classes,
                                  epochs=_value(_EPOCHS, 30, 40),
                                  batch_size=32 if _QUICK.value else 128)


def _compiled(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _prune(dense: keras.Model, x, y, sparsity: float, structure: str, recipe):
    """Prunes a copy of `dense`; returns (model, description of the method)."""
    try:
        from mcmia_tf import pruning  # pylint: disable=g-import-not-at-top
    except ImportError:
        pruning = None
    if pruning is not None:
        model = _compiled(pruning.make_prunable(dense))  # A copy with mask constraints.
        # Filters: the same rate in every layer, so that "50% of the filters" holds layer
        # by layer. Unstructured: the pruner spreads the budget (edge layers pruned less).
        uniform = (lambda layer: sparsity) if structure == "filter" else None
        pruner = pruning.ReweightedPruning(sparsity, structure, prune_at=_PRUNE_AT.value,
                                           penalty=1e-4, layer_sparsity=uniform)
        keras.utils.set_random_seed(_SEED.value)  # order of `fit`'s shuffling
        model.fit(x, y, epochs=_PRUNE_EPOCHS.value, batch_size=recipe.batch_size, verbose=0,
                  callbacks=pruner.callbacks())
        return pruner.strip(model), f"mcmia reweighted {structure} {sparsity:g}"
    if structure != "unstructured":
        raise RuntimeError("Filter pruning needs mcmia_tf.pruning.")
    import tensorflow_model_optimization as tfmot  # pylint: disable=g-import-not-at-top
    model = keras.models.clone_model(dense)
    model.set_weights(dense.get_weights())
    schedule = tfmot.sparsity.keras.ConstantSparsity(sparsity, begin_step=0, frequency=1)
    wrapped = _compiled(tfmot.sparsity.keras.prune_low_magnitude(model,
                                                                 pruning_schedule=schedule))
    wrapped.fit(x, y, epochs=_PRUNE_EPOCHS.value, batch_size=recipe.batch_size, verbose=0,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(wrapped), f"tfmot magnitude {sparsity:g}"


def _models(dataset, split, recipe) -> Dict[str, tuple]:
    """{name: (keras model, how it was made)}."""
    x, y = dataset.x_train[split.members], dataset.y_train[split.members]
    if _DENSE_MODEL.value:
        dense, dense_origin = exporter.load_keras_model(_DENSE_MODEL.value), _DENSE_MODEL.value
    else:
        start = time.time()
        dense = recipe.train(x, y, seed=_SEED.value)
        dense_origin = f"trained {recipe.epochs} epochs ({time.time() - start:.0f} s)"
    models = {"dense": (dense, dense_origin)}
    if _PRUNED_MODEL.value:
        models["pruned"] = (exporter.load_keras_model(_PRUNED_MODEL.value), _PRUNED_MODEL.value)
    else:
        models["pruned"] = _prune(dense, x, y, _SPARSITY.value, "unstructured", recipe)
    filter_model, origin = _prune(dense, x, y, 0.5, "filter", recipe)
    models["filter50"] = (filter_model, origin)
    smaller, report = remove_pruned_channels(filter_model, verify_inputs=dataset.x_test[:64])
    models["filter50+surgery"] = (smaller, f"{origin}; surgery {report.channels_after}, "
                                           f"{report.parameter_reduction:.2f}x fewer parameters")
    return models


def _kernel_sparsity(model) -> float:
    kernels = [w.numpy() for w in model.weights if "kernel" in w.name]
    return sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)


def run() -> List[Dict]:
    """Exports, evaluates and audits every model; returns the rows."""
    dataset = load_dataset("digits" if _QUICK.value else "fashion_mnist")
    num_reference = _value(_NUM_REFERENCE_MODELS, 16, 4)
    if (_DENSE_MODEL.value or _PRUNED_MODEL.value) and num_reference and not _SPLIT.value:
        raise ValueError("Auditing given models needs the split they were trained on: pass "
                         "--split=split.json (or --num_reference_models=0).")
    if _SPLIT.value:
        split = MembershipSplit.load(_SPLIT.value)
    else:
        split = MembershipSplit.create(dataset_name=dataset.name,
                                       num_examples=len(dataset.x_train),
                                       num_members=_value(_NUM_MEMBERS, 10_000, 500),
                                       num_shadow_pool=0, seed=_SEED.value)
    recipe = _recipe(dataset)
    models = _models(dataset, split, recipe)
    cache_dir = _CACHE_DIR.value or tempfile.mkdtemp(prefix="export_bench_lira_")
    config = None if num_reference == 0 else AuditConfig(
        attacks=("lira_online",), num_reference_models=num_reference, num_shadow_models=0,
        seed=_SEED.value)

    def leakage(target) -> Dict:
        """LiRA's TPR at 0.1% FPR on `target` and its 95% bootstrap interval."""
        if config is None:
            return dict(_NO_LEAKAGE)
        report = run_audit(target, dataset.x_train, dataset.y_train, split, recipe=recipe,
                           config=config, cache_dir=cache_dir, verbose=0)
        metrics = report.attack("lira_online").metrics
        interval = metrics.confidence_intervals[f"tpr_at_{evaluate.LEAKAGE_FPR_KEY}_fpr"]
        return {"tpr_at_0.1pct_fpr": float(metrics.tpr_at_fpr[evaluate.LEAKAGE_FPR_KEY]),
                "tpr_at_0.1pct_fpr_interval": [float(b) for b in interval]}

    rows = []
    for name, (model, origin) in models.items():
        print(f"== {name}: {origin}; kernel sparsity {_kernel_sparsity(model):.3f}", flush=True)
        keras_accuracy = float(np.mean(KerasPredictor(model).predict(dataset.x_test).argmax(1)
                                       == dataset.y_test))
        rows.append({"model": name, "origin": origin, "mode": "keras", "bytes": None,
                     "zipped_bytes": None, "test_accuracy": keras_accuracy, "agreement": 1.0,
                     "latency_ms_median": None, "arena_bytes": None, **leakage(model)})
        _print_row(rows[-1])
        formats = _FORMATS.value if name in ("dense", "pruned") else ["float32", "int8"]
        for format_name in formats:
            mode, sparse = exporter.parse_format(format_name)
            content = converter.convert(model, mode, sparse=sparse,
                                        representative_data=dataset.x_train[split.members],
                                        seed=_SEED.value)
            micro = format_name == exporter.MICRO_FORMAT
            row = evaluate.evaluate_export(model, content, dataset.x_test, dataset.y_test,
                                           model_name=name, mode=format_name, micro=micro,
                                           latency_runs=_LATENCY_RUNS.value).to_dict()
            row["origin"] = origin
            # The micro interpreter runs on a device, not in an audit loop: no leakage row.
            row.update(_NO_LEAKAGE if micro else leakage(TFLitePredictor(content)))
            rows.append(row)
            _print_row(rows[-1])
    return rows


_NO_LEAKAGE = {"tpr_at_0.1pct_fpr": None, "tpr_at_0.1pct_fpr_interval": None}


def _format(column, value) -> str:
    if value is None:
        return "-"
    if column in ("test_accuracy", "agreement"):
        return f"{value:.2%}"
    if column == "tpr_at_0.1pct_fpr":
        return f"{value:.2%}"
    if column == "latency_ms_median":
        return f"{value:.4f}"
    return str(value)


def _print_row(row):
    print(" | ".join(_format(c, row[c]) for c in _COLUMNS), flush=True)


def markdown_table(rows: List[Dict]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " [95%] |", "|" + "---|" * len(_COLUMNS)]
    for row in rows:
        cells = [_format(c, row[c]) for c in _COLUMNS]
        interval = row.get("tpr_at_0.1pct_fpr_interval")
        if interval:
            cells[-1] += f" [{interval[0]:.2%}, {interval[1]:.2%}]"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(rows: List[Dict]) -> Dict[str, object]:
    """The benchmark's targets, computed from the rows."""
    def find(model, mode):
        return next(r for r in rows if r["model"] == model and r["mode"] == mode)

    dense_float = find("dense", "float32")
    pruned_int8 = find("pruned", "int8")
    checks = {
        "int8_pruned_zipped_vs_float32_dense": dense_float["bytes"] / pruned_int8["zipped_bytes"],
        "surgery_speedup_float32": find("filter50", "float32")["latency_ms_median"]
        / find("filter50+surgery", "float32")["latency_ms_median"],
        "surgery_vs_dense_speedup_float32": dense_float["latency_ms_median"]
        / find("filter50+surgery", "float32")["latency_ms_median"],
        "surgery_vs_dense_speedup_int8": find("dense", "int8")["latency_ms_median"]
        / find("filter50+surgery", "int8")["latency_ms_median"],
    }
    for name in ("dense", "pruned"):
        checks[f"int8_accuracy_delta_points_{name}"] = 100 * (
            find(name, "int8")["test_accuracy"] - find(name, "keras")["test_accuracy"])
        keras_tpr, int8_tpr = find(name, "keras")["tpr_at_0.1pct_fpr"], find(
            name, "int8")["tpr_at_0.1pct_fpr"]
        checks[f"lira_tpr_keras_vs_int8_{name}"] = (keras_tpr, int8_tpr)
    return checks


def main(argv):
    del argv
    start = time.time()
    rows = run()
    notes = [f"{name}: {value}" for name, value in targets(rows).items()]
    notes.append(f"total {time.time() - start:.0f} s")
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value, notes=notes)


if __name__ == "__main__":
    app.run(main)
