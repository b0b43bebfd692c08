r"""The variational autoencoder of Kingma & Welling, "Auto-Encoding Variational Bayes" (ICLR 2014).

An encoder q_φ(z | x) = N(μ_φ(x), diag σ²_φ(x)) and a Bernoulli decoder p_θ(x | z)
are trained together by maximising the evidence lower bound

    log p_θ(x) ≥ ELBO = E_{q_φ(z|x)}[log p_θ(x | z)] - KL(q_φ(z | x) ‖ N(0, I)).

We minimise the negative ELBO of a batch, with β weighting the KL term
(Higgins et al., "β-VAE", ICLR 2017):

    recon = Σ_{b,i} -[x_bi log x̂_bi + (1 - x_bi) log(1 - x̂_bi)]     (binary cross-entropy, summed)
    kl    = Σ_b KL(N(μ_b, diag e^{logvar_b}) ‖ N(0, I))
    total = recon + β · kl

The expectation is estimated with one sample drawn by the reparameterisation trick,
z = μ + σ ⊙ ε with σ = exp(logvar / 2) and ε ~ N(0, I), so that gradients flow
through μ and logvar (§2.4 of the paper).

Shapes: x (B, D) with D = input_dim, μ and logvar (B, L) with L = latent_dim.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from reference._validation import (
    broadcast_shape,
    require_in_unit_interval,
    require_same_shape,
    require_tensor,
)
from reference.divergences import kl_to_standard_normal

__all__ = ["VAE", "elbo_loss", "reparameterize", "vae_train_step"]


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = μ + exp(logvar / 2) ⊙ ε: a sample of N(μ, diag e^{logvar}) that is differentiable in μ, logvar."""
    require_tensor("mu", mu)
    require_tensor("logvar", logvar)
    require_tensor("eps", eps)
    broadcast_shape(mu=mu, logvar=logvar, eps=eps)
    return mu + torch.exp(0.5 * logvar) * eps


def elbo_loss(
    recon_x: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, recon, kl): the negative ELBO of the batch and its two parts, all 0-d tensors.

    recon is the binary cross-entropy summed over all elements, as
    ``F.binary_cross_entropy(..., reduction="sum")`` computes it (which clamps each
    log at -100, so x̂ exactly 0 or 1 costs 100 nats, not inf); kl is
    ``kl_to_standard_normal`` summed over the batch; total = recon + β kl.
    """
    require_tensor("recon_x", recon_x)
    require_tensor("x", x)
    require_same_shape(recon_x=recon_x, x=x)
    require_in_unit_interval("recon_x", recon_x)
    require_in_unit_interval("x", x)
    recon = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kl = kl_to_standard_normal(mu, logvar).sum()
    return recon + beta * kl, recon, kl


class VAE(nn.Module):
    """MLP encoder to (μ, logvar), reparameterised sample, MLP decoder with a sigmoid to Bernoulli means."""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 400, latent_dim: int = 20) -> None:
        super().__init__()
        self.input_dim, self.hidden_dim, self.latent_dim = input_dim, hidden_dim, latent_dim
        self.encoder = nn.Sequential(
            nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU()
        )
        self.fc_mu = nn.Linear(hidden_dim, latent_dim)
        self.fc_logvar = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, input_dim),
            nn.Sigmoid(),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, logvar) of q(z | x), each (B, L), from x (B, D)."""
        h = self.encoder(x)  # (B, H)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means x̂ in (0, 1), (B, D), from z (B, L)."""
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x̂, μ, logvar). Training mode decodes z = μ + σ ε (ε ~ N(0, I) when not given); eval mode z = μ."""
        mu, logvar = self.encode(x)
        if self.training:
            if eps is None:
                eps = torch.randn_like(mu)
            z = reparameterize(mu, logvar, eps)
        else:
            z = mu
        return self.decode(z), mu, logvar


def vae_train_step(
    model: VAE, x: torch.Tensor, optimizer: torch.optim.Optimizer, beta: float = 1.0
) -> dict[str, float]:
    """One gradient step on the negative ELBO of batch x; returns ``total_loss``, ``recon_loss``, ``kl_loss``."""
    model.train()
    optimizer.zero_grad()
    recon_x, mu, logvar = model(x)
    total, recon, kl = elbo_loss(recon_x, x, mu, logvar, beta)
    total.backward()
    optimizer.step()
    return {"total_loss": total.item(), "recon_loss": recon.item(), "kl_loss": kl.item()}
