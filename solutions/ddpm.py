"""Part 5: denoising diffusion probabilistic models (30 points).

Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models" (2020). The forward
process adds Gaussian noise with variances β_0..β_{T-1}:

    α_t = 1 - β_t,   ᾱ_t = Π_{s≤t} α_s,   q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I).

Conventions: timesteps are 0-indexed, t ∈ [0, T); ``t`` is an int64 tensor of
shape (B,), one timestep per sample; ᾱ_{-1} = 1. Schedules are float64 tensors of
length T: derive α and ᾱ from ``betas`` in float64 and return results in x's
dtype and on x's device. A per-sample coefficient c[t] of shape (B,) must be
reshaped to (B, 1, ..., 1) to broadcast over x's other dimensions, whatever x's rank.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _gather(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """values[t] reshaped to (B, 1, ..., 1) for x, in x's dtype and on x's device."""
    return values.to(x.device)[t].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def linear_beta_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_t evenly spaced from beta_start to beta_end, float64, shape (T,).  [ddpm.linear_beta_schedule, 2 points]"""
    ### BEGIN SOLUTION
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    ### END SOLUTION


def cosine_beta_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule of Nichol & Dhariwal (2021), float64, shape (T,).  [ddpm.cosine_beta_schedule, 2 points]

    f(u) = cos²(((u / T) + s) / (1 + s) · π/2),   β_t = min(1 - f(t+1) / f(t), max_beta),  t = 0..T-1
    """
    ### BEGIN SOLUTION
    u = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos(((u / T) + s) / (1 + s) * math.pi / 2) ** 2
    return torch.clamp(1 - f[1:] / f[:-1], max=max_beta)
    ### END SOLUTION


def q_sample(x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε.  [ddpm.q_sample, 4 points]

    Hint: ᾱ_t is the cumulative product of the α's (torch.cumprod), not α_t itself.
    """
    ### BEGIN SOLUTION
    alpha_bars = torch.cumprod(1 - betas.double(), dim=0)
    return _gather(alpha_bars.sqrt(), t, x_0) * x_0 + _gather((1 - alpha_bars).sqrt(), t, x_0) * noise
    ### END SOLUTION


def q_posterior_mean_variance(x_0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, betas: torch.Tensor):
    """(mean, variance) of q(x_{t-1} | x_t, x_0).  [ddpm.q_posterior_mean_variance, 4 points]

        mean     = β_t √ᾱ_{t-1} / (1 - ᾱ_t) · x_0 + (1 - ᾱ_{t-1}) √α_t / (1 - ᾱ_t) · x_t
        variance = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t),   shaped (B, 1, ..., 1)

    Hint: ᾱ_{t-1} at t = 0 is 1 (not ᾱ_{T-1}, which is what alpha_bars[t - 1] gives).
    """
    ### BEGIN SOLUTION
    betas = betas.double()
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, dim=0)
    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
    coef_x0 = betas * alpha_bars_prev.sqrt() / (1 - alpha_bars)
    coef_xt = (1 - alpha_bars_prev) * alphas.sqrt() / (1 - alpha_bars)
    variance = betas * (1 - alpha_bars_prev) / (1 - alpha_bars)
    mean = _gather(coef_x0, t, x_t) * x_0 + _gather(coef_xt, t, x_t) * x_t
    return mean, _gather(variance, t, x_t)
    ### END SOLUTION


def predict_x0_from_eps(x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t - √(1 - ᾱ_t) ε) / √ᾱ_t.  [ddpm.predict_x0_from_eps, 1 point]"""
    ### BEGIN SOLUTION
    alpha_bars = torch.cumprod(1 - betas.double(), dim=0)
    return (x_t - _gather((1 - alpha_bars).sqrt(), t, x_t) * eps) / _gather(alpha_bars.sqrt(), t, x_t)
    ### END SOLUTION


def p_sample_step(model, x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """One reverse step x_t → x_{t-1}.  [ddpm.p_sample_step, 5 points]

        eps_hat = model(x_t, t)
        mean    = (x_t - β_t / √(1 - ᾱ_t) · eps_hat) / √α_t
        x_{t-1} = mean + √(posterior variance) · noise,  without the noise term where t = 0

    The posterior variance is β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t) (as in q_posterior_mean_variance).
    Hint: the mask is per sample: a batch can mix t = 0 with other timesteps.
    """
    ### BEGIN SOLUTION
    betas = betas.double()
    alphas = 1 - betas
    alpha_bars = torch.cumprod(alphas, dim=0)
    alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), alpha_bars[:-1]])
    variance = betas * (1 - alpha_bars_prev) / (1 - alpha_bars)
    eps_hat = model(x_t, t)
    coef = _gather(betas / (1 - alpha_bars).sqrt(), t, x_t)
    mean = (x_t - coef * eps_hat) / _gather(alphas.sqrt(), t, x_t)
    nonzero = (t != 0).to(x_t.dtype).reshape(-1, *([1] * (x_t.dim() - 1)))
    return mean + nonzero * _gather(variance.sqrt(), t, x_t) * noise
    ### END SOLUTION


@torch.no_grad()
def p_sample_loop(model, shape, betas: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Ancestral sampling from pure noise down to x_0.  [ddpm.p_sample_loop, 2 points]

    x = randn(shape, generator); for t = T-1 down to 0: noise = randn(shape, generator)
    (drawn at t = 0 too), x = p_sample_step(model, x, t as a (B,) tensor, noise, betas).
    float32, on the generator's device (the CPU when generator is None).
    Hint: draw in exactly this order, or the same generator gives different samples.
    """
    ### BEGIN SOLUTION
    device = generator.device if generator is not None else torch.device("cpu")
    x = torch.randn(shape, generator=generator, device=device)
    for step in reversed(range(len(betas))):
        noise = torch.randn(shape, generator=generator, device=device)
        t = torch.full((shape[0],), step, dtype=torch.long, device=device)
        x = p_sample_step(model, x, t, noise, betas)
    return x
    ### END SOLUTION


def ddpm_loss(model, x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """Mean squared error between model(q_sample(x_0, t, noise), t) and noise.  [ddpm.ddpm_loss, 3 points]

    Hint: the network predicts the noise ε, not x_0; the mean runs over every element.
    """
    ### BEGIN SOLUTION
    x_t = q_sample(x_0, t, noise, betas)
    return F.mse_loss(model(x_t, t), noise)
    ### END SOLUTION


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps, (B, dim), float32, on t's device.  [ddpm.timestep_embedding, 2 points]

        half = dim // 2;  freqs = exp(-log(10000) · arange(half) / (half - 1))
        args = t[:, None] · freqs;  return cat(sin(args), cos(args)) along the last dimension

    Hint: sin first, then cos; divide by half - 1, not half.
    """
    ### BEGIN SOLUTION
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64, device=t.device) / (half - 1))
    args = t.double()[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1).float()
    ### END SOLUTION


def ddpm_train_step(model, optimizer, x_0: torch.Tensor, betas: torch.Tensor, t=None, noise=None) -> float:
    """One training step of Algorithm 1; returns the loss as a float.  [ddpm.ddpm_train_step, 3 points + 2 for speed]

    t drawn uniformly from [0, T) (torch.randint) and noise as randn_like(x_0) when
    None, in that order; zero grads, ddpm_loss, backward, optimizer.step().
    Graded also on speed against the reference (within 3x): keep it vectorised.
    """
    ### BEGIN SOLUTION
    if t is None:
        t = torch.randint(0, len(betas), (x_0.shape[0],), device=x_0.device)
    if noise is None:
        noise = torch.randn_like(x_0)
    optimizer.zero_grad()
    loss = ddpm_loss(model, x_0, t, noise, betas)
    loss.backward()
    optimizer.step()
    return loss.item()
    ### END SOLUTION


class Denoiser(nn.Module):
    """ε_θ(x_t, t): an MLP on cat(x_t, MLP(timestep_embedding(t, time_dim))). Given, complete."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 512, time_dim: int = 128) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.net = nn.Sequential(
            nn.Linear(input_dim + time_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, input_dim),
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h_t = self.time_mlp(timestep_embedding(t, self.time_dim).to(x_t.dtype))
        h = torch.cat([x_t.reshape(x_t.shape[0], -1), h_t], dim=-1)
        return self.net(h).reshape(x_t.shape)
