"""Per-example gradient norms (registry functions) against a brute-force per-example loop."""

import numpy as np
import pytest
import tensorflow as tf

from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras
from mcmia_tf.privacy import per_example_norms as pen

BATCH = 4
NUM_CLASSES = 3


@pytest.fixture(autouse=True)
def float64():
    """float64 layers, so that 1e-5 relative agreement tests the maths, not round-off."""
    previous = keras.backend.floatx()
    keras.backend.set_floatx("float64")
    keras.utils.set_random_seed(0)
    yield
    keras.backend.set_floatx(previous)


def _per_example_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")


def _data(input_shape, seed=0):
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(BATCH,) + tuple(input_shape)))
    y = tf.constant(rng.integers(0, NUM_CLASSES, BATCH))
    return x, y


def _brute_force_grads(model, x, y):
    """Each example's loss alone through its own tape."""
    loss_fn = _per_example_loss()
    grads = []
    for i in range(BATCH):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(loss_fn(y[i:i + 1], model(x[i:i + 1], training=True)))
        grads.append(tape.gradient(loss, model.trainable_variables))
    return grads


def _brute_force_sqr_norms(model, x, y):
    return np.array([sum(float(tf.reduce_sum(tf.square(g))) for g in grads)
                     for grads in _brute_force_grads(model, x, y)])


def _assert_norms_match(model, input_shape, registry=None):
    x, y = _data(input_shape)
    registry = registry or pen.make_layer_registry()
    fast = pen.per_example_squared_norms(model, registry, x, y, _per_example_loss())
    assert fast.shape == (BATCH,)
    np.testing.assert_allclose(fast.numpy(), _brute_force_sqr_norms(model, x, y), rtol=1e-5)


def _probe_model(layer, input_shape):
    """input -> layer -> flatten -> dense logits."""
    inputs = keras.Input(input_shape)
    hidden = keras.layers.Flatten()(layer(inputs))
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(hidden))


def _lenet():
    return keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(6, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(NUM_CLASSES),
    ])


CONV_CASES = {
    "stride1_valid": dict(strides=1, padding="valid"),
    "stride1_same_relu": dict(strides=1, padding="same", activation="relu"),
    "stride2_same": dict(strides=2, padding="same"),
    "stride2_valid_no_bias": dict(strides=2, padding="valid", use_bias=False),
    "dilation2_same": dict(dilation_rate=2, padding="same"),
    "dilation2_valid_no_bias": dict(dilation_rate=2, padding="valid", use_bias=False),
}


@pytest.mark.parametrize("mode", ["direct", "ghost", "auto"])
@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d_norms_match_brute_force(case, mode):
    layer = keras.layers.Conv2D(3, (3, 2), **CONV_CASES[case])
    _assert_norms_match(_probe_model(layer, (7, 6, 2)), (7, 6, 2),
                        pen.make_layer_registry(conv_mode=mode))


@pytest.mark.parametrize("depth_multiplier, strides, padding", [
    (1, 1, "same"), (2, 2, "valid"), (1, 2, "same"), (2, 1, "valid")])
def test_depthwise_conv2d_norms_match_brute_force(depth_multiplier, strides, padding):
    layer = keras.layers.DepthwiseConv2D(3, strides=strides, padding=padding,
                                         depth_multiplier=depth_multiplier)
    _assert_norms_match(_probe_model(layer, (7, 7, 3)), (7, 7, 3))


def test_depthwise_conv2d_dilation_no_bias():
    layer = keras.layers.DepthwiseConv2D(3, dilation_rate=2, use_bias=False, depth_multiplier=2)
    _assert_norms_match(_probe_model(layer, (7, 7, 2)), (7, 7, 2))


@pytest.mark.parametrize("input_shape", [(5,), (3, 5)])
@pytest.mark.parametrize("use_bias", [True, False])
def test_dense_norms_match_brute_force(input_shape, use_bias):
    layer = keras.layers.Dense(4, activation="tanh", use_bias=use_bias)
    _assert_norms_match(_probe_model(layer, input_shape), input_shape)


def _random_affine(layer, input_shape):
    """Non-trivial gamma/beta (the initial 1/0 would hide a swapped gamma/beta)."""
    layer.build((None,) + input_shape)
    for weight in layer.trainable_weights:
        weight.assign(tf.random.normal(weight.shape, dtype=weight.dtype))
    return layer


@pytest.mark.parametrize("groups, center, scale", [(2, True, True), (4, True, False),
                                                   (1, False, True)])
def test_group_normalization_norms_match_brute_force(groups, center, scale):
    layer = _random_affine(keras.layers.GroupNormalization(groups, center=center, scale=scale),
                           (3, 3, 4))
    _assert_norms_match(_probe_model(layer, (3, 3, 4)), (3, 3, 4))


@pytest.mark.parametrize("input_shape, axis", [((6,), -1), ((3, 4), -1), ((3, 3, 2), [1, 2])])
def test_layer_normalization_norms_match_brute_force(input_shape, axis):
    layer = _random_affine(keras.layers.LayerNormalization(axis=axis), input_shape)
    _assert_norms_match(_probe_model(layer, input_shape), input_shape)


def test_lenet_end_to_end():
    _assert_norms_match(_lenet(), (12, 12, 1))


def test_nested_models():
    """A Sequential inside a functional model: tensorflow-privacy alone does not recurse."""
    inner = keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(3, 3),
                              keras.layers.GroupNormalization(3)])
    inputs = keras.Input((6, 6, 2))
    outputs = keras.layers.Dense(NUM_CLASSES)(keras.layers.Flatten()(inner(inputs)))
    _assert_norms_match(keras.Model(inputs, outputs), (6, 6, 2))


def test_clip_grads_fast_path_clips_each_example():
    """tensorflow-privacy's compute_clipped_gradients_and_outputs with our registry."""
    clip_grads = import_tf_privacy("privacy.fast_gradient_clipping.clip_grads")
    model = _lenet()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _data((12, 12, 1))
    clip = 0.5
    clipped, _, _ = clip_grads.compute_clipped_gradients_and_outputs(
        model, clip, pen.make_layer_registry(), x, y)
    expected = [tf.zeros_like(v) for v in model.trainable_variables]
    for grads in _brute_force_grads(model, x, y):
        norm = tf.sqrt(sum(tf.reduce_sum(tf.square(g)) for g in grads))
        scale = tf.minimum(1.0, clip / norm) / BATCH  # The compiled loss is a batch mean.
        expected = [e + scale * g for e, g in zip(expected, grads)]
    for got, want in zip(clipped, expected):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-12)


def test_auto_mode_rule():
    # Few output positions (T=4), large d*c (288*64): ghost.
    wide = keras.layers.Conv2D(64, 3)
    assert pen.conv2d_norm_mode(wide, (None, 4, 4, 32)) == "ghost"
    # Many output positions (T=256), small d*c (18*4): direct.
    narrow = keras.layers.Conv2D(4, 3, padding="same")
    assert pen.conv2d_norm_mode(narrow, (None, 16, 16, 2)) == "direct"
    assert pen.conv2d_norm_mode(narrow, (None, 16, 16, 2), mode="ghost") == "ghost"
    assert pen.conv2d_norm_mode(narrow, (None, None, None, 2)) == "direct"
    with pytest.raises(ValueError, match="mode"):
        pen.make_layer_registry(conv_mode="fast")


def test_registry_uses_exact_classes():
    registry = pen.make_layer_registry()
    depthwise = keras.layers.DepthwiseConv2D(3)
    assert registry.lookup(depthwise) is pen.depthwise_conv2d_layer_computation
    assert registry.lookup(keras.layers.Dense(2)) is not registry.lookup(keras.layers.Conv2D(2, 3))
    assert not registry.is_elem(keras.layers.Conv2DTranspose(2, 3))


def test_batch_normalization_is_refused():
    inner = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3),
                              keras.layers.BatchNormalization(name="bn")])
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Flatten()(inner(inputs)))
    with pytest.raises(ValueError, match=r"BatchNormalization layer `bn`.*GroupNormalization"):
        pen.check_dp_compatible(model)


def test_unregistered_trainable_layer_is_listed():
    model = keras.Sequential([keras.Input((4, 4, 1)),
                              keras.layers.Conv2DTranspose(2, 3, name="up"),
                              keras.layers.MaxPooling2D(),
                              keras.layers.Flatten(), keras.layers.Dense(NUM_CLASSES)])
    with pytest.warns(UserWarning, match="Jacobians"):
        assert pen.check_dp_compatible(model) == ["up (Conv2DTranspose)"]
    x, y = _data((4, 4, 1))
    with pytest.raises(NotImplementedError, match="Conv2DTranspose"):
        pen.per_example_squared_norms(model, pen.make_layer_registry(), x, y,
                                      _per_example_loss())


def test_grouped_conv_is_refused():
    model = _probe_model(keras.layers.Conv2D(4, 3, groups=2), (5, 5, 4))
    x, y = _data((5, 5, 4))
    with pytest.raises(NotImplementedError, match="groups=2"):
        pen.per_example_squared_norms(model, pen.make_layer_registry(), x, y,
                                      _per_example_loss())


def test_microbatches_are_refused():
    clip_grads = import_tf_privacy("privacy.fast_gradient_clipping.clip_grads")
    model = _probe_model(keras.layers.Conv2D(2, 3), (5, 5, 1))
    x, y = _data((5, 5, 1))
    with pytest.raises(NotImplementedError, match="microbatches is not supported"):
        clip_grads.compute_gradient_norms(
            model, pen.make_layer_registry(), x, y, num_microbatches=2,
            per_example_loss_fn=lambda t, p, w: _per_example_loss()(t, p))


@pytest.mark.parametrize("config", [dict(strides=2, padding="same"),
                                    dict(dilation_rate=2, padding="valid")])
def test_patches_follow_the_kernel_layout(config):
    """patches @ kernel.reshape(d, c) is the convolution itself."""
    layer = keras.layers.Conv2D(3, (3, 2), use_bias=False, **config)
    x, _ = _data((7, 6, 2))
    expected = layer(x)
    patches = pen._patches(layer, x)  # pylint: disable=protected-access
    got = tf.matmul(patches, tf.reshape(layer.kernel, [-1, 3]))
    np.testing.assert_allclose(tf.reshape(got, expected.shape).numpy(), expected.numpy(),
                               rtol=1e-10, atol=1e-12)
