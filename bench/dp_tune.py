r"""DP-SGD hyper-parameter search on held-out *training* data (never the test set).

The members of the paper preset's split (Fashion-MNIST, 10,000, seed 0) are split
again: `--validation_fraction` of them is held out, DP-SGD (`Recipe` "dp": per-example
clipping, Poisson batches, sigma found for `--target_epsilon` on the remaining
examples) trains on the rest for every point of the grid, and the point with the best
held-out accuracy is the recipe to use. Tuning on validation data is itself not
private; the reported epsilon is the training run's, as is common practice (Papernot
& Steinke, ICLR 2022, discuss the cost of tuning).

Grid flags take comma-separated lists (`--optimizers=sgd --learning_rates=0.5,2,4
--batch_sizes=512,2048 --clips=0.1,1 --epochs=20,40 --activations=tanh,relu`); rows:
the point, `sigma`, `epsilon`, `validation_accuracy`, `seconds`.

    python -m bench.dp_tune --output_json=dp_tune.json          # Fashion-MNIST, hours
    python -m bench.dp_tune --quick --output_json=dp_tune.json  # digits, minutes
"""

import itertools
import time
from typing import Dict, List

from absl import app
from absl import flags
import numpy as np

from bench import output
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.recipes import DPConfig
from mcmia_tf.recipes import Recipe
from mcmia_tf.recipes import RecipeConfig
from mcmia_tf.recipes import TrainingConfig

_QUICK = flags.DEFINE_bool("quick", False, "digits, 600 members, a 4-point grid.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the JSON rows.")
_TARGET_EPSILON = flags.DEFINE_float("target_epsilon", 3.0, "The privacy budget (delta 1e-5).")
_VALIDATION_FRACTION = flags.DEFINE_float("validation_fraction", 0.2,
                                          "Held-out share of the members.")
_OPTIMIZERS = flags.DEFINE_list("optimizers", ["sgd"], "sgd (momentum 0.9) and/or adam.")
_LEARNING_RATES = flags.DEFINE_list("learning_rates", None, "(default 0.5,2)")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", None, "(default 512,2048)")
_CLIPS = flags.DEFINE_list("clips", ["0.1", "1"], "Clipping norms C.")
_EPOCHS = flags.DEFINE_list("epochs", None, "(default 30)")
_ACTIVATIONS = flags.DEFINE_list("activations", ["tanh"], "LeNet-5 activations.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the split, the hold-out and the training.")


def _grid():
    quick = _QUICK.value
    values = {
        "optimizer": _OPTIMIZERS.value,
        "learning_rate": [float(v) for v in (_LEARNING_RATES.value or
                                             (["0.5"] if quick else ["0.5", "2"]))],
        "batch_size": [int(v) for v in (_BATCH_SIZES.value or
                                        (["64"] if quick else ["512", "2048"]))],
        "l2_norm_clip": [float(v) for v in _CLIPS.value],
        "epochs": [int(v) for v in (_EPOCHS.value or (["10"] if quick else ["30"]))],
        "activation": _ACTIVATIONS.value if not quick else ["tanh", "relu"],
    }
    keys = list(values)
    return [dict(zip(keys, point)) for point in itertools.product(*values.values())]


def _data():
    """(x_train, y_train, x_validation, y_validation): the members, split again."""
    quick = _QUICK.value
    dataset = load_dataset("digits" if quick else "fashion_mnist")
    if quick:
        split = MembershipSplit.create(dataset_name=dataset.name,
                                       num_examples=len(dataset.x_train), num_members=600,
                                       seed=_SEED.value)
    else:  # The paper preset's members.
        split = MembershipSplit.create(dataset_name=dataset.name,
                                       num_examples=len(dataset.x_train), num_members=10_000,
                                       num_reference=5_000, num_shadow_pool=20_000,
                                       seed=_SEED.value)
    x, y = split.take("members", dataset.x_train, dataset.y_train)
    order = np.random.default_rng([_SEED.value, 1]).permutation(len(x))
    held_out = int(round(_VALIDATION_FRACTION.value * len(x)))
    validation, train = order[:held_out], order[held_out:]
    return dataset, x[train], y[train], x[validation], y[validation]


def run() -> List[Dict]:
    dataset, x, y, x_val, y_val = _data()
    rows = []
    for point in _grid():
        config = RecipeConfig("dp", training=TrainingConfig(
            model="lenet5", epochs=point["epochs"], batch_size=point["batch_size"],
            learning_rate=point["learning_rate"]), dp=DPConfig(
                target_epsilon=_TARGET_EPSILON.value, l2_norm_clip=point["l2_norm_clip"],
                optimizer=point["optimizer"],
                momentum=0.9 if point["optimizer"] == "sgd" else 0.0,
                activation=point["activation"]))
        start = time.time()
        result = Recipe(config, dataset.input_shape, dataset.num_classes).fit(x, y,
                                                                              seed=_SEED.value)
        logits = result.model.predict(x_val, batch_size=1024, verbose=0)
        rows.append({**point, "sigma": result.privacy.noise_multiplier,
                     "epsilon": result.epsilon, "num_train": len(x),
                     "validation_accuracy": float(np.mean(logits.argmax(axis=1) == y_val)),
                     "seconds": time.time() - start, "dataset": dataset.name})
        print(rows[-1], flush=True)
    return rows


def markdown_table(rows: List[Dict]) -> str:
    lines = ["| optimizer | lr | batch | C | epochs | activation | sigma | epsilon | "
             "validation acc | seconds |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: -r["validation_accuracy"]):
        lines.append(f"| {r['optimizer']} | {r['learning_rate']:g} | {r['batch_size']} | "
                     f"{r['l2_norm_clip']:g} | {r['epochs']} | {r['activation']} | "
                     f"{r['sigma']:.3f} | {r['epsilon']:.2f} | "
                     f"{100 * r['validation_accuracy']:.2f}% | {r['seconds']:.0f} |")
    return "\n".join(lines)


def main(argv):
    del argv
    rows = run()
    best = max(rows, key=lambda r: r["validation_accuracy"])
    notes = [f"best on held-out training data: {best}"]
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value, notes=notes)


if __name__ == "__main__":
    app.run(main)
