r"""Entropy, cross-entropy and the divergences between distributions that generative models minimise.

Discrete distributions lie along the last dimension (shape (..., K)); results have
the broadcast leading shape and the inputs' dtype and device. In nats.

    H(p)        = -Σ_k p_k log p_k
    H(p, q)     = -Σ_k p_k log q_k                      = H(p) + KL(p ‖ q)
    KL(p ‖ q)   =  Σ_k p_k log(p_k / q_k)  ≥ 0,         = +inf where some q_k = 0 < p_k
    JS(p, q)    = ½ KL(p ‖ m) + ½ KL(q ‖ m),  m = ½(p + q),  0 ≤ JS ≤ log 2

A term with p_k = 0 contributes 0 (0 · log 0 = 0, the limit), computed with
``torch.xlogy`` or an explicit mask, so an infinite divergence is ``inf``, never ``nan``.

Univariate Gaussians (σ a standard deviation), Kullback & Leibler (1951):

    KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)) = log(σ₂/σ₁) + (σ₁² + (μ₁ - μ₂)²) / (2σ₂²) - ½

and the VAE's regulariser against the standard normal (Kingma & Welling 2014, App. B),
with the diagonal covariance given as a log-variance:

    KL(N(μ, diag e^{logvar}) ‖ N(0, I)) = -½ Σ_j (1 + logvar_j - μ_j² - e^{logvar_j})

The 1-D Wasserstein-1 distance between two empirical distributions with the same
number of atoms pairs the order statistics: W₁ = mean_i |x_(i) - y_(i)|.
"""

from __future__ import annotations

import math

import torch

from reference._validation import (
    broadcast_shape,
    require_distribution,
    require_positive,
    require_tensor,
)

__all__ = [
    "cross_entropy",
    "entropy",
    "gaussian_kl",
    "js_divergence",
    "kl_divergence",
    "kl_to_standard_normal",
    "wasserstein_1d",
]

LOG_2 = math.log(2.0)


def _distributions(p: torch.Tensor, q: torch.Tensor) -> None:
    require_distribution("p", p)
    require_distribution("q", q)
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"p and q must have the same number of outcomes K, got {p.shape[-1]} and {q.shape[-1]}")
    broadcast_shape(p=p, q=q)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = -Σ_k p_k log p_k over the last dimension; shape p.shape[:-1]."""
    require_distribution("p", p)
    return -torch.xlogy(p, p).sum(-1)


def cross_entropy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """H(p, q) = -Σ_k p_k log q_k; a term with p_k = 0 is 0; inf where q_k = 0 < p_k."""
    _distributions(p, q)
    return -torch.xlogy(p, q).sum(-1)


def _kl_terms(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """p_k log(p_k / q_k) elementwise, 0 where p_k = 0, +inf where q_k = 0 < p_k."""
    p, q = torch.broadcast_tensors(p, q)
    terms = p * (torch.log(p) - torch.log(q))  # nan where p = 0; masked next
    return torch.where(p > 0, terms, torch.zeros_like(terms))


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) = Σ_k p_k log(p_k / q_k) ≥ 0; exactly 0 when p == q, inf where q_k = 0 < p_k.

    Two distributions that differ in the last bit of their normalisation can give
    -2e-16; the result is clamped at 0, the bound Gibbs' inequality guarantees.
    """
    _distributions(p, q)
    return _kl_terms(p, q).sum(-1).clamp_min(0.0)


def gaussian_kl(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)) elementwise; σ are standard deviations, > 0.

    Written with r = σ₁/σ₂ as ½(r² - 1) - log r + ½((μ₁ - μ₂)/σ₂)², which never
    squares a huge or tiny σ on its own.
    """
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        require_tensor(name, value)
    broadcast_shape(mu1=mu1, sigma1=sigma1, mu2=mu2, sigma2=sigma2)
    require_positive("sigma1", sigma1)
    require_positive("sigma2", sigma2)
    ratio = sigma1 / sigma2
    return 0.5 * (ratio**2 - 1) - torch.log(ratio) + 0.5 * ((mu1 - mu2) / sigma2) ** 2


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag e^{logvar}) ‖ N(0, I)), summed over the last (latent) dimension.

    -½ Σ (1 + logvar - μ² - e^{logvar}) is computed as ½ Σ (μ² + expm1(logvar) - logvar),
    which keeps its accuracy where logvar ≈ 0 (the posterior close to the prior).
    """
    require_tensor("mu", mu)
    require_tensor("logvar", logvar)
    broadcast_shape(mu=mu, logvar=logvar)
    if mu.ndim == 0 and logvar.ndim == 0:
        raise ValueError("mu and logvar need a last (latent) dimension to sum over; got two 0-d tensors")
    return 0.5 * (mu**2 + torch.expm1(logvar) - logvar).sum(-1)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = ½(p + q); finite, symmetric, in [0, log 2].

    m_k ≥ ½ p_k, so no term is infinite. The result is clamped to [0, log 2] so that
    rounding cannot step outside the bounds the theory guarantees.
    """
    _distributions(p, q)
    m = 0.5 * (p + q)
    js = 0.5 * _kl_terms(p, m).sum(-1) + 0.5 * _kl_terms(q, m).sum(-1)
    return js.clamp(0.0, LOG_2)


def wasserstein_1d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """W₁ between the empirical distributions of two 1-D samples of equal length n: mean |x_(i) - y_(i)|."""
    require_tensor("x", x)
    require_tensor("y", y)
    if x.ndim != 1 or y.ndim != 1 or x.numel() == 0 or x.shape != y.shape:
        raise ValueError(
            f"x and y must be non-empty 1-D samples of equal length, got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    return (torch.sort(x).values - torch.sort(y).values).abs().mean()
