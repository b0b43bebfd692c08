r"""Maximum likelihood estimation for the classic families, and two negative log-likelihoods.

For i.i.d. data x_1..x_n from p(x | θ) the MLE maximises the log-likelihood

    ℓ(θ) = Σ_i log p(x_i | θ),

and for these exponential families it has a closed form: the sample mean of the
sufficient statistic. Everything is in nats (natural logarithms).

    Binomial     ℓ(p)     = Σ_i log C(n_i, k_i) + k_i log p + (n_i - k_i) log(1 - p),  p̂ = Σk / Σn
    Bernoulli    ℓ(p)     = Σ_i x_i log p + (1 - x_i) log(1 - p),                     p̂ = mean(x)
    Gaussian     ℓ(μ, σ²) = Σ_i -½ log(2π σ²) - (x_i - μ)² / (2σ²),    μ̂ = mean(x), σ̂² = mean((x - μ̂)²)
    Poisson      ℓ(λ)     = Σ_i x_i log λ - λ - log x_i!,                              λ̂ = mean(x)
    Multinomial  p̂_k = c_k / Σ_j c_j, row by row.

0 · log 0 is taken as 0 (``scipy.special.xlogy``), so a boundary estimate (p̂ = 0
or 1, λ̂ = 0) has a finite likelihood and a parameter that rules the data out has
ℓ = -inf. ``categorical_nll`` is the cross-entropy loss of a classifier, stable
for huge logits via log-sum-exp; ``gaussian_nll`` is the heteroscedastic
regression loss, in PyTorch so that its gradients can be taken.

Reference: Bishop, *Pattern Recognition and Machine Learning* (2006), §2.1-2.3;
Murphy, *Probabilistic Machine Learning: An Introduction* (2022), §4.2.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import gammaln, logsumexp, xlog1py, xlogy

from reference._validation import (
    as_float_array,
    as_int_array,
    require_1d_nonempty,
    require_probability,
    require_tensor,
)

__all__ = [
    "bernoulli_log_likelihood",
    "bernoulli_mle",
    "binomial_log_likelihood",
    "binomial_mle",
    "categorical_nll",
    "gaussian_log_likelihood",
    "gaussian_mle",
    "gaussian_nll",
    "multinomial_mle",
    "poisson_log_likelihood",
    "poisson_mle",
]

LOG_2PI = math.log(2 * math.pi)


def _binomial_counts(successes: object, trials: object) -> tuple[np.ndarray, np.ndarray]:
    k = as_int_array("successes", successes)
    n = as_int_array("trials", trials)
    if k.ndim > 1:
        raise ValueError(f"successes must be an int or a 1-D array of counts, got shape {k.shape}")
    try:
        k, n = np.broadcast_arrays(k, n)
    except ValueError as err:
        raise ValueError(f"trials of shape {n.shape} does not broadcast to successes of shape {k.shape}") from err
    if np.any(k > n):
        raise ValueError("successes must not exceed trials (k_i <= n_i)")
    return k, n


def binomial_mle(successes: object, trials: object) -> float:
    """p̂ = Σ_i k_i / Σ_i n_i over the broadcast counts; e.g. ``binomial_mle(7, 10) == 0.7``."""
    k, n = _binomial_counts(successes, trials)
    total = int(n.sum())
    if total == 0:
        raise ValueError("trials must add up to at least 1: with no trials p has no estimate")
    return int(k.sum()) / total


def binomial_log_likelihood(p: float, successes: object, trials: object) -> float:
    """ℓ(p) = Σ_i log C(n_i, k_i) + k_i log p + (n_i - k_i) log(1 - p); -inf when p rules the data out."""
    p = require_probability("p", p)
    k, n = _binomial_counts(successes, trials)
    log_binom = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return float(np.sum(log_binom + xlogy(k, p) + xlog1py(n - k, -p)))


def _binary_sample(x: object) -> np.ndarray:
    arr = as_int_array("x", x)
    require_1d_nonempty("x", arr)
    if np.any(arr > 1):
        raise ValueError("x must hold only 0s and 1s")
    return arr


def bernoulli_mle(x: object) -> float:
    """p̂ = mean(x) for a 1-D array of 0/1 outcomes."""
    return float(np.mean(_binary_sample(x)))


def bernoulli_log_likelihood(p: float, x: object) -> float:
    """ℓ(p) = Σ_i x_i log p + (1 - x_i) log(1 - p)."""
    p = require_probability("p", p)
    arr = _binary_sample(x)
    return float(np.sum(xlogy(arr, p) + xlog1py(1 - arr, -p)))


def gaussian_mle(x: object) -> tuple[float, float]:
    """(μ̂, σ̂²) with σ̂² = (1/n) Σ (x_i - μ̂)²: the MLE divides by n, not n - 1."""
    arr = as_float_array("x", x)
    require_1d_nonempty("x", arr)
    mu = float(np.mean(arr))
    return mu, float(np.mean((arr - mu) ** 2))


def gaussian_log_likelihood(x: object, mu: float, sigma2: float) -> float:
    """ℓ(μ, σ²) = Σ_i -½ log(2π σ²) - (x_i - μ)² / (2σ²); σ² is the variance."""
    arr = as_float_array("x", x)
    require_1d_nonempty("x", arr)
    mu = float(as_float_array("mu", mu))
    sigma2 = float(as_float_array("sigma2", sigma2))
    if sigma2 <= 0:
        raise ValueError(f"sigma2 is a variance and must be > 0, got {sigma2}")
    return float(np.sum(-0.5 * (LOG_2PI + math.log(sigma2)) - (arr - mu) ** 2 / (2 * sigma2)))


def _count_sample(x: object) -> np.ndarray:
    arr = as_int_array("x", x)
    require_1d_nonempty("x", arr)
    return arr


def poisson_mle(x: object) -> float:
    """λ̂ = mean(x) for a 1-D array of non-negative counts."""
    return float(np.mean(_count_sample(x)))


def poisson_log_likelihood(lam: float, x: object) -> float:
    """ℓ(λ) = Σ_i x_i log λ - λ - log x_i!; with λ = 0 it is 0 if all x_i = 0, else -inf."""
    lam = float(as_float_array("lam", lam))
    if lam < 0:
        raise ValueError(f"lam is a rate and must be >= 0, got {lam}")
    arr = _count_sample(x)
    return float(np.sum(xlogy(arr, lam) - lam - gammaln(arr + 1)))


def multinomial_mle(counts: object) -> np.ndarray:
    """Row-wise relative frequencies c_k / Σ_j c_j of counts shaped (..., K)."""
    c = as_int_array("counts", counts)
    if c.ndim == 0 or c.shape[-1] == 0:
        raise ValueError(f"counts must have shape (..., K) with K >= 1, got {c.shape}")
    totals = c.sum(axis=-1, keepdims=True)
    if np.any(totals == 0):
        raise ValueError("every row of counts must have a positive sum")
    return c / totals


def categorical_nll(logits: object, targets: object) -> float:
    """mean_i [logsumexp(logits_i) - logits_i[targets_i]] = mean of -log softmax(logits)[i, targets_i].

    Log-sum-exp subtracts the row maximum before exponentiating, so the result is
    finite and accurate for logits as large as 1e4 (where exp would overflow).
    """
    z = as_float_array("logits", logits)
    if z.ndim != 2 or z.shape[0] == 0 or z.shape[1] == 0:
        raise ValueError(f"logits must have shape (n, K) with n, K >= 1, got {z.shape}")
    y = as_int_array("targets", targets)
    if y.shape != (z.shape[0],):
        raise ValueError(f"targets must have shape ({z.shape[0]},) to match logits {z.shape}, got {y.shape}")
    if np.any(y >= z.shape[1]):
        raise ValueError(f"targets must be class indices in [0, {z.shape[1]})")
    picked = z[np.arange(z.shape[0]), y]  # (n,)
    return float(np.mean(logsumexp(z, axis=1) - picked))


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """mean_i ½ log(2π) + ½ log σ² + (x_i - μ)² / (2σ²) with σ² = exp(log_var); a 0-d tensor.

    Differentiable in ``mean`` and ``log_var``:
    ∂/∂μ = -mean_i (x_i - μ) / σ²,  ∂/∂log σ² = ½ - mean_i (x_i - μ)² / (2σ²).
    """
    require_tensor("x", x)
    require_tensor("mean", mean)
    require_tensor("log_var", log_var)
    if x.ndim != 1 or x.numel() == 0:
        raise ValueError(f"x must be a non-empty 1-D tensor, got shape {tuple(x.shape)}")
    if mean.ndim != 0 or log_var.ndim != 0:
        raise ValueError(
            f"mean and log_var must be 0-d tensors, got shapes {tuple(mean.shape)} and {tuple(log_var.shape)}"
        )
    return (0.5 * LOG_2PI + 0.5 * log_var + 0.5 * (x - mean) ** 2 * torch.exp(-log_var)).mean()
