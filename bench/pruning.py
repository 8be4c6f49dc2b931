r"""Pruning benchmark: reweighted, ADMM, static L1 and tfmot magnitude pruning.

Fashion-MNIST, LeNet-5 (20-50-500) trained on 10,000 training images (seeded draw),
evaluated on the 10,000 test images. Every compression run starts from the SAME
dense checkpoint (`--pretrain_epochs` of Adam) and gets the SAME budget of
`--epochs` epochs:

* reweighted / admm / static_l1: regularize for `--prune_at` epochs, hard prune,
  masked retraining for the rest (`mcmia_tf.pruning`). reweighted is the recipes'
  default: bounded by the constraint, lambda calibrated on the run, the designated
  rate ramped from 0 over the `--prune_at` epochs with 4 keep-set updates an epoch
  (`ReweightedPruning.ramped`); reweighted_constant: the same bounded form aiming at
  the target from the first epoch, one update an epoch (the earlier default);
  reweighted_progressive: reweighted_constant with `--progressive_steps` rising
  targets (rows at sparsity >= 0.98 only, where it is meant to help);
  reweighted_fixed: reweighted_constant with a fixed `--bounded_penalty` instead of
  the calibration (to tune lambda by hand and compare the calibration with it);
* tfmot: `prune_low_magnitude` with `PolynomialDecay` from 0 to the target over the
  same first `--prune_at` epochs, then fine-tuning with frozen masks (unstructured
  only: tfmot has no filter pruning), each layer to the rate our pruners plan for
  it (`prune_low_magnitude_planned`); `tfmot_oneshot`: the same rates reached in one
  prune at the first step, then fine-tuning; `tfmot_uniform`: the same with every layer
  at the target, tfmot's default allocation;
* dense: the checkpoint trained `--epochs` more epochs without pruning, the
  reference for accuracy and for the per-epoch cost of a plain `fit`.

Hyper-parameters (one per method) were chosen on 5,000 held-out training images
(`--evaluate_on=validation --sparsities=0.95 --structures=unstructured`), never on
the test set. Reweighted rows also carry `final_lambda` (where the calibration
stopped) and `prune_accuracy_drop` (training accuracy just before minus just after
the hard prune, on the first 2,000 training images).

`seconds_per_epoch` is the wall time of the whole `fit` (tracing included) divided
by its epochs; `cpu_seconds_per_epoch` is the CPU time of this process over the same
span, which other processes sharing the machine disturb less.

`--num_seeds=N` repeats the whole run (data draw, initialisation, dense checkpoint,
shuffling) for the seeds `--seed` .. `--seed` + N - 1; every row carries its `seed`,
and the benchmark prints, per method and rate, the mean accuracy and the paired
difference to tfmot (same seed, same checkpoint) with 95% t intervals
(`bench.seed_stats`).

    python -m bench.pruning --output_json=pruning.json          # Fashion-MNIST
    python -m bench.pruning --quick --output_json=pruning.json  # digits, ~minutes
"""

from typing import Dict, List, Tuple

from absl import app
from absl import flags
import numpy as np

from bench import compression
from bench import output
from bench import seed_stats
from mcmia_tf import pruning
from mcmia_tf.compat import keras
from mcmia_tf.data import load_dataset
from mcmia_tf.models import build_model
from mcmia_tf.privacy.poisson import steps_per_epoch

_QUICK = flags.DEFINE_bool("quick", False, "Run on `digits` (all 1,500 training images).")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the JSON rows.")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 10_000, "Training images (Fashion-MNIST).")
_PRETRAIN_EPOCHS = flags.DEFINE_integer("pretrain_epochs", 10, "Dense epochs before pruning.")
_EPOCHS = flags.DEFINE_integer("epochs", 10, "Epoch budget of every method after pretraining.")
_PRUNE_AT = flags.DEFINE_integer("prune_at", 6, "Epoch of the hard prune (end of the ramp).")
_SPARSITIES = flags.DEFINE_list("sparsities", ["0.90", "0.95", "0.98"], "Target sparsities.")
_STRUCTURES = flags.DEFINE_list("structures", ["unstructured", "filter"], "Structures.")
_METHODS = flags.DEFINE_list("methods", ["reweighted", "reweighted_constant",
                                          "reweighted_progressive",
                                          "reweighted_unbounded", "admm", "static_l1", "tfmot",
                                          "tfmot_uniform"],
                             "Compression methods (reweighted: bounded by the constraint, "
                             "self-calibrated lambda; reweighted_unbounded: every group "
                             "penalised, --reweighted_penalty).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 128, "Batch size (32 with --quick unless set).")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
# Defaults chosen on 5,000 held-out Fashion-MNIST training images at sparsity 0.95
# (`--evaluate_on=validation`; grids 3e-6..1e-4, 1e-3..3e-2, 3e-5..1e-3).
_DEFAULTS = compression.PrunerSettings()
_REWEIGHTED_PENALTY = flags.DEFINE_float("reweighted_penalty", _DEFAULTS.reweighted_penalty,
                                          "Lambda of reweighted_unbounded (the bounded form "
                                          "calibrates its own).")
_BOUNDED_PENALTY = flags.DEFINE_float("bounded_penalty", _DEFAULTS.bounded_penalty,
                                       "Fixed lambda of reweighted_fixed.")
_PROGRESSIVE_STEPS = flags.DEFINE_integer("progressive_steps", _DEFAULTS.progressive_steps,
                                          "Stages of reweighted_progressive.")
_ADMM_RHO = flags.DEFINE_float("admm_rho", _DEFAULTS.admm_rho, "ADMM rho.")
_L1_PENALTY = flags.DEFINE_float("l1_penalty", _DEFAULTS.l1_penalty,
                                  "Static L1 / group lasso lambda.")
_EVALUATE_ON = flags.DEFINE_enum("evaluate_on", "test", ["test", "validation"],
                                  "Report accuracy on the test set, or on held-out training "
                                  "images (to choose hyper-parameters).")
_NUM_VALIDATION = flags.DEFINE_integer("num_validation", 5_000,
                                       "Held-out training images for --evaluate_on=validation "
                                       "(300 with --quick unless set).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the data draw and of the initialisation.")
_NUM_SEEDS = flags.DEFINE_integer(
    "num_seeds", 1, "Repeat the whole run with seeds --seed, --seed + 1, ...; rows carry their "
    "`seed`, and a summary gives each method's mean accuracy and its paired difference to "
    "tfmot with 95% t intervals (`bench.seed_stats`).", lower_bound=1)

_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
_TFMOT_EDGE_LAYER_SPARSITY = compression.TFMOT_EDGE_LAYER_SPARSITY


def _compile(model: keras.Model) -> keras.Model:
    model.compile(optimizer=keras.optimizers.Adam(_LEARNING_RATE.value), loss=_LOSS,
                  metrics=["accuracy"])
    return model


def _load(seed: int):
    """Returns (x_train, y_train, x_eval, y_eval, dataset) of one seed's draw.

    The evaluation set is the test set, or with `--evaluate_on=validation` training
    images outside the training draw (for choosing hyper-parameters).
    """
    dataset = load_dataset("digits" if _QUICK.value else "fashion_mnist")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(dataset.x_train))
    num_validation = 300 if _QUICK.value and not _NUM_VALIDATION.present else \
        _NUM_VALIDATION.value
    if _QUICK.value:
        num_train = len(order) - (num_validation if _EVALUATE_ON.value == "validation" else 0)
    else:
        num_train = _NUM_TRAIN.value
    train = np.sort(order[:num_train])
    if _EVALUATE_ON.value == "validation":
        held_out = np.sort(order[num_train:num_train + num_validation])
        x_eval, y_eval = dataset.x_train[held_out], dataset.y_train[held_out]
    else:
        x_eval, y_eval = dataset.x_test, dataset.y_test
    return dataset.x_train[train], dataset.y_train[train], x_eval, y_eval, dataset


def _batch_size() -> int:
    # digits has 1,500 training images: 32 gives it a comparable number of steps.
    return 32 if _QUICK.value and not _BATCH_SIZE.present else _BATCH_SIZE.value


def _timed_fit(model, x, y, callbacks=()) -> Tuple[float, float]:
    """Runs the epoch budget; returns (wall, CPU) seconds per epoch."""
    return compression.timed_fit(model, x, y, _EPOCHS.value, _batch_size(), callbacks)


def _accuracy(model, x, y) -> float:
    model = _compile(model)
    return float(model.evaluate(x, y, batch_size=1024, verbose=0)[1])


def _pruner(method: str, structure: str, sparsity: float, batches_per_epoch: int):
    settings = compression.PrunerSettings(
        reweighted_penalty=_REWEIGHTED_PENALTY.value, bounded_penalty=_BOUNDED_PENALTY.value,
        progressive_steps=_PROGRESSIVE_STEPS.value, admm_rho=_ADMM_RHO.value,
        l1_penalty=_L1_PENALTY.value)
    return compression.make_pruner(method, structure, sparsity, _PRUNE_AT.value,
                                   batches_per_epoch, settings)


def _tfmot_run(model, x, y, sparsity: float, method: str):
    return compression.tfmot_prune(model, x, y, sparsity, compile_fn=_compile,
                                   one_shot=method in compression.TFMOT_ONE_SHOT,
                                   prune_at=_PRUNE_AT.value, epochs=_EPOCHS.value,
                                   batch_size=_batch_size(),
                                   edge_layer_sparsity=_TFMOT_EDGE_LAYER_SPARSITY[method])


_PROGRESSIVE_FROM = 0.98  # reweighted_progressive runs at and above this target only.
_PRUNE_DATA_SIZE = 2_000


def _row(method, structure, target, model, seconds, x_test, y_test, pruner=None,
         callback=None) -> Dict:
    wall, cpu = seconds
    report = pruning.sparsity_report(model)
    row = {"method": method, "structure": structure, "target_sparsity": target,
           "sparsity": round(report.sparsity, 4),
           "compression_rate": round(report.compression_rate, 2),
           "test_accuracy": round(_accuracy(model, x_test, y_test), 4),
           "seconds_per_epoch": round(wall, 3), "cpu_seconds_per_epoch": round(cpu, 3),
           "final_lambda": None, "prune_accuracy_drop": None}
    if isinstance(pruner, pruning.ReweightedPruning):
        row["final_lambda"] = float(pruner.binding.strength.numpy())
    if callback is not None and callback.accuracy_drop is not None:
        row["prune_accuracy_drop"] = round(callback.accuracy_drop, 4)
    return row


def run_seed(seed: int) -> List[Dict]:
    """Runs every configuration from one seed's dense checkpoint; returns its rows."""
    x, y, x_test, y_test, dataset = _load(seed)

    def fresh_model():
        return build_model("lenet5", dataset.input_shape, dataset.num_classes, seed=seed)

    keras.utils.set_random_seed(seed)  # Shuffling order of `fit`.
    dense = _compile(fresh_model())
    dense.fit(x, y, epochs=_PRETRAIN_EPOCHS.value, batch_size=_batch_size(), verbose=0)
    checkpoint = dense.get_weights()

    def from_checkpoint():
        model = fresh_model()
        model.set_weights(checkpoint)
        return model

    rows = []

    def add(row):
        rows.append(dict(row, seed=seed))
        _print_row(rows[-1])

    model = _compile(from_checkpoint())
    add(_row("dense", "none", 0.0, model, _timed_fit(model, x, y), x_test, y_test))
    for structure in _STRUCTURES.value:
        for target in [float(s) for s in _SPARSITIES.value]:
            for method in _METHODS.value:
                keras.utils.set_random_seed(seed)
                if method in _TFMOT_EDGE_LAYER_SPARSITY:
                    if structure != "unstructured":
                        continue  # tfmot prunes magnitudes only.
                    pruned, seconds = _tfmot_run(from_checkpoint(), x, y, target, method)
                    pruner = callback = None
                else:
                    if method == "reweighted_progressive" and target < _PROGRESSIVE_FROM:
                        continue
                    model = _compile(pruning.make_prunable(from_checkpoint()))
                    pruner = _pruner(method, structure, target,
                                     steps_per_epoch(len(x), _batch_size()))
                    try:
                        pruner.plan(model)
                    except ValueError as error:  # e.g. a rate the layers cannot absorb
                        print(f"skipped {method} {structure} {target}: {error}", flush=True)
                        continue
                    callback, = pruner.callbacks(prune_data=(x[:_PRUNE_DATA_SIZE],
                                                             y[:_PRUNE_DATA_SIZE]))
                    seconds = _timed_fit(model, x, y, [callback])
                    pruned = pruner.strip(model)
                add(_row(method, structure, target, pruned, seconds, x_test, y_test, pruner,
                         callback))
    return rows


def run() -> List[Dict]:
    """Runs every configuration for each of the `--num_seeds` seeds."""
    rows = []
    for seed in range(_SEED.value, _SEED.value + _NUM_SEEDS.value):
        rows.extend(run_seed(seed))
    return rows


_COLUMNS = ("seed", "method", "structure", "target_sparsity", "sparsity", "compression_rate",
            "test_accuracy", "prune_accuracy_drop", "final_lambda", "seconds_per_epoch",
            "cpu_seconds_per_epoch")


def _print_row(row):
    print(" | ".join(str(row[c]) for c in _COLUMNS), flush=True)


def _cell(column: str, value) -> str:
    if value is None:
        return "-"
    if column in ("test_accuracy", "prune_accuracy_drop"):
        return f"{value:.2%}"
    if column == "final_lambda":
        return f"{value:.2g}"
    return str(value)


def markdown_table(rows: List[Dict]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(
            _cell(c, row[c]) for c in _COLUMNS) + " |")
    return "\n".join(lines)


def seed_summary_lines(rows: List[Dict]) -> List[str]:
    """One line per cell: mean accuracy [95%] over the seeds, and the paired
    difference to tfmot [95%] with the seeds it was >= tfmot on."""
    lines = []
    for s in seed_stats.summarize(rows):
        line = (f"{s.method} {s.structure} {s.target_sparsity:g}: {len(s.seeds)} seeds, "
                f"{seed_stats.format_percent(s.mean, s.interval)}")
        if s.difference is not None:
            difference = seed_stats.format_percent(s.difference, s.difference_interval,
                                                   signed=True)
            line += (f"; minus tfmot {difference} points, "
                     f">= tfmot on {s.wins} of {len(s.seeds)}")
        lines.append(line)
    return lines


def main(argv):
    del argv
    rows = run()
    notes = seed_summary_lines(rows) if _NUM_SEEDS.value > 1 else []
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value, notes=notes)


if __name__ == "__main__":
    app.run(main)
