"""Every Hypothesis strategy of the project, named for what it generates, valid by construction.

Inputs are built to satisfy the contract rather than filtered: a distribution is
non-negative weights divided by their sum, a count never exceeds its trials, a
timestep batch holds 0 and T - 1 whenever it has room. The edges that break naive
code are drawn on purpose: zeros in p and q, q = 0 < p, p in {0, 1}, logits of
size 1e4, standard deviations from 1e-3 to 1e3, t = 0 beside t = T - 1.
Arrays are NumPy float64; tests and checks convert them to the dtype under test.

Readable by construction: a drawn number lies on a grid of about four significant digits
(``readable``, ``readable_log``), so that whatever shrinking reaches, the input that
feedback shows is one a student can type (0.125, -2.417, 3e-05), never 2.2e-308 or a
17-digit fraction. A distribution is such weights over their sum; feedback prints arrays
to six digits. Where the contract broadcasts leading dimensions, inputs of rank 1, 2 and 3
are drawn.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp


def _draw_no_local_constants() -> None:
    """Hypothesis mixes into its draws numbers it collects from the source of every *local* module the process
    has loaded (not site-packages, not tests): the same seed then draws other inputs in a process that loaded
    another module (a test's temporary file, a grade-class pool), after an unrelated edit of the grader, or in
    an editable install (this project's modules are local) rather than a wheel (Gradescope, Dask nodes: none
    are). Loading one module of 500 constants changed 36 of 40 derandomized draws. A submission must meet the
    same inputs wherever it is graded, so the grader gives Hypothesis no local constants (its fixed global
    ones stay). tests/test_strategies_determinism.py loads such a module and compares the draws."""
    from hypothesis.internal.conjecture import providers

    if not hasattr(providers, "_get_local_constants"):
        return  # a Hypothesis without the feature (the test says whether draws stay put)
    empty = providers.Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()  # what earlier draws of this process may have cached


_draw_no_local_constants()

MIN_WEIGHT = 1e-6  # smallest positive unnormalised weight of a drawn distribution (see prob_vectors)
LEADING_SHAPES = ((), (1,), (3,), (2, 2))  # batch dimensions before the last one: ranks 1 to 3 in all
MAX_OUTCOMES = 8  # K of the discrete distributions: enough for every edge, small enough to read in feedback


SIGNIFICANT = 4  # digits of a drawn number: readable in feedback, fine enough for every edge that matters


def finite_floats(low: float, high: float) -> st.SearchStrategy[float]:
    """Any float in [low, high] (the reference's own tests: every awkward float Hypothesis knows)."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def readable(low: float, high: float) -> st.SearchStrategy[float]:
    """Floats in [low, high] on a grid of step 10^(⌊log10 max(|low|, |high|)⌋ - 3): about four significant
    digits, 0 included where it lies in the range; shrinks towards 0 or the bound nearest it."""
    top = max(abs(low), abs(high))
    decimals = SIGNIFICANT - 1 - math.floor(math.log10(top)) if top > 0 else 0
    scale = 10**decimals if decimals >= 0 else 1
    return st.integers(math.ceil(low * scale), math.floor(high * scale)).map(lambda k: float(k) / scale)


def readable_log(low_exp: int, high_exp: int) -> st.SearchStrategy[float]:
    """m · 10^e with m in 1.00 .. 9.99 and e in [low_exp, high_exp): from tiny to huge with equal weight per
    decade, each written in three digits (3.17e-05), both ends 10^low_exp and 10^high_exp included."""
    body = st.builds(
        lambda m, e: float(f"{m / 100:.2f}e{e}"), st.integers(100, 999), st.integers(low_exp, high_exp - 1)
    )
    return st.one_of(st.sampled_from([float(10.0**low_exp), float(10.0**high_exp)]), body)


def log_uniform(low_exp: int, high_exp: int) -> st.SearchStrategy[float]:
    """Scales from tiny to huge with equal weight per decade (readable: three digits)."""
    return readable_log(low_exp, high_exp)


def leading_shapes() -> st.SearchStrategy[tuple[int, ...]]:
    """Leading (batch) dimensions of rank 0, 1 or 2, for functions that broadcast them."""
    return st.sampled_from(LEADING_SHAPES)


def derandomized_draws(strategy: st.SearchStrategy[Any], count: int, stream: int) -> list[Any]:
    """The first ``count`` values a derandomized run of ``strategy`` draws from the fixed seed ``stream``:
    the same values on every machine and every run, whatever the code around the call looks like."""
    drawn: list[Any] = []

    @seed(stream)
    @settings(derandomize=True, database=None, deadline=None, max_examples=count, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn[:count]


# --------------------------------------------------------------------------------------------
# counts and samples for mle.py


@st.composite
def binomial_counts(draw: st.DrawFn, max_len: int = 6, max_trials: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """(k, n): 1-D int arrays, 0 <= k_i <= n_i, at least one trial in all."""
    n = draw(hnp.arrays(np.int64, st.integers(1, max_len), elements=st.integers(0, max_trials)))
    if n.sum() == 0:
        n[0] = 1
    fractions = draw(hnp.arrays(np.float64, n.shape, elements=readable(0.0, 1.0)))
    k = np.floor(fractions * (n + 1)).clip(0, n).astype(np.int64)  # all-0 and all-n rows included
    return k, n


def probabilities() -> st.SearchStrategy[float]:
    """p in [0, 1], with the ends and near-ends drawn often."""
    return st.one_of(st.sampled_from([0.0, 1.0, 0.5, 1e-6, 0.999999]), readable(0.0, 1.0))


def binary_samples(max_len: int = 40) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.int64, st.integers(1, max_len), elements=st.integers(0, 1))


def count_samples(max_len: int = 40, max_count: int = 50) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.int64, st.integers(1, max_len), elements=st.integers(0, max_count))


def real_samples(max_len: int = 40, scale: float = 1e3) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float64, st.integers(1, max_len), elements=readable(-scale, scale))


def variances() -> st.SearchStrategy[float]:
    return log_uniform(-3, 3)


@st.composite
def count_tables(draw: st.DrawFn) -> np.ndarray:
    """counts (..., K) of non-negative ints, 0 to 2 leading dimensions, every row sum positive."""
    k = draw(st.integers(1, MAX_OUTCOMES))
    counts = draw(hnp.arrays(np.int64, (*draw(leading_shapes()), k), elements=st.integers(0, 30)))
    counts[..., draw(st.integers(0, k - 1))] += 1
    return counts


@st.composite
def logits_and_targets(draw: st.DrawFn, max_abs: float = 1e4) -> tuple[np.ndarray, np.ndarray]:
    """logits (n, K) up to |1e4| (where a naive softmax overflows) and targets (n,) in [0, K)."""
    n = draw(st.integers(1, 6))
    k = draw(st.integers(2, MAX_OUTCOMES))
    scale = draw(st.sampled_from([1.0, 30.0, max_abs]))
    logits = draw(hnp.arrays(np.float64, (n, k), elements=readable(-1.0, 1.0))) * scale
    targets = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return logits, targets


# --------------------------------------------------------------------------------------------
# distributions for divergences.py


@st.composite
def prob_vectors(draw: st.DrawFn, k: int | None = None, batch: tuple[int, ...] = (), zeros: bool = True) -> np.ndarray:
    """Distributions (*batch, K): non-negative weights, some exactly 0 when ``zeros``, over their sum.

    A positive weight is at least MIN_WEIGHT times the largest: the edge that matters is
    an exact zero; a probability of 1e-225 beside 1 only tests float64's rounding of 1 - p.
    """
    k = draw(st.integers(1, MAX_OUTCOMES)) if k is None else k
    positive = st.one_of(readable(0.001, 1.0), readable_log(-6, 0))  # down to MIN_WEIGHT = 1e-6
    element = st.one_of(st.just(0.0), positive) if zeros else positive
    weights = draw(hnp.arrays(np.float64, (*batch, k), elements=element))
    weights = weights.reshape(-1, k)
    for row in weights:
        if row.sum() <= 0:
            row[draw(st.integers(0, k - 1))] = 1.0
    weights = weights / weights.sum(-1, keepdims=True)
    return weights.reshape(*batch, k)


@st.composite
def prob_pairs(draw: st.DrawFn, zeros: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(p, q) over the same K with a shared batch shape; sometimes p == q, sometimes q = 0 < p."""
    k = draw(st.integers(1, MAX_OUTCOMES))
    batch = draw(leading_shapes())
    p = draw(prob_vectors(k=k, batch=batch, zeros=zeros))
    q = p.copy() if draw(st.booleans()) and draw(st.booleans()) else draw(prob_vectors(k=k, batch=batch, zeros=zeros))
    return p, q


@st.composite
def gaussian_pairs(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """(mu1, sigma1, mu2, sigma2), one shape of rank 0 to 2, standard deviations from 1e-3 to 1e3."""
    shape = draw(st.sampled_from([(5,), (), (2, 3)]))
    mus = hnp.arrays(np.float64, shape, elements=readable(-100.0, 100.0))
    sigmas = hnp.arrays(np.float64, shape, elements=log_uniform(-3, 3))
    return draw(mus), draw(sigmas), draw(mus), draw(sigmas)


@st.composite
def latent_gaussians(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(mu, logvar), each (..., L) with 0 to 2 leading dimensions, logvar in [-10, 10]."""
    shape = (*draw(leading_shapes()), draw(st.integers(1, 6)))
    mu = draw(hnp.arrays(np.float64, shape, elements=readable(-5.0, 5.0)))
    logvar = draw(hnp.arrays(np.float64, shape, elements=st.one_of(st.just(0.0), readable(-10.0, 10.0))))
    return mu, logvar


@st.composite
def sample_pairs(draw: st.DrawFn, max_len: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """(x, y): two 1-D samples of the same length, ties included."""
    n = draw(st.integers(1, max_len))
    element = st.one_of(st.sampled_from([0.0, 1.0]), readable(-100.0, 100.0))
    return draw(hnp.arrays(np.float64, (n,), elements=element)), draw(hnp.arrays(np.float64, (n,), elements=element))


# --------------------------------------------------------------------------------------------
# diffusion


@st.composite
def timesteps(draw: st.DrawFn, T: int, batch: int) -> np.ndarray:
    """t (batch,) in [0, T): holds 0 and T - 1 whenever batch >= 2, the rest anywhere, in any order."""
    t = draw(hnp.arrays(np.int64, (batch,), elements=st.integers(0, T - 1)))
    if batch >= 2:
        t[0], t[-1] = 0, T - 1
        t = t[draw(st.permutations(range(batch)))]
    return t


def data_shapes(batch: int) -> st.SearchStrategy[tuple[int, ...]]:
    """x's shape, of rank 2, 3 or 4: vectors (B, D), sequences (B, C, L) or images (B, C, H, W)."""
    return st.sampled_from([(batch, 6), (batch, 1, 4, 4), (batch, 3, 2, 2), (batch, 2, 3)])


def probabilities_open(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """Arrays of probabilities strictly inside (0, 1): discriminator outputs, Bernoulli means; the edges
    1e-6 and 1 - 1e-6 (where log(1 - p) is steep) are drawn too."""
    return hnp.arrays(np.float64, shape, elements=st.one_of(st.sampled_from([1e-6, 1 - 1e-6]), readable(0.001, 0.999)))
