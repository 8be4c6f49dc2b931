"""LiRA: the likelihood-ratio attack of Carlini et al. (S&P 2022).

For each candidate example `(x, y)` and each model `f`, the statistic is the
logit-scaled confidence `phi = log(p_y / (1 - p_y))` (`predictors.logit_scaled_confidence`),
approximately Gaussian across models trained with and without the example.
From K reference models trained on random halves of the candidates:

* online:  score = log N(phi_t; mu_in, s_in^2) - log N(phi_t; mu_out, s_out^2)
  (paper, Algorithm 1), with `mu_in` / `mu_out` the median of phi over the models
  that did / did not train on the example;
* offline: score = log Phi((phi_t - mu_out) / s_out), the one-sided test of
  Section IV-C using OUT models only (the target's candidates need not be trained on).

Variance: per example (std over that example's IN or OUT models), or fixed (one
pooled within-example standard deviation for all examples, separately for IN and
OUT), which the paper recommends below ~64 reference models. Carlini et al.'s code
pools the raw values; we pool the residuals `phi - mu_example`, the within-example
spread the Gaussian model describes.

With augmented queries (horizontal flip, small shifts), every view gives its own
Gaussian test and the per-view scores are averaged (the paper's Section V-B).
"""

from typing import List

import numpy as np
from scipy import special

__all__ = ["augmented_views", "lira_scores"]

_MIN_STD = 1e-30  # as in the reference code: avoids 0 / 0 for constant statistics


def augmented_views(x: np.ndarray, flip: bool = False, shift_pixels: int = 0) -> List[np.ndarray]:
    """Query views of NHWC images: the identity, a horizontal flip, 4 shifts.

    Shifts move the image by `shift_pixels` up / down / left / right with reflected
    borders, the training augmentation of Carlini et al.'s CIFAR models.

    Args:
      x: `(n, height, width, channels)` images.
      flip: add the horizontally flipped images.
      shift_pixels: if > 0, add the four shifted images.

    Returns:
      A list of arrays shaped like `x`, the identity first.
    """
    views = [x]
    if flip or shift_pixels:
        if np.ndim(x) != 4:
            raise ValueError("Invalid value for argument `x`. Augmented queries need NHWC "
                             f"images. Received: x.shape={np.shape(x)}; use flip=False, "
                             "shift_pixels=0 for other inputs.")
    if flip:
        views.append(x[:, :, ::-1, :])
    if shift_pixels:
        s = int(shift_pixels)
        padded = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), mode="reflect")
        height, width = x.shape[1:3]
        for dy, dx in ((-s, 0), (s, 0), (0, -s), (0, s)):
            views.append(padded[:, s + dy:s + dy + height, s + dx:s + dx + width, :])
    return views


def _as_views(array: np.ndarray, model_axis: bool) -> np.ndarray:
    """Adds the view axis to statistics given for a single view."""
    array = np.asarray(array, np.float64)
    expected = 3 if model_axis else 2
    if array.ndim == expected - 1:
        array = np.expand_dims(array, axis=1 if model_axis else 0)
    if array.ndim != expected:
        raise ValueError("Invalid LiRA statistics: expected shape "
                         f"{'(K, [V,] n)' if model_axis else '([V,] n)'}. Received: {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError("Invalid LiRA statistics: found NaN or inf logit-scaled confidences; "
                         "check the target and reference model outputs.")
    return array


def _gaussian_fit(phi: np.ndarray, use: np.ndarray, fixed_variance: bool):
    """Median and std of phi over the models selected by `use`, per (view, example).

    Args:
      phi: `(K, V, n)` statistics.
      use: `(K, n)` which models belong to the distribution (IN or OUT).
      fixed_variance: pool the residual variance over all examples.

    Returns:
      `(mu, std)` arrays of shape `(V, n)` (std broadcastable).
    """
    selected = np.where(use[:, None, :], phi, np.nan)
    mu = np.nanmedian(selected, axis=0)
    if fixed_variance:
        residuals = selected - mu[None]
        std = np.sqrt(np.nanmean(residuals**2))
        return mu, np.full_like(mu, max(float(std), _MIN_STD))
    std = np.nanstd(selected, axis=0, ddof=1)
    return mu, np.maximum(std, _MIN_STD)


def _log_normal_pdf(value, mu, std):
    return -0.5 * ((value - mu) / std)**2 - np.log(std) - 0.5 * np.log(2.0 * np.pi)


def lira_scores(target_phi: np.ndarray, reference_phi: np.ndarray, query_in: np.ndarray, *,
                online: bool = True, fixed_variance: bool = True) -> np.ndarray:
    """LiRA membership scores (higher = member).

    Args:
      target_phi: `(n,)` or `(V, n)` logit-scaled confidences of the target model
        on the candidates (V augmented views).
      reference_phi: `(K, n)` or `(K, V, n)` the same statistic for K reference models.
      query_in: `(K, n)` bool, True where reference model k trained on candidate i.
      online: use IN and OUT models (likelihood ratio); False uses OUT models only.
      fixed_variance: one pooled variance instead of per-example variances.

    Returns:
      `(n,)` float64 scores.

    Raises:
      ValueError: on mismatched shapes, non-finite statistics, or too few models:
        offline needs at least 2 OUT models per candidate; online needs at least one
        IN and one OUT model per candidate (2 each with per-example variance).
    """
    target = _as_views(target_phi, model_axis=False)
    reference = _as_views(reference_phi, model_axis=True)
    query_in = np.asarray(query_in, bool)
    num_models, num_views, num_candidates = reference.shape
    if target.shape != (num_views, num_candidates) or query_in.shape != (num_models,
                                                                         num_candidates):
        raise ValueError(
            "Invalid value for arguments `target_phi`, `reference_phi`, `query_in`. Expected "
            "shapes ([V,] n), (K, [V,] n) and (K, n). Received: "
            f"{np.shape(target_phi)}, {np.shape(reference_phi)}, {query_in.shape}")
    num_in = query_in.sum(axis=0)
    num_out = num_models - num_in
    min_per_side = 1 if fixed_variance else 2
    if not online:
        if num_models < 2 or num_out.min() < 2:
            raise ValueError(
                "Offline LiRA needs at least 2 reference models that did not train on each "
                f"candidate; received {num_models} models and a candidate with only "
                f"{int(num_out.min())} OUT models. Train more reference models.")
        mu_out, std_out = _gaussian_fit(reference, ~query_in, fixed_variance)
        return special.log_ndtr((target - mu_out) / std_out).mean(axis=0)
    if num_in.min() < min_per_side or num_out.min() < min_per_side:
        worst = int(np.argmin(np.minimum(num_in, num_out)))
        raise ValueError(
            f"Online LiRA needs at least {min_per_side} IN and {min_per_side} OUT reference "
            f"model(s) per candidate{'' if fixed_variance else ' with per-example variance'}; "
            f"candidate {worst} has {int(num_in[worst])} IN and {int(num_out[worst])} OUT. "
            "Train more reference models on random halves of the candidates, or use the "
            "offline variant.")
    mu_in, std_in = _gaussian_fit(reference, query_in, fixed_variance)
    mu_out, std_out = _gaussian_fit(reference, ~query_in, fixed_variance)
    ratio = _log_normal_pdf(target, mu_in, std_in) - _log_normal_pdf(target, mu_out, std_out)
    return ratio.mean(axis=0)

