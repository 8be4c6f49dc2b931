"""tf.distribute strategies by name, for training across devices or workers.

* `default`: no strategy (one device).
* `mirrored`: synchronous data parallelism over this machine's devices
  (`tf.distribute.MirroredStrategy`); on a CPU-only host, split the CPU into
  logical devices with `split_cpu` before TensorFlow initialises.
* `multi_worker_mirrored`: the same across machines
  (`tf.distribute.MultiWorkerMirroredStrategy`); each worker reads its role
  from the `TF_CONFIG` environment variable.
"""

from typing import Optional

import tensorflow as tf

__all__ = ["STRATEGIES", "make_strategy", "split_cpu"]

STRATEGIES = ("default", "mirrored", "multi_worker_mirrored")


def make_strategy(name: str) -> Optional[tf.distribute.Strategy]:
    """Returns the strategy called `name` (None for `default`)."""
    if name not in STRATEGIES:
        raise ValueError(f"Invalid value for argument `strategy`. Expected one of {STRATEGIES}. "
                         f"Received: strategy={name!r}")
    if name == "default":
        return None
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()


def split_cpu(num_devices: int) -> None:
    """Splits the first CPU into `num_devices` logical devices (call before any TF op)."""
    if num_devices < 1:
        raise ValueError("Invalid value for argument `num_devices`. Expected an integer >= 1. "
                         f"Received: num_devices={num_devices}")
    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)])
