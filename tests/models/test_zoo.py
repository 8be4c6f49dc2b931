"""Model zoo: published parameter counts at width 1, forward passes at tiny width."""

import numpy as np
import pytest

from mcmia_tf.compat import ensure_tf_keras_model
from mcmia_tf.compat import keras
from mcmia_tf.models import build_model
from mcmia_tf.models import model_names


def _trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


@pytest.mark.parametrize("name,shape,expected", [
    ("lenet5", (28, 28, 1), 431_080),          # Han et al. / ADMM pruning papers
    ("lenet5_classic", (28, 28, 1), 61_706),   # LeCun et al. 1998
    ("vgg16", (32, 32, 3), 14_728_266),        # CIFAR VGG16-BN (pytorch-cifar)
    ("resnet18", (32, 32, 3), 11_173_962),     # CIFAR ResNet18 (pytorch-cifar)
    ("mobilenetv2", (32, 32, 3), 2_236_682),   # MobileNetV2 1.0, 10 classes
])
def test_trainable_parameters_match_published_counts(name, shape, expected):
    assert _trainable(build_model(name, shape, 10)) == expected


@pytest.mark.slow
def test_mobilenetv2_matches_keras_applications():
    ours = build_model("mobilenetv2", (32, 32, 3), 10)
    reference = keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, classes=10)
    assert ours.count_params() == reference.count_params()


@pytest.mark.parametrize("name", ["lenet5", "lenet5_classic", "vgg16", "resnet18", "mobilenetv2",
                                  "mlp"])
def test_tiny_forward_pass_gives_logits(name):
    model = build_model(name, (8, 8, 1), 10, width=0.125, seed=0)
    x = np.random.default_rng(0).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    logits = model(x, training=False).numpy()
    assert logits.shape == (3, 10) and np.all(np.isfinite(logits))
    # Logits, not probabilities: rows do not sum to one.
    assert not np.allclose(logits.sum(axis=1), 1.0)
    assert isinstance(model, keras.Model) and not model.built is False


def test_seed_makes_weights_reproducible():
    a = build_model("lenet5", (8, 8, 1), 10, width=0.25, seed=7)
    b = build_model("lenet5", (8, 8, 1), 10, width=0.25, seed=7)
    c = build_model("lenet5", (8, 8, 1), 10, width=0.25, seed=8)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a.get_weights()[0], c.get_weights()[0])
    # Layers get different seeds, so they are not copies of each other.
    assert not np.array_equal(a.get_weights()[0].ravel()[:10], a.get_weights()[2].ravel()[:10])


def test_unknown_model_lists_names():
    with pytest.raises(ValueError, match="Expected one of") as err:
        build_model("alexnet", (32, 32, 3), 10)
    assert all(n in str(err.value) for n in model_names())


@pytest.mark.parametrize("kwargs,match", [({"num_classes": 1}, "num_classes"),
                                          ({"width": 0}, "width")])
def test_bad_arguments(kwargs, match):
    args = dict(name="mlp", input_shape=(4,), num_classes=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        build_model(**args)


def test_keras3_model_is_rejected_with_the_fix():
    # `import keras` is Keras 3 on this stack (`tf.keras` may resolve to tf_keras once tfmot
    # has been imported in the same process).
    import keras as keras3  # pylint: disable=g-import-not-at-top
    keras3_model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2)])
    with pytest.raises(TypeError, match="build the model with `import tf_keras as keras`"):
        ensure_tf_keras_model(keras3_model)
    with pytest.raises(TypeError, match="Expected a `tf_keras.Model`"):
        ensure_tf_keras_model("model.h5")
    model = build_model("mlp", (4,), 3)
    assert ensure_tf_keras_model(model) is model


@pytest.mark.parametrize("name", ["resnet18", "vgg16", "mobilenetv2"])
@pytest.mark.slow
def test_group_norm_variant_has_no_batch_norm_and_trains_with_dp_sgd(name):
    from mcmia_tf.privacy.dp_model import DPSGDModel  # pylint: disable=g-import-not-at-top
    batch = build_model(name, (8, 8, 3), 10, width=0.125, seed=0)
    group = build_model(name, (8, 8, 3), 10, width=0.125, seed=0, norm="group")
    kinds = {type(layer).__name__ for layer in group.layers}
    assert "BatchNormalization" not in kinds and "GroupNormalization" in kinds
    # Same layer names, so per-layer options carry over; GN has no moving statistics.
    assert [layer.name for layer in batch.layers] == [layer.name for layer in group.layers]
    assert group.count_params() < batch.count_params()
    assert sum(int(np.prod(w.shape)) for w in group.trainable_weights) == sum(
        int(np.prod(w.shape)) for w in batch.trainable_weights)
    model = DPSGDModel(group, l2_norm_clip=1.0, noise_multiplier=1.0)
    model.compile(keras.optimizers.SGD(0.1))
    rng = np.random.default_rng(0)
    model.train_on_batch(rng.uniform(size=(4, 8, 8, 3)).astype(np.float32), np.arange(4))
    with pytest.raises(ValueError, match="GroupNormalization"):
        DPSGDModel(batch, l2_norm_clip=1.0, noise_multiplier=1.0)
    with pytest.raises(ValueError, match="`norm`"):
        build_model(name, (8, 8, 3), 10, norm="instance")
