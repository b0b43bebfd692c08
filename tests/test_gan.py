"""reference.gan: BCE losses against torch's BCE and the value function, Goodfellow et al.'s
Proposition 1 and Theorem 1 on discrete distributions, and the order of the training step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from grader.grading.strategies import prob_pairs, probabilities_open
from reference import gan
from reference.divergences import js_divergence


@given(st.data())
def test_losses_match_torch_bce_and_the_value_function(data: st.DataObject) -> None:
    n_real, n_fake = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    real = torch.from_numpy(data.draw(probabilities_open((n_real, 1))))
    fake = torch.from_numpy(data.draw(probabilities_open((n_fake, 1))))
    d_loss = gan.discriminator_loss(real, fake)
    v = gan.gan_value_function(real, fake)
    with_logits = F.binary_cross_entropy_with_logits(
        torch.logit(real), torch.ones_like(real)
    ) + F.binary_cross_entropy_with_logits(torch.logit(fake), torch.zeros_like(fake))
    assert d_loss.item() == pytest.approx(with_logits.item(), rel=1e-9)
    assert v.item() == pytest.approx(-d_loss.item(), rel=1e-12)  # L_D = -V(D, G)
    assert v.item() == pytest.approx(real.log().mean().item() + (1 - fake).log().mean().item(), rel=1e-12)
    g = gan.generator_loss(fake)
    assert g.item() == pytest.approx(-fake.log().mean().item(), rel=1e-12)  # non-saturating, not log(1 - D)


def test_generator_loss_is_non_saturating() -> None:
    """Where D rejects the fakes confidently, -log D(G(z)) has a steep slope; log(1 - D) is flat."""
    fake = torch.tensor([1e-4], dtype=torch.float64, requires_grad=True)
    gan.generator_loss(fake).backward()
    assert fake.grad is not None and fake.grad.item() == pytest.approx(-1e4, rel=1e-9)


@given(prob_pairs())
def test_optimal_discriminator_and_theorem_1(pq: tuple[np.ndarray, np.ndarray]) -> None:
    """D* = p_data / (p_data + p_g) and V(D*, G) = -log 4 + 2 JS(p_data || p_g) (Goodfellow et al. 2014)."""
    p_data, p_g = (torch.from_numpy(a) for a in pq)
    d_star = gan.optimal_discriminator(p_data, p_g)
    both_zero = (p_data == 0) & (p_g == 0)
    assert (d_star[both_zero] == 0.5).all()
    value = (torch.xlogy(p_data, d_star) + torch.xlogy(p_g, 1 - d_star)).sum(-1)
    torch.testing.assert_close(value, -math.log(4) + 2 * js_divergence(p_data, p_g), rtol=1e-10, atol=1e-12)


def test_optimal_discriminator_beats_any_other() -> None:
    p_data = torch.tensor([0.5, 0.3, 0.2, 0.0], dtype=torch.float64)
    p_g = torch.tensor([0.1, 0.3, 0.2, 0.4], dtype=torch.float64)
    d_star = gan.optimal_discriminator(p_data, p_g)

    def v(d: torch.Tensor) -> float:
        return (torch.xlogy(p_data, d) + torch.xlogy(p_g, 1 - d)).sum().item()

    for delta in (0.05, -0.05):
        assert v(d_star) > v((d_star + delta).clamp(1e-6, 1 - 1e-6))


class Recorder(torch.nn.Module):
    """Wraps a discriminator and records every output it gives, in order."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.outputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        self.outputs.append(out.detach().clone())
        return out


def test_gan_train_step_updates_d_first_then_g_against_the_updated_d() -> None:
    torch.manual_seed(0)
    G, D = gan.Generator(4, 8, 6).double(), gan.Discriminator(6, 8).double()
    G2, D2 = gan.Generator(4, 8, 6).double(), gan.Discriminator(6, 8).double()
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    for p in [*G.parameters(), *D.parameters()]:
        p.grad = torch.full_like(p, 99.0)  # stale gradients that zero_grad must clear
    real = torch.rand(5, 6, dtype=torch.float64) * 2 - 1
    z_d, z_g = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    lr = 0.05
    out = gan.gan_train_step(
        G, D, real, torch.optim.SGD(G.parameters(), lr), torch.optim.SGD(D.parameters(), lr), z_d, z_g
    )

    # by hand: D step on real and G(z_d) detached, then G step through the *updated* D
    real_out, fake_out = D2(real), D2(G2(z_d).detach())
    d_loss = gan.discriminator_loss(real_out, fake_out)
    d_loss.backward()
    with torch.no_grad():
        for p in D2.parameters():
            assert p.grad is not None
            p -= lr * p.grad
    for p in D2.parameters():
        p.grad = None
    g_loss = gan.generator_loss(D2(G2(z_g)))
    g_loss.backward()
    with torch.no_grad():
        for p in G2.parameters():
            assert p.grad is not None
            p -= lr * p.grad
    for a, b in zip([*G.parameters(), *D.parameters()], [*G2.parameters(), *D2.parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert out["d_loss"] == pytest.approx(d_loss.item(), rel=1e-12)
    assert out["d_loss"] == pytest.approx(out["d_loss_real"] + out["d_loss_fake"], rel=1e-12)
    assert out["g_loss"] == pytest.approx(g_loss.item(), rel=1e-12)
    assert out["real_acc"] == (real_out > 0.5).double().mean().item()
    assert out["fake_acc"] == (fake_out <= 0.5).double().mean().item()
    assert all(type(v) is float for v in out.values())


def test_gan_train_step_draws_z_d_then_z_g() -> None:
    torch.manual_seed(0)
    G, D = gan.Generator(4, 8, 6), gan.Discriminator(6, 8)
    G2, D2 = gan.Generator(4, 8, 6), gan.Discriminator(6, 8)
    G2.load_state_dict(G.state_dict())
    D2.load_state_dict(D.state_dict())
    real = torch.rand(3, 6)
    opts = lambda g, d: (torch.optim.SGD(g.parameters(), 0.1), torch.optim.SGD(d.parameters(), 0.1))  # noqa: E731
    torch.manual_seed(4)
    a = gan.gan_train_step(G, D, real, *opts(G, D))
    torch.manual_seed(4)
    z_d, z_g = torch.randn(3, 4), torch.randn(3, 4)
    b = gan.gan_train_step(G2, D2, real, *opts(G2, D2), z_d=z_d, z_g=z_g)
    assert a == b


def test_given_models_have_the_documented_shapes() -> None:
    G, D = gan.Generator(), gan.Discriminator()
    assert G.noise_dim == 100
    x = G(torch.randn(3, 100))
    assert x.shape == (3, 784) and x.abs().max() <= 1
    y = D(x)
    assert y.shape == (3, 1) and ((y > 0) & (y < 1)).all()
