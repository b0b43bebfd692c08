"""Part 1: maximum likelihood estimation (20 points).

For i.i.d. data x_1..x_n the log-likelihood of a parameter θ is
ℓ(θ) = Σ_i log p(x_i | θ), and the maximum likelihood estimate (MLE) is the θ
that maximises it. Everything is in nats (natural logarithms). Inputs and
outputs are NumPy (Python floats or float64 arrays), except ``gaussian_nll``,
which is PyTorch so that its gradients can be taken.

Convention: 0 · log 0 = 0. ``scipy.special.xlogy(a, b)`` computes a · log b with
exactly that convention, and ``xlog1py(a, b)`` computes a · log(1 + b).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import gammaln, logsumexp, xlog1py, xlogy


def binomial_mle(successes, trials) -> float:
    """MLE of the success probability p from binomial counts.  [mle.binomial_mle, 2 points]

    successes: an int or 1-D int array of counts k_i; trials: an int n or an array
    n_i broadcastable to it, with k_i <= n_i.

        p̂ = Σ_i k_i / Σ_i n_i        (pool all trials; e.g. binomial_mle(7, 10) == 0.7)

    Hint: with a scalar ``trials`` and several counts, every count had n trials:
    broadcast before you sum (np.broadcast_arrays).
    """
    ### BEGIN SOLUTION
    k, n = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))
    return float(k.sum() / n.sum())
    ### END SOLUTION


def binomial_log_likelihood(p: float, successes, trials) -> float:
    """Binomial log-likelihood ℓ(p) in nats.  [mle.binomial_log_likelihood, 3 points]

        ℓ(p) = Σ_i log C(n_i, k_i) + k_i log p + (n_i - k_i) log(1 - p)

    log C(n, k) = log n! - log k! - log (n-k)!, and log m! = gammaln(m + 1).
    Returns -inf when p rules the data out (p = 0 with some k_i > 0).
    Hint: the binomial coefficient is part of the likelihood; and k log p with
    k = 0, p = 0 must give 0, not nan: use xlogy / xlog1py.
    """
    ### BEGIN SOLUTION
    k, n = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))
    log_choose = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
    return float(np.sum(log_choose + xlogy(k, p) + xlog1py(n - k, -p)))
    ### END SOLUTION


def bernoulli_mle(x) -> float:
    """MLE of p from a 1-D array of 0/1 outcomes: the share of ones.  [mle.bernoulli_mle, 1 point]"""
    ### BEGIN SOLUTION
    return float(np.mean(x))
    ### END SOLUTION


def bernoulli_log_likelihood(p: float, x) -> float:
    """ℓ(p) = Σ_i x_i log p + (1 - x_i) log(1 - p), in nats.  [mle.bernoulli_log_likelihood, 1 point]

    Hint: no binomial coefficient here (each x_i is a single trial); 0 · log 0 = 0.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x)
    return float(np.sum(xlogy(x, p) + xlog1py(1 - x, -p)))
    ### END SOLUTION


def gaussian_mle(x) -> tuple[float, float]:
    """(μ̂, σ̂²), the MLE of a Gaussian's mean and variance.  [mle.gaussian_mle, 3 points]

        μ̂ = (1/n) Σ x_i,    σ̂² = (1/n) Σ (x_i - μ̂)²

    Hint: the MLE divides by n, not n - 1 (np.var's default ddof=0 is the MLE;
    the unbiased estimator is not). Return the variance, not the standard deviation.
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean()
    return float(mu), float(np.mean((x - mu) ** 2))
    ### END SOLUTION


def gaussian_log_likelihood(x, mu: float, sigma2: float) -> float:
    """ℓ(μ, σ²) = Σ_i -½ log(2π σ²) - (x_i - μ)² / (2σ²).  [mle.gaussian_log_likelihood, 2 points]

    sigma2 is the variance σ² (not the standard deviation).
    """
    ### BEGIN SOLUTION
    x = np.asarray(x, dtype=np.float64)
    return float(np.sum(-0.5 * np.log(2 * np.pi * sigma2) - (x - mu) ** 2 / (2 * sigma2)))
    ### END SOLUTION


def poisson_mle(x) -> float:
    """λ̂ = mean(x) for a 1-D array of non-negative counts.  [mle.poisson_mle, 1 point]"""
    ### BEGIN SOLUTION
    return float(np.mean(x))
    ### END SOLUTION


def poisson_log_likelihood(lam: float, x) -> float:
    """ℓ(λ) = Σ_i x_i log λ - λ - log x_i!, in nats.  [mle.poisson_log_likelihood, 2 points]

    With λ = 0 it is 0 where all x_i are 0, else -inf. log x! = gammaln(x + 1).
    Hint: keep the log x_i! term; and x log λ with x = 0, λ = 0 is 0 (xlogy).
    """
    ### BEGIN SOLUTION
    x = np.asarray(x)
    return float(np.sum(xlogy(x, lam) - lam - gammaln(x + 1)))
    ### END SOLUTION


def multinomial_mle(counts) -> np.ndarray:
    """Row-wise relative frequencies of counts shaped (..., K).  [mle.multinomial_mle, 1 point]

        p̂_k = c_k / Σ_j c_j     (each row sums to 1; the result has counts' shape)

    Hint: normalise each row by its own sum (keepdims), not by the grand total.
    """
    ### BEGIN SOLUTION
    counts = np.asarray(counts, dtype=np.float64)
    return counts / counts.sum(axis=-1, keepdims=True)
    ### END SOLUTION


def categorical_nll(logits, targets) -> float:
    """Mean negative log-likelihood of a softmax classifier.  [mle.categorical_nll, 2 points]

    logits (n, K), targets (n,) ints in [0, K):

        NLL = mean_i [ -log softmax(logits_i)[targets_i] ]
            = mean_i [ logsumexp(logits_i) - logits_i[targets_i] ]

    Must stay finite and exact for |logits| up to 1e4.
    Hint: exp(1e4) overflows; log-sum-exp subtracts the row maximum first
    (scipy.special.logsumexp does it for you). Average over rows, do not sum.
    """
    ### BEGIN SOLUTION
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets)
    picked = logits[np.arange(len(targets)), targets]
    return float(np.mean(logsumexp(logits, axis=1) - picked))
    ### END SOLUTION


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """Gaussian negative log-likelihood with a learned log-variance.  [mle.gaussian_nll, 2 points]

    x a 1-D tensor; mean and log_var 0-d tensors that may require grad. Returns the 0-d

        mean_i  ½ log(2π) + ½ log_var + (x_i - mean)² / (2 exp(log_var))

    Graded on its value and on its gradients with respect to mean and log_var.
    Hint: log_var is log σ², so σ² = exp(log_var); use torch operations only
    (no .item() or NumPy), or the gradients are lost.
    """
    ### BEGIN SOLUTION
    return (0.5 * math.log(2 * math.pi) + 0.5 * log_var + (x - mean) ** 2 / (2 * torch.exp(log_var))).mean()
    ### END SOLUTION
