r"""Denoising diffusion probabilistic models: Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models",
NeurIPS 2020.

Forward process: a fixed Markov chain that adds Gaussian noise with variances β_0..β_{T-1},

    q(x_t | x_{t-1}) = N(√α_t x_{t-1}, β_t I),          α_t = 1 - β_t,
    q(x_t | x_0)     = N(√ᾱ_t x_0, (1 - ᾱ_t) I),        ᾱ_t = Π_{s≤t} α_s,       (Ho et al. eq. 4)

so x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε with ε ~ N(0, I) ("q_sample").

Its posterior given x_0 is Gaussian too (eq. 6-7), with ᾱ_{-1} = 1:

    q(x_{t-1} | x_t, x_0) = N(μ̃_t, β̃_t I),
    μ̃_t = β_t √ᾱ_{t-1} / (1 - ᾱ_t) · x_0 + (1 - ᾱ_{t-1}) √α_t / (1 - ᾱ_t) · x_t,
    β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t)                (0 at t = 0).

A network ε_θ(x_t, t) learns to predict the noise by minimising (eq. 14, "L_simple")

    E_{t, x_0, ε} ‖ε - ε_θ(√ᾱ_t x_0 + √(1 - ᾱ_t) ε, t)‖²,

and sampling (Algorithm 2) runs the reverse chain from x_{T-1}... with σ_t² = β̃_t:

    x_{t-1} = 1/√α_t · (x_t - β_t / √(1 - ᾱ_t) · ε_θ(x_t, t)) + σ_t z,   z ~ N(0, I), no z at t = 0.

Schedules: linear (Ho et al. §4) and cosine (Nichol & Dhariwal, "Improved Denoising
Diffusion Probabilistic Models", ICML 2021, eq. 17), with
ᾱ(t) = f(t)/f(0), f(u) = cos²((u/T + s)/(1 + s) · π/2) and β_t = min(1 - ᾱ_{t+1}/ᾱ_t, max_beta).
The time embedding is the sinusoidal one of Vaswani et al. (2017) as used by Ho et al.

Conventions (the assignment contract): timesteps are 0-indexed, t ∈ [0, T); ``t`` is an
integer tensor of shape (B,), one timestep per sample; schedules are float64 tensors of
length T; every quantity derived from them (α, ᾱ, ᾱ_{t-1}, the posterior coefficients)
is computed in float64 by ``Schedule.from_betas`` and only the gathered per-sample
coefficients are cast to x's dtype and device. Coefficients broadcast as (B, 1, ..., 1)
over x's trailing dimensions, so 2-D vectors and 4-D images work alike.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from reference._validation import require_same_shape, require_tensor

__all__ = [
    "Denoiser",
    "Schedule",
    "cosine_beta_schedule",
    "ddpm_loss",
    "ddpm_train_step",
    "linear_beta_schedule",
    "p_sample_loop",
    "p_sample_step",
    "predict_x0_from_eps",
    "q_posterior_mean_variance",
    "q_sample",
    "timestep_embedding",
]

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# schedules


def _require_steps(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T, the number of diffusion steps, must be an int >= 1, got {T!r}")
    return T


def linear_beta_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """β_t = linspace(beta_start, beta_end, T), float64 (Ho et al. 2020, §4: 1e-4 to 0.02 over T = 1000)."""
    _require_steps(T)
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(f"need 0 < beta_start <= beta_end < 1, got beta_start={beta_start}, beta_end={beta_end}")
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)


def cosine_beta_schedule(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """β_t = min(1 - f(t+1)/f(t), max_beta), f(u) = cos²(((u/T) + s)/(1 + s) · π/2), float64.

    Nichol & Dhariwal (2021), eq. 17; the clip at max_beta (0.999) avoids the
    singularity at t = T - 1 where f(T) is nearly 0.
    """
    _require_steps(T)
    if s < 0:
        raise ValueError(f"the offset s must be >= 0, got {s}")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta must lie in (0, 1), got {max_beta}")
    u = torch.arange(T + 1, dtype=torch.float64)  # (T+1,)
    f = torch.cos((u / T + s) / (1 + s) * (math.pi / 2)) ** 2
    return (1 - f[1:] / f[:-1]).clamp(max=max_beta)


@dataclass(frozen=True)
class Schedule:
    """Every quantity of the forward process derived from β, float64, each of shape (T,).

    ``Schedule.from_betas`` derives them once per schedule tensor and caches the result
    (keyed on the tensor's identity and its version counter, so an in-place change of
    β is noticed); ``on(device, dtype)`` keeps one copy per device and dtype, so a
    training step neither moves a schedule to the GPU nor casts it.
    """

    betas: torch.Tensor  # β_t
    alphas: torch.Tensor  # α_t = 1 - β_t
    alpha_bars: torch.Tensor  # ᾱ_t = Π_{s≤t} α_s
    alpha_bars_prev: torch.Tensor  # ᾱ_{t-1}, with ᾱ_{-1} = 1
    sqrt_alpha_bars: torch.Tensor  # √ᾱ_t
    sqrt_one_minus_alpha_bars: torch.Tensor  # √(1 - ᾱ_t)
    sqrt_recip_alpha_bars: torch.Tensor  # 1/√ᾱ_t
    sqrt_recip_alpha_bars_minus_one: torch.Tensor  # √(1/ᾱ_t - 1)
    sqrt_recip_alphas: torch.Tensor  # 1/√α_t
    eps_coef: torch.Tensor  # β_t / √(1 - ᾱ_t), the weight of ε_θ in the reverse mean
    posterior_variance: torch.Tensor  # β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t)
    posterior_std: torch.Tensor  # √β̃_t
    posterior_mean_coef_x0: torch.Tensor  # β_t √ᾱ_{t-1} / (1 - ᾱ_t)
    posterior_mean_coef_xt: torch.Tensor  # (1 - ᾱ_{t-1}) √α_t / (1 - ᾱ_t)
    _copies: dict[tuple[torch.device, torch.dtype], Schedule] = field(default_factory=dict, compare=False, repr=False)

    @property
    def T(self) -> int:
        return self.betas.shape[0]

    @classmethod
    def from_betas(cls, betas: torch.Tensor) -> Schedule:
        require_tensor("betas", betas)
        key = id(betas)
        cached = _SCHEDULES.get(key)
        if cached is not None and cached[0]() is betas and cached[1] == betas._version:
            return cached[2]
        schedule = cls._derive(betas)
        if len(_SCHEDULES) >= _SCHEDULE_CACHE_SIZE:
            _SCHEDULES.pop(next(iter(_SCHEDULES)))
        _SCHEDULES[key] = (weakref.ref(betas), betas._version, schedule)
        return schedule

    @classmethod
    def _derive(cls, betas: torch.Tensor) -> Schedule:
        if betas.ndim != 1 or betas.numel() == 0:
            raise ValueError(f"betas must be a non-empty 1-D schedule of length T, got shape {tuple(betas.shape)}")
        betas = betas.detach().to(device="cpu", dtype=torch.float64)
        if bool(((betas <= 0) | (betas >= 1) | torch.isnan(betas)).any()):
            raise ValueError("every beta_t must lie in (0, 1)")
        alphas = 1.0 - betas
        alpha_bars = torch.cumprod(alphas, dim=0)
        alpha_bars_prev = F.pad(alpha_bars[:-1], (1, 0), value=1.0)
        one_minus_alpha_bars = 1.0 - alpha_bars
        posterior_variance = betas * (1.0 - alpha_bars_prev) / one_minus_alpha_bars
        return cls(
            betas=betas,
            alphas=alphas,
            alpha_bars=alpha_bars,
            alpha_bars_prev=alpha_bars_prev,
            sqrt_alpha_bars=alpha_bars.sqrt(),
            sqrt_one_minus_alpha_bars=one_minus_alpha_bars.sqrt(),
            sqrt_recip_alpha_bars=alpha_bars.rsqrt(),
            sqrt_recip_alpha_bars_minus_one=(1.0 / alpha_bars - 1.0).sqrt(),
            sqrt_recip_alphas=alphas.rsqrt(),
            eps_coef=betas / one_minus_alpha_bars.sqrt(),
            posterior_variance=posterior_variance,
            posterior_std=posterior_variance.sqrt(),
            posterior_mean_coef_x0=betas * alpha_bars_prev.sqrt() / one_minus_alpha_bars,
            posterior_mean_coef_xt=(1.0 - alpha_bars_prev) * alphas.sqrt() / one_minus_alpha_bars,
        )

    def on(self, device: torch.device, dtype: torch.dtype = torch.float64) -> Schedule:
        """This schedule on ``device`` in ``dtype``, made once per (device, dtype).

        Every quantity is derived in float64 first; a float32 copy holds exactly the
        values that casting each gathered float64 coefficient would give.
        """
        if device.type == "cpu" and dtype == torch.float64:
            return self
        key = (device, dtype)
        if key not in self._copies:
            moved = {f.name: getattr(self, f.name).to(device, dtype) for f in fields(self) if f.name != "_copies"}
            self._copies[key] = Schedule(**moved)
        return self._copies[key]


_SCHEDULE_CACHE_SIZE = 8
_SCHEDULES: dict[int, tuple[weakref.ref[torch.Tensor], int, Schedule]] = {}


def _check_timesteps(t: torch.Tensor, x: torch.Tensor, T: int) -> None:
    require_tensor("t", t, floating=False)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"t must be an integer tensor of timesteps, got dtype {t.dtype}")
    if x.ndim == 0 or t.shape != (x.shape[0],):
        raise ValueError(
            f"t must have shape (B,) = ({x.shape[0] if x.ndim else '?'},), one per sample; got {tuple(t.shape)}"
        )
    if t.numel() == 0:
        return
    low, high = torch.aminmax(t)
    if low.item() < 0 or high.item() >= T:
        raise ValueError(f"every timestep must lie in [0, T) = [0, {T}); timesteps are 0-indexed")


def extract(coef: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """coef[t] as (B, 1, ..., 1) with x's rank; coef already in x's dtype and on its device."""
    return coef[t].reshape(t.shape[0], *((1,) * (x.ndim - 1)))


def _schedule_for(betas: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> Schedule:
    """The cached schedule in x's dtype on x's device, after checking t against it."""
    sched = Schedule.from_betas(betas)
    _check_timesteps(t, x, sched.T)
    if t.device != x.device:
        raise ValueError(f"t is on {t.device} but x is on {x.device}; put both on one device")
    return sched.on(x.device, x.dtype)


# ---------------------------------------------------------------------------------------------
# forward process and its posterior


def q_sample(x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε, a draw from q(x_t | x_0); x_0 and noise (B, ...)."""
    require_tensor("x_0", x_0)
    require_tensor("noise", noise)
    require_same_shape(x_0=x_0, noise=noise)
    sched = _schedule_for(betas, t, x_0)
    return extract(sched.sqrt_alpha_bars, t, x_0) * x_0 + extract(sched.sqrt_one_minus_alpha_bars, t, x_0) * noise


def q_posterior_mean_variance(
    x_0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, betas: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ̃_t(x_t, x_0), β̃_t) of q(x_{t-1} | x_t, x_0); the mean like x_t, the variance (B, 1, ..., 1)."""
    require_tensor("x_0", x_0)
    require_tensor("x_t", x_t)
    require_same_shape(x_0=x_0, x_t=x_t)
    sched = _schedule_for(betas, t, x_t)
    mean = extract(sched.posterior_mean_coef_x0, t, x_t) * x_0 + extract(sched.posterior_mean_coef_xt, t, x_t) * x_t
    return mean, extract(sched.posterior_variance, t, x_t)


def predict_x0_from_eps(x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t - √(1 - ᾱ_t) ε) / √ᾱ_t, q_sample solved for x_0."""
    require_tensor("x_t", x_t)
    require_tensor("eps", eps)
    require_same_shape(x_t=x_t, eps=eps)
    sched = _schedule_for(betas, t, x_t)
    return (
        extract(sched.sqrt_recip_alpha_bars, t, x_t) * x_t
        - extract(sched.sqrt_recip_alpha_bars_minus_one, t, x_t) * eps
    )


# ---------------------------------------------------------------------------------------------
# reverse process


def p_sample_step(
    model: EpsModel, x_t: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor
) -> torch.Tensor:
    """x_{t-1} = (x_t - β_t/√(1 - ᾱ_t) ε_θ(x_t, t)) / √α_t + √β̃_t z; no noise term where t = 0.

    ``noise`` (z) is given, shaped like x_t, so the step is deterministic; samples
    with t = 0 return the mean alone (Algorithm 2 of Ho et al.).
    """
    require_tensor("x_t", x_t)
    require_tensor("noise", noise)
    require_same_shape(x_t=x_t, noise=noise)
    sched = _schedule_for(betas, t, x_t)
    eps_hat = model(x_t, t)
    if not isinstance(eps_hat, torch.Tensor) or eps_hat.shape != x_t.shape:
        raise ValueError(f"model(x_t, t) must return a tensor shaped like x_t {tuple(x_t.shape)}")
    mean = (x_t - extract(sched.eps_coef, t, x_t) * eps_hat) * extract(sched.sqrt_recip_alphas, t, x_t)
    sigma = extract(sched.posterior_std, t, x_t)
    nonzero = (t != 0).reshape(-1, *((1,) * (x_t.ndim - 1)))  # (B, 1, ..., 1)
    return torch.where(nonzero, mean + sigma * noise, mean)


@torch.no_grad()
def p_sample_loop(
    model: EpsModel, shape: tuple[int, ...] | torch.Size, betas: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Ancestral sampling, Algorithm 2: x_{T-1}... down to x_0, float32, on the generator's device.

    Draws x = randn(shape) and then one noise tensor per step, t = T-1 down to 0
    (the one at t = 0 is drawn and unused), all from ``generator``.
    """
    shape = tuple(shape)
    if len(shape) == 0:
        raise ValueError("shape must start with the batch size B")
    device = generator.device if generator is not None else torch.device("cpu")
    sched = Schedule.from_betas(betas)
    x = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    for step in reversed(range(sched.T)):
        noise = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
        t = torch.full((shape[0],), step, dtype=torch.long, device=device)
        x = p_sample_step(model, x, t, noise, betas)
    return x


# ---------------------------------------------------------------------------------------------
# training


def ddpm_loss(
    model: EpsModel, x_0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, betas: torch.Tensor
) -> torch.Tensor:
    """L_simple = mean ‖ε - ε_θ(√ᾱ_t x_0 + √(1 - ᾱ_t) ε, t)‖², averaged over every element (a 0-d tensor)."""
    x_t = q_sample(x_0, t, noise, betas)
    return F.mse_loss(model(x_t, t), noise)


def ddpm_train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x_0: torch.Tensor,
    betas: torch.Tensor,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
) -> float:
    """One step of Algorithm 1: t ~ U{0..T-1} and ε ~ N(0, I) unless given (drawn in that order)."""
    require_tensor("x_0", x_0)
    if t is None:
        t = torch.randint(0, betas.shape[0], (x_0.shape[0],), device=x_0.device)
    if noise is None:
        noise = torch.randn_like(x_0)
    model.train()
    optimizer.zero_grad()
    loss = ddpm_loss(model, x_0, t, noise, betas)
    loss.backward()
    optimizer.step()
    return loss.item()


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (B, dim), float32, on t's device: cat(sin(t ω), cos(t ω)).

    ω_i = exp(-log(10000) · i / (half - 1)) for i = 0..half-1, half = dim // 2, so the
    frequencies run from 1 down to exactly 1/10000. Computed in float64: with t up
    to 1000 a float32 argument would lose ~1e-4 before the sine is taken.
    """
    require_tensor("t", t, floating=False)
    if t.ndim != 1:
        raise ValueError(f"t must be a 1-D tensor of timesteps (B,), got shape {tuple(t.shape)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 4 or dim % 2:
        raise ValueError(f"dim must be an even int >= 4 (half - 1 divides the exponent), got {dim!r}")
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64, device=t.device) / (half - 1))
    args = t.to(torch.float64)[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1).to(torch.float32)


class Denoiser(nn.Module):
    """ε_θ(x_t, t): an MLP on cat(x_t, MLP(timestep_embedding(t, time_dim))) that predicts the noise.

    x_t may be (B, input_dim) or any (B, ...) with input_dim elements per sample
    (an image (B, 1, 28, 28) say); the prediction has x_t's shape.
    """

    def __init__(self, input_dim: int = 784, hidden_dim: int = 512, time_dim: int = 128) -> None:
        super().__init__()
        self.input_dim, self.hidden_dim, self.time_dim = input_dim, hidden_dim, time_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.net = nn.Sequential(
            nn.Linear(input_dim + time_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.SiLU(),
            nn.Linear(hidden_dim, input_dim),
        )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h_x = x_t.reshape(x_t.shape[0], -1)  # (B, D)
        h_t = self.time_mlp(timestep_embedding(t, self.time_dim).to(x_t.dtype))  # (B, time_dim)
        return self.net(torch.cat([h_x, h_t], dim=-1)).reshape(x_t.shape)
