"""Trains one undefended model of the zoo on a dataset and prints its accuracy.

    python -m pipelines.baseline --dataset=digits --model=lenet5 --epochs=20

Flags are read only in `main`; the work is plain library calls.
"""

import time

from absl import app
from absl import flags

from mcmia_tf.compat import keras
from mcmia_tf.data import DATASET_NAMES
from mcmia_tf.data import load_dataset
from mcmia_tf.models import build_model
from mcmia_tf.models import model_names

_DATASET = flags.DEFINE_enum("dataset", "digits", list(DATASET_NAMES), "Dataset name.")
_MODEL = flags.DEFINE_enum("model", "lenet5", list(model_names()), "Model name.")
_WIDTH = flags.DEFINE_float("width", 1.0, "Width multiplier of the model.")
_EPOCHS = flags.DEFINE_integer("epochs", 20, "Training epochs.")
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Batch size.")
_LEARNING_RATE = flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the weights and of the data order.")


def main(argv):
    del argv
    start = time.time()
    ds = load_dataset(_DATASET.value)
    model = build_model(_MODEL.value, ds.input_shape, ds.num_classes, width=_WIDTH.value,
                        seed=_SEED.value)
    model.compile(optimizer=keras.optimizers.Adam(_LEARNING_RATE.value),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    keras.utils.set_random_seed(_SEED.value)  # data order of fit(shuffle=True)
    model.fit(ds.x_train, ds.y_train, batch_size=_BATCH_SIZE.value, epochs=_EPOCHS.value,
              verbose=2)
    _, train_acc = model.evaluate(ds.x_train, ds.y_train, verbose=0)
    _, test_acc = model.evaluate(ds.x_test, ds.y_test, verbose=0)
    print(f"{_MODEL.value} on {_DATASET.value}: train accuracy {train_acc:.4f}, "
          f"test accuracy {test_acc:.4f}, {model.count_params():,} parameters, "
          f"{time.time() - start:.1f} s")


if __name__ == "__main__":
    app.run(main)
