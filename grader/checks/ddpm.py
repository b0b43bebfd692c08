"""Checks of ddpm.py: schedules, the forward process and its posterior, the reverse step and loop, the loss,
the embedding and the training step. Batches mix t = 0 with t = T - 1, x is 2-D or 4-D, float32 or float64.

Tolerances: a correct answer may keep its schedule in float32 (SCHEDULE), and x̂_0 and the reverse mean
divide by √ᾱ_t, which magnifies that error near t = T - 1 (AMPLIFIED); see grader.compare.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from grader import drivers
from grader import strategies as gs
from grader.checks import (
    Case,
    Check,
    Mistake,
    as_tensor,
    dtypes,
    fmt,
    promote,
    seeded_state,
    torch_call,
    without_zero_grad,
)
from grader.compare import AMPLIFIED, EMBEDDING, SCHEDULE
from reference import ddpm

TRAIN_LR = 0.05
SCHEDULES = {
    "linear(1000)": ddpm.linear_beta_schedule(1000),
    "cosine(1000)": ddpm.cosine_beta_schedule(1000),
    "linear(10, 1e-3, 0.2)": ddpm.linear_beta_schedule(10, 1e-3, 0.2),
}
SMALL_SCHEDULES = {
    "linear(8, 1e-3, 0.2)": ddpm.linear_beta_schedule(8, 1e-3, 0.2),
    "cosine(8)": ddpm.cosine_beta_schedule(8),
}


def args(i: dict[str, Any]) -> list[Any]:
    return i["args"]


@st.composite
def schedule_and_batch(
    draw: st.DrawFn, schedules: dict[str, torch.Tensor] = SCHEDULES
) -> tuple[str, torch.Tensor, torch.Tensor, tuple[int, ...]]:
    name = draw(st.sampled_from(sorted(schedules)))
    betas = schedules[name]
    batch = draw(st.integers(1, 5))
    t = torch.from_numpy(draw(gs.timesteps(betas.shape[0], batch)))
    shape = draw(gs.data_shapes(batch))
    return name, betas, t, shape


def unit_normal(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return gs.hnp.arrays(np.float64, shape, elements=gs.finite_floats(-3.0, 3.0))


# ------------------------------------------------------------------------------------------ schedules


@st.composite
def linear_cases(draw: st.DrawFn) -> Case:
    T = draw(st.sampled_from([1, 2, 10, 1000, 4000]))
    start = draw(st.sampled_from([1e-4, 1e-3]))
    end = draw(st.sampled_from([0.02, 0.2]))
    return Case(
        {"function": "linear_beta_schedule", "args": [T, start, end]}, f"T={T}, beta_start={start}, beta_end={end}"
    )


@st.composite
def cosine_cases(draw: st.DrawFn) -> Case:
    T = draw(st.sampled_from([1, 10, 100, 1000]))
    s = draw(st.sampled_from([0.008, 0.0, 0.1]))
    max_beta = draw(st.sampled_from([0.999, 0.5]))
    return Case({"function": "cosine_beta_schedule", "args": [T, s, max_beta]}, f"T={T}, s={s}, max_beta={max_beta}")


def _cosine_unclipped(i: dict[str, Any]) -> torch.Tensor:
    T, s, _ = args(i)
    u = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    return 1 - f[1:] / f[:-1]


def _cosine_alpha_bar(i: dict[str, Any]) -> torch.Tensor:
    T, s, max_beta = args(i)
    u = torch.arange(1, T + 1, dtype=torch.float64)
    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    f0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return (1 - f / f0).clamp(max=max_beta)


# ------------------------------------------------------------------------------------------ forward


@st.composite
def ddpm_cases(
    draw: st.DrawFn, function: str, names: tuple[str, ...], tol: tuple[float, float], model: bool = False
) -> Case:
    """A case of a DDPM function whose arguments are ``names``: "t" and "betas" from the drawn schedule and
    batch (t = 0 beside t = T - 1), every other name a unit-scale array shaped like x; ``model`` puts the
    grader's EpsNet first."""
    schedule, betas, t, shape = draw(schedule_and_batch())
    values: dict[str, Any] = {"t": t, "betas": betas}
    for name in names:
        if name not in values:
            values[name] = draw(unit_normal(shape))
    shown = ", ".join(f"betas={schedule}" if n == "betas" else f"{n}={fmt(values[n])}" for n in names)
    arrays = [values[n] for n in names]
    if model:
        return model_case(function, arrays, shape, draw(dtypes), draw(st.integers(0, 2**16)), shown, tol)
    return torch_call(function, arrays, draw(dtypes), shown, tol, tol)


def _gather(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return values[t].to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def _alpha_bars(betas: torch.Tensor) -> torch.Tensor:
    return torch.cumprod(1 - betas, 0)


def _q_sample_with(i: dict[str, Any], signal: Any, noise_scale: Any) -> torch.Tensor:
    x0, t, noise, betas = args(i)
    return _gather(signal(betas), t, x0) * x0 + _gather(noise_scale(betas), t, x0) * noise


def _posterior_wrapped(i: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """ᾱ_{t-1} taken as alpha_bars[t - 1], which at t = 0 wraps around to ᾱ_{T-1}."""
    x0, xt, t, betas = args(i)
    ab = _alpha_bars(betas)
    ab_prev = ab[(t - 1) % len(betas)]
    b, a = betas[t], 1 - betas[t]
    shape = (-1, *([1] * (xt.dim() - 1)))
    mean = (b * ab_prev.sqrt() / (1 - ab[t])).reshape(shape).to(xt.dtype) * x0 + (
        (1 - ab_prev) * a.sqrt() / (1 - ab[t])
    ).reshape(shape).to(xt.dtype) * xt
    return mean, (b * (1 - ab_prev) / (1 - ab[t])).reshape(shape).to(xt.dtype)


def _posterior_beta_variance(i: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    mean, _ = ddpm.q_posterior_mean_variance(*args(i))
    _, xt, t, betas = args(i)
    return mean, _gather(betas, t, xt)


# ------------------------------------------------------------------------------------------ reverse


def _eps_state(seed: int, dim: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return seeded_state(lambda: drivers.EpsNet(dim), seed, dtype)


def model_case(
    function: str,
    arrays: list[Any],
    shape: tuple[int, ...],
    dtype: torch.dtype,
    seed: int,
    shown: str,
    tol: tuple[float, float],
) -> Case:
    """A case for a function that takes the grader's EpsNet first, with weights from ``seed``."""
    dim = int(np.prod(shape[1:]))
    base = torch_call(function, arrays, dtype, shown, tol, tol)
    inputs = {
        **base.inputs,
        "eps_dim": dim,
        "eps_state": _eps_state(seed, dim, dtype),
        "dtype": str(dtype).split(".")[1],
    }
    reference = None
    if base.reference_inputs is not None:
        reference = {
            **base.reference_inputs,
            "eps_dim": dim,
            "eps_state": promote(inputs["eps_state"]),
            "dtype": "float64",
        }
    return Case(inputs, f"{shown}, model=EpsNet(seed {seed})", base.tol, reference)


def _eps_net_for(i: dict[str, Any]) -> drivers.EpsNet:
    net = drivers.EpsNet(i["eps_dim"]).to(getattr(torch, i["dtype"]))
    net.load_state_dict(i["eps_state"])
    return net


def _step_variant(
    i: dict[str, Any], variance: str = "posterior", mask: bool = True, alpha: str = "alpha"
) -> torch.Tensor:
    xt, t, noise, betas = args(i)
    with torch.no_grad():
        eps_hat = _eps_net_for(i)(xt, t)
    ab = _alpha_bars(betas)
    ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    alphas = 1 - betas
    scale = alphas if alpha == "alpha" else ab
    mean = (xt - _gather(betas / (1 - ab).sqrt(), t, xt) * eps_hat) / _gather(scale.sqrt(), t, xt)
    var = betas * (1 - ab_prev) / (1 - ab) if variance == "posterior" else betas
    out = mean + _gather(var.sqrt(), t, xt) * noise
    if mask:
        keep = (t != 0).reshape(-1, *([1] * (xt.dim() - 1)))
        out = torch.where(keep, out, mean)
    return out


def _loss_variant(i: dict[str, Any], target: str = "noise", reduction: str = "mean") -> torch.Tensor:
    x0, t, noise, betas = args(i)
    with torch.no_grad():
        xt = ddpm.q_sample(x0, t, noise, betas)
        pred = _eps_net_for(i)(xt, t)
    return F.mse_loss(pred, x0 if target == "x0" else noise, reduction=reduction)


@st.composite
def loop_cases(draw: st.DrawFn) -> Case:
    name = draw(st.sampled_from(sorted(SMALL_SCHEDULES)))
    batch, dim = draw(st.integers(1, 4)), draw(st.sampled_from([3, 6]))
    seed, model_seed = draw(st.integers(0, 2**16)), draw(st.integers(0, 2**16))
    inputs = {
        "eps_dim": dim,
        "eps_state": _eps_state(model_seed, dim, torch.float32),
        "dtype": "float32",
        "shape": [batch, dim],
        "betas": SMALL_SCHEDULES[name],
        "seed": seed,
    }
    return Case(
        inputs,
        f"shape=({batch}, {dim}), betas={name}, generator seed {seed}, model=EpsNet(seed {model_seed})",
        SCHEDULE,
    )


# ------------------------------------------------------------------------------------------ embedding, step


@st.composite
def embedding_cases(draw: st.DrawFn) -> Case:
    t = torch.from_numpy(draw(gs.timesteps(1000, draw(st.integers(1, 5)))))
    dim = draw(st.sampled_from([4, 6, 16, 128]))
    return Case({"function": "timestep_embedding", "args": [t, dim]}, f"t={fmt(t)}, dim={dim}", EMBEDDING)


def _embedding_variant(i: dict[str, Any], order: str = "sincos", denominator: str = "half-1") -> torch.Tensor:
    t, dim = args(i)
    half = dim // 2
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(half, dtype=torch.float64) / (half - 1 if denominator == "half-1" else half)
    )
    a = t.double()[:, None] * freqs
    parts = [torch.sin(a), torch.cos(a)] if order == "sincos" else [torch.cos(a), torch.sin(a)]
    return torch.cat(parts, -1).float()


@st.composite
def train_step_cases(draw: st.DrawFn) -> Case:
    name, betas, t, shape = draw(schedule_and_batch())
    x0, noise = draw(unit_normal(shape)), draw(unit_normal(shape))
    seed = draw(st.integers(0, 2**16))
    given = draw(st.booleans())
    dim = int(np.prod(shape[1:]))
    inputs = {
        "eps_dim": dim,
        "eps_state": _eps_state(seed, dim, torch.float64),
        "dtype": "float64",
        "lr": TRAIN_LR,
        "seed": seed,
        "x_0": as_tensor(x0, torch.float64),
        "betas": betas,
        "t": t if given else None,
        "noise": as_tensor(noise, torch.float64) if given else None,
    }
    drawn = f"t={fmt(t)}, noise={fmt(noise)}" if given else f"t and noise drawn (torch.manual_seed({seed}))"
    return Case(
        inputs,
        f"x_0={fmt(x0)}, {drawn}, betas={name}, EpsNet(seed {seed}), SGD lr={TRAIN_LR}, stale gradients",
        SCHEDULE,
    )


CHECKS = [
    Check(
        "ddpm.linear_beta_schedule",
        "call",
        linear_cases(),
        max_examples=10,
        mistakes=(
            Mistake(
                "T + 1 points",
                "making T + 1 values (or dropping one end): linspace(beta_start, beta_end, T).",
                lambda i: torch.linspace(args(i)[1], args(i)[2], args(i)[0] + 1, dtype=torch.float64)[:-1],
            ),
        ),
    ),
    Check(
        "ddpm.cosine_beta_schedule",
        "call",
        cosine_cases(),
        max_examples=12,
        mistakes=(
            Mistake("no clip", "not clipping at max_beta: β_t = min(1 - f(t+1)/f(t), max_beta).", _cosine_unclipped),
            Mistake(
                "alpha_bar",
                "computing 1 - f(t+1)/f(0), that is 1 - ᾱ_t, instead of the per-step 1 - f(t+1)/f(t).",
                _cosine_alpha_bar,
            ),
        ),
    ),
    Check(
        "ddpm.q_sample",
        "call",
        ddpm_cases("q_sample", ("x_0", "t", "noise", "betas"), SCHEDULE),
        mistakes=(
            Mistake(
                "alpha_t",
                "using α_t = 1 - β_t where the formula has ᾱ_t, the cumulative product.",
                lambda i: _q_sample_with(i, lambda b: (1 - b).sqrt(), lambda b: b.sqrt()),
            ),
            Mistake(
                "variance as scale",
                "scaling by ᾱ_t and 1 - ᾱ_t; the coefficients are their square roots.",
                lambda i: _q_sample_with(i, _alpha_bars, lambda b: 1 - _alpha_bars(b)),
            ),
            Mistake(
                "off by one",
                "using ᾱ_{t+1}: timesteps are 0-indexed, ᾱ_0 = 1 - β_0.",
                lambda i: _q_sample_with(
                    i,
                    lambda b: torch.cat([_alpha_bars(b)[1:], _alpha_bars(b)[-1:]]).sqrt(),
                    lambda b: (1 - torch.cat([_alpha_bars(b)[1:], _alpha_bars(b)[-1:]])).sqrt(),
                ),
            ),
        ),
    ),
    Check(
        "ddpm.q_posterior_mean_variance",
        "call",
        ddpm_cases("q_posterior_mean_variance", ("x_0", "x_t", "t", "betas"), SCHEDULE),
        mistakes=(
            Mistake(
                "wrap at t = 0",
                "taking ᾱ_{t-1} as alpha_bars[t - 1], which at t = 0 is ᾱ_{T-1}; ᾱ_{-1} = 1.",
                _posterior_wrapped,
            ),
            Mistake(
                "beta variance",
                "returning β_t as the variance; the posterior's is β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t).",
                _posterior_beta_variance,
            ),
        ),
    ),
    Check(
        "ddpm.predict_x0_from_eps",
        "call",
        ddpm_cases("predict_x0_from_eps", ("x_t", "t", "eps", "betas"), AMPLIFIED),
        mistakes=(
            Mistake(
                "alpha_t",
                "using α_t where the formula has ᾱ_t.",
                lambda i: (
                    (args(i)[0] - _gather((args(i)[3]).sqrt(), args(i)[1], args(i)[0]) * args(i)[2])
                    / _gather((1 - args(i)[3]).sqrt(), args(i)[1], args(i)[0])
                ),
            ),
        ),
    ),
    Check(
        "ddpm.p_sample_step",
        "with_eps_model",
        ddpm_cases("p_sample_step", ("x_t", "t", "noise", "betas"), AMPLIFIED, model=True),
        mistakes=(
            Mistake(
                "beta_t variance",
                "adding noise with variance β_t; the contract uses the posterior variance "
                "β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t).",
                lambda i: _step_variant(i, variance="beta"),
            ),
            Mistake(
                "no mask",
                "adding noise at t = 0 as well; the last step returns the mean alone.",
                lambda i: _step_variant(i, variance="beta", mask=False),
            ),
            Mistake(
                "alpha_bar in the mean",
                "dividing by √ᾱ_t; the reverse mean divides by √α_t.",
                lambda i: _step_variant(i, alpha="alpha_bar"),
            ),
        ),
    ),
    Check(
        "ddpm.p_sample_loop",
        "p_sample_loop",
        loop_cases(),
        max_examples=8,
        depends_on=("p_sample_step",),
    ),
    Check(
        "ddpm.ddpm_loss",
        "with_eps_model",
        ddpm_cases("ddpm_loss", ("x_0", "t", "noise", "betas"), SCHEDULE, model=True),
        depends_on=("q_sample",),
        mistakes=(
            Mistake(
                "x_0 target",
                "comparing the prediction with x_0; the network predicts the noise ε.",
                lambda i: _loss_variant(i, target="x0"),
            ),
            Mistake(
                "sum",
                "summing the squared errors; the loss is their mean over every element.",
                lambda i: _loss_variant(i, reduction="sum"),
            ),
        ),
    ),
    Check(
        "ddpm.timestep_embedding",
        "call",
        embedding_cases(),
        mistakes=(
            Mistake(
                "cos first",
                "putting cos before sin: the contract returns cat(sin, cos).",
                lambda i: _embedding_variant(i, order="cossin"),
            ),
            Mistake(
                "divide by half",
                "dividing the exponent by half; it is divided by half - 1.",
                lambda i: _embedding_variant(i, denominator="half"),
            ),
        ),
    ),
    Check(
        "ddpm.ddpm_train_step",
        "ddpm_train_step",
        train_step_cases(),
        max_examples=10,
        shrink=False,
        depends_on=("ddpm_loss", "q_sample"),
        mistakes=(
            Mistake(
                "no zero_grad",
                "not calling optimizer.zero_grad(): stale gradients were added to this step's.",
                lambda i: without_zero_grad(drivers.ddpm_train_step, ddpm, i),
            ),
        ),
    ),
]
