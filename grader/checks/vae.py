"""Checks of vae.py: the reparameterisation, the negative ELBO, the model with the reference's weights, the step."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from grader import drivers
from grader import strategies as gs
from grader.checks import (
    Case,
    Check,
    Mistake,
    as_tensor,
    dtypes,
    fmt,
    promote,
    seeded_state,
    torch_call,
    without_zero_grad,
)
from grader.compare import FLOAT32, FLOAT64
from reference import vae
from reference.divergences import kl_to_standard_normal

DIMS = (12, 7, 3)  # input, hidden, latent: small enough to read, big enough for every mistake to show
TRAIN_LR = 0.05


def args(i: dict[str, Any]) -> list[Any]:
    return i["args"]


@st.composite
def reparameterize_cases(draw: st.DrawFn) -> Case:
    mu, logvar = draw(gs.latent_gaussians())
    eps = draw(gs.hnp.arrays(np.float64, mu.shape, elements=gs.finite_floats(-3.0, 3.0)))
    return torch_call(
        "reparameterize", [mu, logvar, eps], draw(dtypes), f"mu={fmt(mu)}, logvar={fmt(logvar)}, eps={fmt(eps)}"
    )


@st.composite
def elbo_cases(draw: st.DrawFn) -> Case:
    batch, dim, latent = draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 4))
    recon = draw(gs.probabilities_open((batch, dim)))
    x = draw(
        st.one_of(
            gs.hnp.arrays(np.float64, (batch, dim), elements=st.sampled_from([0.0, 1.0])),
            gs.probabilities_open((batch, dim)),
        )
    )
    mu = draw(gs.hnp.arrays(np.float64, (batch, latent), elements=gs.finite_floats(-3.0, 3.0)))
    logvar = draw(gs.hnp.arrays(np.float64, (batch, latent), elements=gs.finite_floats(-4.0, 4.0)))
    beta = draw(st.sampled_from([1.0, 0.5, 4.0, 0.0]))
    shown = f"recon_x={fmt(recon)}, x={fmt(x)}, mu={fmt(mu)}, logvar={fmt(logvar)}, beta={beta}"
    return torch_call("elbo_loss", [recon, x, mu, logvar, beta], draw(dtypes), shown)


def _elbo_variant(
    i: dict[str, Any], recon_reduction: str = "sum", kl_batch_mean: bool = False, beta_on_recon: bool = False
) -> Any:
    recon_x, x, mu, logvar, beta = args(i)
    recon = F.binary_cross_entropy(recon_x, x, reduction=recon_reduction)
    kl = kl_to_standard_normal(mu, logvar)
    kl = kl.mean() if kl_batch_mean else kl.sum()
    total = beta * recon + kl if beta_on_recon else recon + beta * kl
    return total, recon, kl


def _reference_state(seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return seeded_state(lambda: vae.VAE(*DIMS), seed, dtype)


@st.composite
def model_cases(draw: st.DrawFn) -> Case:
    seed, batch = draw(st.integers(0, 2**16)), draw(st.integers(1, 4))
    dtype = draw(dtypes)
    x = draw(gs.probabilities_open((batch, DIMS[0])))
    eps = draw(gs.hnp.arrays(np.float64, (batch, DIMS[2]), elements=gs.finite_floats(-3.0, 3.0)))
    z = draw(gs.hnp.arrays(np.float64, (batch, DIMS[2]), elements=gs.finite_floats(-3.0, 3.0)))
    inputs = {
        "dims": list(DIMS),
        "state": _reference_state(seed, dtype),
        "dtype": str(dtype).split(".")[1],
        "x": as_tensor(x, dtype),
        "eps": as_tensor(eps, dtype),
        "z": as_tensor(z, dtype),
    }
    shown = f"VAE{DIMS} with the reference's weights (seed {seed}), x={fmt(x)}, eps={fmt(eps)}, z={fmt(z)}"
    if dtype == torch.float64:
        return Case(inputs, shown, FLOAT64)
    return Case(inputs, shown + " (float32)", FLOAT32, {**promote(inputs), "dtype": "float64"})


@st.composite
def train_step_cases(draw: st.DrawFn) -> Case:
    seed, batch = draw(st.integers(0, 2**16)), draw(st.integers(1, 4))
    x = draw(
        st.one_of(
            gs.probabilities_open((batch, DIMS[0])),
            gs.hnp.arrays(np.float64, (batch, DIMS[0]), elements=st.sampled_from([0.0, 1.0])),
        )
    )
    beta = draw(st.sampled_from([1.0, 2.0, 0.5]))
    inputs = {
        "dims": list(DIMS),
        "state": _reference_state(seed, torch.float64),
        "dtype": "float64",
        "x": as_tensor(x, torch.float64),
        "beta": beta,
        "lr": TRAIN_LR,
        "seed": seed,
    }
    return Case(
        inputs, f"VAE{DIMS} (seed {seed}), x={fmt(x)}, beta={beta}, SGD lr={TRAIN_LR}, stale gradients", FLOAT64
    )


CHECKS = [
    Check(
        "vae.reparameterize",
        "call",
        reparameterize_cases(),
        mistakes=(
            Mistake(
                "variance as std",
                "multiplying eps by exp(logvar), the variance; the standard deviation is exp(logvar / 2).",
                lambda i: args(i)[0] + torch.exp(args(i)[1]) * args(i)[2],
            ),
            Mistake(
                "logvar as std",
                "multiplying eps by logvar itself; σ = exp(logvar / 2).",
                lambda i: args(i)[0] + args(i)[1] * args(i)[2],
            ),
        ),
    ),
    Check(
        "vae.elbo_loss",
        "call",
        elbo_cases(),
        depends_on=(),
        mistakes=(
            Mistake(
                "mean BCE",
                "averaging the binary cross-entropy (F.binary_cross_entropy's default); the contract sums it.",
                lambda i: _elbo_variant(i, recon_reduction="mean"),
            ),
            Mistake(
                "KL batch mean",
                "averaging the KL over the batch; the contract sums it.",
                lambda i: _elbo_variant(i, kl_batch_mean=True),
            ),
            Mistake(
                "beta on recon",
                "weighting the reconstruction by beta; beta weights the KL term.",
                lambda i: _elbo_variant(i, beta_on_recon=True),
            ),
        ),
    ),
    Check(
        "vae.VAE",
        "vae_model",
        model_cases(),
        mistakes=(),
        depends_on=("reparameterize",),
    ),
    Check(
        "vae.vae_train_step",
        "vae_train_step",
        train_step_cases(),
        max_examples=10,
        shrink=False,
        depends_on=("VAE", "elbo_loss"),
        mistakes=(
            Mistake(
                "no zero_grad",
                "not calling optimizer.zero_grad(): stale gradients were added to this step's.",
                lambda i: without_zero_grad(drivers.vae_train_step, vae, i),
            ),
        ),
    ),
]
