"""`Recipe`: the six training methods, a frozen config in, a trained model and its history out.

```python
recipe = Recipe(RecipeConfig("mcmia_pruning_minmax", pruning=PruningConfig(0.95)),
                input_shape=ds.input_shape, num_classes=ds.num_classes,
                reference_data=split.take("reference", ds.x_train, ds.y_train))
result = recipe.fit(x_members, y_members, seed=0)
result.model          # deployable tf_keras model (pruning stripped, exact zeros)
result.to_dict()      # method, config, history, sparsity, epsilon, seconds (JSON)
```

`Recipe.train(x, y, *, seed)` satisfies the `TrainingRecipe` protocol,
so shadow and LiRA reference models are trained exactly like the target
(including the min-max game against the same defender reference set D', and
the same DP noise).

What each method runs, with E = `training.epochs`, R =
`pruning.regularization_epochs`, T = `pruning.retrain_epochs`:

* baseline: `fit` E epochs, cross-entropy, the training section's optimizer
  (Adam by default; SGD with momentum, cosine decay and L2 weight decay for the
  CIFAR presets).
* dp: DP-SGD with per-example clipping (`DPSGDModel`, fast gradient norms) on
  Poisson-sampled batches, E epochs; or, with `dp.num_microbatches`,
  tensorflow-privacy's vectorized optimizer on fixed-size shuffled batches.
* minmax: `MinMaxModel` (Nasr et al. 2018), E epochs.
* mcmia_pruning: E - R - T dense epochs, then `ReweightedPruning` (or
  `ADMMPruning`) with the penalty for R epochs, hard prune, T epochs of masked
  retraining (Wang et al., IJCAI 2021, with Zhang et al.'s reweighted solver).
* mcmia_pruning_minmax: the same phases, every one of them a min-max game.
* tfmot_magnitude: E - R - T dense epochs, then tfmot's `prune_low_magnitude`
  with a `PolynomialDecay` ramp from 0 to the target over R epochs and T
  epochs at the target (the peer method, tfmot's recommended recipe). Each
  layer ramps to the rate MCMIA pruning gives it (`mcmia_tf.pruning.plan_layers`:
  `layer_sparsity`, the `edge_layer_sparsity` cap), so the two methods are
  compared on the same per-layer allocation and differ only in how they choose
  and train the zeros.

Every method but DP's Poisson sampling draws its training batches from
`mcmia_tf.recipes.pipeline`, like `StandardTrainingRecipe`. With
`training.augmentation="crop_flip"`, every method's training batches
(shuffled or Poisson-sampled) are randomly cropped and flipped per example
(`mcmia_tf.data.augmentation`), seeded from the fit seed; validation data and
every query of the audit see the original images. Shadow and reference models
go through the same `Recipe.train`, hence the same augmentation.

With `training.recompute_batch_norm`, every method but DP ends with the
BatchNormalization statistics recomputed on its training examples under the
final weights (`mcmia_tf.models.recompute_batch_norm`): shadow and reference
models get it too, so the audit's models match the target's recipe.

`Recipe(..., jit_compile=True)` compiles the training step with XLA for
baseline, mcmia_pruning and tfmot_magnitude. The min-max methods draw their D'
batches from a `tf.data` iterator inside the step (`IteratorGetNext` has no XLA
kernel) and DP's Poisson batches vary in size (XLA would recompile at every new
size), so those run without it. It is an execution option, not part of the
recipe: it is left out of `to_dict`, so models trained with and without it
share audit caches.
"""

import dataclasses
import hashlib
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_model_optimization as tfmot

from mcmia_tf.compat import keras
from mcmia_tf.privacy import dp as dp_lib
from mcmia_tf.privacy.attack_head import build_attack_head
from mcmia_tf.privacy.dp_model import DPSGDModel
from mcmia_tf.privacy.minmax import MinMaxModel
from mcmia_tf.privacy.poisson import poisson_batches
from mcmia_tf.privacy.poisson import steps_per_epoch
from mcmia_tf.recipes.config import RecipeConfig
from mcmia_tf.recipes.optimization import add_weight_decay
from mcmia_tf.recipes.optimization import make_optimizer
from mcmia_tf.recipes.optimization import named_optimizer
from mcmia_tf.recipes.pipeline import shuffled_batches

__all__ = ["Recipe", "TrainingResult", "check_reference_disjoint"]

_LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    """A trained model and what it cost.

    Attributes:
      model: the deployable tf_keras classifier (logits; pruning stripped).
      method: the recipe's method.
      config: `RecipeConfig.to_dict()`.
      history: per-epoch logs of every phase, concatenated.
      seconds: wall time of `fit`.
      sparsity: fraction of zeros of the prunable kernels.
      compression_rate: total weights / non-zero weights of those kernels.
      privacy: the DP guarantee (method "dp"), else None.
    """
    model: keras.Model
    method: str
    config: Mapping[str, object]
    history: Mapping[str, List[float]]
    seconds: float
    sparsity: float
    compression_rate: float
    privacy: Optional[dp_lib.PrivacyGuarantee] = None

    @property
    def epsilon(self) -> Optional[float]:
        return None if self.privacy is None else self.privacy.epsilon

    def to_dict(self) -> dict:
        """Everything but the model, JSON-ready."""
        return {"method": self.method, "config": dict(self.config),
                "history": {k: [float(v) for v in vs] for k, vs in self.history.items()},
                "seconds": self.seconds, "sparsity": self.sparsity,
                "compression_rate": self.compression_rate, "epsilon": self.epsilon,
                "privacy": None if self.privacy is None else self.privacy.to_dict()}


def _row_digests(x: np.ndarray) -> set:
    return {hashlib.sha1(np.ascontiguousarray(row).tobytes()).digest() for row in x}


def check_reference_disjoint(x_members: np.ndarray, x_reference: np.ndarray) -> None:
    """Raises if an example of the reference set D' also is a member.

    Compares the examples byte for byte (indices are not known here), which is
    exact for datasets without duplicate images (digits, Fashion-MNIST).

    Raises:
      ValueError: if D' is empty or shares an example with the members.
    """
    if len(x_reference) == 0:
        raise ValueError("Invalid value for argument `reference_data`. Expected a non-empty "
                         "reference set D' of non-members (create the MembershipSplit with "
                         "num_reference > 0). Received 0 examples.")
    shared = len(_row_digests(x_members) & _row_digests(x_reference))
    if shared:
        raise ValueError(
            f"Invalid value for argument `reference_data`. The reference set D' shares "
            f"{shared} examples with the training members; the min-max game needs non-members "
            "(Nasr et al. 2018). Use `split.take('reference', ...)` of a MembershipSplit, "
            "whose sets are disjoint.")


def _merge(history: Dict[str, List[float]], logs: Mapping[str, List[float]]) -> None:
    for key, values in logs.items():
        history.setdefault(key, []).extend(float(v) for v in values)


class Recipe:
    """Trains one method's model from scratch, from Python, a pipeline or the audit.

    Args:
      config: a `RecipeConfig`.
      input_shape: shape of one example.
      num_classes: number of classes.
      reference_data: `(x_ref, y_ref)`, the defender's non-members D'
        (required by "minmax" and "mcmia_pruning_minmax", ignored otherwise).
      jit_compile: compile the training step with XLA (`keras.Model.compile`'s
        `jit_compile`) for baseline, mcmia_pruning and tfmot_magnitude (see the
        module docstring); an execution option, not part of `to_dict`
        (`mcmia_tf.study.resolve_jit_compile` enables it only where an
        accelerator is visible).
    """

    def __init__(self, config: RecipeConfig, input_shape: Sequence[int], num_classes: int,
                 reference_data: Optional[Tuple[np.ndarray, np.ndarray]] = None, *,
                 jit_compile: bool = False):
        if not isinstance(config, RecipeConfig):
            raise TypeError("Invalid value for argument `config`. Expected a `RecipeConfig`. "
                            f"Received: config={config!r}")
        self.config = config
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.jit_compile = bool(jit_compile)
        if config.training.augmentation != "none" and len(self.input_shape) != 3:
            raise ValueError(
                f"Invalid value for argument `augmentation`. Expected 'none' for inputs that "
                f"are not (height, width, channels) images; crops and flips need images. "
                f"Received: augmentation={config.training.augmentation!r} with "
                f"input_shape={self.input_shape}")
        self.reference_data = None
        if config.uses("minmax"):
            if reference_data is None:
                raise ValueError(f"Method {config.method!r} plays the min-max game against a "
                                 "reference set D': pass `reference_data=(x_ref, y_ref)`.")
            x_ref, y_ref = (np.asarray(a) for a in reference_data)
            if len(x_ref) == 0:
                check_reference_disjoint(x_ref, x_ref)  # raises the empty-set error
            self.reference_data = (x_ref, y_ref.astype(np.int64))

    # ------------------------------------------------------------------ public API
    def train(self, x: np.ndarray, y: np.ndarray, *, seed: int) -> keras.Model:
        """The `TrainingRecipe` protocol: the trained, deployable model."""
        return self.fit(x, y, seed=seed).model

    def fit(self, x: np.ndarray, y: np.ndarray, *, seed: int,
            validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None,
            callbacks: Sequence[keras.callbacks.Callback] = (),
            verbose: int = 0) -> TrainingResult:
        """Trains a new model on (x, y) with `seed` (weights and data order).

        Args:
          x: training inputs (the members).
          y: integer labels.
          seed: seed of the initial weights, the attack head and data order.
          validation_data: optional `(x_val, y_val)` evaluated every epoch.
          callbacks: extra Keras callbacks for every phase.
          verbose: Keras verbosity.

        Returns:
          A `TrainingResult`.
        """
        x, y = np.asarray(x), np.asarray(y).astype(np.int64)
        if self.reference_data is not None:
            check_reference_disjoint(x, self.reference_data[0])
        seed = int(seed)
        # TensorFlow combines op seeds (data order) with its global seed, and
        # tensorflow-privacy draws DP noise from the global generator without an op seed:
        # fixing the global seed here makes the whole run a function of `seed`.
        tf.random.set_seed(seed)
        start = time.time()
        fit_kwargs = dict(validation_data=validation_data, callbacks=list(callbacks),
                          verbose=verbose)
        history: Dict[str, List[float]] = {}
        privacy = None
        method = self.config.method
        if method == "dp":
            model, privacy = self._fit_dp(x, y, seed, history, fit_kwargs)
        elif method == "tfmot_magnitude":
            model = self._fit_tfmot(x, y, seed, history, fit_kwargs)
        else:
            model = self._fit_dynamic(x, y, seed, history, fit_kwargs)
        if self.config.training.recompute_batch_norm and method != "dp":
            # Statistics of the final weights on the members, as inference sees them
            # (no augmentation). Never for DP: it would read the private data outside
            # the accountant.
            from mcmia_tf.models import recompute_batch_norm  # pylint: disable=g-import-not-at-top
            recompute_batch_norm(model, x, min(self.config.training.batch_size, len(x)))
        from mcmia_tf.pruning import sparsity_report  # pylint: disable=g-import-not-at-top
        report = sparsity_report(model)
        return TrainingResult(model=model, method=method, config=self.config.to_dict(),
                              history=history, seconds=time.time() - start,
                              sparsity=float(report.sparsity),
                              compression_rate=float(report.compression_rate),
                              privacy=privacy)

    def to_dict(self) -> dict:
        """JSON description (the audit's cache refuses to mix different recipes)."""
        description = {"recipe": self.config.to_dict(), "input_shape": list(self.input_shape),
                       "num_classes": self.num_classes}
        if self.reference_data is not None:
            digest = hashlib.sha256()
            for array in self.reference_data:
                digest.update(np.ascontiguousarray(array).tobytes())
            description["reference_sha256"] = digest.hexdigest()
        return description

    @classmethod
    def from_dict(cls, description: Mapping,
                  reference_data: Optional[Tuple[np.ndarray, np.ndarray]] = None, *,
                  jit_compile: bool = False) -> "Recipe":
        """Rebuilds a recipe from `to_dict()`; D' must be the same reference set.

        Args:
          description: `to_dict()` of the recipe.
          reference_data: the same D' (min-max methods).
          jit_compile: see the constructor.

        Raises:
          ValueError: if `reference_data` differs from the one the description
            was written with.
        """
        recipe = cls(RecipeConfig.from_dict(description["recipe"]), description["input_shape"],
                     description["num_classes"], reference_data=reference_data,
                     jit_compile=jit_compile)
        expected = description.get("reference_sha256")
        if expected is not None and recipe.to_dict().get("reference_sha256") != expected:
            raise ValueError("Invalid value for argument `reference_data`. It is not the "
                             "reference set D' this recipe was written with; pass "
                             "`split.take('reference', x_train, y_train)` of the same split.")
        return recipe

    # ------------------------------------------------------------------ internals
    def _classifier(self, seed: int, **overrides) -> keras.Model:
        from mcmia_tf.models import build_model  # pylint: disable=g-import-not-at-top
        training = self.config.training
        return build_model(training.model, self.input_shape, self.num_classes,
                           width=training.width, seed=seed,
                           **{**dict(training.model_kwargs), **overrides})

    def _compile_kwargs(self) -> dict:
        # Only when asked, so the default compile call stays exactly what it was.
        xla_ready = not self.config.uses("minmax") and self.config.method != "dp"
        return {"jit_compile": True} if self.jit_compile and xla_ready else {}

    def _trainable(self, classifier: keras.Model, seed: int, num_examples: int) -> keras.Model:
        """The compiled model that `fit` runs: the classifier or its min-max game."""
        add_weight_decay(classifier, self.config.training.weight_decay)
        if not self.config.uses("minmax"):
            classifier.compile(make_optimizer(self.config.training, num_examples), _LOSS,
                               metrics=["accuracy"],
                               **self._compile_kwargs())
            return classifier
        settings = self.config.minmax
        head = build_attack_head(self.num_classes,
                                 prediction_transform=settings.prediction_transform,
                                 seed=seed + 1)
        model = MinMaxModel(
            classifier, head, privacy_weight=settings.privacy_weight,
            attack_steps=settings.attack_steps, privacy_gain=settings.privacy_gain,
            reference_data=self.reference_data,
            reference_batch_size=(settings.reference_batch_size
                                  or self.config.training.batch_size), seed=seed)
        model.compile(optimizer=make_optimizer(self.config.training, num_examples),
                      attack_optimizer=keras.optimizers.Adam(settings.attack_learning_rate),
                      loss=_LOSS)
        return model

    def _pruner(self, batches_per_epoch: int):
        from mcmia_tf import pruning  # pylint: disable=g-import-not-at-top
        settings = self.config.pruning
        prune_at = self.config.pretrain_epochs + settings.regularization_epochs
        layers = dict(layer_sparsity=settings.layer_sparsity,
                      edge_layer_sparsity=settings.edge_layer_sparsity)
        if settings.solver == "reweighted" and settings.ramp_power is not None and \
                settings.regularization_epochs:
            return pruning.ReweightedPruning.ramped(
                settings.target_sparsity, settings.structure, prune_at_epoch=prune_at,
                steps_per_epoch=batches_per_epoch, updates_per_epoch=settings.updates_per_epoch,
                ramp_power=settings.ramp_power, penalty=settings.penalty, **layers)
        # The epoch clock: ADMM, and the reweighted form at a constant rate (or in stages).
        common = dict(prune_at=prune_at, unit="epoch",
                      progressive_steps=settings.progressive_steps, **layers)
        if settings.solver == "admm":
            return pruning.ADMMPruning(settings.target_sparsity, settings.structure,
                                       rho=settings.rho, **common)
        return pruning.ReweightedPruning(settings.target_sparsity, settings.structure,
                                         penalty=settings.penalty, **common)

    def _fit_dynamic(self, x, y, seed, history, fit_kwargs) -> keras.Model:
        """baseline, minmax, mcmia_pruning, mcmia_pruning_minmax."""
        training = self.config.training
        classifier = self._classifier(seed)
        if self.config.uses("pruning"):
            from mcmia_tf import pruning  # pylint: disable=g-import-not-at-top
            # Mask constraints are given when the layers are built, in the caller's
            # strategy scope, so they hold on every replica (masks.py).
            classifier = pruning.make_prunable(classifier)
        model = self._trainable(classifier, seed, len(x))
        data = shuffled_batches(x, y, training.batch_size, seed,
                                augmentation=training.augmentation)
        pretrain = self.config.pretrain_epochs
        if pretrain:
            _merge(history, model.fit(data, epochs=pretrain, **fit_kwargs).history)
        if not self.config.uses("pruning"):
            return classifier
        pruner = self._pruner(steps_per_epoch(len(x), training.batch_size))
        kwargs = dict(fit_kwargs, callbacks=list(fit_kwargs["callbacks"]) + pruner.callbacks())
        _merge(history, model.fit(data, initial_epoch=pretrain, epochs=training.epochs,
                                  **kwargs).history)
        return pruner.strip(model)

    def _fit_dp(self, x, y, seed, history, fit_kwargs):
        training, settings = self.config.training, self.config.dp
        batch_size = settings.batch_size or training.batch_size
        learning_rate = settings.learning_rate or training.learning_rate
        if len(x) < batch_size:
            raise ValueError(f"DP-SGD needs at least one full batch: {len(x)} examples < "
                             f"batch_size={batch_size}.")
        per_example = settings.num_microbatches is None
        num_microbatches = dp_lib.check_microbatches(batch_size, settings.num_microbatches)
        used_microbatching = batch_size // num_microbatches > 1
        sigma = settings.noise_multiplier
        if settings.target_epsilon is not None:
            sigma = dp_lib.find_noise_multiplier(
                settings.target_epsilon, len(x), batch_size, training.epochs,
                settings.delta, used_microbatching=used_microbatching)
        classifier = self._classifier(seed, **({"activation": settings.activation}
                                               if settings.activation else {}))
        if per_example:
            model = self._dp_sgd_model(classifier, sigma, batch_size, learning_rate)
        else:
            model = classifier
            model.compile(dp_lib.make_dp_optimizer(
                settings.optimizer, l2_norm_clip=settings.l2_norm_clip, noise_multiplier=sigma,
                num_microbatches=num_microbatches, batch_size=batch_size,
                learning_rate=learning_rate), dp_lib.per_example_loss(), metrics=["accuracy"])
        if settings.sampling == "poisson":
            # Each example joins each step with probability B / n; the step divides by B.
            data = poisson_batches(x, y, batch_size, seed, augmentation=training.augmentation)
            fit_kwargs = dict(fit_kwargs, steps_per_epoch=steps_per_epoch(len(x), batch_size))
        else:
            # Every batch holds exactly batch_size examples: microbatches reshape it into
            # [num_microbatches, -1] and the accountant assumes that size.
            data = shuffled_batches(x, y, batch_size, seed, drop_remainder=True,
                                    augmentation=training.augmentation)
        _merge(history, model.fit(data, epochs=training.epochs, **fit_kwargs).history)
        privacy = dp_lib.privacy_guarantee(
            num_examples=len(x), batch_size=batch_size, epochs=training.epochs,
            noise_multiplier=sigma, l2_norm_clip=settings.l2_norm_clip, delta=settings.delta,
            num_microbatches=settings.num_microbatches, trained_with=settings.sampling)
        return classifier, privacy

    def _dp_sgd_model(self, classifier, sigma: float, batch_size: int,
                      learning_rate: float) -> DPSGDModel:
        """Per-example clipping with fast gradient norms (`DPSGDModel`), compiled."""
        settings = self.config.dp
        model = DPSGDModel(classifier, l2_norm_clip=settings.l2_norm_clip,
                           noise_multiplier=sigma,
                           expected_batch_size=(batch_size if settings.sampling == "poisson"
                                                else None))
        model.compile(named_optimizer(settings.optimizer, learning_rate, settings.momentum))
        return model

    def _tfmot_schedule(self, rate: float, steps_per_epoch: int):
        """tfmot's schedule to `rate`: a ramp over R epochs (or constant), one update per epoch."""
        sparsity, settings = tfmot.sparsity.keras, self.config.pruning
        if settings.regularization_epochs:
            # The ramp ends on an update step, so the masks reach exactly the target.
            return sparsity.PolynomialDecay(
                initial_sparsity=0.0, final_sparsity=rate, begin_step=0,
                end_step=settings.regularization_epochs * steps_per_epoch,
                frequency=steps_per_epoch)
        return sparsity.ConstantSparsity(rate, begin_step=0, frequency=steps_per_epoch)

    def _fit_tfmot(self, x, y, seed, history, fit_kwargs) -> keras.Model:
        from mcmia_tf import pruning  # pylint: disable=g-import-not-at-top
        training, settings = self.config.training, self.config.pruning
        classifier = self._classifier(seed)
        add_weight_decay(classifier, training.weight_decay)
        classifier.compile(make_optimizer(training, len(x)), _LOSS, metrics=["accuracy"],
                           **self._compile_kwargs())
        data = shuffled_batches(x, y, training.batch_size, seed,
                                augmentation=training.augmentation)
        pretrain = self.config.pretrain_epochs
        if pretrain:
            _merge(history, classifier.fit(data, epochs=pretrain, **fit_kwargs).history)
        steps_per_epoch = int(np.ceil(len(x) / training.batch_size))
        pruned = pruning.prune_low_magnitude_planned(
            classifier, settings.target_sparsity,
            lambda rate: self._tfmot_schedule(rate, steps_per_epoch),
            layer_sparsity=settings.layer_sparsity,
            edge_layer_sparsity=settings.edge_layer_sparsity)
        # A new optimizer for the wrapped model; its schedule resumes where pretraining ended.
        add_weight_decay(pruned, training.weight_decay)
        pruned.compile(make_optimizer(training, len(x), initial_step=pretrain * steps_per_epoch),
                       _LOSS, metrics=["accuracy"], **self._compile_kwargs())
        sparsity = tfmot.sparsity.keras
        kwargs = dict(fit_kwargs, callbacks=list(fit_kwargs["callbacks"])
                      + [sparsity.UpdatePruningStep()])
        _merge(history, pruned.fit(data, initial_epoch=pretrain, epochs=training.epochs,
                                   **kwargs).history)
        return sparsity.strip_pruning(pruned)
