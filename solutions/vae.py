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
    ### BEGIN SOLUTION
    return mu + torch.exp(0.5 * logvar) * eps
    ### END SOLUTION


def elbo_loss(recon_x: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, beta: float = 1.0):
    """(total, recon, kl): the negative ELBO of a batch and its two parts, 0-d tensors.  [vae.elbo_loss, 5 points]

    recon = binary cross-entropy of recon_x against x, summed over all elements;
    kl    = Σ_b -½ Σ_j (1 + logvar_bj - μ_bj² - exp(logvar_bj)), summed over the batch;
    total = recon + beta · kl.
    Hint: F.binary_cross_entropy(recon_x, x, reduction="sum"); its default
    reduction is the mean, which is a different (smaller) number.
    """
    ### BEGIN SOLUTION
    recon = F.binary_cross_entropy(recon_x, x, reduction="sum")
    kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return recon + beta * kl, recon, kl
    ### END SOLUTION


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
        ### BEGIN SOLUTION
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)
        ### END SOLUTION

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means (B, input_dim) in (0, 1) from z (B, latent_dim)."""
        ### BEGIN SOLUTION
        return self.decoder(z)
        ### END SOLUTION

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None):
        """(recon_x, mu, logvar).

        In training mode (self.training) z = reparameterize(mu, logvar, eps), with eps
        drawn as torch.randn_like(mu) when None; in eval mode z = mu (no noise).
        """
        ### BEGIN SOLUTION
        mu, logvar = self.encode(x)
        if self.training:
            if eps is None:
                eps = torch.randn_like(mu)
            z = reparameterize(mu, logvar, eps)
        else:
            z = mu
        return self.decode(z), mu, logvar
        ### END SOLUTION


def vae_train_step(model: VAE, x: torch.Tensor, optimizer: torch.optim.Optimizer, beta: float = 1.0) -> dict:
    """One optimisation step on the negative ELBO.  [vae.vae_train_step, 4 points]

    Train mode, zero the gradients, forward, elbo_loss, backward, one optimizer step.
    Returns floats under "total_loss", "recon_loss", "kl_loss".
    Hint: without optimizer.zero_grad() gradients from earlier steps add up.
    """
    ### BEGIN SOLUTION
    model.train()
    optimizer.zero_grad()
    recon_x, mu, logvar = model(x)
    total, recon, kl = elbo_loss(recon_x, x, mu, logvar, beta)
    total.backward()
    optimizer.step()
    return {"total_loss": total.item(), "recon_loss": recon.item(), "kl_loss": kl.item()}
    ### END SOLUTION
