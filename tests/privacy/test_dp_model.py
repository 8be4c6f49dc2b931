"""DP-SGD with per-example clipping: the step equals brute-force clip-and-sum, noise scale, errors."""

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.compat import keras
from mcmia_tf.privacy import per_example_norms
from mcmia_tf.privacy.dp_model import clipped_gradient_sum
from mcmia_tf.privacy.dp_model import DPSGDModel
from mcmia_tf.privacy.dp_model import noisy_average
from mcmia_tf.privacy.poisson import poisson_batches
from mcmia_tf.privacy.poisson import steps_per_epoch

_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")


def _cnn(norm_layer=None, seed=0):
    init = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh",
                            kernel_initializer=init)(inputs)
    if norm_layer is not None:
        x = norm_layer(x)
    x = keras.layers.Conv2D(6, 3, activation="tanh", kernel_initializer=init)(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, kernel_initializer=init)(x)
    return keras.Model(inputs, outputs)


def _nested_cnn(seed=0):
    """A Sequential feature extractor inside a functional model, a Dense on a 3-D input."""
    init = keras.initializers.GlorotUniform(seed=seed)
    features = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(4, 3, activation="tanh", kernel_initializer=init),
        keras.layers.DepthwiseConv2D(3, depth_multiplier=2, kernel_initializer=init)],
        name="features")
    inputs = keras.Input((8, 8, 1))
    x = features(inputs)
    x = keras.layers.Reshape((4 * 4, 8))(x)
    x = keras.layers.Dense(5, activation="tanh", kernel_initializer=init)(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(10, kernel_initializer=init)(x))


def _brute_force_step(model, x, y, clip):
    """Mean over the batch of every per-example gradient clipped to norm `clip`."""
    total = [np.zeros(v.shape) for v in model.trainable_variables]
    for i in range(len(x)):
        with tf.GradientTape() as tape:
            loss = _LOSS(y[i:i + 1], model(x[i:i + 1], training=True))[0]
        grads = tape.gradient(loss, model.trainable_variables)
        norm = np.sqrt(sum(np.sum(g.numpy() ** 2) for g in grads))
        for t, g in zip(total, grads):
            t += g.numpy() * min(1.0, clip / norm)
    return [t / len(x) for t in total]


@pytest.mark.parametrize("build", [lambda: _cnn(), lambda: _cnn(
    keras.layers.GroupNormalization(groups=2)), _nested_cnn], ids=["cnn", "groupnorm", "nested"])
def test_noiseless_step_equals_brute_force_clip_and_average(digits, build):
    x, y = digits.x_train[:12], digits.y_train[:12]
    classifier = build()
    # A clip norm between the smallest and largest per-example norms clips some examples.
    expected = _brute_force_step(classifier, x, y, clip=0.5)
    before = [v.numpy() for v in classifier.trainable_variables]
    model = DPSGDModel(classifier, l2_norm_clip=0.5, noise_multiplier=0.0)
    model.compile(keras.optimizers.SGD(1.0))
    model.train_on_batch(x, y)
    for old, variable, step in zip(before, classifier.trainable_variables, expected):
        np.testing.assert_allclose(old - variable.numpy(), step, rtol=1e-4, atol=1e-7)


def test_clipped_gradient_sum_norms_and_clip_weights_in_one_pass(digits):
    x, y = digits.x_train[:8], digits.y_train[:8]
    model = _nested_cnn()
    registry = per_example_norms.make_layer_registry()
    expected = per_example_norms.per_example_squared_norms(model, registry, x, y, _LOSS)
    clip = float(np.median(np.sqrt(expected)))  # half of the examples are clipped
    clipped_sum, losses, outputs, norms = clipped_gradient_sum(model, registry, x, y, _LOSS,
                                                               clip)
    np.testing.assert_allclose(norms.numpy() ** 2, expected.numpy(), rtol=1e-5)
    np.testing.assert_allclose(outputs.numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(losses.numpy(), _LOSS(y, model(x)).numpy(), rtol=1e-5)
    brute_force = _brute_force_step(model, x, y, clip)
    for value, mean in zip(clipped_sum, brute_force):
        np.testing.assert_allclose(value.numpy() / len(x), mean, rtol=1e-4, atol=1e-7)


def test_noise_has_standard_deviation_sigma_c_over_b():
    zeros = [tf.zeros([200, 500])]
    for sigma, clip, batch in ((1.1, 1.0, 128), (2.0, 0.1, 16)):
        tf.random.set_seed(1)
        noised, = noisy_average(zeros, clip, sigma, batch)
        assert np.std(noised.numpy()) == pytest.approx(sigma * clip / batch, rel=0.05)
        assert abs(np.mean(noised.numpy())) < 0.05 * sigma * clip / batch


def test_poisson_batches_train_with_the_expected_batch_size_denominator(digits):
    x, y = digits.x_train[:512], digits.y_train[:512]
    model = DPSGDModel(_cnn(), l2_norm_clip=1.0, noise_multiplier=0.3, expected_batch_size=64)
    model.compile(keras.optimizers.SGD(0.5, momentum=0.9))
    tf.random.set_seed(0)
    history = model.fit(poisson_batches(x, y, 64, seed=0), steps_per_epoch=steps_per_epoch(512, 64),
                        epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.3   # 10 classes


def test_batch_normalization_and_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="BatchNormalization.*GroupNormalization"):
        DPSGDModel(_cnn(keras.layers.BatchNormalization()), l2_norm_clip=1.0,
                   noise_multiplier=1.0)
    with pytest.raises(ValueError, match="`l2_norm_clip`"):
        DPSGDModel(_cnn(), l2_norm_clip=0.0, noise_multiplier=1.0)
    with pytest.raises(ValueError, match="`noise_multiplier`"):
        DPSGDModel(_cnn(), l2_norm_clip=1.0, noise_multiplier=-1.0)
    with pytest.raises(ValueError, match="`expected_batch_size`"):
        DPSGDModel(_cnn(), l2_norm_clip=1.0, noise_multiplier=1.0, expected_batch_size=0)


def test_multiple_replicas_are_refused(digits, mirrored_strategy):
    with mirrored_strategy.scope():
        model = DPSGDModel(_cnn(), l2_norm_clip=1.0, noise_multiplier=1.0)
        model.compile(keras.optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="2 replicas"):
        model.fit(digits.x_train[:32], digits.y_train[:32], batch_size=16, epochs=1, verbose=0)


def test_dropout_is_active_in_the_dp_forward_pass():
    # An all-ones input through Dropout(0.5): in training mode about half the units are
    # zeroed (and the rest doubled), so the logits differ from inference mode.
    inputs = keras.Input((64,))
    hidden = keras.layers.Dropout(0.5, seed=0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(
        2, kernel_initializer="ones", use_bias=False)(hidden))
    x, y = np.ones((4, 64), np.float32), np.zeros(4, np.int64)
    registry = per_example_norms.make_layer_registry()
    _, _, outputs, _ = clipped_gradient_sum(model, registry, x, y, _LOSS, 1.0)
    assert not np.allclose(outputs.numpy(), model(x, training=False).numpy())
    dropped = np.unique(outputs.numpy()[:, 0])
    assert np.all(dropped % 2 == 0)  # sums of 0s and 2s: inverted dropout at rate 0.5
