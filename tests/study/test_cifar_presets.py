"""The CIFAR-10 accelerator presets: their recipe, and each one end to end on a tiny scale.

The end-to-end runs use the `cifar10_data_dir` fixture, a synthetic CIFAR-10 that
TensorFlow Datasets' own builder prepared on disk, so the data goes through the same
`tfds.load(data_dir=...)` path as the real one. Each preset keeps its recipe (SGD,
cosine decay, weight decay, crop + flip, flip + shift LiRA queries) and only shrinks:
width 1/8, 1 epoch, 40 members, the loss and online LiRA attacks with 2 reference
models.
"""

import dataclasses
import json
import os

import numpy as np
import pytest

from mcmia_tf.study import PRESETS
from mcmia_tf.study import preset
from mcmia_tf.study import run_study
from mcmia_tf.study import validate_results
from mcmia_tf.study import StudyConfig

CIFAR_PRESETS = ("cifar10_resnet18", "cifar10_vgg16", "cifar10_mobilenetv2")


@pytest.mark.parametrize("name", CIFAR_PRESETS)
def test_cifar_presets_carry_the_published_recipe(name):
    config = preset(name)
    training = config.training
    assert config.dataset == "cifar10" and training.model == name.split("_")[1]
    assert (training.optimizer, training.momentum, training.learning_rate) == ("sgd", 0.9, 0.1)
    assert (training.lr_schedule, training.weight_decay) == ("cosine", 5e-4)
    assert (training.batch_size, training.epochs, training.augmentation) == (128, 200,
                                                                            "crop_flip")
    # LiRA / RMIA query the training augmentations (Carlini et al. 2022).
    audit = config.audit_config(seed=0)
    assert audit.flip and audit.shift_pixels == 4 and audit.num_reference_models == 16
    assert "dp" not in config.methods  # batch-norm models
    # Every method's recipe inherits the augmentation, so its reference models do too.
    for method in config.methods:
        assert config.recipe_config(method).to_dict()["training"]["augmentation"] == "crop_flip"
    assert StudyConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_the_study_pipeline_offers_every_preset():
    # Read from the source, not imported: importing the pipeline defines its absl flags,
    # which would clash with a benchmark's flags imported by another test of this process.
    import ast  # pylint: disable=g-import-not-at-top
    import pathlib  # pylint: disable=g-import-not-at-top
    source = (pathlib.Path(__file__).resolve().parents[2] / "pipelines" / "study.py").read_text()
    names = next(ast.literal_eval(node.value) for node in ast.parse(source).body
                 if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") ==
                 "PRESET_NAMES")
    assert set(names) == set(PRESETS)


def test_earlier_study_configs_are_written_as_before():
    # Folders of studies started before the new fields existed still resume.
    written = preset("paper").to_dict()
    assert "query_flip" not in written and "query_shift_pixels" not in written
    assert "augmentation" not in written["training"]
    assert "lr_schedule" not in written["training"]


@pytest.mark.parametrize("name", CIFAR_PRESETS)
@pytest.mark.slow
def test_cifar_preset_end_to_end(name, cifar10_data_dir, tmp_path):
    base = preset(name)
    config = preset(
        name, methods=("baseline",), num_members=40, num_reference=10, num_shadow_pool=40,
        attacks=("loss", "lira_online"), num_reference_models=2, num_shadow_models=0,
        num_bootstrap=20, num_permutations=20, export_modes=("float32",),
        training=dataclasses.replace(base.training, width=0.125, epochs=1))
    lines = []
    results = run_study(config, str(tmp_path), data_dir=cifar10_data_dir, log=lines.append)
    validate_results(results)
    assert results["dataset"] == "cifar10" and results["model"] == base.training.model
    (entry,) = results["methods"]
    assert entry["config"]["training"]["augmentation"] == "crop_flip"
    assert entry["config"]["training"]["optimizer"] == "sgd"
    assert set(entry["attacks"]) == {"loss", "lira_online"}
    # Six query views of each of the 80 candidates: the image, its mirror and 4 shifts.
    with np.load(os.path.join(tmp_path, "audit_cache", "baseline", "lira",
                              "outputs_0000.npz")) as outputs:
        assert outputs["outputs"].shape == (6 * 80, 10)
    # The reference models were trained with the target's recipe, augmentation included.
    with open(os.path.join(tmp_path, "audit_cache", "baseline", "lira", "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["recipe"]["recipe"]["training"]["augmentation"] == "crop_flip"
    assert manifest["recipe"]["recipe"]["training"]["lr_schedule"] == "cosine"
    assert manifest["num_models"] == 2
    assert os.path.exists(os.path.join(tmp_path, "tflite", "baseline", "baseline_float32.tflite"))
