"""Part 4: generative adversarial networks (15 points).

Goodfellow et al., "Generative Adversarial Nets" (2014). The discriminator D(x)
is the probability that x is real, in (0, 1); the generator G(z) maps noise to
samples in [-1, 1]. The value function of the minimax game is

    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))],

and for a fixed G the best discriminator is D*(x) = p_data(x) / (p_data(x) + p_g(x)).
In training D minimises BCE on real (label 1) and fake (label 0) samples, and G
minimises the non-saturating loss -E[log D(G(z))].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Generator(nn.Module):
    """G(z): noise (B, noise_dim) → samples (B, output_dim) in [-1, 1]. Given, complete."""

    def __init__(self, noise_dim: int = 100, hidden_dim: int = 128, output_dim: int = 784) -> None:
        super().__init__()
        self.noise_dim = noise_dim
        self.net = nn.Sequential(
            nn.Linear(noise_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, output_dim),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """D(x): samples (B, input_dim) → probability (B, 1) that each is real. Given, complete."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def discriminator_loss(real_output: torch.Tensor, fake_output: torch.Tensor) -> torch.Tensor:
    """mean BCE(D(x), 1) + mean BCE(D(G(z)), 0), a 0-d tensor.  [gan.discriminator_loss, 4 points]

    = -mean log D(x) - mean log(1 - D(G(z))).
    Hint: real samples have label 1 and fake ones label 0; each term is a mean.
    """
    raise NotImplementedError("gan.discriminator_loss: not implemented yet")


def generator_loss(fake_output: torch.Tensor) -> torch.Tensor:
    """The non-saturating generator loss mean BCE(D(G(z)), 1) = -mean log D(G(z)).  [gan.generator_loss, 2 points]

    Hint: not the minimax form mean log(1 - D(G(z))), whose gradient vanishes
    when D rejects the fakes confidently (early in training).
    """
    raise NotImplementedError("gan.generator_loss: not implemented yet")


def gan_value_function(real_output: torch.Tensor, fake_output: torch.Tensor) -> torch.Tensor:
    """V(D, G) = mean log D(x) + mean log(1 - D(G(z))), a 0-d tensor.  [gan.gan_value_function, 1 point]"""
    raise NotImplementedError("gan.gan_value_function: not implemented yet")


def optimal_discriminator(p_data: torch.Tensor, p_model: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data / (p_data + p_model), elementwise; 1/2 where both are 0.  [gan.optimal_discriminator, 2 points]

    Hint: 0 / 0 is nan; use torch.where to put 1/2 there.
    """
    raise NotImplementedError("gan.optimal_discriminator: not implemented yet")


def gan_train_step(generator, discriminator, real_data, g_optimizer, d_optimizer, z_d=None, z_g=None) -> dict:
    """One discriminator step, then one generator step.  [gan.gan_train_step, 6 points]

    1. Discriminator: zero its grads; D on real_data and on G(z_d).detach();
       discriminator_loss; backward; d_optimizer.step().
    2. Generator: zero its grads; generator_loss of the *updated* D on G(z_g);
       backward; g_optimizer.step().
    z_d and z_g default to torch.randn(batch, generator.noise_dim), drawn in that order.
    Returns floats: d_loss, d_loss_real, d_loss_fake, g_loss, real_acc (share of real
    outputs > 0.5) and fake_acc (share of fake outputs <= 0.5), both from step 1.
    Hint: detach G(z_d) in step 1, or the discriminator's loss also trains G.
    """
    raise NotImplementedError("gan.gan_train_step: not implemented yet")
