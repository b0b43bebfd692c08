"""Part 3: the variational autoencoder (15 points).

Kingma & Welling, "Auto-Encoding Variational Bayes" (2014). The encoder gives
q(z | x) = N(μ, diag exp(logvar)); the decoder gives Bernoulli means x̂ in (0, 1).
Training minimises the negative ELBO

    -ELBO = recon + β · kl,
    recon = Σ_{b,i} BCE(x̂_bi, x_bi),   kl = Σ_b KL(N(μ_b, diag e^{logvar_b}) ‖ N(0, I)).

Shapes: x (B, D), μ and logvar (B, L). All functions take and return torch.Tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = μ + exp(logvar / 2) · ε: a differentiable sample of N(μ, diag exp(logvar)).  [vae.reparameterize, 2 points]

    Hint: exp(logvar / 2) is the standard deviation; exp(logvar) is the variance.
    """
    raise NotImplementedError("vae.reparameterize: not implemented yet")


def elbo_loss(recon_x: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0):
    """(total, recon, kl): the negative ELBO of a batch and its two parts, 0-d tensors.  [vae.elbo_loss, 5 points]

    recon = binary cross-entropy of recon_x against x, summed over all elements;
    kl    = Σ_b -½ Σ_j (1 + logvar_bj - μ_bj² - exp(logvar_bj)), summed over the batch;
    total = recon + beta · kl.
    Hint: F.binary_cross_entropy(recon_x, x, reduction="sum"); its default
    reduction is the mean, which is a different (smaller) number.
    """
    raise NotImplementedError("vae.elbo_loss: not implemented yet")


class VAE(nn.Module):
    """An MLP VAE.  [vae.VAE, 4 points: encode, decode and forward; __init__ is given]"""

    def __init__(self, input_dim: int = 784, hidden_dim: int = 400, latent_dim: int = 20) -> None:
        super().__init__()
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

    def encode(self, x: torch.Tensor):
        """(mu, logvar), each (B, latent_dim): run the encoder, then fc_mu and fc_logvar on its output."""
        raise NotImplementedError("vae.VAE.encode: not implemented yet")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means (B, input_dim) in (0, 1) from z (B, latent_dim)."""
        raise NotImplementedError("vae.VAE.decode: not implemented yet")

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        """(recon_x, mu, logvar).

        In training mode (self.training) z = reparameterize(mu, logvar, eps), with eps
        drawn as torch.randn_like(mu) when None; in eval mode z = mu (no noise).
        """
        raise NotImplementedError("vae.VAE.forward: not implemented yet")


def vae_train_step(model: VAE, x: torch.Tensor, optimizer: torch.optim.Optimizer, beta: float = 1.0) -> dict:
    """One optimisation step on the negative ELBO.  [vae.vae_train_step, 4 points]

    Train mode, zero the gradients, forward, elbo_loss, backward, one optimizer step.
    Returns floats under "total_loss", "recon_loss", "kl_loss".
    Hint: without optimizer.zero_grad() gradients from earlier steps add up.
    """
    raise NotImplementedError("vae.vae_train_step: not implemented yet")
