"""reference.divergences against scipy.stats, scipy.spatial and torch.distributions, and the identities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from scipy import spatial, stats
from torch import distributions as td

from grader.grading.strategies import gaussian_pairs, latent_gaussians, prob_pairs, prob_vectors, sample_pairs
from reference import divergences as dv

# Sums of at most 8 terms p log(p/q), each exact to a few ulps: agreement to 1e-12
# absolute is the float64 floor with margin; relative 1e-9 covers KL values in the hundreds.
DIV_ATOL = 1e-12
DIV_RTOL = 1e-9


def T(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def assert_close(got: torch.Tensor, expected: np.ndarray, rtol: float = DIV_RTOL, atol: float = DIV_ATOL) -> None:
    np.testing.assert_allclose(got.numpy(), expected, rtol=rtol, atol=atol)


@given(prob_vectors(batch=(3,)))
def test_entropy_matches_scipy_and_torch_categorical(p: np.ndarray) -> None:
    got = dv.entropy(T(p))
    assert got.shape == (3,)
    assert_close(got, stats.entropy(p, axis=-1))
    assert_close(got, td.Categorical(probs=T(p)).entropy().numpy())


@given(prob_pairs())
@example((np.array([0.5, 0.5, 0.0]), np.array([1.0, 0.0, 0.0])))  # q = 0 < p: infinite
@example((np.array([1.0, 0.0]), np.array([1.0, 0.0])))  # p = q with a zero
def test_kl_matches_scipy_entropy(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    got = dv.kl_divergence(T(p), T(q))
    expected = stats.entropy(p, q, axis=-1)  # inf where q = 0 < p
    assert not torch.isnan(got).any()
    assert_close(got, expected)
    assert (got >= 0).all()


@given(prob_pairs())
def test_cross_entropy_is_entropy_plus_kl(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    ce = dv.cross_entropy(T(p), T(q))
    assert_close(ce, stats.entropy(p, axis=-1) + stats.entropy(p, q, axis=-1))
    finite = torch.isfinite(ce)
    identity = (dv.entropy(T(p)) + dv.kl_divergence(T(p), T(q)))[finite]
    assert_close(ce[finite], identity.numpy())


@given(prob_vectors(batch=(2,)))
def test_kl_of_a_distribution_with_itself_is_exactly_zero(p: np.ndarray) -> None:
    assert (dv.kl_divergence(T(p), T(p)) == 0).all()


@given(prob_pairs())
@example((np.array([1.0, 0.0]), np.array([0.0, 1.0])))  # disjoint supports: JS = log 2
def test_js_matches_scipy_jensenshannon_squared(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    got = dv.js_divergence(T(p), T(q))
    # scipy returns the Jensen-Shannon *distance*, the square root of the divergence
    expected = spatial.distance.jensenshannon(p, q, axis=-1) ** 2
    assert_close(got, np.asarray(expected), atol=1e-12)
    assert torch.isfinite(got).all()
    assert ((got >= 0) & (got <= math.log(2))).all()
    assert torch.equal(got, dv.js_divergence(T(q), T(p)))


@given(gaussian_pairs())
def test_gaussian_kl_matches_torch_normal_kl(params: tuple[np.ndarray, ...]) -> None:
    mu1, s1, mu2, s2 = map(T, params)
    got = dv.gaussian_kl(mu1, s1, mu2, s2)
    expected = td.kl_divergence(td.Normal(mu1, s1), td.Normal(mu2, s2))
    # sigmas span 1e-3..1e3, so KL reaches ~1e12: relative agreement is what float64 offers
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)
    assert (got >= -1e-12).all()


@given(latent_gaussians())
def test_kl_to_standard_normal_matches_torch_independent_normal_kl(ml: tuple[np.ndarray, np.ndarray]) -> None:
    mu, logvar = map(T, ml)
    got = dv.kl_to_standard_normal(mu, logvar)
    q = td.Independent(td.Normal(mu, torch.exp(0.5 * logvar)), 1)
    prior = td.Independent(td.Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    assert got.shape == mu.shape[:-1]
    torch.testing.assert_close(got, td.kl_divergence(q, prior), rtol=1e-9, atol=1e-10)
    # and it is the univariate Gaussian KL summed over the latent dimension
    per_dim = dv.gaussian_kl(mu, torch.exp(0.5 * logvar), torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(got, per_dim.sum(-1), rtol=1e-9, atol=1e-10)


@given(sample_pairs())
def test_wasserstein_matches_scipy(xy: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = xy
    got = dv.wasserstein_1d(T(x), T(y))
    assert got.shape == ()
    assert got.item() == pytest.approx(stats.wasserstein_distance(x, y), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_results_keep_dtype_and_broadcast_leading_dims(dtype: torch.dtype) -> None:
    p = torch.tensor([[0.2, 0.8], [0.5, 0.5], [1.0, 0.0]], dtype=dtype)  # (3, 2)
    q = torch.tensor([0.4, 0.6], dtype=dtype)  # (2,) broadcasts over p's batch
    for fn in (dv.cross_entropy, dv.kl_divergence, dv.js_divergence):
        out = fn(p, q)
        assert out.shape == (3,) and out.dtype == dtype, fn.__name__
    mu = torch.zeros(2, 3, 4, dtype=dtype)
    assert dv.kl_to_standard_normal(mu, mu).shape == (2, 3)
    assert dv.gaussian_kl(mu, mu + 1, torch.zeros(4, dtype=dtype), torch.ones(4, dtype=dtype)).shape == (2, 3, 4)


def test_float32_inputs_agree_with_float64() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.0])
    q = np.array([0.25, 0.25, 0.25, 0.0, 0.25])
    for fn in (dv.kl_divergence, dv.js_divergence, dv.cross_entropy):
        a = fn(T(p).float(), T(q).float())
        b = fn(T(p), T(q))
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-6)
