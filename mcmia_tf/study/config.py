"""What a study runs: data, methods, the shared recipe settings, audit and export.

A study compares the package's methods on one model and dataset, the layout of
the MCMIA paper's tables (Wang et al., IJCAI 2021): every method is trained on
the same members, audited by the same attacks (each method's shadow and LiRA
reference models trained with that method's own recipe, so the attack is
adapted to the defence, as Aerni et al., CCS 2024 require), and exported.

Presets:
  * `quick`: `digits`, a LeNet-5, few epochs, 4 LiRA reference models; runs
    in minutes on 2 CPU cores (the README's main job).
  * `paper`: Fashion-MNIST LeNet-5 20-50-500, 10,000 members, 30 epochs,
    16 LiRA reference models: the headline benchmark (hours on a CPU).
  * `cifar10_resnet18`, `cifar10_vgg16`, `cifar10_mobilenetv2`: CIFAR-10 with
    the published recipe of kuangliu/pytorch-cifar (SGD momentum 0.9, learning
    rate 0.1 with cosine decay, weight decay 5e-4, batch 128, 200 epochs, random
    crop with 4-pixel padding + horizontal flip; MobileNetV2 the same; batch
    norm statistics recomputed under the final weights, PreciseBN), the
    `paper` preset's split (10,000 members, 5,000 D', a 20,000 shadow pool),
    16 LiRA reference models and 4 shadow models, LiRA / RMIA queried on the
    image, its mirror and 4-pixel shifts (Carlini et al., S&P 2022, query the
    training augmentations), every method but DP (DP-SGD needs group instead of
    batch normalization and its own tuned recipe). Runs for accelerators:
    `python -m pipelines.study --preset=cifar10_resnet18 --data_dir=DIR
    --mixed_precision --jit_compile --output_dir=runs/cifar10_resnet18`, with
    CIFAR-10 prepared in DIR (`tfds build cifar10 --data_dir=DIR` on a machine
    with internet access, then copy DIR).

Expected cost of the CIFAR presets, an estimate from FLOPs, not a measurement:
forward multiply-adds per 32x32 image at width 1 (counted per layer: ResNet18
0.56 G, VGG16 0.31 G, MobileNetV2 0.024 G), x 2 FLOPs per multiply-add x 3 for
forward + backward, x 10,000 examples x 200 epochs gives per trained model
ResNet18 6.7 PFLOP, VGG16 3.8 PFLOP, MobileNetV2 0.29 PFLOP. A method trains
21 models (target, 16 reference, 4 shadow, each on 10,000 examples); the two
min-max methods cost ~1.7x (two extra forward passes per step), so the five
methods are ~133 model trainings: ResNet18 ~890 PFLOP, VGG16 ~500 PFLOP,
MobileNetV2 ~39 PFLOP. At an assumed sustained 20 TFLOP/s (an A100-class GPU
with mixed precision on small 32x32 convolutions) that is ~12 GPU-hours for
ResNet18 and ~7 for VGG16. MobileNetV2's FLOP figure (~0.5 GPU-hour) is a floor:
its depthwise layers are memory-bound and its 1.7 million steps are dominated by
per-step overhead, so expect 2-4 GPU-hours. Audits and exports add minutes. Shard
the training over GPUs with `--shard_index` / `--num_shards`; on 2 CPU cores
these presets would take months.
"""

import dataclasses
import json
from typing import Any, Dict, Mapping, Optional, Tuple

from mcmia_tf.audit import ATTACK_NAMES
from mcmia_tf.audit import AuditConfig
from mcmia_tf.data import CANARY_KINDS
from mcmia_tf.recipes.config import DPConfig
from mcmia_tf.recipes.config import METHODS
from mcmia_tf.recipes.config import MinMaxConfig
from mcmia_tf.recipes.config import PruningConfig
from mcmia_tf.recipes.config import RecipeConfig
from mcmia_tf.recipes.config import TrainingConfig
from mcmia_tf.recipes.config import without_default_fields

__all__ = ["PRESETS", "StudyConfig", "dp_epsilon", "dp_method_name", "parse_dp_override",
           "preset"]

EXPORT_MODES = ("float32", "int8")


def _fail(argument: str, expected: str, value) -> None:
    raise ValueError(f"Invalid value for argument `{argument}`. Expected {expected}. "
                     f"Received: {argument}={value!r}")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A whole study.

    Attributes:
      dataset: a `mcmia_tf.data.DATASET_NAMES` entry.
      methods: subset of `mcmia_tf.recipes.METHODS`, run in this order.
      seeds: one full study per seed (split, weights, data order, attacks).
      num_members: target training set size (non-members: the same number).
      num_reference: the defender's reference set D' (min-max methods).
      num_shadow_pool: attacker's pool for shadow models (None: all the rest).
      num_reference_models: K LiRA reference models per method.
      num_shadow_models: shadow models per method (Shokri attack, calibrated
        thresholds).
      dp_epsilons: when set, the `dp` method becomes one method per epsilon,
        `dp_eps<e>` (own recipe with `target_epsilon=e`, own shadow and reference
        models): the DP frontier that defences are compared with at matched accuracy.
      dp_overrides: per-epsilon changes to the `dp` section, keyed by the epsilon
        as `dp_method_name` writes it ("1000" for `dp_eps1000`), e.g.
        `{"1000": {"optimizer": "adam", "learning_rate": 1e-3, "batch_size": 128}}`:
        the recipe tuned at one budget is rarely the best at another (at large
        epsilons the noise no longer dominates and the clipping and step count of a
        small-epsilon recipe cap the accuracy), so each point of the frontier may
        carry the hyper-parameters chosen for it on held-out data (`bench.dp_tune
        --target_epsilon=e`). `target_epsilon` itself cannot be overridden.
      num_canaries: canaries planted in the candidate pool (0: none), each IN for a
        random half of the target and reference models; the audit reports the
        attacks on them alone (worst case, Aerni et al., CCS 2024).
      canary_kind: `mcmia_tf.data.CANARY_KINDS` ("mislabeled" or "noise").
      num_bootstrap: bootstrap replicates of every 95% interval.
      num_permutations: label permutations of the noise floor.
      export_modes: TFLite modes written for every method; pruned models also
        get the sparse-encoded variant of each.
      training, pruning, dp, minmax: the recipe sections shared by every
        method (`RecipeConfig` reads the ones a method needs).
      idx_dir: folder of MNIST/Fashion-MNIST IDX files (None: the default).
      attacks: the audit's attacks (`mcmia_tf.audit.ATTACK_NAMES`, all by
        default); a subset, e.g. ("loss", "lira_online"), needs fewer models
        (offline LiRA needs K >= 4, the shadow attack a shadow model).
      query_flip: LiRA / RMIA also query the horizontally flipped candidates
        (`AuditConfig.flip`).
      query_shift_pixels: LiRA / RMIA also query 4 shifts by this many pixels
        (`AuditConfig.shift_pixels`); 0: none.

    The TensorFlow Datasets folder is not part of the configuration (a copy of
    the data may live elsewhere on every worker): pass it to `run_study`.
    """
    dataset: str = "digits"
    methods: Tuple[str, ...] = METHODS
    seeds: Tuple[int, ...] = (0,)
    num_members: int = 500
    num_reference: int = 200
    num_shadow_pool: Optional[int] = None
    num_reference_models: int = 4
    num_shadow_models: int = 2
    dp_epsilons: Tuple[float, ...] = ()
    dp_overrides: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    num_canaries: int = 0
    canary_kind: str = "mislabeled"
    num_bootstrap: int = 200
    num_permutations: int = 200
    export_modes: Tuple[str, ...] = EXPORT_MODES
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    pruning: PruningConfig = dataclasses.field(default_factory=PruningConfig)
    dp: DPConfig = dataclasses.field(default_factory=DPConfig)
    minmax: MinMaxConfig = dataclasses.field(default_factory=MinMaxConfig)
    idx_dir: Optional[str] = None
    attacks: Tuple[str, ...] = ATTACK_NAMES
    query_flip: bool = False
    query_shift_pixels: int = 0

    # Omitted from `to_dict` at their defaults, so folders of earlier studies resume.
    ADDED_FIELDS = ("attacks", "query_flip", "query_shift_pixels", "dp_overrides")

    def __post_init__(self):
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(self, "export_modes", tuple(self.export_modes))
        object.__setattr__(self, "attacks", tuple(self.attacks))
        epsilons = tuple(float(e) for e in self.dp_epsilons)
        if any(not e > 0 for e in epsilons) or len(set(epsilons)) != len(epsilons):
            _fail("dp_epsilons", "distinct epsilons > 0", self.dp_epsilons)
        object.__setattr__(self, "dp_epsilons", epsilons)
        object.__setattr__(self, "dp_overrides", _checked_dp_overrides(self.dp_overrides,
                                                                       epsilons))
        # "dp" expands into one method per epsilon, in place (idempotent on a saved config).
        methods = []
        for method in self.methods:
            methods += ([dp_method_name(e) for e in epsilons]
                        if method == "dp" and epsilons else [method])
        object.__setattr__(self, "methods", tuple(methods))
        unknown = [m for m in self.methods if m not in METHODS and dp_epsilon(m) is None]
        if unknown or not self.methods:
            _fail("methods", f"a non-empty subset of {METHODS} (or dp_eps<epsilon>)",
                  self.methods)
        if len(set(self.methods)) != len(self.methods):
            _fail("methods", "no repeated method", self.methods)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            _fail("seeds", "a non-empty list of distinct integers", self.seeds)
        self.audit_config(seed=self.seeds[0])  # the audit validates its own settings
        if isinstance(self.num_canaries, bool) or not isinstance(self.num_canaries, int) or \
                self.num_canaries < 0 or self.num_canaries == 1:
            _fail("num_canaries", "0 (no canary audit) or an integer >= 2 (IN and OUT "
                  "canaries)", self.num_canaries)
        if self.canary_kind not in CANARY_KINDS:
            _fail("canary_kind", f"one of {CANARY_KINDS}", self.canary_kind)
        bad_modes = [m for m in self.export_modes if m not in ("float32", "float16",
                                                              "dynamic_int8", "int8", "micro")]
        if bad_modes:
            _fail("export_modes", "modes among float32, float16, dynamic_int8, int8, micro",
                  self.export_modes)
        if any(m in ("minmax", "mcmia_pruning_minmax") for m in self.methods) and \
                self.num_reference < 1:
            _fail("num_reference", "at least 1 example of D' for the min-max methods",
                  self.num_reference)
        for method in self.methods:
            self.recipe_config(method)  # validates the combination early

    @property
    def model(self) -> str:
        return self.training.model

    @property
    def sparsity(self) -> float:
        return self.pruning.target_sparsity

    def audit_config(self, seed: int) -> AuditConfig:
        """The audit of every method: its attacks, model counts and query views."""
        return AuditConfig(attacks=self.attacks, num_reference_models=self.num_reference_models,
                           num_shadow_models=self.num_shadow_models,
                           flip=self.query_flip, shift_pixels=self.query_shift_pixels,
                           num_bootstrap=self.num_bootstrap,
                           num_permutations=self.num_permutations, seed=seed)

    def recipe_config(self, method: str) -> RecipeConfig:
        """The `RecipeConfig` of one method (tfmot's pruning is element-wise only;
        `dp_eps<e>` is `dp` with `target_epsilon=e`)."""
        pruning, dp = self.pruning, self.dp
        if method == "tfmot_magnitude":
            pruning = dataclasses.replace(pruning, structure="unstructured")
        epsilon = dp_epsilon(method)
        if epsilon is not None:
            overrides = self.dp_overrides.get(f"{epsilon:g}", {})
            method, dp = "dp", dataclasses.replace(dp, target_epsilon=epsilon, **overrides)
        return RecipeConfig(method=method, training=self.training, dp=dp,
                            minmax=self.minmax, pruning=pruning)

    def to_dict(self) -> dict:
        values = without_default_fields(self, dataclasses.asdict(self), self.ADDED_FIELDS)
        values["training"] = self.training.to_dict()
        if "attacks" in values:
            values["attacks"] = list(self.attacks)
        values["methods"] = list(self.methods)
        values["dp_epsilons"] = list(self.dp_epsilons)
        values["seeds"] = list(self.seeds)
        values["export_modes"] = list(self.export_modes)
        return values

    @classmethod
    def from_dict(cls, config: Mapping) -> "StudyConfig":
        sections = {"training": TrainingConfig, "pruning": PruningConfig, "dp": DPConfig,
                    "minmax": MinMaxConfig}
        values = dict(config)
        for name, section in sections.items():
            if name in values and isinstance(values[name], Mapping):
                values[name] = section(**values[name])
        return cls(**values)


PRESETS = {
    # Minutes on 2 cores: the embedded digits data, a LeNet-5 that overfits.
    "quick": dict(
        dataset="digits", num_members=500, num_reference=200, num_shadow_pool=None,
        num_reference_models=4, num_shadow_models=2,
        training=TrainingConfig(model="lenet5", width=1.0, epochs=24, batch_size=32),
        pruning=PruningConfig(target_sparsity=0.95, regularization_epochs=8, retrain_epochs=8),
        dp=DPConfig(noise_multiplier=1.1),
    ),
    # The headline benchmark of the README (peer-baselines.md's setting). DP-SGD comes
    # last (~3x the cost of a plain fit per epoch), so a sharded or interrupted run
    # has every other method's models first. Its recipe (Tramer & Boneh's, ICLR 2021:
    # tanh LeNet-5, SGD momentum 0.9, C = 0.1, large batches) was chosen by
    # `bench.dp_tune` on held-out members at epsilon 3 (lr 1-4 x batch 512-2048).
    "paper": dict(
        dataset="fashion_mnist",
        methods=("baseline", "minmax", "mcmia_pruning", "mcmia_pruning_minmax",
                 "tfmot_magnitude", "dp"),
        # Shadow pool = 2 x members: each shadow model trains on a random half, as many
        # examples as the target (Shokri et al. 2017), not on a larger set.
        num_members=10_000, num_reference=5_000,
        num_shadow_pool=20_000, num_reference_models=16, num_shadow_models=4,
        training=TrainingConfig(model="lenet5", width=1.0, epochs=30, batch_size=128),
        pruning=PruningConfig(target_sparsity=0.95, regularization_epochs=10,
                              retrain_epochs=10),
        dp=DPConfig(target_epsilon=3.0, l2_norm_clip=0.1, optimizer="sgd", momentum=0.9,
                    learning_rate=2.0, batch_size=1024, activation="tanh"),
    ),
}


def _cifar10_preset(model: str, target_sparsity: float) -> dict:
    """A CIFAR-10 accelerator preset (see the module docstring for its cost)."""
    return dict(
        dataset="cifar10",
        methods=("baseline", "minmax", "mcmia_pruning", "mcmia_pruning_minmax",
                 "tfmot_magnitude"),
        num_members=10_000, num_reference=5_000, num_shadow_pool=20_000,
        num_reference_models=16, num_shadow_models=4,
        # kuangliu/pytorch-cifar's main.py: SGD(lr=0.1, momentum=0.9, weight_decay=5e-4),
        # CosineAnnealingLR(T_max=200), batch 128, RandomCrop(32, padding=4) + flip.
        training=TrainingConfig(model=model, width=1.0, epochs=200, batch_size=128,
                                learning_rate=0.1, optimizer="sgd", momentum=0.9,
                                lr_schedule="cosine", weight_decay=5e-4,
                                augmentation="crop_flip", recompute_batch_norm=True),
        # 120 dense epochs, 40 with the penalty (or tfmot's ramp), 40 masked retraining.
        pruning=PruningConfig(target_sparsity=target_sparsity, regularization_epochs=40,
                              retrain_epochs=40),
        # The training augmentations as query views: the mirror and 4-pixel shifts (the
        # query shifts reflect the border where the training crops pad it with zeros).
        query_flip=True, query_shift_pixels=4,
    )


# Target rates from the pruning literature (research/anchors.md, methods.md): DNR prunes
# VGG16 and ResNet-18 on CIFAR-10 more than 20x (95%) without a significant drop; the
# reweighted method compresses the compact MobileNet 7.2x (ImageNet), ~85% here.
PRESETS.update({
    "cifar10_resnet18": _cifar10_preset("resnet18", 0.95),
    "cifar10_vgg16": _cifar10_preset("vgg16", 0.95),
    "cifar10_mobilenetv2": _cifar10_preset("mobilenetv2", 0.85),
})


_DP_PREFIX = "dp_eps"


def dp_method_name(epsilon: float) -> str:
    """`dp_eps3`, `dp_eps0.5`: the study's name of DP-SGD at one epsilon."""
    return f"{_DP_PREFIX}{epsilon:g}"


def dp_epsilon(method: str) -> Optional[float]:
    """The epsilon of a `dp_eps<e>` method name, else None."""
    if not method.startswith(_DP_PREFIX):
        return None
    try:
        value = float(method[len(_DP_PREFIX):])
    except ValueError:
        return None
    return value if value > 0 else None


def _checked_dp_overrides(overrides: Mapping, epsilons: Tuple[float, ...]) -> Dict[str, Dict]:
    """`overrides` with canonical epsilon keys, after checking keys and fields."""
    if not isinstance(overrides, Mapping):
        _fail("dp_overrides", "a mapping from epsilon to `DPConfig` fields", overrides)
    fields = {f.name for f in dataclasses.fields(DPConfig)} - {"target_epsilon"}
    checked = {}
    for key, changes in overrides.items():
        try:
            epsilon = float(key)
        except (TypeError, ValueError):
            epsilon = None
        if epsilon not in epsilons:
            _fail("dp_overrides", f"keys among dp_epsilons {list(epsilons)}", key)
        unknown = sorted(set(changes) - fields) if isinstance(changes, Mapping) else None
        if unknown is None or unknown:
            _fail("dp_overrides", f"`DPConfig` fields among {sorted(fields)} for epsilon {key}",
                  changes)
        checked[f"{epsilon:g}"] = dict(changes)
    return checked


def parse_dp_override(text: str) -> Tuple[str, Dict[str, Any]]:
    """Parses `"<epsilon>:field=value,field=value"` (the study's `--dp_override` flag).

    Values are read as JSON where they parse (`128`, `0.001`, `null`), else kept as
    strings (`adam`, `relu`); `DPConfig` checks them when the study is built.

    Returns:
      (epsilon key, changes), e.g. `("1000", {"optimizer": "adam", "batch_size": 128})`.

    Raises:
      ValueError: if the text does not have that form.
    """
    epsilon, _, assignments = text.partition(":")
    changes = {}
    for assignment in filter(None, assignments.split(",")):
        name, equals, value = assignment.partition("=")
        if not equals or not name.strip():
            changes = {}
            break
        try:
            changes[name.strip()] = json.loads(value)
        except ValueError:
            changes[name.strip()] = value.strip()
    if not epsilon.strip() or not changes:
        _fail("dp_override", "'<epsilon>:field=value[,field=value...]', e.g. "
              "'1000:optimizer=adam,learning_rate=0.001,batch_size=128'", text)
    return epsilon.strip(), changes


def preset(name: str, **overrides) -> StudyConfig:
    """A preset `StudyConfig` with some fields replaced (e.g. `methods=...`)."""
    if name not in PRESETS:
        _fail("preset", f"one of {tuple(PRESETS)}", name)
    values = dict(PRESETS[name])
    values.update(overrides)
    return StudyConfig(**values)

