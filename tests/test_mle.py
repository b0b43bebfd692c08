"""reference.mle against scipy.stats log-pmfs/log-pdfs and fits, torch.distributions and autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import special, stats

from grader.grading.strategies import (
    binary_samples,
    binomial_counts,
    count_samples,
    count_tables,
    finite_floats,
    logits_and_targets,
    probabilities,
    real_samples,
    variances,
)
from reference import mle

# Sums of up to 40 log-probabilities each exact to a few ulps: 1e-9 relative leaves a
# wide margin for the different summation orders of scipy and numpy.
LOGLIK_RTOL = 1e-9
LOGLIK_ATOL = 1e-9


def close(a: float, b: float, rtol: float = LOGLIK_RTOL, atol: float = LOGLIK_ATOL) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def test_contract_example() -> None:
    assert mle.binomial_mle(7, 10) == 0.7


@given(binomial_counts(), probabilities())
def test_binomial_log_likelihood_matches_scipy(kn: tuple[np.ndarray, np.ndarray], p: float) -> None:
    k, n = kn
    assert close(mle.binomial_log_likelihood(p, k, n), float(stats.binom.logpmf(k, n, p).sum()))


@given(binomial_counts())
def test_binomial_mle_is_the_pooled_frequency_and_maximises_the_likelihood(kn: tuple[np.ndarray, np.ndarray]) -> None:
    k, n = kn
    p_hat = mle.binomial_mle(k, n)
    assert p_hat == k.sum() / n.sum()
    best = mle.binomial_log_likelihood(p_hat, k, n)
    for other in (p_hat - 1e-3, p_hat + 1e-3, 0.5, 0.01, 0.99):
        if 0 <= other <= 1:
            assert best >= mle.binomial_log_likelihood(other, k, n) - 1e-9


def test_binomial_broadcasts_a_scalar_number_of_trials() -> None:
    assert mle.binomial_mle(np.array([3, 5, 0]), 10) == pytest.approx(8 / 30)
    expected = stats.binom.logpmf([3, 5, 0], 10, 0.3).sum()
    assert mle.binomial_log_likelihood(0.3, [3, 5, 0], 10) == pytest.approx(expected, rel=LOGLIK_RTOL)


def test_binomial_log_likelihood_at_the_edges() -> None:
    assert mle.binomial_log_likelihood(0.0, [0, 0], [3, 4]) == 0.0
    assert mle.binomial_log_likelihood(0.0, [1, 0], [3, 4]) == -math.inf
    assert mle.binomial_log_likelihood(1.0, [3, 4], [3, 4]) == 0.0


@given(binary_samples(), probabilities())
def test_bernoulli_matches_scipy(x: np.ndarray, p: float) -> None:
    assert mle.bernoulli_mle(x) == pytest.approx(x.mean(), abs=0)
    assert close(mle.bernoulli_log_likelihood(p, x), float(stats.bernoulli.logpmf(x, p).sum()))


@given(real_samples())
def test_gaussian_mle_matches_scipy_norm_fit(x: np.ndarray) -> None:
    mu, sigma2 = mle.gaussian_mle(x)
    loc, scale = stats.norm.fit(x)  # the MLE: scale**2 divides by n
    assert mu == pytest.approx(loc, rel=1e-12, abs=1e-9)
    assert sigma2 == pytest.approx(scale**2, rel=1e-9, abs=1e-9)
    assert sigma2 == pytest.approx(np.var(x, ddof=0), rel=1e-12, abs=1e-12)


@given(real_samples(scale=100.0), finite_floats(-100.0, 100.0), variances())
def test_gaussian_log_likelihood_matches_scipy(x: np.ndarray, mu: float, sigma2: float) -> None:
    expected = float(stats.norm.logpdf(x, mu, math.sqrt(sigma2)).sum())
    assert close(mle.gaussian_log_likelihood(x, mu, sigma2), expected, rtol=1e-9, atol=1e-7)


@given(real_samples(scale=50.0).filter(lambda x: np.ptp(x) > 1e-3))
def test_gaussian_mle_maximises_its_own_likelihood(x: np.ndarray) -> None:
    mu, sigma2 = mle.gaussian_mle(x)
    best = mle.gaussian_log_likelihood(x, mu, sigma2)
    for dmu, factor in ((1e-2, 1.0), (-1e-2, 1.0), (0.0, 1.01), (0.0, 0.99)):
        assert best >= mle.gaussian_log_likelihood(x, mu + dmu, sigma2 * factor) - 1e-9 * abs(best)


@given(count_samples(), st.one_of(st.just(0.0), finite_floats(0.0, 60.0)))
@example(np.array([0, 0, 0]), 0.0)
@example(np.array([0, 1]), 0.0)
def test_poisson_matches_scipy(x: np.ndarray, lam: float) -> None:
    assert mle.poisson_mle(x) == pytest.approx(x.mean(), abs=0)
    expected = float(stats.poisson.logpmf(x, lam).sum())
    assert close(mle.poisson_log_likelihood(lam, x), expected, atol=1e-8)


def test_poisson_log_likelihood_with_zero_rate() -> None:
    assert mle.poisson_log_likelihood(0.0, [0, 0, 0]) == 0.0
    assert mle.poisson_log_likelihood(0.0, [0, 2]) == -math.inf


@given(count_tables())
def test_multinomial_mle_maximises_scipy_multinomial_likelihood(counts: np.ndarray) -> None:
    p_hat = mle.multinomial_mle(counts)
    np.testing.assert_allclose(p_hat.sum(-1), 1.0, rtol=0, atol=1e-12)
    rows = counts.reshape(-1, counts.shape[-1])
    for row, p in zip(rows, p_hat.reshape(rows.shape), strict=True):
        best = stats.multinomial.logpmf(row, row.sum(), p)
        uniform = np.full_like(p, 1 / p.size)
        assert best >= stats.multinomial.logpmf(row, row.sum(), 0.9 * p + 0.1 * uniform) - 1e-9


@given(logits_and_targets())
def test_categorical_nll_matches_scipy_logsumexp_and_torch(data: tuple[np.ndarray, np.ndarray]) -> None:
    logits, targets = data
    got = mle.categorical_nll(logits, targets)
    log_softmax = logits - special.logsumexp(logits, axis=1, keepdims=True)
    expected = -log_softmax[np.arange(len(targets)), targets].mean()
    torch_value = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets)).item()
    assert math.isfinite(got)
    # |logits| up to 1e4: float64 spacing there is ~2e-12, so the three agree to ~1e-11 absolute
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-10)
    assert got == pytest.approx(torch_value, rel=1e-12, abs=1e-10)


def test_categorical_nll_is_exact_for_huge_logits() -> None:
    logits = np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4]])
    assert mle.categorical_nll(logits, [1, 0]) == pytest.approx((2e4 + math.log(3)) / 2, rel=1e-15)


# gaussian_nll is graded on value and gradient: compare both with torch.distributions.Normal,
# separately, in float64. Autograd through two different expressions agrees to ~1e-12.
NLL_GRAD_ATOL = 1e-10


@given(real_samples(max_len=20, scale=10.0), finite_floats(-10.0, 10.0), finite_floats(-6.0, 6.0))
def test_gaussian_nll_value_and_gradients_match_torch_distributions(x: np.ndarray, mean: float, log_var: float) -> None:
    xt = torch.from_numpy(x)
    m1 = torch.tensor(mean, dtype=torch.float64, requires_grad=True)
    v1 = torch.tensor(log_var, dtype=torch.float64, requires_grad=True)
    m2 = m1.detach().clone().requires_grad_()
    v2 = v1.detach().clone().requires_grad_()
    got = mle.gaussian_nll(xt, m1, v1)
    expected = -torch.distributions.Normal(m2, torch.exp(0.5 * v2)).log_prob(xt).mean()
    assert got.shape == ()
    assert got.item() == pytest.approx(expected.item(), rel=1e-12, abs=1e-12), "value differs"
    got.backward()
    expected.backward()
    assert m1.grad is not None and v1.grad is not None
    assert m1.grad.item() == pytest.approx(m2.grad.item(), rel=1e-9, abs=NLL_GRAD_ATOL), "d/d mean differs"
    assert v1.grad.item() == pytest.approx(v2.grad.item(), rel=1e-9, abs=NLL_GRAD_ATOL), "d/d log_var differs"


def test_gaussian_nll_matches_torch_gaussian_nll_loss_and_keeps_dtype() -> None:
    x = torch.linspace(-2, 3, 7, dtype=torch.float32)
    mean, log_var = torch.tensor(0.3), torch.tensor(0.7)
    got = mle.gaussian_nll(x, mean, log_var)
    expected = torch.nn.functional.gaussian_nll_loss(
        torch.full_like(x, 0.3), x, torch.full_like(x, math.exp(0.7)), full=True
    )
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
