"""The model zoo: LeNet-5, VGG16, ResNet18, MobileNetV2 and an MLP, as tf_keras models."""

from mcmia_tf.models.lenet import lenet5
from mcmia_tf.models.lenet import lenet5_classic
from mcmia_tf.models.mlp import mlp
from mcmia_tf.models.mobilenet import mobilenetv2
from mcmia_tf.models.normalization import recompute_batch_norm
from mcmia_tf.models.registry import build_model
from mcmia_tf.models.registry import MODEL_BUILDERS
from mcmia_tf.models.registry import model_names
from mcmia_tf.models.resnet import resnet18
from mcmia_tf.models.vgg import vgg16

__all__ = ["MODEL_BUILDERS", "build_model", "lenet5", "lenet5_classic", "mlp", "mobilenetv2",
           "model_names", "recompute_batch_norm", "resnet18", "vgg16"]
