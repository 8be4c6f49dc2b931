"""DP-SGD through tensorflow-privacy, and its (epsilon, delta) accounting.

DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016):
every step clips each microbatch gradient to L2 norm C, sums, adds Gaussian
noise N(0, sigma^2 C^2) and averages:

    g = (1 / M) * ( sum_{m=1..M} clip_C(grad L_m) + N(0, sigma^2 C^2 I) )

The optimizers are tensorflow-privacy's own; this module only builds them on
tf_keras' legacy optimizers. tensorflow-privacy 0.9.0 derives its ready-made
classes from `tf.keras.optimizers.legacy.*`, which on TF >= 2.16 (Keras 3)
are placeholders that cannot train; its class factories applied to
`tf_keras.optimizers.legacy.*` give working Keras 2 DP optimizers.

Accounting follows tensorflow-privacy's `compute_dp_sgd_privacy_statement`
(add-or-remove-one adjacency, all checkpoints released) with dp_accounting:
the sampled Gaussian mechanism composed `ceil(epochs / q)` times with
q = batch_size / n ("poisson"), or the Gaussian mechanism composed
`ceil(epochs)` times with no amplification ("shuffled", each example once per
epoch in an arbitrary order). Microbatches of more than one example double the
sensitivity (Ponomareva et al., "How to DP-fy ML", 2023, Sec. 5.6), which the
accountant sees as sigma / 2.
"""

import dataclasses
import math
from typing import Optional

import dp_accounting

from mcmia_tf.compat import import_tf_privacy
from mcmia_tf.compat import keras

__all__ = [
    "ACCOUNTANTS",
    "DP_OPTIMIZERS",
    "PrivacyGuarantee",
    "SAMPLING_MODES",
    "check_microbatches",
    "compute_epsilon",
    "find_noise_multiplier",
    "make_dp_optimizer",
    "per_example_loss",
    "privacy_guarantee",
]

DP_OPTIMIZERS = ("adam", "sgd", "adagrad")
SAMPLING_MODES = ("poisson", "shuffled")
ACCOUNTANTS = ("rdp", "pld")

_LEGACY_OPTIMIZERS = {
    "adam": keras.optimizers.legacy.Adam,
    "sgd": keras.optimizers.legacy.SGD,
    "adagrad": keras.optimizers.legacy.Adagrad,
}


def check_microbatches(batch_size: int, num_microbatches: Optional[int]) -> int:
    """Validates a (batch size, microbatches) pair; returns the microbatch count.

    Args:
      batch_size: examples per step.
      num_microbatches: number of microbatches each batch is split into; None
        means one example per microbatch (true per-example clipping).

    Returns:
      The number of microbatches.

    Raises:
      ValueError: if `batch_size` is not a positive multiple of
        `num_microbatches`.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError("Invalid value for argument `batch_size`. Expected an integer >= 1. "
                         f"Received: batch_size={batch_size!r}")
    if num_microbatches is None:
        return batch_size
    if isinstance(num_microbatches, bool) or not isinstance(num_microbatches, int) \
            or num_microbatches < 1 or batch_size % num_microbatches:
        divisors = [d for d in range(1, batch_size + 1) if batch_size % d == 0]
        if isinstance(num_microbatches, int) and num_microbatches > 0:
            suggestion = max(d for d in divisors if d <= num_microbatches)
        else:
            suggestion = batch_size
        raise ValueError(
            "Invalid value for argument `num_microbatches`. Expected a positive divisor of "
            f"batch_size={batch_size} (DP-SGD reshapes every batch into [num_microbatches, -1]). "
            f"Received: num_microbatches={num_microbatches!r}. Use e.g. num_microbatches="
            f"{suggestion}, or a batch size divisible by {num_microbatches!r}.")
    return num_microbatches


def make_dp_optimizer(name: str = "adam",
                      *,
                      l2_norm_clip: float = 1.0,
                      noise_multiplier: float = 1.1,
                      num_microbatches: Optional[int] = None,
                      batch_size: Optional[int] = None,
                      learning_rate: float = 1e-3,
                      vectorized: bool = True,
                      **optimizer_kwargs) -> keras.optimizers.legacy.Optimizer:
    """Builds a tensorflow-privacy DP Keras optimizer on a tf_keras legacy optimizer.

    Train with a per-example loss (`per_example_loss()`), batches of exactly
    `batch_size` examples (`drop_remainder=True`) and no loss-scaling
    distribution strategy.

    Args:
      name: one of `DP_OPTIMIZERS`.
      l2_norm_clip: C, the clipping norm of each microbatch gradient.
      noise_multiplier: sigma, the noise standard deviation in units of C.
      num_microbatches: microbatches per batch; None = one per example.
      batch_size: if given, checked to be divisible by `num_microbatches`.
      learning_rate: the base optimizer's learning rate.
      vectorized: use `make_vectorized_keras_optimizer_class` (per-microbatch
        gradients through `tape.jacobian` + `vectorized_map`, much faster on
        CPU) instead of the canonical Gaussian-query optimizer
        (`make_gaussian_query_optimizer_class`).
      **optimizer_kwargs: further arguments of the base optimizer.

    Returns:
      A tf_keras legacy optimizer that performs DP-SGD updates.

    Raises:
      ValueError: on an unknown name, C <= 0, sigma < 0 or a batch size not
        divisible by the microbatches.
    """
    if name not in _LEGACY_OPTIMIZERS:
        raise ValueError(f"Invalid value for argument `name`. Expected one of {DP_OPTIMIZERS}. "
                         f"Received: name={name!r}")
    if not l2_norm_clip > 0:
        raise ValueError("Invalid value for argument `l2_norm_clip`. Expected a float > 0. "
                         f"Received: l2_norm_clip={l2_norm_clip!r}")
    if not noise_multiplier >= 0:
        raise ValueError("Invalid value for argument `noise_multiplier`. Expected a float >= 0. "
                         f"Received: noise_multiplier={noise_multiplier!r}")
    if batch_size is not None:
        check_microbatches(batch_size, num_microbatches)
    elif num_microbatches is not None and (not isinstance(num_microbatches, int)
                                           or num_microbatches < 1):
        raise ValueError("Invalid value for argument `num_microbatches`. Expected a positive "
                         f"integer or None. Received: num_microbatches={num_microbatches!r}")
    base = _LEGACY_OPTIMIZERS[name]
    if vectorized:
        module = import_tf_privacy("privacy.optimizers.dp_optimizer_keras_vectorized")
        optimizer_class = module.make_vectorized_keras_optimizer_class(base)
    else:
        module = import_tf_privacy("privacy.optimizers.dp_optimizer_keras")
        optimizer_class = module.make_gaussian_query_optimizer_class(
            module.make_keras_generic_optimizer_class(base))
    return optimizer_class(l2_norm_clip=float(l2_norm_clip),
                           noise_multiplier=float(noise_multiplier),
                           num_microbatches=num_microbatches,
                           learning_rate=learning_rate,
                           **optimizer_kwargs)


def per_example_loss(from_logits: bool = True) -> keras.losses.Loss:
    """Sparse categorical cross-entropy with `reduction=NONE`, as DP optimizers need.

    A mean-reduced loss would hand the optimizer one scalar and make
    per-example clipping impossible (tensorflow-privacy would then clip the
    batch gradient as a whole).
    """
    return keras.losses.SparseCategoricalCrossentropy(
        from_logits=from_logits, reduction=keras.losses.Reduction.NONE)


def _check_accounting_args(num_examples, batch_size, epochs, delta, sampling, accountant):
    if not isinstance(num_examples, int) or num_examples < 1:
        raise ValueError("Invalid value for argument `num_examples`. Expected an integer >= 1. "
                         f"Received: num_examples={num_examples!r}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= num_examples:
        raise ValueError("Invalid value for argument `batch_size`. Expected an integer in "
                         f"[1, num_examples={num_examples}]. Received: batch_size={batch_size!r}")
    if not epochs > 0:
        raise ValueError(f"Invalid value for argument `epochs`. Expected a number > 0. "
                         f"Received: epochs={epochs!r}")
    if not 0 < delta < 1:
        raise ValueError("Invalid value for argument `delta`. Expected a float in (0, 1), "
                         f"typically < 1/num_examples. Received: delta={delta!r}")
    if sampling not in SAMPLING_MODES:
        raise ValueError(f"Invalid value for argument `sampling`. Expected one of "
                         f"{SAMPLING_MODES}. Received: sampling={sampling!r}")
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"Invalid value for argument `accountant`. Expected one of "
                         f"{ACCOUNTANTS}. Received: accountant={accountant!r}")


def compute_epsilon(num_examples: int,
                    batch_size: int,
                    epochs: float,
                    noise_multiplier: float,
                    delta: float,
                    *,
                    used_microbatching: bool = True,
                    sampling: str = "poisson",
                    accountant: str = "rdp") -> float:
    """Example-level epsilon of DP-SGD, as tensorflow-privacy states it.

    Args:
      num_examples: n, the training-set size.
      batch_size: examples per step (regardless of microbatching).
      epochs: passes over the data (may be fractional).
      noise_multiplier: sigma.
      delta: the target delta (use < 1/n).
      used_microbatching: whether microbatches held more than one example
        (doubles the sensitivity).
      sampling: "poisson" (the statement's "assuming Poisson sampling" line,
        the commonly reported number) or "shuffled" (each example once per
        epoch, no amplification: the conservative line).
      accountant: "rdp" (tensorflow-privacy's default) or "pld".

    Returns:
      epsilon (float; `inf` when sigma = 0).
    """
    _check_accounting_args(num_examples, batch_size, epochs, delta, sampling, accountant)
    if not noise_multiplier >= 0:
        raise ValueError("Invalid value for argument `noise_multiplier`. Expected a float >= 0. "
                         f"Received: noise_multiplier={noise_multiplier!r}")
    if noise_multiplier == 0:
        return math.inf
    sigma = noise_multiplier / 2 if used_microbatching else noise_multiplier
    event = dp_accounting.GaussianDpEvent(sigma)
    if sampling == "poisson":
        q = batch_size / num_examples
        event = dp_accounting.PoissonSampledDpEvent(sampling_probability=q, event=event)
        count = int(math.ceil(epochs / q))
    else:
        count = int(math.ceil(epochs))
    event = dp_accounting.SelfComposedDpEvent(count=count, event=event)
    privacy_accountant = (dp_accounting.rdp.RdpAccountant() if accountant == "rdp"
                          else dp_accounting.pld.PLDAccountant())
    return float(privacy_accountant.compose(event).get_epsilon(delta))


def find_noise_multiplier(target_epsilon: float,
                          num_examples: int,
                          batch_size: int,
                          epochs: float,
                          delta: float,
                          *,
                          used_microbatching: bool = True,
                          sampling: str = "poisson",
                          accountant: str = "rdp",
                          max_noise_multiplier: float = 100.0,
                          tolerance: float = 1e-3) -> float:
    """Smallest noise multiplier whose epsilon is at most `target_epsilon` (bisection).

    epsilon(sigma) decreases monotonically in sigma, so bisection on
    [0, max_noise_multiplier] converges; the returned sigma is the upper end of
    the final bracket, so `compute_epsilon(..., sigma) <= target_epsilon`.

    Args:
      target_epsilon: the privacy budget, > 0.
      num_examples, batch_size, epochs, delta: as in `compute_epsilon`.
      used_microbatching, sampling, accountant: as in `compute_epsilon`.
      max_noise_multiplier: the largest sigma considered.
      tolerance: width of the final bracket on sigma.

    Returns:
      sigma.

    Raises:
      ValueError: if `target_epsilon <= 0`, or it is not reachable with
        sigma <= max_noise_multiplier (train fewer epochs, use a larger
        dataset or smaller batches, or raise `max_noise_multiplier`).
    """
    if not target_epsilon > 0:
        raise ValueError("Invalid value for argument `target_epsilon`. Expected a float > 0. "
                         f"Received: target_epsilon={target_epsilon!r}")

    def epsilon_at(sigma):
        return compute_epsilon(num_examples, batch_size, epochs, sigma, delta,
                               used_microbatching=used_microbatching, sampling=sampling,
                               accountant=accountant)

    best = epsilon_at(max_noise_multiplier)
    if best > target_epsilon:
        raise ValueError(
            f"Invalid value for argument `target_epsilon`. epsilon={target_epsilon} is "
            f"unreachable: even noise_multiplier={max_noise_multiplier} gives epsilon={best:.4g} "
            f"for n={num_examples}, batch_size={batch_size}, epochs={epochs}, delta={delta} "
            f"({sampling} sampling, {accountant.upper()} accounting). Train fewer epochs, use "
            "smaller batches or more data, or raise `max_noise_multiplier`.")
    low, high = 0.0, float(max_noise_multiplier)
    while high - low > tolerance:
        middle = 0.5 * (low + high)
        if epsilon_at(middle) <= target_epsilon:
            high = middle
        else:
            low = middle
    return high


@dataclasses.dataclass(frozen=True)
class PrivacyGuarantee:
    """An example-level (epsilon, delta)-DP statement for one DP-SGD run.

    Attributes:
      epsilon: the bound under `sampling` and `accountant`.
      epsilon_shuffled: the bound with each example once per epoch and no
        amplification (tensorflow-privacy's conservative line).
      delta, noise_multiplier, l2_norm_clip, num_examples, batch_size: the run's
        parameters.
      num_microbatches, epochs, sampling, accountant: the run's parameters
        (`sampling`: the accountant's assumption).
      clipping: "per-example" or "<M> microbatches".
      trained_with: how the batches were actually drawn ("poisson" or
        "shuffled"); when it differs from `sampling`, the Poisson bound is the
        usual practice, not a proof (Chua et al., ICML 2024).
    """
    epsilon: float
    epsilon_shuffled: float
    delta: float
    noise_multiplier: float
    l2_norm_clip: float
    num_examples: int
    batch_size: int
    num_microbatches: int
    epochs: float
    sampling: str
    accountant: str
    clipping: str = "per-example"
    trained_with: str = "poisson"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def privacy_guarantee(*, num_examples: int, batch_size: int, epochs: float,
                      noise_multiplier: float, l2_norm_clip: float, delta: float,
                      num_microbatches: Optional[int] = None, sampling: str = "poisson",
                      accountant: str = "rdp",
                      trained_with: str = "shuffled") -> PrivacyGuarantee:
    """The `PrivacyGuarantee` of a DP-SGD run (both sampling assumptions).

    `trained_with` is how the run drew its batches ("poisson" or "shuffled").
    """
    if trained_with not in SAMPLING_MODES:
        raise ValueError(f"Invalid value for argument `trained_with`. Expected one of "
                         f"{SAMPLING_MODES}. Received: trained_with={trained_with!r}")
    per_example = num_microbatches is None
    num_microbatches = check_microbatches(batch_size, num_microbatches)
    clipping = "per-example" if per_example else f"{num_microbatches} microbatches"
    used_microbatching = batch_size // num_microbatches > 1
    common = dict(used_microbatching=used_microbatching, accountant=accountant)
    return PrivacyGuarantee(
        epsilon=compute_epsilon(num_examples, batch_size, epochs, noise_multiplier, delta,
                                sampling=sampling, **common),
        epsilon_shuffled=compute_epsilon(num_examples, batch_size, epochs, noise_multiplier,
                                         delta, sampling="shuffled", **common),
        delta=float(delta), noise_multiplier=float(noise_multiplier),
        l2_norm_clip=float(l2_norm_clip), num_examples=int(num_examples),
        batch_size=int(batch_size), num_microbatches=int(num_microbatches),
        epochs=float(epochs), sampling=sampling, accountant=accountant, clipping=clipping,
        trained_with=trained_with)
