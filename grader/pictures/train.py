"""Train the feedback page's two small models with the reference, on scikit-learn's 8 x 8 digits.

Instructor side (imports reference/): ``python -m grader reference regenerate`` calls ``train`` and
stores the weights (grader/pictures/weights.py); ``evaluate`` gives the losses the stored weights
reach on a fixed batch, which the manifest records and ``reference verify`` recomputes.

- The sampler's ε-model: a DigitNet trained with the reference's ``ddpm_train_step`` (Adam, L_simple,
  linear schedule, T = 1000), Ho et al. (2020), Algorithm 1.
- The VAE(64, 128, 8) trained with the reference's ``vae_train_step`` (Adam, negative ELBO with β = 1),
  Kingma & Welling (2014), on the digits in [0, 1].
"""

from __future__ import annotations

import torch

from grader.pictures import weights
from grader.runtime.drivers import DigitNet
from reference import ddpm, vae
from reference.data import digits

SEED = 0
DDPM_STEPS = 4000
VAE_STEPS = 3000
BATCH = 128
EVAL_BATCH = 256  # the fixed batch the recorded losses are measured on


def _data(value_range: tuple[float, float]) -> torch.Tensor:
    images, _ = digits(weights.SIDE, value_range)  # (1797, 64)
    return images


def _draw(data: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return data[torch.randint(0, data.shape[0], (BATCH,), generator=generator)]


def train() -> dict[str, dict[str, torch.Tensor]]:
    """Both models trained from the same seed: deterministic on one machine (and torch version)."""
    torch.manual_seed(SEED)
    generator = torch.Generator().manual_seed(SEED)
    betas = ddpm.linear_beta_schedule(weights.T)
    net = DigitNet(weights.DIM, weights.DIGIT_HIDDEN)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, DDPM_STEPS)
    data = _data((-1.0, 1.0))
    for _ in range(DDPM_STEPS):
        ddpm.ddpm_train_step(net, optimizer, _draw(data, generator), betas)
        schedule.step()

    model = vae.VAE(*weights.VAE_DIMS)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = _data((0.0, 1.0))
    for _ in range(VAE_STEPS):
        vae.vae_train_step(model, _draw(data, generator), optimizer)
    return {"digits": net.state_dict(), "vae": model.state_dict()}


def evaluate(path: weights.Path | None = None) -> dict[str, float]:
    """The losses the stored weights reach on a fixed batch: the DDPM's L_simple and the VAE's negative ELBO
    per image, in float64 from the float32 weights, so that a re-run on another machine agrees closely."""
    generator = torch.Generator().manual_seed(SEED + 1)
    betas = ddpm.linear_beta_schedule(weights.T)
    net = DigitNet(weights.DIM, weights.DIGIT_HIDDEN)
    net.load_state_dict(weights.state("digits", path))
    x_0 = _data((-1.0, 1.0))[:EVAL_BATCH].double()
    t = torch.randint(0, weights.T, (EVAL_BATCH,), generator=generator)
    noise = torch.randn(x_0.shape, generator=generator, dtype=torch.float64)
    model = vae.VAE(*weights.VAE_DIMS)
    model.load_state_dict(weights.state("vae", path))
    model.eval()
    x = _data((0.0, 1.0))[:EVAL_BATCH].double()
    with torch.no_grad():
        ddpm_loss = ddpm.ddpm_loss(net.double(), x_0, t, noise, betas).item()
        recon_x, mu, logvar = model.double()(x)
        total, _, _ = vae.elbo_loss(recon_x, x, mu, logvar)
    return {"ddpm_loss": ddpm_loss, "vae_loss_per_image": total.item() / EVAL_BATCH}
