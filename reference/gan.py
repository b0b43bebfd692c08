r"""Generative adversarial networks, Goodfellow et al., "Generative Adversarial Nets" (NeurIPS 2014).

A discriminator D: x ↦ (0, 1) and a generator G: z ↦ x play the minimax game

    min_G max_D V(D, G) = E_{x~p_data}[log D(x)] + E_{z~p_z}[log(1 - D(G(z)))].

For a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x))
(Proposition 1), and then V(D*, G) = -log 4 + 2 JS(p_data ‖ p_g) (Theorem 1).

In practice D minimises the binary cross-entropy of telling real (label 1) from
fake (label 0), and G minimises the non-saturating loss -E[log D(G(z))] (§3 of the
paper), which gives strong gradients early in training where log(1 - D(G(z)))
saturates:

    L_D = mean BCE(D(x), 1) + mean BCE(D(G(z)), 0) = -V(D, G)
    L_G = mean BCE(D(G(z)), 1)

Data for this GAN lie in [-1, 1] (the generator ends in tanh).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference._validation import broadcast_shape, require_in_unit_interval, require_tensor

__all__ = [
    "Discriminator",
    "Generator",
    "discriminator_loss",
    "gan_train_step",
    "gan_value_function",
    "generator_loss",
    "optimal_discriminator",
]

LEAKY_SLOPE = 0.2  # Radford et al. (DCGAN, 2016) use 0.2 in the discriminator; we use it in both nets


class Generator(nn.Module):
    """G(z): noise (B, noise_dim) to samples (B, output_dim) in [-1, 1]."""

    def __init__(self, noise_dim: int = 100, hidden_dim: int = 128, output_dim: int = 784) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(
            nn.Linear(noise_dim, hidden_dim),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(hidden_dim, output_dim),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """D(x): samples (B, input_dim) to the probability (B, 1) that each is real."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Linear(hidden_dim, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _probabilities(**outputs: torch.Tensor) -> None:
    for name, value in outputs.items():
        require_tensor(name, value)
        require_in_unit_interval(name, value)


def discriminator_loss(real_output: torch.Tensor, fake_output: torch.Tensor) -> torch.Tensor:
    """L_D = mean BCE(D(x), 1) + mean BCE(D(G(z)), 0) = -mean log D(x) - mean log(1 - D(G(z)))."""
    _probabilities(real_output=real_output, fake_output=fake_output)
    real = F.binary_cross_entropy(real_output, torch.ones_like(real_output))
    fake = F.binary_cross_entropy(fake_output, torch.zeros_like(fake_output))
    return real + fake


def generator_loss(fake_output: torch.Tensor) -> torch.Tensor:
    """Non-saturating L_G = mean BCE(D(G(z)), 1) = -mean log D(G(z)) (not mean log(1 - D(G(z))))."""
    _probabilities(fake_output=fake_output)
    return F.binary_cross_entropy(fake_output, torch.ones_like(fake_output))


def gan_value_function(real_output: torch.Tensor, fake_output: torch.Tensor) -> torch.Tensor:
    """V(D, G) = mean log D(x) + mean log(1 - D(G(z))); exact logs, so -inf where D says 0 to a real x."""
    _probabilities(real_output=real_output, fake_output=fake_output)
    return torch.log(real_output).mean() + torch.log1p(-fake_output).mean()


def optimal_discriminator(p_data: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data / (p_data + p_model) elementwise; ½ where both densities are 0."""
    require_tensor("p_data", p_data)
    require_tensor("p_model", p_model)
    broadcast_shape(p_data=p_data, p_model=p_model)
    if bool(((p_data < 0) | (p_model < 0)).any()):
        raise ValueError("p_data and p_model are densities and must be >= 0")
    total = p_data + p_model
    safe_total = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, p_data / safe_total, torch.full_like(total, 0.5))


def gan_train_step(
    generator: Generator,
    discriminator: Discriminator,
    real_data: torch.Tensor,
    g_optimizer: torch.optim.Optimizer,
    d_optimizer: torch.optim.Optimizer,
    z_d: torch.Tensor | None = None,
    z_g: torch.Tensor | None = None,
) -> dict[str, float]:
    """One discriminator step, then one generator step against the updated discriminator.

    z_d and z_g, the noise of the two steps, are drawn from torch's default
    generator in that order when not given, as (B, noise_dim) on real_data's
    device and dtype. The accuracies are those of the discriminator step:
    real_acc the share of D(x) > ½, fake_acc the share of D(G(z_d)) ≤ ½.
    """
    batch = real_data.shape[0]
    if z_d is None:
        z_d = torch.randn(batch, generator.noise_dim, device=real_data.device, dtype=real_data.dtype)
    if z_g is None:
        z_g = torch.randn(batch, generator.noise_dim, device=real_data.device, dtype=real_data.dtype)

    # discriminator: real → 1, G(z_d) → 0, with G frozen by detach()
    d_optimizer.zero_grad()
    real_output = discriminator(real_data)
    fake_output = discriminator(generator(z_d).detach())
    d_loss_real = F.binary_cross_entropy(real_output, torch.ones_like(real_output))
    d_loss_fake = F.binary_cross_entropy(fake_output, torch.zeros_like(fake_output))
    d_loss = d_loss_real + d_loss_fake
    d_loss.backward()
    d_optimizer.step()

    # generator: make the updated D call G(z_g) real (non-saturating loss)
    g_optimizer.zero_grad()
    g_loss = generator_loss(discriminator(generator(z_g)))
    g_loss.backward()
    g_optimizer.step()

    return {
        "d_loss": d_loss.item(),
        "d_loss_real": d_loss_real.item(),
        "d_loss_fake": d_loss_fake.item(),
        "g_loss": g_loss.item(),
        "real_acc": (real_output > 0.5).float().mean().item(),
        "fake_acc": (fake_output <= 0.5).float().mean().item(),
    }
