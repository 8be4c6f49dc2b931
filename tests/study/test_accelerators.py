"""Mixed precision and XLA: no-ops without an accelerator, working when switched on."""

import numpy as np
import pytest

from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from mcmia_tf.recipes.config import MinMaxConfig
from mcmia_tf.recipes.config import RecipeConfig
from mcmia_tf.recipes.config import TrainingConfig
from mcmia_tf.recipes.recipe import Recipe
from mcmia_tf.study import accelerator_visible
from mcmia_tf.study import configure_mixed_precision
from mcmia_tf.study import resolve_jit_compile

_TINY = TrainingConfig(model="mlp", epochs=1, batch_size=32, learning_rate=3e-3,
                       model_kwargs={"hidden_units": [16]})


@pytest.fixture
def mixed_float16():
    """The mixed_float16 policy for one test (TensorFlow runs it on CPUs too, slowly)."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_requests_are_ignored_with_one_line_on_a_cpu_only_host():
    if accelerator_visible():
        pytest.skip("an accelerator is visible: the requests would take effect")
    lines = []
    assert configure_mixed_precision(False, log=lines.append) is False and lines == []
    assert configure_mixed_precision(True, log=lines.append) is False
    assert keras.mixed_precision.global_policy().name == "float32"
    assert resolve_jit_compile(False, log=lines.append) is False
    assert resolve_jit_compile(True, log=lines.append) is False
    assert len(lines) == 2
    assert lines[0].startswith("mixed precision ignored") and "no GPU" in lines[0]
    assert lines[1].startswith("jit_compile ignored") and "no GPU or TPU" in lines[1]


def test_mixed_float16_keeps_float32_logits_and_trains_with_loss_scaling(digits, mixed_float16):
    model = build_model("lenet5", digits.input_shape, 10, width=0.25, seed=0)
    assert model.layers[1].compute_dtype == "float16"
    assert model.output.dtype == "float32" and model.layers[-1].name == "logits_float32"
    x, y = digits.x_train[:64], digits.y_train[:64]
    result = Recipe(RecipeConfig("baseline", training=TrainingConfig(
        model="lenet5", width=0.25, epochs=1, batch_size=32)), digits.input_shape, 10).fit(
            x, y, seed=0)
    assert isinstance(result.model.optimizer, keras.mixed_precision.LossScaleOptimizer)
    assert np.isfinite(result.history["loss"]).all()
    assert result.model.predict(x[:4], verbose=0).dtype == np.float32


@pytest.mark.parametrize("method, compiled", [("baseline", True), ("minmax", False)])
def test_jit_compile_reaches_the_xla_ready_methods(digits, method, compiled):
    x, y = digits.x_train[:64], digits.y_train[:64]
    reference = (digits.x_train[64:96], digits.y_train[64:96])
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(bool(self.model.jit_compile))

    config = RecipeConfig(method, training=_TINY, minmax=MinMaxConfig(privacy_weight=1.0))
    result = Recipe(config, digits.input_shape, 10, reference_data=reference,
                    jit_compile=True).fit(x, y, seed=0, callbacks=[Record()])
    # XLA on the CPU: the baseline's step is compiled; the min-max game (a tf.data
    # iterator inside its step) runs without it.
    assert seen == [compiled]
    assert np.isfinite(result.history["loss"]).all()
    # An execution option, not part of the recipe's description.
    assert "jit_compile" not in str(Recipe(config, digits.input_shape, 10,
                                           reference_data=reference,
                                           jit_compile=True).to_dict())
