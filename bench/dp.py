r"""DP-SGD cost benchmark: per-example clipping with fast gradient norms against the alternatives.

Fashion-MNIST LeNet-5 (20-50-500) on `--num_members` training images (10,000),
batch `--batch_size` (128), Adam 1e-3, sigma 1.1, C 1, delta 1e-5. Rows (`method`):

* `plain`: non-private Adam (`model.fit`), the cost to beat;
* `dp_per_example`: `DPSGDModel` (per-example clipping, ghost / direct norms, a second
  backward pass of sum_i c_i loss_i) on Poisson batches;
* `dp_microbatches`: tensorflow-privacy's vectorized DP Adam with 16 microbatches;
* `tf_privacy_per_example`: the same optimizer with one example per microbatch
  (per-example Jacobians): timed on `--slow_steps` steps and extrapolated to an
  epoch (no accuracy: it is not trained to the end).

Columns: `seconds_per_epoch` (wall), `cpu_seconds_per_epoch` (process CPU time, all
threads), `test_accuracy` after `--epochs` epochs, `epsilon` (RDP, Poisson
assumption; microbatches halve the effective sigma), `clipping`, `sampling`. The
first epoch (tracing) is excluded from the timings when `--epochs` > 1.

    python -m bench.dp --output_json=dp.json            # Fashion-MNIST, minutes
    python -m bench.dp --quick --output_json=dp.json    # digits, about a minute
"""

import time
from typing import Dict, List

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from bench import output
from mcmia_tf.compat import keras
from mcmia_tf.data import load_dataset
from mcmia_tf.models import build_model
from mcmia_tf.privacy import dp as dp_lib
from mcmia_tf.privacy.dp_model import DPSGDModel
from mcmia_tf.privacy.poisson import poisson_batches
from mcmia_tf.privacy.poisson import steps_per_epoch

_QUICK = flags.DEFINE_bool("quick", False, "digits, 1,000 members, batch 64.")
_OUTPUT_JSON = flags.DEFINE_string("output_json", None, "Where to write the JSON rows.")
_NUM_MEMBERS = flags.DEFINE_integer("num_members", None, "Training examples (10,000).")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", None, "Batch size (128; 64 with --quick).")
_EPOCHS = flags.DEFINE_integer("epochs", 3, "Epochs of the trained rows (timing: all but "
                               "the first).")
_SLOW_STEPS = flags.DEFINE_integer("slow_steps", 3, "Timed steps of tf_privacy_per_example.")
_NOISE_MULTIPLIER = flags.DEFINE_float("noise_multiplier", 1.1, "sigma.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the data draw, weights and batches.")

_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class _EpochTimer(keras.callbacks.Callback):
    """Wall and CPU seconds of every epoch."""

    def __init__(self):
        super().__init__()
        self.wall, self.cpu = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        self.wall.append(time.perf_counter() - self._start[0])
        self.cpu.append(time.process_time() - self._start[1])

    def per_epoch(self):
        # The first epoch also traces the step function: leave it out when we can.
        wall, cpu = (self.wall[1:], self.cpu[1:]) if len(self.wall) > 1 else (self.wall, self.cpu)
        return float(np.mean(wall)), float(np.mean(cpu))


def _setting():
    quick = _QUICK.value
    dataset = load_dataset("digits" if quick else "fashion_mnist")
    n = _NUM_MEMBERS.value or (1000 if quick else 10_000)
    batch = _BATCH_SIZE.value or (64 if quick else 128)
    members = np.random.default_rng(_SEED.value).permutation(len(dataset.x_train))[:n]
    return dataset, dataset.x_train[members], dataset.y_train[members], batch


def _accuracy(model, dataset) -> float:
    logits = model.predict(dataset.x_test, batch_size=1024, verbose=0)
    return float(np.mean(logits.argmax(axis=1) == dataset.y_test))


def _lenet(dataset):
    return build_model("lenet5", dataset.input_shape, dataset.num_classes, seed=_SEED.value)


def run() -> List[Dict]:
    dataset, x, y, batch = _setting()
    n, epochs, sigma = len(x), _EPOCHS.value, _NOISE_MULTIPLIER.value
    shuffled = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n, seed=_SEED.value)
                .batch(batch, drop_remainder=True).prefetch(2))
    rows = []

    def add(method, timer, model, epsilon, clipping, sampling):
        wall, cpu = timer.per_epoch()
        rows.append({"method": method, "seconds_per_epoch": wall, "cpu_seconds_per_epoch": cpu,
                     "test_accuracy": None if model is None else _accuracy(model, dataset),
                     "epsilon": epsilon, "clipping": clipping, "sampling": sampling,
                     "num_members": n, "batch_size": batch, "epochs": epochs,
                     "dataset": dataset.name})
        print(rows[-1], flush=True)

    tf.random.set_seed(_SEED.value)
    plain = _lenet(dataset)
    plain.compile(keras.optimizers.Adam(1e-3), _LOSS)
    timer = _EpochTimer()
    plain.fit(shuffled, epochs=epochs, verbose=0, callbacks=[timer])
    add("plain", timer, plain, None, None, "shuffled")

    tf.random.set_seed(_SEED.value)
    classifier = _lenet(dataset)
    private = DPSGDModel(classifier, l2_norm_clip=1.0, noise_multiplier=sigma,
                         expected_batch_size=batch)
    private.compile(keras.optimizers.Adam(1e-3))
    timer = _EpochTimer()
    private.fit(poisson_batches(x, y, batch, _SEED.value), steps_per_epoch=steps_per_epoch(n, batch),
                epochs=epochs, verbose=0, callbacks=[timer])
    add("dp_per_example", timer, classifier, dp_lib.compute_epsilon(
        n, batch, epochs, sigma, 1e-5, used_microbatching=False), "per-example", "poisson")

    for method, microbatches in (("dp_microbatches", 16), ("tf_privacy_per_example", batch)):
        tf.random.set_seed(_SEED.value)
        model = _lenet(dataset)
        model.compile(dp_lib.make_dp_optimizer("adam", l2_norm_clip=1.0, noise_multiplier=sigma,
                                               num_microbatches=microbatches, batch_size=batch,
                                               learning_rate=1e-3),
                      dp_lib.per_example_loss())
        timer = _EpochTimer()
        slow = microbatches == batch
        if slow:
            # Per-example Jacobians: a few steps (after one that traces), then extrapolate.
            model.fit(shuffled.take(1), epochs=1, verbose=0)
            start = (time.perf_counter(), time.process_time())
            model.fit(shuffled.take(_SLOW_STEPS.value), epochs=1, verbose=0)
            scale = (n // batch) / _SLOW_STEPS.value
            timer.wall = [scale * (time.perf_counter() - start[0])]
            timer.cpu = [scale * (time.process_time() - start[1])]
        else:
            model.fit(shuffled, epochs=epochs, verbose=0, callbacks=[timer])
        add(method, timer, None if slow else model, dp_lib.compute_epsilon(
            n, batch, epochs, sigma, 1e-5, used_microbatching=not slow),
            "per-example (Jacobians)" if slow else f"{microbatches} microbatches", "shuffled")
    return rows


def markdown_table(rows: List[Dict]) -> str:
    plain = next(r for r in rows if r["method"] == "plain")["seconds_per_epoch"]
    lines = ["| method | clipping | batches | s / epoch | CPU s / epoch | x plain | test acc | "
             "epsilon |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        accuracy = "-" if r["test_accuracy"] is None else f"{100 * r['test_accuracy']:.2f}%"
        epsilon = "-" if r["epsilon"] is None else f"{r['epsilon']:.2f}"
        lines.append(f"| {r['method']} | {r['clipping'] or '-'} | {r['sampling']} | "
                     f"{r['seconds_per_epoch']:.1f} | {r['cpu_seconds_per_epoch']:.1f} | "
                     f"{r['seconds_per_epoch'] / plain:.1f} | {accuracy} | {epsilon} |")
    return "\n".join(lines)


def targets(rows: List[Dict]) -> List[str]:
    by = {r["method"]: r["seconds_per_epoch"] for r in rows}
    return [f"dp_per_example / plain = {by['dp_per_example'] / by['plain']:.2f} (target <= 3)",
            f"tf_privacy_per_example / dp_per_example = "
            f"{by['tf_privacy_per_example'] / by['dp_per_example']:.1f} (target >= 30)"]


def main(argv):
    del argv
    rows = run()
    output.emit(rows, markdown_table(rows), _OUTPUT_JSON.value, notes=targets(rows))


if __name__ == "__main__":
    app.run(main)
