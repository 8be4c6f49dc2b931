"""RMIA: the relative membership-inference attack of Zarifzadeh et al. (ICML 2024).

"Low-Cost High-Power Membership Inference Attacks" (Zarifzadeh, Liu, Shokri, Ng)
compares a candidate `x` with population points `z`, known non-members that no model
(target or reference) trained on. With `p(x|theta)` the target's tempered probability
of the true label (`true_label_probability`) and `p(x)` its average over reference models:

* likelihood ratios: `r(x) = p(x|theta) / p(x)` and `r(z) = p(z|theta) / p(z)`;
* score(x) = `#{z : r(x) / r(z) > gamma} / #z` (paper, Eq. 4), in [0, 1];
* online:  `p(x)` = mean of `p(x|theta')` over ALL K reference models, trained on random
  halves of the candidates, so about half are IN for `x`;
* offline: `p(x) = ((1 + a) * mean_OUT p(x|theta') + (1 - a)) / 2`, OUT models only:
  `(p_IN + p_OUT) / 2` with the paper's linear guess `p_IN ~ a * p_OUT + (1 - a)`
  (Appendix; `a` ~ 0.3 on CIFAR-10). `a = 1` gives `p(x) = mean_OUT`; `a = 0` assumes
  IN models give `p_IN = 1`. `tune_offline_a` picks `a` on reference models.

Population points are OUT of every reference model, so `p(z)` uses the offline
correction in BOTH variants. The paper's online `p(z)` averages IN and OUT models, a
mix an all-OUT population cannot give; the linear correction approximates it, so `a`
matters (less) online too. The reference code does the same.

With augmented queries, every view gives its own score and the per-view scores are
averaged, as in `lira`; population points are queried in the identity view only.
"""

import dataclasses
from typing import Optional, Sequence, Tuple

import numpy as np
from scipy import special

from mcmia_tf.audit import metrics

__all__ = ["OfflineACalibration", "true_label_probability", "rmia_scores", "tune_offline_a"]

_OUTPUT_TYPES = ("logits", "probabilities")
_MIN_INPUT_PROBABILITY = 1e-12  # the clip of probability outputs before the log
# A probability that underflowed to 0 would make r(x) = 0 / 0 with a = 1 offline; the
# floor keeps every log-ratio finite and leaves ratios of representable values unchanged.
_MIN_PROBABILITY = np.finfo(np.float64).tiny


def _check_positive(value: float, name: str) -> float:
    if not (np.isscalar(value) and np.isfinite(value) and value > 0):
        raise ValueError(f"Invalid value for argument `{name}`. Expected a float > 0. "
                         f"Received: {name}={value}")
    return float(value)


def _check_offline_a(offline_a: float) -> float:
    if not (np.isscalar(offline_a) and 0.0 <= offline_a <= 1.0):
        raise ValueError("Invalid value for argument `offline_a`. Expected a float in [0, 1]. "
                         f"Received: offline_a={offline_a}")
    return float(offline_a)


def true_label_probability(outputs: np.ndarray, labels: np.ndarray, output_type: str,
                           temperature: float = 2.0) -> np.ndarray:
    """`p(x|theta)`: the tempered softmax probability of the true label.

    `p = softmax(z / T)_y`, computed as `exp` of a max-shifted log-softmax so that huge
    logits give no NaN. Probability outputs are turned into logits `z = log(max(p, 1e-12))`
    first, i.e. `p_y^(1/T) / sum_j p_j^(1/T)`.

    Args:
      outputs: `(..., n, C)` logits or probabilities (leading model / view axes allowed).
      labels: `(n,)` integer labels.
      output_type: "logits" or "probabilities".
      temperature: softmax temperature `T > 0` (the paper's code uses 2).

    Returns:
      `(..., n)` float64 probabilities.
    """
    if output_type not in _OUTPUT_TYPES:
        raise ValueError(f"Invalid value for argument `output_type`. Expected one of "
                         f"{_OUTPUT_TYPES}. Received: output_type={output_type!r}")
    temperature = _check_positive(temperature, "temperature")
    outputs = np.asarray(outputs, np.float64)
    labels = np.asarray(labels)
    if outputs.ndim < 2 or labels.shape != outputs.shape[-2:-1]:
        raise ValueError("Invalid value for arguments `outputs` and `labels`. Expected shapes "
                         f"(..., n, C) and (n,). Received: outputs.shape={outputs.shape}, "
                         f"labels.shape={labels.shape}")
    if not np.all(np.isfinite(outputs)):
        raise ValueError("Invalid value for argument `outputs`. Expected finite model outputs. "
                         f"Received {int(np.sum(~np.isfinite(outputs)))} NaN or inf values.")
    if labels.size and (not np.all(np.mod(labels, 1) == 0) or labels.min() < 0
                        or labels.max() >= outputs.shape[-1]):
        raise ValueError("Invalid value for argument `labels`. Expected integer labels in "
                         f"[0, {outputs.shape[-1]}). Received values {np.unique(labels)[:5]}")
    if output_type == "probabilities":
        outputs = np.log(np.maximum(outputs, _MIN_INPUT_PROBABILITY))
    scaled = outputs / temperature
    shifted = scaled - scaled.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    index = np.broadcast_to(labels.astype(np.int64)[:, None], outputs.shape[:-1] + (1,))
    return np.exp(np.take_along_axis(log_softmax, index, axis=-1)[..., 0])


def _probabilities(array: np.ndarray, name: str, ndim: Sequence[int]) -> np.ndarray:
    array = np.asarray(array, np.float64)
    if array.ndim not in ndim:
        raise ValueError(f"Invalid value for argument `{name}`. Expected "
                         f"{' or '.join(map(str, ndim))} dimensions. "
                         f"Received: {name}.shape={array.shape}")
    if not np.all(np.isfinite(array) & (array >= 0.0) & (array <= 1.0)):
        raise ValueError(f"Invalid value for argument `{name}`. Expected finite probabilities "
                         "in [0, 1] (see `true_label_probability`). Received "
                         f"{int(np.sum(~((array >= 0) & (array <= 1))))} NaN, inf or values "
                         "outside [0, 1].")
    return np.maximum(array, _MIN_PROBABILITY)


def _offline_mean(mean_out: np.ndarray, offline_a: float) -> np.ndarray:
    """`p = ((1 + a) * mean_OUT + (1 - a)) / 2`, the paper's linear IN/OUT approximation."""
    return 0.5 * ((1.0 + offline_a) * mean_out + (1.0 - offline_a))


def rmia_scores(target_p: np.ndarray, reference_p: np.ndarray, query_in: np.ndarray,
                population_target_p: np.ndarray, population_reference_p: np.ndarray, *,
                online: bool = True, offline_a: float = 0.3, gamma: float = 1.0,
                break_ties: bool = False) -> np.ndarray:
    """RMIA membership scores (higher = member), see the module docstring.

    For one view, the count `#{z : r(z) < r(x) / gamma}` is a non-decreasing step
    function of `r(x)`: RMIA ranks candidates by `r(x)`, in `m + 1` bins of the
    population. With `break_ties`, a candidate's count `c` becomes
    `(c + sigmoid(log r(x))) / (m + 1)`: candidates with different counts keep their
    order and tied ones are ordered by `r(x)`, the ranking an unbounded population
    would give. It matters at low FPR, where a few thousand population points leave
    the most confident members tied at the top bin.

    Args:
      target_p: `(n,)` or `(V, n)` target probabilities `p(x|theta)` (V query views).
      reference_p: `(K, n)` or `(K, V, n)` the same for K reference models.
      query_in: `(K, n)` bool, True where reference model k trained on candidate i.
      population_target_p: `(m,)` target probabilities of the population points.
      population_reference_p: `(K, m)` reference probabilities of the population points.
      online: average all reference models; False uses OUT models and `offline_a`.
      offline_a: `a` in [0, 1] of the offline correction (also used for `p(z)` online).
      gamma: the ratio threshold `gamma > 0` (the paper uses 1 to 2).
      break_ties: order candidates of equal count by `r(x)` (see above).

    Returns:
      `(n,)` float64 scores in [0, 1]: the fraction of population points `z` with
      `r(x) / r(z) > gamma`, averaged over views.

    Raises:
      ValueError: on invalid arguments, mismatched shapes, no reference model, an empty
        population, or (offline) a candidate that no reference model left out.
    """
    gamma = _check_positive(gamma, "gamma")
    offline_a = _check_offline_a(offline_a)
    target = _probabilities(target_p, "target_p", (1, 2))
    reference = _probabilities(reference_p, "reference_p", (2, 3))
    target = target[None] if target.ndim == 1 else target
    reference = reference[:, None] if reference.ndim == 2 else reference
    query_in = np.asarray(query_in, bool)
    population_target = _probabilities(population_target_p, "population_target_p", (1,))
    population_reference = _probabilities(population_reference_p, "population_reference_p",
                                          (2,))
    num_models, num_views, num_candidates = reference.shape
    if num_models < 1:
        raise ValueError("RMIA needs at least 1 reference model; received reference_p with "
                         f"shape {np.shape(reference_p)}. Train reference models on random "
                         "halves of the candidates (`ReferenceModelCache`) and pass their "
                         "probabilities.")
    if population_target.size == 0:
        raise ValueError("Invalid value for argument `population_target_p`. Expected at least "
                         "1 population point (a known non-member of every model). Received: "
                         f"population_target_p.shape={population_target.shape}")
    if (target.shape != (num_views, num_candidates)
            or query_in.shape != (num_models, num_candidates)
            or population_reference.shape != (num_models, len(population_target))):
        raise ValueError(
            "Invalid value for arguments `target_p`, `reference_p`, `query_in`, "
            "`population_target_p`, `population_reference_p`. Expected shapes ([V,] n), "
            "(K, [V,] n), (K, n), (m,) and (K, m). Received: "
            f"{np.shape(target_p)}, {np.shape(reference_p)}, {query_in.shape}, "
            f"{population_target.shape}, {population_reference.shape}")
    if online:
        p_x = reference.mean(axis=0)
    else:
        num_out = (~query_in).sum(axis=0)
        if num_out.min() < 1:
            raise ValueError(
                "Offline RMIA needs at least 1 reference model that did not train on each "
                f"candidate; candidate {int(np.argmin(num_out))} has none. Train more "
                "reference models or use the online variant.")
        out_sum = np.where(~query_in[:, None, :], reference, 0.0).sum(axis=0)
        p_x = _offline_mean(out_sum / num_out, offline_a)
    p_z = _offline_mean(population_reference.mean(axis=0), offline_a)
    sorted_log_ratio_z = np.sort(np.log(population_target) - np.log(p_z))
    log_ratio_x = np.log(target) - np.log(p_x)
    # r(x) / r(z) > gamma  <=>  log r(z) < log r(x) - log gamma: side="left" counts the
    # strictly smaller log r(z), so ties do not count (as `ratios > gamma` in the paper's code).
    counts = np.searchsorted(sorted_log_ratio_z, log_ratio_x - np.log(gamma), side="left")
    if not break_ties:
        return (counts / len(sorted_log_ratio_z)).mean(axis=0)
    # sigmoid in (0, 1), strictly increasing in log r(x): it orders ties, never counts.
    tie_break = special.expit(log_ratio_x)
    return ((counts + tie_break) / (len(sorted_log_ratio_z) + 1)).mean(axis=0)


@dataclasses.dataclass(frozen=True)
class OfflineACalibration:
    """The result of `tune_offline_a`.

    Attributes:
      a: the grid value with the highest mean AUC (the first one on ties).
      aucs: mean AUC over the pseudo-targets, one per grid value.
      grid: the candidate values of `a`.
      pseudo_targets: indices of the reference models used as pseudo-targets.
    """

    a: float
    aucs: Tuple[float, ...]
    grid: Tuple[float, ...]
    pseudo_targets: Tuple[int, ...] = ()


def tune_offline_a(reference_p: np.ndarray, query_in: np.ndarray,
                   population_reference_p: np.ndarray,
                   grid: Sequence[float] = tuple(np.linspace(0.0, 1.0, 11)), *,
                   gamma: float = 1.0, max_pseudo_targets: Optional[int] = 4,
                   seed: int = 0) -> OfflineACalibration:
    """Chooses the offline `a` by attacking reference models, never the target.

    Each pseudo-target `k` is attacked by offline RMIA with the OTHER reference models as
    references, for every `a` in `grid`; its membership labels are `query_in[k]`. The `a`
    with the highest mean AUC wins. Pseudo-targets: all K models if `K <=
    max_pseudo_targets` (or it is None), else `max_pseudo_targets` drawn without
    replacement by `np.random.default_rng(seed)`. Candidates that every other reference
    model trained on have no OUT model, so they are left out of that pseudo-target's AUC;
    a pseudo-target left without both members and non-members is skipped.

    Args:
      reference_p: `(K, n)` or `(K, V, n)` reference probabilities, K >= 2.
      query_in: `(K, n)` bool membership of the candidates in the reference models.
      population_reference_p: `(K, m)` reference probabilities of the population.
      grid: candidate values of `a`, each in [0, 1].
      gamma: the ratio threshold of `rmia_scores`.
      max_pseudo_targets: at most this many pseudo-targets (None = all).
      seed: seed of the pseudo-target choice.

    Returns:
      An `OfflineACalibration`.

    Raises:
      ValueError: on invalid arguments, fewer than 2 reference models, or when no
        pseudo-target has both members and non-members with an OUT model.
    """
    grid = tuple(_check_offline_a(a) for a in np.asarray(grid, np.float64).ravel())
    if not grid:
        raise ValueError("Invalid value for argument `grid`. Expected at least 1 value of `a`.")
    reference = np.asarray(reference_p, np.float64)
    query_in = np.asarray(query_in, bool)
    population_reference = np.asarray(population_reference_p, np.float64)
    num_models = len(reference)
    if num_models < 2 or query_in.ndim != 2 or len(query_in) != num_models:
        raise ValueError("Tuning `offline_a` needs at least 2 reference models (a pseudo-target "
                         f"and its references); received reference_p.shape={reference.shape}, "
                         f"query_in.shape={query_in.shape}. Train more reference models or "
                         "pass a fixed offline_a.")
    if max_pseudo_targets is not None and max_pseudo_targets < 1:
        raise ValueError("Invalid value for argument `max_pseudo_targets`. Expected an integer "
                         f">= 1 or None. Received: max_pseudo_targets={max_pseudo_targets}")
    pseudo_targets = np.arange(num_models)
    if max_pseudo_targets is not None and num_models > max_pseudo_targets:
        rng = np.random.default_rng(seed)
        pseudo_targets = np.sort(rng.choice(num_models, max_pseudo_targets, replace=False))
    aucs, used = [], []
    for k in pseudo_targets:
        others = np.arange(num_models) != k
        # A candidate's score depends only on its own column, so dropping the candidates
        # without an OUT model does not change the scores of the others.
        keep = (~query_in[others]).any(axis=0)
        labels = query_in[k, keep]
        if labels.all() or not labels.any():
            continue
        aucs.append([metrics.roc_curve(rmia_scores(
            reference[k][..., keep], reference[others][..., keep], query_in[others][:, keep],
            population_reference[k], population_reference[others], online=False,
            offline_a=a, gamma=gamma), labels).auc for a in grid])
        used.append(int(k))
    if not aucs:
        raise ValueError("Cannot tune `offline_a`: no pseudo-target has both members and "
                         "non-members with an OUT model among the other reference models. "
                         "Train more reference models or pass a fixed offline_a.")
    mean_aucs = np.mean(aucs, axis=0)
    return OfflineACalibration(a=grid[int(np.argmax(mean_aucs))],
                               aucs=tuple(float(v) for v in mean_aucs), grid=grid,
                               pseudo_targets=tuple(used))
