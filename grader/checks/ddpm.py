"""Checks of ddpm.py: schedules, the forward process and its posterior, the reverse step and loop, the loss,
the embedding and the training step. Batches mix t = 0 with t = T - 1, x is 2-D or 4-D, float32 or float64.

Tolerances: a correct answer may keep its schedule in float32 (SCHEDULE), and x̂_0 and the reverse mean
divide by √ᾱ_t, which magnifies that error near t = T - 1 (AMPLIFIED); see grader.grading.compare.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from grader.checks import (
    BOTH_DTYPES,
    Case,
    Check,
    InputClass,
    Mistake,
    TimedCheck,
    as_tensor,
    call,
    dtypes,
    fmt,
    promote,
    ranked,
    seeded_state,
    torch_call,
    without_zero_grad,
)
from grader.grading import strategies as gs
from grader.grading.compare import AMPLIFIED, EMBEDDING, SCHEDULE
from grader.runtime import drivers
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
def schedule_and_batch(draw: st.DrawFn) -> tuple[str, torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """A schedule of SCHEDULES by name, a batch of timesteps and a data shape. (No argument defaults to a
    tensor here: Hypothesis labels a composite by the repr of its defaults, at every draw.)"""
    name = draw(st.sampled_from(sorted(SCHEDULES)))
    betas = SCHEDULES[name]
    batch = draw(st.integers(1, 5))
    t = torch.from_numpy(draw(gs.timesteps(betas.shape[0], batch)))
    shape = draw(gs.data_shapes(batch))
    return name, betas, t, shape


def unit_normal(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return gs.hnp.arrays(np.float64, shape, elements=gs.readable(-3.0, 3.0))


def batch_classes(x: int | str) -> tuple[InputClass, ...]:
    """What the contract allows of a DDPM function's batch: x of rank 2 to 4 (x at ``x``: an index into the
    call's args, or an input's key), t = 0 beside t = T - 1 in one batch, a batch of one, both dtypes."""

    def t_of(i: dict[str, Any]) -> torch.Tensor:
        return next(
            a for a in (i.get("args") or [i.get("t")]) if isinstance(a, torch.Tensor) and a.dtype == torch.int64
        )

    def schedule(i: dict[str, Any]) -> torch.Tensor:
        return i["args"][-1] if "args" in i else i["betas"]

    return (
        *BOTH_DTYPES,
        *ranked(x, "x", 2, 3, 4),
        InputClass("t = 0 and t = T - 1 in one batch", lambda i: bool(
            (t_of(i) == 0).any() and (t_of(i) == len(schedule(i)) - 1).any()
        )),
        InputClass("a batch of one", lambda i: t_of(i).shape[0] == 1),
        InputClass("the cosine schedule", lambda i: len(schedule(i)) == 1000 and bool(schedule(i)[-1] > 0.5)),
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ schedules


@st.composite
def linear_cases(draw: st.DrawFn) -> Case:
    T = draw(st.sampled_from([1, 2, 10, 1000, 4000]))
    start = draw(st.sampled_from([1e-4, 1e-3]))
    end = draw(st.sampled_from([0.02, 0.2]))
    return call(ddpm.linear_beta_schedule, {"T": T, "beta_start": start, "beta_end": end})


@st.composite
def cosine_cases(draw: st.DrawFn) -> Case:
    T = draw(st.sampled_from([1, 10, 100, 1000]))
    s = draw(st.sampled_from([0.008, 0.0, 0.1]))
    max_beta = draw(st.sampled_from([0.999, 0.5]))
    return call(ddpm.cosine_beta_schedule, {"T": T, "s": s, "max_beta": max_beta})


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


MODEL = ("model",)  # the parameter the "with_eps_model" driver fills with the grader's EpsNet


def tensor_names(function: Callable[..., Any]) -> list[str]:
    """The arguments of a DDPM function that a case draws as arrays shaped like x: all but t, betas, model."""
    return [n for n in inspect.signature(function).parameters if n not in ("t", "betas", *MODEL)]


def ddpm_case(
    function: Callable[..., Any],
    tol: tuple[float, float],
    schedule: str,
    t: torch.Tensor,
    arrays: dict[str, np.ndarray],
    dtype: torch.dtype,
    model_seed: int | None = None,
) -> Case:
    """A case of a DDPM function: "t" and "betas" (the named schedule) given, every other argument an array
    from ``arrays``; a ``model_seed`` puts the grader's EpsNet first."""
    values: dict[str, Any] = {"t": t, "betas": SCHEDULES[schedule], **arrays}
    named = {n: values[n] for n in inspect.signature(function).parameters if n not in MODEL}
    labels = {"betas": schedule}
    if model_seed is not None:
        shape = next(iter(arrays.values())).shape
        return model_case(function, named, shape, dtype, model_seed, labels, tol)
    return torch_call(function, named, dtype, tol, tol, labels=labels)


@st.composite
def ddpm_cases(draw: st.DrawFn, function: Callable[..., Any], tol: tuple[float, float], model: bool = False) -> Case:
    """Drawn cases of ``ddpm_case``: a schedule and a batch (t = 0 beside t = T - 1), unit-scale arrays
    shaped like x, either dtype; ``model`` puts the grader's EpsNet (with drawn weights) first."""
    schedule, _, t, shape = draw(schedule_and_batch())
    arrays = {name: draw(unit_normal(shape)) for name in tensor_names(function)}
    seed = draw(st.integers(0, 2**16)) if model else None
    return ddpm_case(function, tol, schedule, t, arrays, draw(dtypes), seed)


def pinned(function: Callable[..., Any], tol: tuple[float, float], shape: tuple[int, ...], model: bool = False) -> Case:
    """A fixed float32 case on x of ``shape`` with t = [0, T-1, 3] under the cosine schedule: the grading run
    meets float32 and t = 0 beside t = T - 1 whatever it draws."""
    t = torch.tensor([0, 999, 3][: shape[0]])
    size = int(np.prod(shape))
    arrays = {
        name: ((np.arange(size, dtype=np.float64).reshape(shape) * (k + 3) % 13) - 6) / 4
        for k, name in enumerate(tensor_names(function))
    }  # values in [-1.5, 1.5] on a 0.25 grid: exact in float32, readable
    return ddpm_case(function, tol, "cosine(1000)", t, arrays, torch.float32, 7 if model else None)


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


def _posterior_with(i: dict[str, Any], previous: Any, swap: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior with ᾱ_{t-1} taken as ``previous(alpha_bars)``; ``swap`` swaps the mean's coefficients."""
    x0, xt, t, betas = args(i)
    ab = _alpha_bars(betas)
    ab_prev = previous(ab)
    coef_x0 = betas * ab_prev.sqrt() / (1 - ab)
    coef_xt = (1 - ab_prev) * (1 - betas).sqrt() / (1 - ab)
    if swap:
        coef_x0, coef_xt = coef_xt, coef_x0
    mean = _gather(coef_x0, t, xt) * x0 + _gather(coef_xt, t, xt) * xt
    return mean, _gather(betas * (1 - ab_prev) / (1 - ab), t, xt)


def _posterior_beta_variance(i: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    mean, _ = ddpm.q_posterior_mean_variance(*args(i))
    _, xt, t, betas = args(i)
    return mean, _gather(betas, t, xt)


# ------------------------------------------------------------------------------------------ reverse


def _eps_state(seed: int, dim: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return seeded_state(lambda: drivers.EpsNet(dim), seed, dtype)


def model_case(
    function: Callable[..., Any],
    named: dict[str, Any],
    shape: tuple[int, ...],
    dtype: torch.dtype,
    seed: int,
    labels: dict[str, str],
    tol: tuple[float, float],
) -> Case:
    """A case for a function that takes the grader's EpsNet first, with weights from ``seed``."""
    dim = int(np.prod(shape[1:]))
    base = torch_call(function, named, dtype, tol, tol, labels=labels, injected=MODEL)
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
    return Case(inputs, f"{base.shown}, model=EpsNet(seed {seed})", base.tol, reference)


def _eps_net_for(i: dict[str, Any]) -> drivers.EpsNet:
    net = drivers.EpsNet(i["eps_dim"]).to(getattr(torch, i["dtype"]))
    net.load_state_dict(i["eps_state"])
    return net


def _step_variant(
    i: dict[str, Any], variance: str = "posterior", mask: bool = True, alpha: str = "alpha", clip: bool = False
) -> torch.Tensor:
    xt, t, noise, betas = args(i)
    with torch.no_grad():
        eps_hat = _eps_net_for(i)(xt, t)
    ab = _alpha_bars(betas)
    ab_prev = torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]])
    alphas = 1 - betas
    scale = alphas if alpha == "alpha" else ab
    mean = (xt - _gather(betas / (1 - ab).sqrt(), t, xt) * eps_hat) / _gather(scale.sqrt(), t, xt)
    if clip:
        x0_hat = ddpm.predict_x0_from_eps(xt, t, eps_hat, betas).clamp(-1.0, 1.0)
        mean, _ = ddpm.q_posterior_mean_variance(x0_hat, xt, t, betas)
    var = betas * (1 - ab_prev) / (1 - ab) if variance == "posterior" else betas
    out = mean + _gather(var.sqrt(), t, xt) * noise
    if mask:
        keep = (t != 0).reshape(-1, *([1] * (xt.dim() - 1)))
        out = torch.where(keep, out, mean)
    return out


def _loss_variant(i: dict[str, Any], target: str = "noise", reduction: str = "mean", **changes: Any) -> torch.Tensor:
    """ddpm_loss with one classic change: the target, the reduction, an L1 error, or the model on x_0."""
    x0, t, noise, betas = args(i)
    with torch.no_grad():
        xt = ddpm.q_sample(x0, t, noise, betas)
        pred = _eps_net_for(i)(x0 if changes.get("model_on_x0") else xt, t)
    error = F.l1_loss if changes.get("l1") else F.mse_loss
    return error(pred, x0 if target == "x0" else noise, reduction=reduction)


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
    return call(ddpm.timestep_embedding, {"t": t, "dim": dim}, tol=EMBEDDING)


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
        2,
        "call",
        linear_cases(),
        examples=(call(ddpm.linear_beta_schedule, {"T": 1000, "beta_start": 1e-4, "beta_end": 0.02}),),
        max_examples=10,
        mistakes=(
            Mistake(
                "T + 1 points",
                "making T + 1 values (or dropping one end): linspace(beta_start, beta_end, T).",
                lambda i: torch.linspace(args(i)[1], args(i)[2], args(i)[0] + 1, dtype=torch.float64)[:-1],
            ),
            Mistake(
                "float32",
                "returning float32, torch.linspace's default dtype; the contract's schedules are float64 "
                "(pass dtype=torch.float64): ᾱ_t is a product of up to thousands of factors.",
                lambda i: torch.linspace(args(i)[1], args(i)[2], args(i)[0]),
            ),
        ),
        input_classes=(
            InputClass("T = 1", lambda i: i["args"][0] == 1),
            InputClass("T = 1000", lambda i: i["args"][0] == 1000),
        ),
    ),
    Check(
        "ddpm.cosine_beta_schedule",
        2,
        "call",
        cosine_cases(),
        examples=(call(ddpm.cosine_beta_schedule, {"T": 1000, "s": 0.008, "max_beta": 0.999}),),
        max_examples=12,
        mistakes=(
            Mistake("no clip", "not clipping at max_beta: β_t = min(1 - f(t+1)/f(t), max_beta).", _cosine_unclipped),
            Mistake(
                "alpha_bar",
                "computing 1 - f(t+1)/f(0), that is 1 - ᾱ_t, instead of the per-step 1 - f(t+1)/f(t).",
                _cosine_alpha_bar,
            ),
            Mistake(
                "no offset",
                "leaving out the offset s: f(u) = cos²(((u/T) + s)/(1 + s) · π/2).",
                lambda i: _cosine_unclipped({"args": [args(i)[0], 0.0, args(i)[2]]}).clamp(max=args(i)[2]),
            ),
        ),
        input_classes=(
            InputClass("T = 1", lambda i: i["args"][0] == 1),
            InputClass("T = 1000", lambda i: i["args"][0] == 1000),
            InputClass("s = 0", lambda i: i["args"][1] == 0.0),
            InputClass("max_beta < 0.999", lambda i: i["args"][2] < 0.999),
        ),
    ),
    Check(
        "ddpm.q_sample",
        4,
        "call",
        ddpm_cases(ddpm.q_sample, SCHEDULE),
        examples=(pinned(ddpm.q_sample, SCHEDULE, (3, 2, 3)),),
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
                "using ᾱ_{t-1} (alpha_bars[t - 1], as if timesteps counted from 1, which at t = 0 is ᾱ_{T-1}): "
                "timesteps are 0-indexed, and x_t uses ᾱ_t.",
                lambda i: _q_sample_with(
                    i, lambda b: _alpha_bars(b).roll(1).sqrt(), lambda b: (1 - _alpha_bars(b).roll(1)).sqrt()
                ),
            ),
        ),
        input_classes=batch_classes(0),
    ),
    Check(
        "ddpm.q_posterior_mean_variance",
        4,
        "call",
        ddpm_cases(ddpm.q_posterior_mean_variance, SCHEDULE),
        examples=(pinned(ddpm.q_posterior_mean_variance, SCHEDULE, (3, 2, 3)),),
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
            Mistake(
                "shifted",
                "taking ᾱ_t for ᾱ_{t-1} (alpha_bars padded with the 1 at the wrong end); ᾱ_{t-1} is "
                "cat([1], alpha_bars[:-1]), so ᾱ_{-1} = 1 at t = 0.",
                lambda i: _posterior_with(i, lambda ab: torch.cat([ab[:-1], torch.ones(1, dtype=ab.dtype)])),
            ),
            Mistake(
                "coefficients swapped",
                "swapping the two coefficients of the mean: β_t √ᾱ_{t-1} / (1 - ᾱ_t) multiplies x_0.",
                lambda i: _posterior_with(i, lambda ab: torch.cat([torch.ones(1, dtype=ab.dtype), ab[:-1]]), swap=True),
            ),
        ),
        input_classes=batch_classes(1),
    ),
    Check(
        "ddpm.predict_x0_from_eps",
        1,
        "call",
        ddpm_cases(ddpm.predict_x0_from_eps, AMPLIFIED),
        examples=(pinned(ddpm.predict_x0_from_eps, AMPLIFIED, (3, 2, 3)),),
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
        input_classes=batch_classes(0),
    ),
    Check(
        "ddpm.p_sample_step",
        5,
        "with_eps_model",
        ddpm_cases(ddpm.p_sample_step, AMPLIFIED, model=True),
        examples=(pinned(ddpm.p_sample_step, AMPLIFIED, (3, 2, 3), model=True),),
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
            Mistake(
                "clipped x0",
                "clipping x̂_0 to [-1, 1] and taking the posterior mean of the clipped x̂_0 (diffusers' "
                "clip_sample=True, common in DDPM code); the contract's mean is (x_t - β_t/√(1 - ᾱ_t) ε̂) / √α_t, "
                "unclipped.",
                lambda i: _step_variant(i, clip=True),
            ),
        ),
        input_classes=batch_classes(0),
    ),
    Check(
        "ddpm.p_sample_loop",
        2,
        "p_sample_loop",
        loop_cases(),
        max_examples=8,
        depends_on=("p_sample_step",),
        input_classes=(
            InputClass("a batch of one", lambda i: i["shape"][0] == 1),
            InputClass("the cosine schedule", lambda i: bool(i["betas"][-1] > 0.5)),
        ),
    ),
    Check(
        "ddpm.ddpm_loss",
        3,
        "with_eps_model",
        ddpm_cases(ddpm.ddpm_loss, SCHEDULE, model=True),
        examples=(pinned(ddpm.ddpm_loss, SCHEDULE, (3, 2, 3), model=True),),
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
            Mistake(
                "L1",
                "using the absolute error (F.l1_loss); L_simple is the mean *squared* error.",
                lambda i: _loss_variant(i, l1=True),
            ),
            Mistake(
                "model on x_0",
                "calling the model on x_0; it predicts the noise from x_t = q_sample(x_0, t, noise, betas).",
                lambda i: _loss_variant(i, model_on_x0=True),
            ),
        ),
        input_classes=batch_classes(0),
    ),
    Check(
        "ddpm.timestep_embedding",
        2,
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
            Mistake(
                "float64 out",
                "returning float64; the embedding is float32 (the contract says so: it feeds a float32 network).",
                lambda i: _embedding_variant(i).double(),
            ),
        ),
        input_classes=(
            InputClass("t = 0 and t = T - 1 in one batch", lambda i: {0, 999} <= set(i["args"][0].tolist())),
            InputClass("dim = 4 (half - 1 = 1)", lambda i: i["args"][1] == 4),
        ),
    ),
    Check(
        "ddpm.ddpm_train_step",
        3,
        "ddpm_train_step",
        train_step_cases(),
        max_examples=10,
        shrink=False,
        depends_on=("ddpm_loss", "q_sample"),
        mistakes=(
            Mistake(
                "no zero_grad",
                "not calling optimizer.zero_grad(): stale gradients were added to this step's.",
                lambda i: without_zero_grad("ddpm_train_step", ddpm, i),
            ),
        ),
        input_classes=(
            *ranked("x_0", "x_0", 2, 3, 4),
            InputClass("t and noise given", lambda i: i["t"] is not None),
            InputClass("t and noise drawn by the step", lambda i: i["t"] is None),
        ),
    ),
    # the same step, timed against the reference's on a fixed batch (grader/grading/timing.py)
    TimedCheck("ddpm.ddpm_train_step.speed", 2, step="ddpm.ddpm_train_step"),
]
