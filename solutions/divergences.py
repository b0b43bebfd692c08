"""Part 2: entropy and divergences (20 points).

Discrete distributions lie along the last dimension: p and q have shape (..., K),
are non-negative and sum to 1 there; results have the broadcast leading shape
(..., ) and the inputs' dtype and device. In nats. Every function takes and
returns torch.Tensors.

Conventions: a term with p_k = 0 contributes 0 (0 · log 0 = 0, ``torch.xlogy``);
a divergence that is infinite returns inf, never nan.
"""

from __future__ import annotations

import math

import torch


def entropy(p: torch.Tensor) -> torch.Tensor:
    """H(p) = -Σ_k p_k log p_k over the last dimension.  [divergences.entropy, 2 points]

    Hint: p log p at p = 0 is nan in floating point (0 · -inf); torch.xlogy(p, p) is 0 there.
    """
    ### BEGIN SOLUTION
    return -torch.xlogy(p, p).sum(dim=-1)
    ### END SOLUTION


def cross_entropy(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """H(p, q) = -Σ_k p_k log q_k; a term with p_k = 0 is 0.  [divergences.cross_entropy, 2 points]

    inf where some q_k = 0 < p_k. Hint: the order matters: p weights, q is inside the log.
    """
    ### BEGIN SOLUTION
    return -torch.xlogy(p, q).sum(dim=-1)
    ### END SOLUTION


def kl_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) = Σ_k p_k log(p_k / q_k).  [divergences.kl_divergence, 4 points]

    Non-negative; 0 when p == q; inf where some q_k = 0 < p_k (never nan).
    Hint: KL is not symmetric, KL(p ‖ q) weights by p. Terms with p_k = 0 are 0
    even where q_k = 0.
    """
    ### BEGIN SOLUTION
    p, q = torch.broadcast_tensors(p, q)
    terms = torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))
    return terms.sum(dim=-1).clamp_min(0.0)
    ### END SOLUTION


def gaussian_kl(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """KL(N(μ₁, σ₁²) ‖ N(μ₂, σ₂²)), elementwise.  [divergences.gaussian_kl, 4 points]

        log(σ₂/σ₁) + (σ₁² + (μ₁ - μ₂)²) / (2σ₂²) - ½

    sigma1 and sigma2 are standard deviations (not variances, not log-variances).
    """
    ### BEGIN SOLUTION
    return torch.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5
    ### END SOLUTION


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, diag exp(logvar)) ‖ N(0, I)) over the last dimension.  [divergences.kl_to_standard_normal, 3 points]

        -½ Σ_j (1 + logvar_j - μ_j² - exp(logvar_j))

    mu, logvar (..., L) → result (...,). logvar is the log of the variance.
    Hint: sum over the latent dimension only; do not average, and do not sum over the batch.
    """
    ### BEGIN SOLUTION
    return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=-1)
    ### END SOLUTION


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence.  [divergences.js_divergence, 3 points]

        JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m),   m = (p + q) / 2

    Always finite, symmetric, in [0, log 2] (nats: log 2 ≈ 0.693, not 1).
    Hint: compare with m, not with each other; that is what keeps it finite.
    """
    ### BEGIN SOLUTION
    m = 0.5 * (p + q)
    js = 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)
    return js.clamp(0.0, math.log(2.0))
    ### END SOLUTION


def wasserstein_1d(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Empirical Wasserstein-1 distance of two 1-D samples of equal length n.  [divergences.wasserstein_1d, 2 points]

        W₁ = mean_i |sort(x)_i - sort(y)_i|     (a 0-d tensor)

    Hint: sort both samples first; pairing x_i with y_i as given is not W₁.
    """
    ### BEGIN SOLUTION
    return (torch.sort(x).values - torch.sort(y).values).abs().mean()
    ### END SOLUTION
