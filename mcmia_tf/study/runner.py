"""Runs a study: split -> train every method -> audit -> export -> results and report.

Every step is a stage of `StageRunner`, so rerunning the same call after an
interruption (even SIGKILL) continues from the last finished stage. Model
training is seeded (weights, data order, attack head, inclusion masks), so a
resumed study ends with the same `results.json` as an uninterrupted one; only
the wall times differ.

Model training, the bulk of the cost, can be spread over workers sharing
`output_dir`: each runs `run_study(..., shard_index=i, num_shards=n)`, which
trains the targets of the methods at positions i, i + n, ... and its share of
every method's shadow and LiRA models; a final run with `num_shards=1` (the
merge) finds them all done and runs the audits, exports and report.
"""

import contextlib
import json
import os
import time
from typing import Callable, Dict, Optional

import numpy as np

from mcmia_tf.audit import audit_deployed_model
from mcmia_tf.audit import AuditConfig
from mcmia_tf.audit import run_audit
from mcmia_tf.audit.predictors import KerasPredictor
from mcmia_tf.audit.suite import build_model_caches
from mcmia_tf.compat import keras
from mcmia_tf.data import load_dataset
from mcmia_tf.data import MembershipSplit
from mcmia_tf.data import plant_canaries
from mcmia_tf.pruning import sparsity_report
from mcmia_tf.recipes import Recipe
from mcmia_tf.study import report as report_lib
from mcmia_tf.study import results as results_lib
from mcmia_tf.study.config import StudyConfig
from mcmia_tf.study.stages import atomic_write_json
from mcmia_tf.study.stages import StageRunner

__all__ = ["run_study"]

# A tensor is stored sparse by the converter only above ~30% zeros (methods.md section 8).
_SPARSE_EXPORT_MIN_SPARSITY = 0.3
_LATENCY_RUNS = 50


def _accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(KerasPredictor(model).predict(x).argmax(axis=1) == y))


class _SeedStudy:
    """One seed of a study, in its own folder."""

    def __init__(self, config: StudyConfig, seed: int, directory: str, dataset, strategy,
                 log: Callable[[str], None], runner: StageRunner, jit_compile: bool = False):
        self.config, self.seed, self.directory = config, seed, directory
        self.jit_compile = jit_compile
        self.dataset, self.strategy, self.log, self.runner = dataset, strategy, log, runner
        self.split_path = os.path.join(directory, "split.json")
        self.split: Optional[MembershipSplit] = None

    def _scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def stage(self, name: str, fn):
        """Runs `fn` as a resumable stage of this seed.

        Every training inside a stage fixes TensorFlow's seed from its own model seed
        (`Recipe.fit`, the reference-model cache), so a stage gives the same result
        whether the stages before it ran in this process or were loaded from disk.
        """
        return self.runner.run(f"seed{self.seed}_{name}", fn)

    def model_path(self, method: str) -> str:
        return os.path.join(self.directory, "models", method, "model.keras")

    def audit_config(self) -> AuditConfig:
        return self.config.audit_config(self.seed)

    def cache_dir(self, method: str) -> str:
        return os.path.join(self.directory, "audit_cache", method)

    def recipe(self, method: str) -> Recipe:
        reference = self.split.take("reference", self.dataset.x_train, self.dataset.y_train)
        return Recipe(self.config.recipe_config(method), self.dataset.input_shape,
                      self.dataset.num_classes,
                      reference_data=reference if len(reference[0]) else None,
                      jit_compile=self.jit_compile)

    # ---------------------------------------------------------------- stages
    def make_split(self) -> dict:
        config, num_examples = self.config, len(self.dataset.x_train)
        shadow_pool = config.num_shadow_pool
        if shadow_pool is None and config.num_canaries:
            # "All the rest" for the shadow pool, minus the examples the canaries need.
            shadow_pool = max(0, num_examples - 2 * config.num_members - config.num_reference
                              - config.num_canaries)
        split = MembershipSplit.create(
            dataset_name=self.dataset.name, num_examples=num_examples,
            num_members=config.num_members, num_reference=config.num_reference,
            num_shadow_pool=shadow_pool, seed=self.seed)
        if config.num_canaries:
            split = plant_canaries(split, self.dataset.y_train, config.num_canaries,
                                   kind=config.canary_kind,
                                   num_classes=self.dataset.num_classes, seed=self.seed)
        split.save(self.split_path)
        return {"path": os.path.basename(self.split_path), **split.sizes()}

    def train(self, method: str) -> dict:
        x_members, y_members = self.split.take("members", self.dataset.x_train,
                                               self.dataset.y_train)
        # The members and, with a canary audit, the IN canaries (never in test accuracy).
        x_train, y_train = self.split.target_training_data(self.dataset.x_train,
                                                           self.dataset.y_train)
        with self._scope():
            result = self.recipe(method).fit(x_train, y_train, seed=self.seed)
        model = result.model
        os.makedirs(os.path.dirname(self.model_path(method)), exist_ok=True)
        model.save(self.model_path(method))
        sparsity = sparsity_report(model)
        summary = {
            "method": method, "config": result.config, "epochs": self.config.training.epochs,
            "train_accuracy": _accuracy(model, x_members, y_members),
            "test_accuracy": _accuracy(model, self.dataset.x_test, self.dataset.y_test),
            "sparsity": result.sparsity, "compression_rate": result.compression_rate,
            "epsilon": result.epsilon,
            "privacy": None if result.privacy is None else result.privacy.to_dict(),
            "layers": [{"path": layer.path, "sparsity": layer.sparsity,
                        "num_weights": layer.num_weights} for layer in sparsity.layers],
            "seconds": result.seconds,
        }
        atomic_write_json(os.path.join(os.path.dirname(self.model_path(method)),
                                       "train_summary.json"), summary)
        return summary

    def load_model(self, method: str) -> keras.Model:
        return keras.models.load_model(self.model_path(method), compile=False)

    def train_reference_models(self, method: str, shard_index: int, num_shards: int) -> dict:
        caches = build_model_caches(self.dataset.x_train, self.dataset.y_train, self.split,
                                    self.recipe(method), self.audit_config(),
                                    self.cache_dir(method))
        for cache in caches.values():
            cache.train(shard_index, num_shards, True, 256, 0)
        return {"shard_index": shard_index, "num_shards": num_shards, "caches": sorted(caches)}

    def audit(self, method: str) -> dict:
        report = run_audit(self.load_model(method), self.dataset.x_train, self.dataset.y_train,
                           self.split, recipe=self.recipe(method), config=self.audit_config(),
                           cache_dir=self.cache_dir(method),
                           output_dir=os.path.join(self.directory, "audits", method), verbose=0)
        return report.to_dict()

    def export(self, method: str, sparsity: float) -> dict:
        from tflite_export import export_model  # pylint: disable=g-import-not-at-top
        from tflite_export import TFLitePredictor  # pylint: disable=g-import-not-at-top
        formats = list(self.config.export_modes)
        if sparsity >= _SPARSE_EXPORT_MIN_SPARSITY:
            formats += [f"{m}+sparse" for m in self.config.export_modes if m != "micro"]
        norm = self.dataset.normalization
        output_dir = os.path.join(self.directory, "tflite", method)
        exported = export_model(
            self.load_model(method), formats, output_dir, labels=self.dataset.class_names,
            x_train=self.split.take("members", self.dataset.x_train, self.dataset.y_train)[0],
            x_test=self.dataset.x_test, y_test=self.dataset.y_test, input_scale=norm.scale,
            input_mean=norm.mean, input_std=norm.std, latency_runs=_LATENCY_RUNS,
            seed=self.seed, name=method)
        rows = {f.format: f.to_dict() for f in exported.files}
        deployed_format = "int8" if "int8" in rows else formats[0]
        with open(rows[deployed_format]["path"], "rb") as f:
            content = f.read()
        deployed = audit_deployed_model(TFLitePredictor(content), self.dataset.x_train,
                                        self.dataset.y_train, self.split, self.recipe(method),
                                        config=self.audit_config(),
                                        cache_dir=self.cache_dir(method))
        for row in rows.values():
            row["path"] = os.path.relpath(row["path"], self.directory)
            if row.get("c_source_path"):
                row["c_source_path"] = os.path.relpath(row["c_source_path"], self.directory)
        return {"files": rows, "deployed_format": deployed_format,
                "deployed_audit": deployed.to_dict()}


def run_study(config: StudyConfig, output_dir: str, *, shard_index: int = 0,
              num_shards: int = 1, strategy=None, data_dir: Optional[str] = None,
              jit_compile: bool = False,
              log: Callable[[str], None] = print) -> Optional[dict]:
    """Runs (or resumes) a study and writes `results.json`, `report.md` and plots.

    Args:
      config: the `StudyConfig`.
      output_dir: the study folder (created; reused to resume).
      shard_index: this worker's index when reference-model training is sharded.
      num_shards: number of workers; > 1 only trains this worker's share of the
        targets and of the shadow / LiRA models, and returns None. Run once more
        with 1 to merge.
      strategy: optional `tf.distribute.Strategy` for training the target models
        (reference models, many small independent trainings, are spread over
        workers with `shard_index` / `num_shards` instead).
      data_dir: TensorFlow Datasets folder of `config.dataset` (cifar10, ...);
        not part of the configuration, so each worker may keep its own copy.
      jit_compile: compile the training steps with XLA (`Recipe(jit_compile=...)`;
        `mcmia_tf.study.resolve_jit_compile` enables it only on accelerators).
      log: progress output (one line per stage).

    Returns:
      The `results.json` content, or None for a sharded worker.
    """
    if not 0 <= shard_index < num_shards:
        raise ValueError(f"Invalid value for argument `shard_index`. Expected 0 <= shard_index < "
                         f"num_shards={num_shards}. Received: shard_index={shard_index}")
    os.makedirs(output_dir, exist_ok=True)
    config_path = os.path.join(output_dir, "study_config.json")
    if os.path.exists(config_path):
        previous = results_lib.read_json(config_path)
        if previous != json.loads(json.dumps(config.to_dict())):  # tuples become lists
            raise ValueError(f"{output_dir} holds a study with another configuration; resume it "
                             "with the same flags or choose a new --output_dir.")
    else:
        atomic_write_json(config_path, config.to_dict())
    start = time.time()
    dataset = load_dataset(config.dataset, idx_dir=config.idx_dir, data_dir=data_dir)
    methods = config.methods
    # A shard trains the targets of methods shard_index, shard_index + num_shards, ...
    shard_targets = methods[shard_index::num_shards]
    per_seed_stages = 1 + (len(methods) + len(shard_targets) if num_shards > 1
                           else 3 * len(methods))
    runner = StageRunner(output_dir, total_stages=per_seed_stages * len(config.seeds), log=log)
    log(f"study: {config.model} on {config.dataset}, methods {', '.join(methods)}, seeds "
        f"{list(config.seeds)}, K={config.num_reference_models} -> {output_dir}")

    if strategy is not None:
        log(f"training with {type(strategy).__name__} over {strategy.num_replicas_in_sync} "
            "replica(s)")
    per_seed: Dict[int, Dict[str, dict]] = {}
    for seed in config.seeds:
        directory = output_dir if len(config.seeds) == 1 else os.path.join(output_dir,
                                                                           f"seed_{seed}")
        study = _SeedStudy(config, seed, directory, dataset, strategy, log, runner,
                           jit_compile=jit_compile)
        os.makedirs(directory, exist_ok=True)
        study.stage("split", study.make_split)
        study.split = MembershipSplit.load(study.split_path, expected_dataset=dataset.name)
        if num_shards > 1:
            for method in methods:
                if method in shard_targets:
                    study.stage(f"train_{method}", lambda m=method: study.train(m))
                study.stage(f"references_{method}_shard{shard_index}of{num_shards}",
                            lambda m=method: study.train_reference_models(
                                m, shard_index, num_shards))
            continue
        entries = {}
        for method in methods:
            trained = study.stage(f"train_{method}", lambda m=method: study.train(m))
            audited = study.stage(f"audit_{method}", lambda m=method: study.audit(m))
            exported = study.stage(
                f"export_{method}", lambda m=method, s=trained["sparsity"]: study.export(m, s))
            entries[method] = results_lib.method_entry(
                method, trained, audited, exported,
                wall_time={stage: runner.seconds(f"seed{seed}_{stage}_{method}")
                           for stage in ("train", "audit", "export")})
        per_seed[seed] = entries
    if num_shards > 1:
        log(f"shard {shard_index}/{num_shards}: targets and reference models trained in "
            f"{time.time() - start:.0f} s; run again with num_shards=1 to merge")
        return None
    results = results_lib.study_results(config, dataset, per_seed)
    atomic_write_json(os.path.join(output_dir, "results.json"), results)
    report_lib.write_report(results, output_dir)
    log(f"study finished in {time.time() - start:.0f} s: "
        f"{os.path.join(output_dir, 'report.md')}")
    return results
