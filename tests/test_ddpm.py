"""reference.ddpm against diffusers' DDPMScheduler and get_timestep_embedding, the closed forms of
Ho et al. (2020), and Monte Carlo moments of the forward process."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler
from diffusers.models.embeddings import get_timestep_embedding
from hypothesis import given
from hypothesis import strategies as st

from grader.grading.strategies import data_shapes, timesteps
from reference import ddpm

# diffusers keeps its schedule in float32: alphas_cumprod carries a relative error of
# about T * 6e-8 ~ 6e-5 after 1000 products, and 1 - alpha_bar near t = 0 (~1e-4) is a
# cancellation that magnifies float32's 6e-8 to ~1e-4 relative. Against diffusers we
# therefore accept 2e-4 relative / 2e-5 absolute on unit-scale tensors.
DIFFUSERS_RTOL = 2e-4
DIFFUSERS_ATOL = 2e-5
# p_sample_step divides by sqrt(alpha_bar_t) inside diffusers (x0 prediction), which near
# t = T - 1 is ~6e-3 for the linear schedule: the float32 error grows ~160x before the
# posterior coefficients shrink it back; 1e-3 absolute covers it with margin.
DIFFUSERS_STEP_ATOL = 1e-3
# diffusers builds the embedding in float32: t * omega with t ~ 1e3 carries ~1e3 * 6e-8 of
# argument error, which sin/cos pass through unchanged: 2e-4 absolute.
EMBEDDING_ATOL = 2e-4
# Same formula, both in float64, different order of operations.
CLOSED_FORM_RTOL = 1e-12

T_DIFFUSERS = 1000


def scheduler(schedule: str = "linear") -> DDPMScheduler:
    return DDPMScheduler(
        num_train_timesteps=T_DIFFUSERS,
        beta_schedule=schedule,
        variance_type="fixed_small",
        clip_sample=False,
        prediction_type="epsilon",
    )


def betas_for(schedule: str) -> torch.Tensor:
    if schedule == "linear":
        return ddpm.linear_beta_schedule(T_DIFFUSERS)
    return ddpm.cosine_beta_schedule(T_DIFFUSERS)


# ---------------------------------------------------------------------------- schedules


def test_linear_schedule_matches_diffusers() -> None:
    ours = ddpm.linear_beta_schedule(T_DIFFUSERS)
    assert ours.dtype == torch.float64 and ours.shape == (T_DIFFUSERS,)
    assert ours[0].item() == 1e-4 and ours[-1].item() == pytest.approx(0.02, rel=1e-15)
    torch.testing.assert_close(ours.float(), scheduler("linear").betas, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("T", [10, 100, 1000, 4000])
def test_cosine_schedule_matches_diffusers_squaredcos_cap_v2(T: int) -> None:
    ours = ddpm.cosine_beta_schedule(T)
    theirs = DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2").betas
    assert ours.dtype == torch.float64 and ours.shape == (T,)
    # diffusers computes in float64 Python math, then stores float32
    torch.testing.assert_close(ours.float(), theirs, rtol=1e-6, atol=1e-9)
    assert ours.max().item() <= 0.999


def test_cosine_schedule_follows_nichol_dhariwal_alpha_bar() -> None:
    T, s = 50, 0.008
    abar = ddpm.Schedule.from_betas(ddpm.cosine_beta_schedule(T)).alpha_bars
    f = np.cos(((np.arange(T + 1) / T) + s) / (1 + s) * np.pi / 2) ** 2
    np.testing.assert_allclose(abar[:-1].numpy(), (f[1:] / f[0])[:-1], rtol=1e-12)


# ---------------------------------------------------------------------------- forward process


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
@given(data=st.data())
def test_q_sample_matches_diffusers_add_noise(schedule: str, data: st.DataObject) -> None:
    batch = data.draw(st.integers(1, 6))
    shape = data.draw(data_shapes(batch))
    t = torch.from_numpy(data.draw(timesteps(T_DIFFUSERS, batch)))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))
    x0, noise = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    ours = ddpm.q_sample(x0.double(), t, noise.double(), betas_for(schedule))
    theirs = scheduler(schedule).add_noise(x0, noise, t)
    torch.testing.assert_close(ours.float(), theirs, rtol=DIFFUSERS_RTOL, atol=DIFFUSERS_ATOL)


@given(data=st.data())
def test_q_sample_is_per_sample_for_any_rank(data: st.DataObject) -> None:
    """Each sample of a mixed batch equals that sample computed alone, for 2-D and 4-D x."""
    batch = data.draw(st.integers(2, 5))
    shape = data.draw(data_shapes(batch))
    t = torch.from_numpy(data.draw(timesteps(T_DIFFUSERS, batch)))
    x0, noise = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    betas = ddpm.linear_beta_schedule(T_DIFFUSERS)
    together = ddpm.q_sample(x0, t, noise, betas)
    abar = torch.cumprod(1 - betas, 0)
    for b in range(batch):
        alone = ddpm.q_sample(x0[b : b + 1], t[b : b + 1], noise[b : b + 1], betas)[0]
        assert torch.equal(together[b], alone)
        closed = abar[t[b]].sqrt() * x0[b] + (1 - abar[t[b]]).sqrt() * noise[b]
        torch.testing.assert_close(together[b], closed, rtol=CLOSED_FORM_RTOL, atol=1e-14)


@pytest.mark.parametrize("t_value", [0, 10, 500, 999])
def test_q_sample_moments_match_the_closed_form(t_value: int) -> None:
    """Over many draws of noise, x_t has mean sqrt(abar) x_0 and variance 1 - abar."""
    n = 200_000
    betas = ddpm.linear_beta_schedule(T_DIFFUSERS)
    abar = torch.cumprod(1 - betas, 0)[t_value].item()
    x0 = torch.full((n, 1), 0.7, dtype=torch.float64)
    noise = torch.randn(n, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(t_value))
    xt = ddpm.q_sample(x0, torch.full((n,), t_value), noise, betas)
    # standard errors: sd / sqrt(n) for the mean, sd^2 * sqrt(2 / n) for the variance; 5 of them
    sd = math.sqrt(1 - abar)
    assert xt.mean().item() == pytest.approx(math.sqrt(abar) * 0.7, abs=5 * sd / math.sqrt(n))
    assert xt.var().item() == pytest.approx(1 - abar, abs=5 * sd**2 * math.sqrt(2 / n))


def test_posterior_at_t0_is_x0_with_zero_variance() -> None:
    betas = ddpm.linear_beta_schedule(T_DIFFUSERS)
    x0, xt = torch.randn(3, 1, 2, 2, dtype=torch.float64), torch.randn(3, 1, 2, 2, dtype=torch.float64)
    mean, var = ddpm.q_posterior_mean_variance(x0, xt, torch.zeros(3, dtype=torch.long), betas)
    torch.testing.assert_close(mean, x0, rtol=1e-12, atol=1e-12)
    assert var.shape == (3, 1, 1, 1) and (var == 0).all()


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
@given(data=st.data())
def test_posterior_matches_closed_form_and_diffusers_variance(schedule: str, data: st.DataObject) -> None:
    batch = data.draw(st.integers(1, 5))
    shape = data.draw(data_shapes(batch))
    t = torch.from_numpy(data.draw(timesteps(T_DIFFUSERS, batch)))
    betas = betas_for(schedule)
    x0, xt = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    mean, var = ddpm.q_posterior_mean_variance(x0, xt, t, betas)
    assert var.shape == (batch, *([1] * (len(shape) - 1)))
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    sched = scheduler(schedule)
    for b, tb in enumerate(t.tolist()):
        abar_prev = abar[tb - 1] if tb > 0 else torch.tensor(1.0, dtype=torch.float64)
        c0 = betas[tb] * abar_prev.sqrt() / (1 - abar[tb])
        ct = (1 - abar_prev) * alphas[tb].sqrt() / (1 - abar[tb])
        torch.testing.assert_close(mean[b], c0 * x0[b] + ct * xt[b], rtol=CLOSED_FORM_RTOL, atol=1e-13)
        expected_var = betas[tb] * (1 - abar_prev) / (1 - abar[tb])
        torch.testing.assert_close(var[b].flatten()[0], expected_var, rtol=CLOSED_FORM_RTOL, atol=0.0)
        if tb > 0:  # diffusers clamps the variance at t = 0 to 1e-20 (it takes its log elsewhere)
            theirs = sched._get_variance(tb).double()
            assert var[b].item() == pytest.approx(theirs.item(), rel=DIFFUSERS_RTOL * 5)


@given(data=st.data())
def test_predict_x0_inverts_q_sample(data: st.DataObject) -> None:
    batch = data.draw(st.integers(1, 5))
    shape = data.draw(data_shapes(batch))
    t = torch.from_numpy(data.draw(timesteps(T_DIFFUSERS, batch)))
    betas = ddpm.cosine_beta_schedule(T_DIFFUSERS)
    x0, noise = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    xt = ddpm.q_sample(x0, t, noise, betas)
    # at t = T-1 of the cosine schedule sqrt(abar) ~ 1e-4 amplifies rounding in x_t ~1e4-fold
    torch.testing.assert_close(ddpm.predict_x0_from_eps(xt, t, noise, betas), x0, rtol=1e-8, atol=1e-8)


# ---------------------------------------------------------------------------- reverse process


class FixedEps(torch.nn.Module):
    """A stand-in eps-model whose output depends on x_t and t in a known way."""

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        scale = (t.to(x_t.dtype) / T_DIFFUSERS).reshape(-1, *([1] * (x_t.ndim - 1)))
        return torch.tanh(x_t) * 0.5 + scale


@pytest.mark.parametrize("schedule", ["linear", "squaredcos_cap_v2"])
@pytest.mark.parametrize("t_value", [0, 1, 17, 500, 998, 999])
def test_p_sample_step_matches_diffusers_step(schedule: str, t_value: int) -> None:
    model = FixedEps()
    shape = (4, 1, 3, 3)
    xt = torch.randn(shape, generator=torch.Generator().manual_seed(t_value))
    t = torch.full((shape[0],), t_value, dtype=torch.long)
    eps_hat = model(xt, t)
    theirs = scheduler(schedule).step(eps_hat, t_value, xt, generator=torch.Generator().manual_seed(7)).prev_sample
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(7))  # the draw diffusers made
    ours = ddpm.p_sample_step(model, xt.double(), t, noise.double(), betas_for(schedule))
    torch.testing.assert_close(ours.float(), theirs, rtol=DIFFUSERS_RTOL, atol=DIFFUSERS_STEP_ATOL)


@given(data=st.data())
def test_p_sample_step_masks_noise_per_sample_where_t_is_0(data: st.DataObject) -> None:
    batch = data.draw(st.integers(2, 5))
    shape = data.draw(data_shapes(batch))
    t = torch.from_numpy(data.draw(timesteps(T_DIFFUSERS, batch)))
    betas = ddpm.linear_beta_schedule(T_DIFFUSERS)
    model = FixedEps()
    xt = torch.randn(shape, dtype=torch.float64)
    noise = torch.randn(shape, dtype=torch.float64)
    with_noise = ddpm.p_sample_step(model, xt, t, noise, betas)
    without = ddpm.p_sample_step(model, xt, t, torch.zeros_like(noise), betas)
    mean, var = ddpm.q_posterior_mean_variance(ddpm.predict_x0_from_eps(xt, t, model(xt, t), betas), xt, t, betas)
    # the mean of Algorithm 2 is the posterior mean at the predicted x_0 (Ho et al. eq. 11)
    torch.testing.assert_close(without, mean, rtol=1e-9, atol=1e-9)
    for b, tb in enumerate(t.tolist()):
        if tb == 0:
            assert torch.equal(with_noise[b], without[b])
        else:
            torch.testing.assert_close(with_noise[b], without[b] + var[b].sqrt() * noise[b], rtol=1e-12, atol=1e-12)


def test_p_sample_loop_draws_in_the_contract_order() -> None:
    T = 5
    betas = ddpm.linear_beta_schedule(T, 1e-3, 0.2)
    model = FixedEps()
    shape = (3, 4)
    out = ddpm.p_sample_loop(model, shape, betas, generator=torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(shape, generator=gen)
    for step in reversed(range(T)):
        noise = torch.randn(shape, generator=gen)
        x = ddpm.p_sample_step(model, x, torch.full((3,), step), noise, betas)
    assert out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.equal(out, x)


def test_p_sample_loop_without_generator_uses_torchs_default() -> None:
    betas = ddpm.linear_beta_schedule(3)
    torch.manual_seed(11)
    a = ddpm.p_sample_loop(FixedEps(), (2, 3), betas)
    torch.manual_seed(11)
    b = ddpm.p_sample_loop(FixedEps(), (2, 3), betas)
    assert torch.equal(a, b)


# ---------------------------------------------------------------------------- training


def test_ddpm_loss_is_mse_on_q_sample() -> None:
    betas = ddpm.linear_beta_schedule(T_DIFFUSERS)
    model = ddpm.Denoiser(input_dim=16, hidden_dim=32, time_dim=8).double()
    x0, noise = torch.randn(5, 1, 4, 4, dtype=torch.float64), torch.randn(5, 1, 4, 4, dtype=torch.float64)
    t = torch.tensor([0, 999, 3, 500, 0])
    xt = scheduler().add_noise(x0.float(), noise.float(), t)
    expected = ((model(xt.double(), t) - noise) ** 2).mean()
    assert ddpm.ddpm_loss(model, x0, t, noise, betas).item() == pytest.approx(expected.item(), rel=1e-3)


def test_ddpm_train_step_zeroes_stale_gradients_and_takes_one_sgd_step() -> None:
    torch.manual_seed(0)
    betas = ddpm.linear_beta_schedule(100)
    model = ddpm.Denoiser(input_dim=6, hidden_dim=16, time_dim=8).double()
    copy = ddpm.Denoiser(input_dim=6, hidden_dim=16, time_dim=8).double()
    copy.load_state_dict(model.state_dict())
    for p in model.parameters():
        p.grad = torch.full_like(p, 123.0)  # stale: a step that forgets zero_grad moves far
    lr = 0.1
    x0, noise, t = (
        torch.randn(4, 6, dtype=torch.float64),
        torch.randn(4, 6, dtype=torch.float64),
        torch.tensor([0, 5, 50, 99]),
    )
    loss = ddpm.ddpm_train_step(model, torch.optim.SGD(model.parameters(), lr=lr), x0, betas, t, noise)
    expected_loss = ddpm.ddpm_loss(copy, x0, t, noise, betas)
    expected_loss.backward()
    assert loss == pytest.approx(expected_loss.item(), rel=1e-12)
    for p, q in zip(model.parameters(), copy.parameters(), strict=True):
        assert q.grad is not None
        torch.testing.assert_close(p, q - lr * q.grad, rtol=1e-12, atol=1e-12)


def test_ddpm_train_step_draws_t_then_noise_from_the_default_generator() -> None:
    betas = ddpm.linear_beta_schedule(50)
    x0 = torch.randn(3, 6)
    make = lambda: ddpm.Denoiser(6, 16, 8)  # noqa: E731
    torch.manual_seed(1)
    a = make()
    b = make()
    b.load_state_dict(a.state_dict())
    torch.manual_seed(5)
    loss_a = ddpm.ddpm_train_step(a, torch.optim.SGD(a.parameters(), lr=0.1), x0, betas)
    torch.manual_seed(5)
    t = torch.randint(0, 50, (3,))
    noise = torch.randn_like(x0)
    loss_b = ddpm.ddpm_train_step(b, torch.optim.SGD(b.parameters(), lr=0.1), x0, betas, t, noise)
    assert loss_a == loss_b


# ---------------------------------------------------------------------------- embedding, model


@given(data=st.data())
def test_timestep_embedding_matches_diffusers(data: st.DataObject) -> None:
    dim = data.draw(st.sampled_from([4, 6, 32, 128]))
    t = torch.from_numpy(data.draw(timesteps(T_DIFFUSERS, data.draw(st.integers(1, 6)))))
    ours = ddpm.timestep_embedding(t, dim)
    # flip_sin_to_cos=False keeps [sin, cos]; downscale_freq_shift=1 divides by half - 1
    theirs = get_timestep_embedding(t, dim, flip_sin_to_cos=False, downscale_freq_shift=1)
    assert ours.dtype == torch.float32 and ours.shape == (t.shape[0], dim)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=EMBEDDING_ATOL)


def test_timestep_embedding_closed_form() -> None:
    t = torch.tensor([0, 1, 999])
    emb = ddpm.timestep_embedding(t, 8).double()
    freqs = torch.tensor([1.0, 10000 ** (-1 / 3), 10000 ** (-2 / 3), 1e-4], dtype=torch.float64)
    args = t.double()[:, None] * freqs
    torch.testing.assert_close(emb, torch.cat([args.sin(), args.cos()], -1), rtol=0, atol=1e-7)


def test_denoiser_takes_vectors_and_images() -> None:
    model = ddpm.Denoiser(input_dim=16, hidden_dim=32, time_dim=8)
    t = torch.tensor([0, 7])
    assert model(torch.randn(2, 16), t).shape == (2, 16)
    assert model(torch.randn(2, 1, 4, 4), t).shape == (2, 1, 4, 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_results_keep_x_dtype(dtype: torch.dtype) -> None:
    betas = ddpm.linear_beta_schedule(10)
    x = torch.randn(2, 3, dtype=dtype)
    t = torch.tensor([0, 9])
    assert ddpm.q_sample(x, t, x, betas).dtype == dtype
    mean, var = ddpm.q_posterior_mean_variance(x, x, t, betas)
    assert mean.dtype == dtype and var.dtype == dtype
    assert ddpm.predict_x0_from_eps(x, t, x, betas).dtype == dtype


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_everything_stays_on_cuda() -> None:
    dev = torch.device("cuda")
    betas = ddpm.linear_beta_schedule(T_DIFFUSERS)  # a CPU schedule is fine: coefficients move to x
    x = torch.randn(4, 1, 4, 4, device=dev)
    t = torch.tensor([0, 1, 500, 999], device=dev)
    assert ddpm.q_sample(x, t, x, betas).device.type == "cuda"
    mean, var = ddpm.q_posterior_mean_variance(x, x, t, betas.to(dev))
    assert mean.device.type == "cuda" and var.device.type == "cuda"
    model = ddpm.Denoiser(16, 32, 8).to(dev)
    assert ddpm.p_sample_step(model, x, t, x, betas).device.type == "cuda"
    assert ddpm.timestep_embedding(t, 8).device.type == "cuda"
    out = ddpm.p_sample_loop(model, (2, 16), ddpm.linear_beta_schedule(5), torch.Generator(device=dev))
    assert out.device.type == "cuda"
    loss = ddpm.ddpm_train_step(model, torch.optim.Adam(model.parameters()), x, betas)
    assert math.isfinite(loss)


def test_schedule_is_derived_once_and_rederived_after_an_in_place_change() -> None:
    betas = ddpm.linear_beta_schedule(20)
    first = ddpm.Schedule.from_betas(betas)
    assert ddpm.Schedule.from_betas(betas) is first
    x, t = torch.ones(1, 1, dtype=torch.float64), torch.tensor([19])
    before = ddpm.q_sample(x, t, torch.zeros_like(x), betas)
    betas.mul_(2)  # an in-place edit bumps the tensor's version counter
    assert ddpm.Schedule.from_betas(betas) is not first
    after = ddpm.q_sample(x, t, torch.zeros_like(x), betas)
    expected = torch.cumprod(1 - betas, 0)[19].sqrt()
    assert after.item() == pytest.approx(expected.item(), rel=1e-14) and after.item() < before.item()


def test_schedule_cache_never_confuses_two_tensors() -> None:
    for i in range(50):  # freed tensors' ids get reused; the weak reference tells them apart
        betas = ddpm.linear_beta_schedule(10, 1e-4, 0.01 + i * 1e-3)
        assert ddpm.Schedule.from_betas(betas).betas[-1].item() == pytest.approx(0.01 + i * 1e-3)
