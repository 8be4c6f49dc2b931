"""Accelerator options: mixed precision and XLA, switched on only where they help.

Both are requests that become no-ops on a CPU-only host, so one command line
works on a laptop and on a GPU machine:

* mixed precision (Micikevicius et al., "Mixed Precision Training", ICLR 2018;
  TensorFlow's mixed-precision guide): the Keras global policy `mixed_float16`
  (float16 compute, float32 variables, dynamic loss scaling added by
  `Model.compile`), set only when a GPU is visible; CPUs gain nothing from
  float16 and run it slower. Call it before building models; `build_model` then
  keeps the logits in float32.
* XLA (`jit_compile=True` in `Model.compile`): enabled only when a GPU or TPU is
  visible; on CPUs the compile time rarely pays off for these small models.

The pipelines read `--mixed_precision` / `--jit_compile` and call these; the
library never reads flags.
"""

from typing import Callable

import tensorflow as tf

from mcmia_tf.compat import keras

__all__ = ["accelerator_visible", "configure_mixed_precision", "gpu_visible",
           "resolve_jit_compile"]


def gpu_visible() -> bool:
    """Whether TensorFlow sees at least one GPU."""
    return bool(tf.config.list_physical_devices("GPU"))


def accelerator_visible() -> bool:
    """Whether TensorFlow sees a GPU or a TPU."""
    return gpu_visible() or bool(tf.config.list_logical_devices("TPU"))


def configure_mixed_precision(enabled: bool, log: Callable[[str], None] = print) -> bool:
    """Sets the `mixed_float16` Keras policy if asked and a GPU is visible.

    Args:
      enabled: whether mixed precision was requested.
      log: receives one line when the request is ignored (no GPU).

    Returns:
      True if the policy was set; False otherwise (the policy is left unchanged).
    """
    if not enabled:
        return False
    if not gpu_visible():
        log("mixed precision ignored: no GPU is visible, training stays in float32")
        return False
    keras.mixed_precision.set_global_policy("mixed_float16")
    return True


def resolve_jit_compile(requested: bool, log: Callable[[str], None] = print) -> bool:
    """The `jit_compile` to pass to training: `requested` and an accelerator is visible.

    Args:
      requested: whether XLA compilation was requested.
      log: receives one line when the request is ignored (no GPU or TPU).

    Returns:
      True only if requested and a GPU or TPU is visible.
    """
    if not requested:
        return False
    if not accelerator_visible():
        log("jit_compile ignored: no GPU or TPU is visible, training runs without XLA")
        return False
    return True
