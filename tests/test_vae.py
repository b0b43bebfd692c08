"""reference.vae against torch.distributions (Bernoulli log-likelihood, Normal KL, rsample) and by hand."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import distributions as td

from grader.grading.strategies import latent_gaussians, probabilities_open
from reference import vae

ELBO_RTOL = 1e-10  # float64 sums of a few dozen terms in two different orders


@given(latent_gaussians(), st.integers(0, 2**16))
def test_reparameterize_is_normal_rsample_with_the_same_eps(ml: tuple, seed: int) -> None:
    mu, logvar = (torch.from_numpy(a).requires_grad_() for a in ml)
    eps = torch.randn(mu.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    z = vae.reparameterize(mu, logvar, eps)
    # Normal.rsample is loc + scale * eps with eps from the global generator: reproduce it
    torch.manual_seed(seed)
    expected = td.Normal(mu, torch.exp(0.5 * logvar)).rsample()
    torch.manual_seed(seed)
    z2 = vae.reparameterize(mu, logvar, torch.randn_like(mu))
    torch.testing.assert_close(z2, expected, rtol=1e-12, atol=1e-12)
    z.sum().backward()  # gradients flow: dz/dmu = 1, dz/dlogvar = exp(logvar/2) eps / 2
    assert mu.grad is not None and logvar.grad is not None
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


@given(st.data())
def test_elbo_loss_matches_torch_distributions(data: st.DataObject) -> None:
    batch, dim, latent = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 8)), data.draw(st.integers(1, 4))
    recon = torch.from_numpy(data.draw(probabilities_open((batch, dim))))
    x = torch.from_numpy(data.draw(probabilities_open((batch, dim))))  # non-binary x is allowed by BCE
    mu, logvar = torch.randn(batch, latent, dtype=torch.float64), torch.randn(batch, latent, dtype=torch.float64)
    beta = data.draw(st.sampled_from([0.0, 0.5, 1.0, 4.0]))
    total, rec, kl = vae.elbo_loss(recon, x, mu, logvar, beta)
    # -log p(x|z) of a Bernoulli with mean recon, written out (valid for soft x as well)
    expected_rec = -(x * recon.log() + (1 - x) * (1 - recon).log()).sum()
    q = td.Independent(td.Normal(mu, torch.exp(0.5 * logvar)), 1)
    prior = td.Independent(td.Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    expected_kl = td.kl_divergence(q, prior).sum()
    assert total.shape == rec.shape == kl.shape == ()
    assert rec.item() == pytest.approx(expected_rec.item(), rel=ELBO_RTOL)
    assert kl.item() == pytest.approx(expected_kl.item(), rel=ELBO_RTOL, abs=1e-12)
    assert total.item() == pytest.approx(rec.item() + beta * kl.item(), rel=1e-14)


def test_elbo_reconstruction_is_bernoulli_log_likelihood_for_binary_x() -> None:
    recon = torch.tensor([[0.9, 0.2, 0.6]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 1.0]], dtype=torch.float64)
    _, rec, _ = vae.elbo_loss(recon, x, torch.zeros(1, 2), torch.zeros(1, 2))
    assert rec.item() == pytest.approx(-td.Bernoulli(probs=recon).log_prob(x).sum().item(), rel=1e-14)


def test_vae_layers_are_the_contracts() -> None:
    model = vae.VAE(input_dim=12, hidden_dim=7, latent_dim=3)
    assert [type(m).__name__ for m in model.encoder] == ["Linear", "ReLU", "Linear", "ReLU"]
    assert [type(m).__name__ for m in model.decoder] == ["Linear", "ReLU", "Linear", "ReLU", "Linear", "Sigmoid"]
    assert sorted(model.state_dict()) == sorted(
        [f"encoder.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")]
        + [f"decoder.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")]
        + [f"fc_{n}.{p}" for n in ("mu", "logvar") for p in ("weight", "bias")]
    )
    assert model.fc_mu.out_features == model.fc_logvar.out_features == 3


def test_forward_uses_eps_in_training_and_the_mean_in_eval() -> None:
    torch.manual_seed(0)
    model = vae.VAE(input_dim=12, hidden_dim=7, latent_dim=3).double()
    x = torch.rand(5, 12, dtype=torch.float64)
    eps = torch.randn(5, 3, dtype=torch.float64)
    mu, logvar = model.encode(x)
    recon, mu2, logvar2 = model(x, eps)
    torch.testing.assert_close(recon, model.decode(mu + torch.exp(0.5 * logvar) * eps))
    assert torch.equal(mu, mu2) and torch.equal(logvar, logvar2)
    torch.manual_seed(3)
    drawn, _, _ = model(x)
    torch.manual_seed(3)
    torch.testing.assert_close(drawn, model.decode(mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)))
    model.eval()
    assert torch.equal(model(x, eps)[0], model.decode(mu))


def test_below_16_numbers_torch_draws_float32_normals_as_its_float64_ones_rounded() -> None:
    """vae.VAE compares a float32 model's own draw of eps (forward(x) after a seed) with the reference's in
    float64: that holds only while a draw of this size takes the scalar path, as it does below 16 numbers."""
    for n in range(1, 13):  # the check's batch x latent is at most 4 x 3
        torch.manual_seed(1)
        single = torch.randn_like(torch.zeros(n, dtype=torch.float32))
        torch.manual_seed(1)
        double = torch.randn_like(torch.zeros(n, dtype=torch.float64))
        assert torch.equal(single, double.float()), n


def test_vae_train_step_zeroes_stale_gradients_and_reports_floats() -> None:
    torch.manual_seed(0)
    model = vae.VAE(input_dim=12, hidden_dim=7, latent_dim=3).double()
    copy = vae.VAE(input_dim=12, hidden_dim=7, latent_dim=3).double()
    copy.load_state_dict(model.state_dict())
    x = torch.rand(4, 12, dtype=torch.float64)
    for p in model.parameters():
        p.grad = torch.full_like(p, 50.0)
    model.eval()  # the step must switch to training mode itself
    torch.manual_seed(9)
    out = vae.vae_train_step(model, x, torch.optim.SGD(model.parameters(), lr=0.01), beta=2.0)
    assert model.training
    torch.manual_seed(9)
    recon, mu, logvar = copy(x)
    total, _, kl = vae.elbo_loss(recon, x, mu, logvar, 2.0)
    total.backward()
    assert set(out) == {"total_loss", "recon_loss", "kl_loss"}
    assert all(type(v) is float for v in out.values())
    assert out["total_loss"] == pytest.approx(total.item(), rel=1e-12)
    assert out["kl_loss"] == pytest.approx(kl.item(), rel=1e-12)
    for p, q in zip(model.parameters(), copy.parameters(), strict=True):
        assert q.grad is not None
        torch.testing.assert_close(p, q - 0.01 * q.grad, rtol=1e-12, atol=1e-12)
