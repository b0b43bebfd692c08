"""Checks of divergences.py: distributions along the last dimension, torch in and out, float32 and float64."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from grader.checks import (
    BOTH_DTYPES,
    RAISES,
    Case,
    Check,
    InputClass,
    Mistake,
    Property,
    dtypes,
    ranked,
    torch_call,
)
from grader.grading import strategies as gs
from reference import divergences as dv

LOG2 = math.log(2.0)
NONNEGATIVE_SLACK = 1e-6  # a correct float32 KL of near-equal distributions can round to -1e-7


def args(i: dict[str, Any]) -> list[Any]:
    return i["args"]


def pair_cases(function: Callable[..., Any]) -> st.SearchStrategy[Case]:
    return st.tuples(gs.prob_pairs(), dtypes).map(
        lambda a: torch_call(function, {"p": a[0][0], "q": a[0][1]}, a[1], exact=False)  # distributions: see torch_call
    )


def pinned_pair(function: Callable[..., Any], p: list[float], q: list[float]) -> Case:
    return torch_call(function, {"p": np.array(p), "q": np.array(q)}, torch.float64)


# Distributions (..., K) of rank 1 to 3 in both dtypes, an exact zero somewhere: what the contract allows.
DISTRIBUTION = (
    *BOTH_DTYPES,
    *ranked(0, "p", 1, 2, 3),
    InputClass("p with a zero", lambda i: bool((i["args"][0] == 0).any())),
)
PAIR = (
    *DISTRIBUTION,
    InputClass("q = 0 < p somewhere", lambda i: bool(((i["args"][1] == 0) & (i["args"][0] > 0)).any())),
)


def over_dim_1(fn: Any, inputs: dict[str, Any], clamp: bool = False) -> Any:
    """What a hard-coded ``.sum(dim=1)`` in place of ``dim=-1`` returns: RAISES on 1-D input, the reference's
    terms summed over dimension 1 otherwise (the same as the last one only for 2-D inputs)."""
    first = args(inputs)[0]
    if first.dim() < 2:
        return RAISES
    total = fn(*args(inputs)).sum(dim=1)
    return total.clamp_min(0.0) if clamp else total


def _entropy_terms(p: Any) -> Any:
    return -torch.xlogy(p, p)


def _kl_terms(p: Any, q: Any) -> Any:
    p, q = torch.broadcast_tensors(p, q)
    return torch.where(p > 0, p * (torch.log(p) - torch.log(q)), torch.zeros_like(p))


HARD_CODED_DIM = "summing over dim=1; the distribution lies along the last dimension, so sum over dim=-1."


def bits(fn: Any) -> Any:
    return lambda i: fn(*args(i)) / LOG2


def swapped(fn: Any) -> Any:
    return lambda i: fn(args(i)[1], args(i)[0])


def nonnegative(received: Any, case: Case) -> bool:
    return bool((received.array >= -NONNEGATIVE_SLACK).all())


CHECKS = [
    Check(
        "divergences.entropy",
        2,
        "call",
        st.tuples(gs.leading_shapes().flatmap(lambda b: gs.prob_vectors(batch=b)), dtypes).map(
            lambda a: torch_call(dv.entropy, {"p": a[0]}, a[1], exact=False)
        ),
        examples=(torch_call(dv.entropy, {"p": np.array([0.5, 0.5, 0.0])}, torch.float64),),
        mistakes=(
            Mistake("log base 2", "using log base 2; entropy here is in nats.", bits(dv.entropy)),
            Mistake("sign", "forgetting the minus sign: H(p) = -Σ p log p ≥ 0.", lambda i: -dv.entropy(*args(i))),
            Mistake(
                "all dims",
                "summing over every dimension; sum over the last one only.",
                lambda i: dv.entropy(*args(i)).sum(),
            ),
            Mistake("dim 1", HARD_CODED_DIM, lambda i: over_dim_1(_entropy_terms, i)),
        ),
        properties=(Property("H(p) ≥ 0", nonnegative),),
        input_classes=DISTRIBUTION,
    ),
    Check(
        "divergences.cross_entropy",
        2,
        "call",
        pair_cases(dv.cross_entropy),
        examples=(
            pinned_pair(dv.cross_entropy, [0.5, 0.5, 0.0], [0.5, 0.0, 0.5]),
            pinned_pair(dv.cross_entropy, [0.5, 0.5, 0.0], [0.25, 0.75, 0.0]),
        ),
        mistakes=(
            Mistake(
                "swapped", "swapping p and q: H(p, q) = -Σ p log q, with p outside the log.", swapped(dv.cross_entropy)
            ),
            Mistake("log base 2", "using log base 2; the course uses nats.", bits(dv.cross_entropy)),
            Mistake(
                "entropy", "returning H(p) only; cross-entropy is H(p) + KL(p ‖ q).", lambda i: dv.entropy(args(i)[0])
            ),
        ),
        input_classes=PAIR,
    ),
    Check(
        "divergences.kl_divergence",
        4,
        "call",
        pair_cases(dv.kl_divergence),
        examples=(
            pinned_pair(dv.kl_divergence, [0.5, 0.5, 0.0], [1.0, 0.0, 0.0]),
            pinned_pair(dv.kl_divergence, [1.0, 0.0], [0.5, 0.5]),
            pinned_pair(dv.kl_divergence, [0.2, 0.8, 0.0], [0.2, 0.8, 0.0]),
            pinned_pair(dv.kl_divergence, [0.1, 0.9], [0.6, 0.4]),
        ),
        mistakes=(
            Mistake(
                "reversed",
                "computing KL(q ‖ p): KL is not symmetric, KL(p ‖ q) weights by p.",
                swapped(dv.kl_divergence),
            ),
            Mistake("log base 2", "using log base 2; the course uses nats.", bits(dv.kl_divergence)),
            Mistake("sign", "the sign: KL(p ‖ q) = Σ p log(p / q) ≥ 0.", lambda i: -dv.kl_divergence(*args(i))),
            Mistake("dim 1", HARD_CODED_DIM, lambda i: over_dim_1(_kl_terms, i, clamp=True)),
        ),
        properties=(Property("KL ≥ 0", nonnegative),),
        input_classes=PAIR,
    ),
]


# ------------------------------------------------------------------------------------- Gaussians


@st.composite
def gaussian_kl_cases(draw: st.DrawFn) -> Case:
    mu1, s1, mu2, s2 = draw(gs.gaussian_pairs())
    dtype = draw(dtypes)
    if dtype == torch.float32:  # float32 squares σ; keep σ in [1e-2, 1e2] so σ² stays normal and exact enough
        s1, s2 = np.clip(s1, 1e-2, 1e2), np.clip(s2, 1e-2, 1e2)
    return torch_call(dv.gaussian_kl, {"mu1": mu1, "sigma1": s1, "mu2": mu2, "sigma2": s2}, dtype, tol32=(1e-3, 1e-4))


@st.composite
def latent_cases(draw: st.DrawFn) -> Case:
    mu, logvar = draw(gs.latent_gaussians())
    return torch_call(dv.kl_to_standard_normal, {"mu": mu, "logvar": logvar}, draw(dtypes))


def _gkl(i: dict[str, Any], **change: Any) -> Any:
    mu1, s1, mu2, s2 = args(i)
    values = {"mu1": mu1, "s1": s1, "mu2": mu2, "s2": s2, **change}
    return dv.gaussian_kl(values["mu1"], values["s1"], values["mu2"], values["s2"])


CHECKS += [
    Check(
        "divergences.gaussian_kl",
        4,
        "call",
        gaussian_kl_cases(),
        examples=(
            torch_call(
                dv.gaussian_kl,
                {
                    "mu1": np.array([0.0, 1.0]),
                    "sigma1": np.array([1.0, 2.0]),
                    "mu2": np.array([1.0, 0.0]),
                    "sigma2": np.array([2.0, 0.5]),
                },
                torch.float64,
            ),
        ),
        mistakes=(
            Mistake(
                "sigma as variance",
                "treating sigma1, sigma2 as variances; they are standard deviations.",
                lambda i: _gkl(i, s1=args(i)[1].sqrt(), s2=args(i)[3].sqrt()),
            ),
            Mistake(
                "reversed",
                "computing KL(N₂ ‖ N₁): the first Gaussian is the one the expectation is under.",
                lambda i: dv.gaussian_kl(args(i)[2], args(i)[3], args(i)[0], args(i)[1]),
            ),
            Mistake("no -1/2", "leaving out the final -½.", lambda i: _gkl(i) + 0.5),
        ),
        properties=(Property("KL ≥ 0", nonnegative),),
        input_classes=(*BOTH_DTYPES, *ranked(0, "mu1", 0, 1, 2)),
    ),
    Check(
        "divergences.kl_to_standard_normal",
        3,
        "call",
        latent_cases(),
        examples=(
            torch_call(
                dv.kl_to_standard_normal,
                {
                    "mu": np.array([[[0.5, -1.0], [0.0, 2.0]], [[1.5, 0.0], [-0.5, 0.25]]]),
                    "logvar": np.zeros((2, 2, 2)),
                },
                torch.float32,
            ),
        ),
        mistakes=(
            Mistake(
                "mean over latent",
                "averaging over the latent dimension; sum over it.",
                lambda i: dv.kl_to_standard_normal(*args(i)) / args(i)[0].shape[-1],
            ),
            Mistake(
                "logvar as log std",
                "using logvar as log σ: exp(logvar) is the variance σ².",
                lambda i: dv.kl_to_standard_normal(args(i)[0], 2 * args(i)[1]),
            ),
            Mistake(
                "batch sum",
                "summing over the batch as well; the result keeps the leading dimensions.",
                lambda i: dv.kl_to_standard_normal(*args(i)).sum(),
            ),
            Mistake(
                "sign",
                "the sign: KL = -½ Σ (1 + logvar - μ² - exp(logvar)) ≥ 0.",
                lambda i: -dv.kl_to_standard_normal(*args(i)),
            ),
            Mistake(
                "dim 1",
                "summing over dim=1; the latent dimension is the last one (mu may be 1-D, or have several leading "
                "dimensions), so sum over dim=-1.",
                lambda i: over_dim_1(lambda mu, logvar: -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)), i),
            ),
        ),
        properties=(Property("KL ≥ 0", nonnegative),),
        input_classes=(*BOTH_DTYPES, *ranked(0, "mu", 1, 2, 3)),
    ),
]


# ------------------------------------------------------------------------------------- JS, W1


def _js_wrong_mixture(i: dict[str, Any]) -> Any:
    p, q = args(i)
    return 0.5 * dv.kl_divergence(p, q) + 0.5 * dv.kl_divergence(q, p)


@st.composite
def wasserstein_cases(draw: st.DrawFn) -> Case:
    x, y = draw(gs.sample_pairs())
    return torch_call(dv.wasserstein_1d, {"x": x, "y": y}, draw(dtypes), tol32=(1e-4, 1e-4))


CHECKS += [
    Check(
        "divergences.js_divergence",
        3,
        "call",
        pair_cases(dv.js_divergence),
        depends_on=("kl_divergence",),
        examples=(
            pinned_pair(dv.js_divergence, [1.0, 0.0], [0.0, 1.0]),
            pinned_pair(dv.js_divergence, [0.5, 0.5, 0.0], [0.1, 0.2, 0.7]),
        ),
        mistakes=(
            Mistake("log base 2", "using log base 2: in nats JS ≤ log 2 ≈ 0.693, not 1.", bits(dv.js_divergence)),
            Mistake(
                "symmetrised KL",
                "averaging KL(p ‖ q) and KL(q ‖ p): JS compares each with the mixture m = (p + q)/2.",
                _js_wrong_mixture,
            ),
            Mistake(
                "no halves",
                "summing KL(p ‖ m) + KL(q ‖ m) without the ½ weights.",
                lambda i: 2 * dv.js_divergence(*args(i)),
            ),
            Mistake(
                "distance",
                "returning the Jensen-Shannon *distance*, the square root of the divergence (what "
                "scipy.spatial.distance.jensenshannon returns); the contract asks for the divergence itself.",
                lambda i: dv.js_divergence(*args(i)).sqrt(),
            ),
        ),
        input_classes=PAIR,
        properties=(
            Property(
                "0 ≤ JS ≤ log 2", lambda r, c: bool(((r.array >= -NONNEGATIVE_SLACK) & (r.array <= LOG2 + 1e-6)).all())
            ),
        ),
    ),
    Check(
        "divergences.wasserstein_1d",
        2,
        "call",
        wasserstein_cases(),
        examples=(
            torch_call(dv.wasserstein_1d, {"x": np.array([0.0, 5.0]), "y": np.array([5.0, 0.0])}, torch.float64),
        ),
        mistakes=(
            Mistake(
                "unsorted",
                "pairing x_i with y_i as given; sort both samples first.",
                lambda i: (args(i)[0] - args(i)[1]).abs().mean(),
            ),
            Mistake(
                "sum",
                "summing |x_(i) - y_(i)| instead of averaging.",
                lambda i: dv.wasserstein_1d(*args(i)) * args(i)[0].numel(),
            ),
        ),
        input_classes=(
            *BOTH_DTYPES,
            InputClass("n = 1", lambda i: i["args"][0].numel() == 1),
            InputClass("ties", lambda i: len(set(i["args"][0].tolist())) < i["args"][0].numel()),
        ),
    ),
]
