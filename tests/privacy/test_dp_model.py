"""DP-SGD with per-example clipping: the step equals brute-force clip-and-sum, noise scale, errors."""

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.compat import keras
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


@pytest.mark.parametrize("norm_layer", [None, keras.layers.GroupNormalization(groups=2)])
def test_noiseless_step_equals_brute_force_clip_and_average(digits, norm_layer):
    x, y = digits.x_train[:12], digits.y_train[:12]
    classifier = _cnn(norm_layer)
    # A clip norm between the smallest and largest per-example norms clips some examples.
    expected = _brute_force_step(classifier, x, y, clip=0.5)
    before = [v.numpy() for v in classifier.trainable_variables]
    model = DPSGDModel(classifier, l2_norm_clip=0.5, noise_multiplier=0.0)
    model.compile(keras.optimizers.SGD(1.0))
    model.train_on_batch(x, y)
    for old, variable, step in zip(before, classifier.trainable_variables, expected):
        np.testing.assert_allclose(old - variable.numpy(), step, rtol=1e-4, atol=1e-7)


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
