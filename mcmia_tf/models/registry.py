"""Model builders by name.

Every builder returns an uncompiled Functional tf_keras model whose output is
logits (no softmax): compile with
`keras.losses.SparseCategoricalCrossentropy(from_logits=True)`. Logits keep
membership scores such as LiRA's logit-scaled confidence numerically stable.

Under a mixed-precision Keras policy (`mixed_float16` / `mixed_bfloat16`, set by
`mcmia_tf.study.configure_mixed_precision`), `build_model` appends a float32
identity (`logits_float32`) so the logits, the loss and the audit statistics are
computed in float32, as the TensorFlow mixed-precision guide prescribes for the
model output.
"""

from typing import Callable, Dict, Optional, Sequence

from mcmia_tf.compat import keras
from mcmia_tf.models.lenet import lenet5
from mcmia_tf.models.lenet import lenet5_classic
from mcmia_tf.models.mlp import mlp
from mcmia_tf.models.mobilenet import mobilenetv2
from mcmia_tf.models.resnet import resnet18
from mcmia_tf.models.vgg import vgg16

__all__ = ["MODEL_BUILDERS", "build_model", "model_names"]

MODEL_BUILDERS: Dict[str, Callable[..., keras.Model]] = {
    "lenet5": lenet5,
    "lenet5_classic": lenet5_classic,
    "vgg16": vgg16,
    "resnet18": resnet18,
    "mobilenetv2": mobilenetv2,
    "mlp": mlp,
}


def model_names() -> Sequence[str]:
    """Names accepted by `build_model`."""
    return tuple(MODEL_BUILDERS)


def build_model(name: str, input_shape: Sequence[int], num_classes: int, width: float = 1.0,
                seed: Optional[int] = None, **kwargs) -> keras.Model:
    """Builds a model of the zoo.

    Args:
      name: one of `model_names()`.
      input_shape: (height, width, channels) of one example.
      num_classes: number of output logits.
      width: channel/unit multiplier (1.0 = the published architecture; small
        values give tiny models for tests).
      seed: seed of the weight initialisers; None for unseeded.
      **kwargs: builder-specific options (e.g. `hidden_units` for `mlp`).

    Returns:
      An uncompiled tf_keras Functional model with logits output.
    """
    if name not in MODEL_BUILDERS:
        raise ValueError(f"Invalid value for argument `name`. Expected one of "
                         f"{tuple(MODEL_BUILDERS)}. Received: name={name!r}")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError("Invalid value for argument `num_classes`. Expected an integer >= 2. "
                         f"Received: num_classes={num_classes!r}")
    if not (isinstance(width, (int, float)) and width > 0):
        raise ValueError("Invalid value for argument `width`. Expected a positive number. "
                         f"Received: width={width!r}")
    if len(tuple(input_shape)) < 1:
        raise ValueError(f"Invalid value for argument `input_shape`. Received: {input_shape!r}")
    model = MODEL_BUILDERS[name](tuple(input_shape), num_classes, width=width, seed=seed,
                                 **kwargs)
    if keras.mixed_precision.global_policy().compute_dtype != "float32":
        # float16 logits would lose the confident examples' margins (and the loss's precision).
        outputs = keras.layers.Activation("linear", dtype="float32",
                                          name="logits_float32")(model.output)
        model = keras.Model(model.inputs, outputs, name=model.name)
    return model
