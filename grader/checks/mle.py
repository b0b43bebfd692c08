"""Checks of mle.py: NumPy in, Python floats or float64 arrays out (gaussian_nll: torch, with gradients)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from scipy.special import gammaln, xlog1py, xlogy

from grader.checks import BOTH_DTYPES, Case, Check, InputClass, Mistake, Property, call, ranked, shown, where_arg
from grader.grading import strategies as gs
from grader.grading.compare import FLOAT32, FLOAT64
from reference import mle

LOG2 = math.log(2.0)


def args(inputs: dict[str, Any]) -> list[Any]:
    return inputs["args"]


def in_bits(fn: Any) -> Any:
    return lambda i: fn(*args(i)) / LOG2


# --------------------------------------------------------------------------- binomial


@st.composite
def binomial_counts_any_form(draw: st.DrawFn) -> tuple[Any, Any]:
    """(successes, trials) as (int, int), (array, int) or (array, array)."""
    k, n = draw(gs.binomial_counts())
    form = draw(st.sampled_from(["arrays", "scalar_trials", "scalars"]))
    if form == "scalars":
        return int(k[0]), int(n[0]) or 1
    if form == "scalar_trials":
        trials = int(n.max()) or 1
        return np.minimum(k, trials), trials
    return k, n


def binomial_mle_cases() -> st.SearchStrategy[Case]:
    return binomial_counts_any_form().map(lambda kn: call(mle.binomial_mle, {"successes": kn[0], "trials": kn[1]}))


def binomial_ll_cases() -> st.SearchStrategy[Case]:
    return st.tuples(gs.probabilities(), binomial_counts_any_form()).map(
        lambda pkn: call(mle.binomial_log_likelihood, {"p": pkn[0], "successes": pkn[1][0], "trials": pkn[1][1]})
    )


def _kn(i: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    a = args(i)
    return tuple(np.broadcast_arrays(np.asarray(a[-2]), np.asarray(a[-1])))  # type: ignore[return-value]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer)


COUNT_FORMS = (
    InputClass("int successes and trials", lambda i: _is_int(i["args"][-2]) and _is_int(i["args"][-1])),
    InputClass("array successes, int trials", lambda i: not _is_int(i["args"][-2]) and _is_int(i["args"][-1])),
    InputClass("arrays of both", lambda i: not _is_int(i["args"][-2]) and not _is_int(i["args"][-1])),
)
SAMPLE_EDGES = (
    where_arg(0, "all zeros", lambda x: not x.any()),
    where_arg(0, "all ones", lambda x: bool(x.all())),
    where_arg(0, "one observation", lambda x: len(x) == 1),
)
P_EDGES = (where_arg(0, "p = 0", lambda p: p == 0.0), where_arg(0, "p = 1", lambda p: p == 1.0))


def _binomial_no_coefficient(i: dict[str, Any]) -> float:
    p = args(i)[0]
    k, n = _kn(i)
    return float(np.sum(xlogy(k, p) + xlog1py(n - k, -p)))


CHECKS = [
    Check(
        "mle.binomial_mle",
        2,
        "call",
        binomial_mle_cases(),
        examples=(
            call(mle.binomial_mle, {"successes": 7, "trials": 10}),
            call(mle.binomial_mle, {"successes": np.array([1, 9]), "trials": np.array([2, 90])}),
        ),
        mistakes=(
            Mistake(
                "mean of ratios",
                "averaging the ratios k_i / n_i instead of pooling Σk / Σn.",
                lambda i: float(np.mean(_kn(i)[0] / _kn(i)[1])),
            ),
            Mistake(
                "no broadcast",
                "dividing Σk by a single n: with a scalar `trials` every count had n trials.",
                lambda i: float(np.sum(args(i)[0]) / np.sum(args(i)[1])),
            ),
        ),
        input_classes=COUNT_FORMS,
    ),
    Check(
        "mle.binomial_log_likelihood",
        3,
        "call",
        binomial_ll_cases(),
        examples=(
            call(mle.binomial_log_likelihood, {"p": 0.0, "successes": np.array([0, 0]), "trials": np.array([3, 4])}),
            call(mle.binomial_log_likelihood, {"p": 0.0, "successes": np.array([1, 0]), "trials": np.array([3, 4])}),
            call(mle.binomial_log_likelihood, {"p": 0.3, "successes": np.array([2, 5]), "trials": 10}),
            call(mle.binomial_log_likelihood, {"p": 1.0, "successes": np.array([3, 2]), "trials": 3}),
        ),
        mistakes=(
            Mistake(
                "no coefficient", "leaving out log C(n_i, k_i): it is part of the likelihood.", _binomial_no_coefficient
            ),
            Mistake(
                "log base 2",
                "using log base 2; the course uses natural logarithms (nats).",
                in_bits(mle.binomial_log_likelihood),
            ),
        ),
        input_classes=(*COUNT_FORMS, *P_EDGES),
    ),
    Check(
        "mle.bernoulli_mle",
        1,
        "call",
        gs.binary_samples().map(lambda x: call(mle.bernoulli_mle, {"x": x})),
        mistakes=(
            Mistake(
                "count", "returning the number of ones instead of their share.", lambda i: float(np.sum(args(i)[0]))
            ),
        ),
        input_classes=SAMPLE_EDGES,
    ),
    Check(
        "mle.bernoulli_log_likelihood",
        1,
        "call",
        st.tuples(gs.probabilities(), gs.binary_samples()).map(
            lambda px: call(mle.bernoulli_log_likelihood, {"p": px[0], "x": px[1]})
        ),
        examples=(call(mle.bernoulli_log_likelihood, {"p": 0.0, "x": np.array([0, 0, 0])}),),
        mistakes=(
            Mistake(
                "swapped",
                "swapping p and 1 - p: x = 1 has probability p.",
                lambda i: mle.bernoulli_log_likelihood(1 - args(i)[0], args(i)[1]),
            ),
            Mistake(
                "log base 2",
                "using log base 2; the course uses natural logarithms (nats).",
                in_bits(mle.bernoulli_log_likelihood),
            ),
            Mistake(
                "mean",
                "averaging over the sample instead of summing.",
                lambda i: mle.bernoulli_log_likelihood(*args(i)) / len(args(i)[1]),
            ),
        ),
        input_classes=P_EDGES,
    ),
    Check(
        "mle.gaussian_mle",
        3,
        "call",
        gs.real_samples().map(lambda x: call(mle.gaussian_mle, {"x": x})),
        examples=(call(mle.gaussian_mle, {"x": np.array([1.0, 3.0])}),),
        mistakes=(
            Mistake(
                "unbiased",
                "dividing by n - 1 (the unbiased variance); the MLE divides by n.",
                lambda i: (float(np.mean(args(i)[0])), float(np.var(args(i)[0], ddof=1))),
            ),
            Mistake(
                "std",
                "returning the standard deviation instead of the variance.",
                lambda i: (float(np.mean(args(i)[0])), float(np.std(args(i)[0]))),
            ),
        ),
        input_classes=(where_arg(0, "one observation", lambda x: len(x) == 1),),
    ),
    Check(
        "mle.gaussian_log_likelihood",
        2,
        "call",
        st.tuples(gs.real_samples(scale=100.0), gs.readable(-100.0, 100.0), gs.variances()).map(
            lambda a: call(mle.gaussian_log_likelihood, {"x": a[0], "mu": a[1], "sigma2": a[2]})
        ),
        mistakes=(
            Mistake(
                "sigma2 as std",
                "treating sigma2 as a standard deviation; it is the variance σ².",
                lambda i: mle.gaussian_log_likelihood(args(i)[0], args(i)[1], args(i)[2] ** 2),
            ),
            Mistake(
                "no 2π",
                "leaving out the -½ log(2π) term of each observation.",
                lambda i: mle.gaussian_log_likelihood(*args(i)) + 0.5 * math.log(2 * math.pi) * len(args(i)[0]),
            ),
            Mistake(
                "mean",
                "averaging over the sample instead of summing.",
                lambda i: mle.gaussian_log_likelihood(*args(i)) / len(args(i)[0]),
            ),
        ),
        input_classes=(where_arg(0, "one observation", lambda x: len(x) == 1),),
    ),
    Check(
        "mle.poisson_mle",
        1,
        "call",
        gs.count_samples().map(lambda x: call(mle.poisson_mle, {"x": x})),
        mistakes=(
            Mistake(
                "variance", "returning the variance; the MLE of λ is the mean.", lambda i: float(np.var(args(i)[0]))
            ),
        ),
        input_classes=(
            where_arg(0, "all zeros", lambda x: not x.any()),
            where_arg(0, "one observation", lambda x: len(x) == 1),
        ),
    ),
    Check(
        "mle.poisson_log_likelihood",
        2,
        "call",
        st.tuples(st.one_of(st.just(0.0), gs.readable(0.0, 60.0)), gs.count_samples()).map(
            lambda a: call(mle.poisson_log_likelihood, {"lam": a[0], "x": a[1]})
        ),
        examples=(
            call(mle.poisson_log_likelihood, {"lam": 0.0, "x": np.array([0, 0])}),
            call(mle.poisson_log_likelihood, {"lam": 0.0, "x": np.array([0, 2])}),
            call(mle.poisson_log_likelihood, {"lam": 2.5, "x": np.array([0, 3, 7])}),
        ),
        mistakes=(
            Mistake(
                "no factorial",
                "leaving out the -log x_i! term.",
                lambda i: mle.poisson_log_likelihood(*args(i)) + float(np.sum(gammaln(np.asarray(args(i)[1]) + 1))),
            ),
            Mistake(
                "log base 2",
                "using log base 2; the course uses natural logarithms (nats).",
                in_bits(mle.poisson_log_likelihood),
            ),
        ),
        input_classes=(where_arg(0, "lam = 0", lambda lam: lam == 0.0),),
    ),
    Check(
        "mle.multinomial_mle",
        1,
        "call",
        gs.count_tables().map(lambda c: call(mle.multinomial_mle, {"counts": c})),
        examples=(call(mle.multinomial_mle, {"counts": np.array([[1, 3], [5, 5]])}),),
        mistakes=(
            Mistake(
                "grand total",
                "dividing by the total of all rows; each row is normalised by its own sum.",
                lambda i: np.asarray(args(i)[0]) / np.sum(args(i)[0]),
            ),
        ),
        properties=(Property("each row sums to 1", lambda r, c: bool(np.allclose(r.array.sum(-1), 1.0, atol=1e-9))),),
        input_classes=(
            *ranked(0, "counts", 1, 2, 3),
            where_arg(0, "a zero count", lambda c: bool((c == 0).any())),
        ),
    ),
    Check(
        "mle.categorical_nll",
        2,
        "call",
        gs.logits_and_targets().map(lambda lt: call(mle.categorical_nll, {"logits": lt[0], "targets": lt[1]})),
        examples=(
            call(
                mle.categorical_nll,
                {"logits": np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4]]), "targets": np.array([1, 0])},
            ),
        ),
        mistakes=(
            Mistake(
                "sum",
                "summing over rows; the NLL here is the mean over rows.",
                lambda i: mle.categorical_nll(*args(i)) * len(args(i)[1]),
            ),
            Mistake(
                "positive log-likelihood",
                "returning log softmax (the log-likelihood) instead of its negative.",
                lambda i: -mle.categorical_nll(*args(i)),
            ),
            Mistake(
                "log base 2",
                "using log base 2; the course uses natural logarithms (nats).",
                in_bits(mle.categorical_nll),
            ),
        ),
        input_classes=(where_arg(0, "|logits| = 1e4", lambda z: bool(np.abs(z).max() >= 1e3)),),
    ),
]


# --------------------------------------------------------------------------- gaussian_nll (torch, gradients)


@st.composite
def gaussian_nll_cases(draw: st.DrawFn) -> Case:
    x = draw(gs.real_samples(max_len=20, scale=10.0))
    mean = draw(gs.readable(-10.0, 10.0))
    log_var = draw(st.one_of(st.just(0.0), gs.readable(-6.0, 6.0)))
    dtype = draw(st.sampled_from([torch.float64, torch.float64, torch.float32]))
    inputs = {
        "x": torch.as_tensor(x).to(dtype),
        "mean": torch.tensor(mean, dtype=dtype),
        "log_var": torch.tensor(log_var, dtype=dtype),
    }
    text = shown({"x": x, "mean": mean, "log_var": log_var})
    if dtype == torch.float64:
        return Case(inputs, text, FLOAT64)
    promoted = {k: v.to(torch.float64) for k, v in inputs.items()}
    return Case(inputs, text + " (float32)", FLOAT32, reference_inputs=promoted)


def _nll_variant(i: dict[str, Any], var: Any, scale: float = 1.0) -> dict[str, Any]:
    mean = i["mean"].clone().requires_grad_(True)
    log_var = i["log_var"].clone().requires_grad_(True)
    value = scale * (0.5 * math.log(2 * math.pi) + 0.5 * log_var + (i["x"] - mean) ** 2 / (2 * var(log_var))).mean()
    value.backward()
    return {"value": value, "grad_mean": mean.grad, "grad_log_var": log_var.grad}


CHECKS.append(
    Check(
        "mle.gaussian_nll",
        2,
        "gaussian_nll",
        gaussian_nll_cases(),
        mistakes=(
            Mistake(
                "log_var as variance",
                "using log_var as the variance itself; σ² = exp(log_var).",
                lambda i: _nll_variant(i, lambda lv: lv),
            ),
            Mistake(
                "log_var as log std",
                "using exp(log_var) as σ instead of σ²: σ² = exp(log_var).",
                lambda i: _nll_variant(i, lambda lv: torch.exp(lv) ** 2),
            ),
            Mistake(
                "sum",
                "summing over x; the contract asks for the mean.",
                lambda i: _nll_variant(i, torch.exp, scale=float(len(i["x"]))),
            ),
        ),
        input_classes=BOTH_DTYPES,
    )
)
