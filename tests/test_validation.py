"""Out-of-domain input raises ValueError (TypeError for the wrong kind of object) naming the argument
and the rule; nothing is silently clipped or repaired."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from reference import ddpm, divergences, gan, mle, vae

P = torch.tensor([0.5, 0.5])
BETAS = ddpm.linear_beta_schedule(10)
X = torch.zeros(2, 3)
T_OK = torch.tensor([0, 9])


class Zero(torch.nn.Module):
    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x_t)


CASES: list[tuple[str, Callable[[], object], str]] = [
    # mle
    ("negative count", lambda: mle.binomial_mle(-1, 10), "successes must be non-negative"),
    ("k > n", lambda: mle.binomial_mle([3, 11], 10), "must not exceed trials"),
    ("no trials", lambda: mle.binomial_mle(0, 0), "at least 1"),
    ("trials shape", lambda: mle.binomial_mle([1, 2, 3], [4, 5]), "does not broadcast"),
    ("fractional count", lambda: mle.binomial_mle(2.5, 10), "whole numbers"),
    ("p above 1", lambda: mle.binomial_log_likelihood(1.5, 3, 10), r"p must lie in \[0, 1\]"),
    ("p below 0", lambda: mle.bernoulli_log_likelihood(-0.1, [0, 1]), r"p must lie in \[0, 1\]"),
    ("non-binary x", lambda: mle.bernoulli_mle([0, 2]), "only 0s and 1s"),
    ("empty sample", lambda: mle.gaussian_mle([]), "non-empty 1-D"),
    ("2-D sample", lambda: mle.poisson_mle([[1, 2]]), "non-empty 1-D"),
    ("nan sample", lambda: mle.gaussian_mle([1.0, float("nan")]), "finite"),
    ("zero variance", lambda: mle.gaussian_log_likelihood([1.0], 0.0, 0.0), "sigma2 is a variance"),
    ("negative rate", lambda: mle.poisson_log_likelihood(-1.0, [1]), "lam is a rate"),
    ("empty row", lambda: mle.multinomial_mle([[0, 0], [1, 2]]), "positive sum"),
    ("target out of range", lambda: mle.categorical_nll([[0.0, 1.0]], [2]), r"class indices in \[0, 2\)"),
    ("targets shape", lambda: mle.categorical_nll([[0.0, 1.0]], [0, 1]), "targets must have shape"),
    ("1-D logits", lambda: mle.categorical_nll([0.0, 1.0], [0]), r"logits must have shape \(n, K\)"),
    ("nll mean not 0-d", lambda: mle.gaussian_nll(torch.zeros(3), torch.zeros(1), torch.zeros(())), "0-d"),
    # divergences
    ("not summing to 1", lambda: divergences.entropy(torch.tensor([0.5, 0.6])), "p must sum to 1"),
    ("negative mass", lambda: divergences.kl_divergence(torch.tensor([1.5, -0.5]), P), "p must be non-negative"),
    ("q not summing to 1", lambda: divergences.js_divergence(P, torch.tensor([2.0, 3.0])), "q must sum to 1"),
    ("different K", lambda: divergences.kl_divergence(P, torch.tensor([0.2, 0.3, 0.5])), "same number of outcomes"),
    (
        "batch shapes",
        lambda: divergences.cross_entropy(torch.full((2, 2), 0.5), torch.full((3, 2), 0.5)),
        "do not broadcast",
    ),
    ("sigma zero", lambda: divergences.gaussian_kl(*(torch.zeros(2),) * 4), "sigma1 must be > 0"),
    ("unequal samples", lambda: divergences.wasserstein_1d(torch.zeros(3), torch.zeros(4)), "equal length"),
    ("not a tensor", lambda: divergences.entropy([0.5, 0.5]), "must be a torch.Tensor"),
    # vae, gan
    (
        "recon outside [0,1]",
        lambda: vae.elbo_loss(torch.full((1, 2), 1.5), torch.zeros(1, 2), X, X),
        r"recon_x must lie in \[0, 1\]",
    ),
    ("recon shape", lambda: vae.elbo_loss(torch.zeros(1, 2), torch.zeros(2, 2), X, X), "shapes must match"),
    ("eps shape", lambda: vae.reparameterize(X, X, torch.zeros(4, 4)), "do not broadcast"),
    (
        "D output above 1",
        lambda: gan.discriminator_loss(torch.tensor([1.2]), torch.tensor([0.1])),
        r"real_output must lie in \[0, 1\]",
    ),
    ("negative density", lambda: gan.optimal_discriminator(torch.tensor([-1.0]), torch.tensor([1.0])), ">= 0"),
    # ddpm
    ("T zero", lambda: ddpm.linear_beta_schedule(0), "T, the number of diffusion steps"),
    ("betas order", lambda: ddpm.linear_beta_schedule(10, 0.1, 0.01), "beta_start <= beta_end"),
    ("max_beta", lambda: ddpm.cosine_beta_schedule(10, max_beta=1.0), r"max_beta must lie in \(0, 1\)"),
    (
        "beta of 1",
        lambda: ddpm.q_sample(X, T_OK, X, torch.ones(10, dtype=torch.float64)),
        r"beta_t must lie in \(0, 1\)",
    ),
    ("t too large", lambda: ddpm.q_sample(X, torch.tensor([0, 10]), X, BETAS), r"\[0, T\) = \[0, 10\)"),
    ("t negative", lambda: ddpm.q_sample(X, torch.tensor([-1, 0]), X, BETAS), "0-indexed"),
    ("t float", lambda: ddpm.q_sample(X, torch.tensor([0.0, 1.0]), X, BETAS), "integer tensor"),
    ("t shape", lambda: ddpm.q_sample(X, torch.tensor([0, 1, 2]), X, BETAS), r"shape \(B,\)"),
    ("noise shape", lambda: ddpm.q_sample(X, T_OK, torch.zeros(2, 4), BETAS), "shapes must match"),
    ("x_t shape", lambda: ddpm.q_posterior_mean_variance(X, torch.zeros(3, 3), T_OK, BETAS), "shapes must match"),
    ("odd dim", lambda: ddpm.timestep_embedding(T_OK, 7), "even int >= 4"),
    ("dim 2", lambda: ddpm.timestep_embedding(T_OK, 2), "even int >= 4"),
    ("2-D t", lambda: ddpm.timestep_embedding(T_OK[None], 8), "1-D tensor"),
    ("step t shape", lambda: ddpm.p_sample_step(Zero(), X, torch.tensor([1]), X, BETAS), r"shape \(B,\)"),
    ("empty shape", lambda: ddpm.p_sample_loop(Zero(), (), BETAS), "batch size"),
]


@pytest.mark.parametrize(("case", "call", "message"), CASES, ids=[c[0] for c in CASES])
def test_out_of_domain_input_raises_a_clear_error(case: str, call: Callable[[], object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_non_numeric_input_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="must hold integers"):
        mle.binomial_mle("7", 10)
    with pytest.raises(TypeError, match="integer tensor"):
        ddpm.q_sample(X, torch.tensor([True, False]), X, BETAS)


def test_integral_floats_are_accepted_as_counts() -> None:
    assert mle.binomial_mle(np.array([3.0, 4.0]), 10.0) == 0.35
