"""The resumable, shardable cache of reference / shadow models.

Shadow models (Shokri et al., S&P 2017) and LiRA reference models (Carlini et al.,
S&P 2022) only mean something if they are trained exactly like the target, so the
cache trains them with the target's `mcmia_tf.recipes.TrainingRecipe`: the
target, every shadow model and every reference model come out of the same
`recipe.train(x, y, seed=...)`.

Training K models is the whole cost of a strong audit, so `ReferenceModelCache`
keeps each model and its outputs on disk:

* model `k` trains on `x_pool[inclusion_masks[k]]` with seed
  `SeedSequence([base_seed, k])`, so its result does not depend on which worker
  trains it or in which order;
* `outputs_KKKK.npz` (outputs on the query set) is written last and atomically
  (temp file + `os.replace`); it marks the model as done, so an interrupted run
  resumes with the first missing model;
* `train(shard_index=i, num_shards=n)` trains models `k` with `k % n == i`, so n
  workers can fill one shared folder; `load_outputs()` merges whatever they wrote;
* `manifest.json` records the recipe and fingerprints of the data and masks; a
  folder written for another recipe or data is refused instead of silently mixed.

Nothing is pickled: arrays are `.npz`, metadata JSON, models the Keras format.
"""

import dataclasses
import hashlib
import json
import os
from typing import List, Optional, Sequence

import numpy as np
import tensorflow as tf

from mcmia_tf.audit import predictors
from mcmia_tf.compat import keras
from mcmia_tf.recipes.protocol import TrainingRecipe

__all__ = [
    "ReferenceOutputs",
    "ReferenceModelCache",
    "model_seed",
]

_FORMAT_VERSION = 1


def model_seed(base_seed: int, model_index: int) -> int:
    """The training seed of reference model `model_index`: independent of sharding."""
    return int(np.random.SeedSequence([int(base_seed), int(model_index)]).generate_state(1)[0])


@dataclasses.dataclass(frozen=True)
class ReferenceOutputs:
    """Outputs of K reference models on a query set, with who trained on what.

    Attributes:
      outputs: `(num_models, num_queries, num_classes)` logits or probabilities.
      query_in: `(num_models, num_queries)` bool; True where model k trained on query i.
      output_type: "logits" or "probabilities".
    """

    outputs: np.ndarray
    query_in: np.ndarray
    output_type: str

    @property
    def num_models(self) -> int:
        return int(self.outputs.shape[0])


def _fingerprint(*arrays: np.ndarray) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _atomic_write_json(path: str, content: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(content, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _atomic_save_npz(path: str, **arrays) -> None:
    tmp = f"{path}.tmp-{os.getpid()}.npz"  # np.savez appends .npz to other names
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


class ReferenceModelCache:
    """K models of one recipe on random subsets of a pool, cached in a folder.

    Args:
      directory: the cache folder (created if needed; may be shared by workers).
      recipe: a `TrainingRecipe`.
      x_pool: `(pool_size, ...)` training candidates.
      y_pool: `(pool_size,)` integer labels.
      inclusion_masks: `(num_models, pool_size)` bool; model k trains on
        `x_pool[inclusion_masks[k]]` (e.g. `mcmia_tf.data.draw_inclusion_masks`).
      x_query: inputs every model is queried on; defaults to `x_pool`.
      query_pool_index: `(num_queries,)` index of each query in the pool, -1 for a
        query outside the pool (never trained on); defaults to `arange(pool_size)`
        when `x_query` is None, else all -1.
      base_seed: seed from which each model's training seed is derived.
    """

    def __init__(self, directory: str, recipe: TrainingRecipe, x_pool: np.ndarray,
                 y_pool: np.ndarray, inclusion_masks: np.ndarray,
                 x_query: Optional[np.ndarray] = None,
                 query_pool_index: Optional[np.ndarray] = None, base_seed: int = 0):
        if not callable(getattr(recipe, "train", None)):
            raise TypeError("Invalid value for argument `recipe`. Expected an object with a "
                            "`train(x, y, *, seed) -> keras.Model` method (a TrainingRecipe). "
                            f"Received: recipe={recipe!r}")
        if len(x_pool) != len(y_pool):
            raise ValueError("Invalid value for arguments `x_pool` and `y_pool`. Expected the "
                             f"same length. Received: len(x_pool)={len(x_pool)}, "
                             f"len(y_pool)={len(y_pool)}")
        masks = np.asarray(inclusion_masks)
        if masks.ndim != 2 or masks.shape[1] != len(x_pool) or masks.dtype != bool:
            raise ValueError("Invalid value for argument `inclusion_masks`. Expected a bool "
                             f"array of shape (num_models, {len(x_pool)}). Received: "
                             f"shape={masks.shape}, dtype={masks.dtype}")
        if x_query is None:
            x_query = x_pool
            default_index = np.arange(len(x_pool))
        else:
            default_index = np.full(len(x_query), -1)
        index = default_index if query_pool_index is None else np.asarray(query_pool_index)
        if index.shape != (len(x_query),) or index.min(initial=-1) < -1 or index.max(
                initial=-1) >= len(x_pool):
            raise ValueError("Invalid value for argument `query_pool_index`. Expected "
                             f"{len(x_query)} indices in [-1, {len(x_pool)}). Received: "
                             f"shape={index.shape}")
        self.directory = os.fspath(directory)
        self.recipe = recipe
        self.x_pool, self.y_pool = x_pool, np.asarray(y_pool)
        self.inclusion_masks = masks
        self.x_query = x_query
        self.query_pool_index = index.astype(np.int64)
        self.base_seed = int(base_seed)
        os.makedirs(self.directory, exist_ok=True)
        self._check_or_write_manifest()

    @property
    def num_models(self) -> int:
        return int(self.inclusion_masks.shape[0])

    def _manifest(self) -> dict:
        to_dict = getattr(self.recipe, "to_dict", None)
        return {
            "format_version": _FORMAT_VERSION,
            "recipe": to_dict() if callable(to_dict) else repr(self.recipe),
            "num_models": self.num_models,
            "base_seed": self.base_seed,
            "pool_fingerprint": _fingerprint(self.x_pool, self.y_pool, self.inclusion_masks),
            "query_fingerprint": _fingerprint(self.x_query, self.query_pool_index),
        }

    def _check_or_write_manifest(self) -> None:
        path = os.path.join(self.directory, "manifest.json")
        manifest = json.loads(json.dumps(self._manifest()))  # normalize tuples to lists
        if os.path.exists(path):
            with open(path) as f:
                existing = json.load(f)
            if existing != manifest:
                changed = sorted(k for k in manifest if existing.get(k) != manifest[k])
                raise ValueError(
                    f"The reference-model folder {self.directory!r} was written for a different "
                    f"setup (differs in: {', '.join(changed)}). Use a new folder, or delete this "
                    "one to retrain.")
            return
        _atomic_write_json(path, manifest)

    def _outputs_path(self, k: int) -> str:
        return os.path.join(self.directory, f"outputs_{k:04d}.npz")

    def model_path(self, k: int) -> str:
        return os.path.join(self.directory, f"model_{k:04d}.keras")

    def missing_models(self) -> List[int]:
        """Indices of models whose outputs are not on disk yet."""
        return [k for k in range(self.num_models) if not os.path.exists(self._outputs_path(k))]

    def train(self, shard_index: int = 0, num_shards: int = 1, save_models: bool = True,
              batch_size: int = 256, verbose: int = 1) -> List[int]:
        """Trains the missing models of one shard; returns the indices it trained.

        Args:
          shard_index: which shard this worker trains, in `[0, num_shards)`.
          num_shards: number of workers sharing the folder.
          save_models: also save each model (`model_KKKK.keras`), not only its outputs.
          batch_size: prediction batch size.
          verbose: 1 shows a progress bar over models.
        """
        if not (isinstance(num_shards, int) and num_shards >= 1 and isinstance(shard_index, int)
                and 0 <= shard_index < num_shards):
            raise ValueError("Invalid value for arguments `shard_index` and `num_shards`. "
                             "Expected 0 <= shard_index < num_shards. Received: "
                             f"shard_index={shard_index}, num_shards={num_shards}")
        todo = [k for k in self.missing_models() if k % num_shards == shard_index]
        progress = keras.utils.Progbar(len(todo), unit_name="model") if verbose and todo else None
        for step, k in enumerate(todo):
            mask = self.inclusion_masks[k]
            seed = model_seed(self.base_seed, k)
            # TensorFlow combines op seeds (data shuffling) with the global seed, and some
            # ops take no seed at all (DP noise): fixing the global seed per model makes
            # model k a function of its seed alone, whichever process or shard trains it.
            tf.random.set_seed(seed)
            model = self.recipe.train(self.x_pool[mask], self.y_pool[mask], seed=seed)
            predictor = predictors.KerasPredictor(model)
            outputs = predictor.predict(self.x_query, batch_size=batch_size)
            predictors.validate_outputs(outputs, argument_name=f"outputs of reference model {k}")
            if save_models:
                tmp = f"{self.model_path(k)[:-len('.keras')]}.tmp-{os.getpid()}.keras"
                model.save(tmp)
                os.replace(tmp, self.model_path(k))
            _atomic_save_npz(self._outputs_path(k), outputs=outputs.astype(np.float32),
                             output_type=np.array(predictor.output_type),
                             seed=np.array(model_seed(self.base_seed, k)))
            keras.backend.clear_session()  # frees the graph of each finished model
            if progress is not None:
                progress.update(step + 1)
        return todo

    def load_outputs(self, model_indices: Optional[Sequence[int]] = None) -> ReferenceOutputs:
        """Merges the outputs of all (or the given) models written by any worker.

        Raises:
          ValueError: if a requested model has not been trained yet.
        """
        indices = list(range(self.num_models)) if model_indices is None else list(model_indices)
        missing = sorted(set(indices) & set(self.missing_models()))
        if missing:
            raise ValueError(
                f"{len(missing)} of {len(indices)} reference models are not trained yet in "
                f"{self.directory!r} (first: {missing[:5]}). Run `train()` (on every shard) "
                "first.")
        outputs, output_types = [], set()
        for k in indices:
            with np.load(self._outputs_path(k)) as data:
                outputs.append(data["outputs"])
                output_types.add(str(data["output_type"]))
        if len(output_types) != 1:
            raise ValueError(f"Reference models disagree on their output type: {output_types}.")
        in_pool = self.query_pool_index >= 0
        query_in = np.zeros((len(indices), len(self.query_pool_index)), bool)
        query_in[:, in_pool] = self.inclusion_masks[indices][:, self.query_pool_index[in_pool]]
        return ReferenceOutputs(outputs=np.stack(outputs), query_in=query_in,
                                output_type=output_types.pop())

    def load_model(self, k: int) -> keras.Model:
        """Loads saved model `k` (requires `train(save_models=True)`)."""
        if not os.path.exists(self.model_path(k)):
            raise FileNotFoundError(f"No saved model {k} in {self.directory!r}; train with "
                                    "`save_models=True`.")
        return keras.models.load_model(self.model_path(k), compile=False)
