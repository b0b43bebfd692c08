"""Checks of vae.py: the reparameterisation, the negative ELBO, the model with the reference's weights, the step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from grader.checks import (
    BOTH_DTYPES,
    Case,
    Check,
    InputClass,
    Mistake,
    as_tensor,
    dtypes,
    fmt,
    promote,
    ranked,
    seeded_state,
    torch_call,
    without_zero_grad,
)
from grader.grading import strategies as gs
from grader.grading.compare import FLOAT32, FLOAT64
from grader.runtime import drivers
from reference import vae
from reference.divergences import kl_to_standard_normal

DIMS = (12, 7, 3)  # input, hidden, latent: small enough to read, big enough for every mistake to show
TRAIN_LR = 0.05


def args(i: dict[str, Any]) -> list[Any]:
    return i["args"]


@st.composite
def reparameterize_cases(draw: st.DrawFn) -> Case:
    mu, logvar = draw(gs.latent_gaussians())
    eps = draw(gs.hnp.arrays(np.float64, mu.shape, elements=gs.readable(-3.0, 3.0)))
    return torch_call(vae.reparameterize, {"mu": mu, "logvar": logvar, "eps": eps}, draw(dtypes))


@st.composite
def elbo_cases(draw: st.DrawFn) -> Case:
    batch, dim, latent = draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(batch, dim), (batch, 1, 2, 2)]))  # vectors or images: summed over all
    recon = draw(gs.probabilities_open(shape))
    x = draw(
        st.one_of(
            gs.hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])),
            gs.probabilities_open(shape),
        )
    )
    mu = draw(gs.hnp.arrays(np.float64, (batch, latent), elements=gs.readable(-3.0, 3.0)))
    logvar = draw(gs.hnp.arrays(np.float64, (batch, latent), elements=gs.readable(-4.0, 4.0)))
    beta = draw(st.sampled_from([1.0, 0.5, 4.0, 0.0]))
    named = {"recon_x": recon, "x": x, "mu": mu, "logvar": logvar, "beta": beta}
    return torch_call(vae.elbo_loss, named, draw(dtypes))


def _elbo_variant(
    i: dict[str, Any],
    recon_reduction: str = "sum",
    kl_batch_mean: bool = False,
    beta_on_recon: bool = False,
    squared_error: bool = False,
) -> Any:
    recon_x, x, mu, logvar, beta = args(i)
    if squared_error:
        recon = F.mse_loss(recon_x, x, reduction=recon_reduction)
    else:
        recon = F.binary_cross_entropy(recon_x, x, reduction=recon_reduction)
    kl = kl_to_standard_normal(mu, logvar)
    kl = kl.mean() if kl_batch_mean else kl.sum()
    total = beta * recon + kl if beta_on_recon else recon + beta * kl
    return total, recon, kl


def _reference_state(seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return seeded_state(lambda: vae.VAE(*DIMS), seed, dtype)


@st.composite
def model_cases(draw: st.DrawFn) -> Case:
    # at most 4 x 3 = 12 latent numbers: below 16, torch's draws in float32 are its float64 draws, rounded
    seed, batch = draw(st.integers(0, 2**16)), draw(st.integers(1, 4))
    dtype = draw(dtypes)
    x = draw(gs.probabilities_open((batch, DIMS[0])))
    eps = draw(gs.hnp.arrays(np.float64, (batch, DIMS[2]), elements=gs.readable(-3.0, 3.0)))
    z = draw(gs.hnp.arrays(np.float64, (batch, DIMS[2]), elements=gs.readable(-3.0, 3.0)))
    inputs = {
        "dims": list(DIMS),
        "state": _reference_state(seed, dtype),
        "dtype": str(dtype).split(".")[1],
        "x": as_tensor(x, dtype),
        "eps": as_tensor(eps, dtype),
        "z": as_tensor(z, dtype),
    }
    shown = (
        f"VAE{DIMS} with the reference's weights (seed {seed}), x={fmt(x)}, eps={fmt(eps)}, z={fmt(z)}; "
        f"forward(x) without eps after torch.manual_seed({drivers.DRAW_SEED})"
    )
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


def _vae_variant(
    i: dict[str, Any],
    heads_swapped: bool = False,
    sample_in_train: bool = True,
    sample_in_eval: bool = False,
    draw: Callable[[torch.Tensor], torch.Tensor] = torch.randn_like,
) -> dict[str, Any]:
    """What the vae_model driver returns for a VAE with one classic change, from the reference's layers.
    ``draw`` makes eps where forward is not given one (the driver seeds torch's generator first); for fewer
    than 16 numbers torch draws the same values in float32 as in float64, rounded, so a float32 model's draw
    is compared with the reference's in float64."""
    model = vae.VAE(*i["dims"]).to(torch.float64)
    model.load_state_dict(i["state"])
    x, eps, z = i["x"], i["eps"], i["z"]
    with torch.no_grad():
        h = model.encoder(x)
        mu, logvar = model.fc_mu(h), model.fc_logvar(h)
        if heads_swapped:
            mu, logvar = logvar, mu
        train_z = vae.reparameterize(mu, logvar, eps) if sample_in_train else mu
        torch.manual_seed(drivers.DRAW_SEED)
        drawn_z = vae.reparameterize(mu, logvar, draw(mu)) if sample_in_train else mu
        eval_z = mu
        if sample_in_eval:  # torch.randn_like(mu) after the driver's seed
            torch.manual_seed(drivers.EVAL_SEED)
            eval_z = vae.reparameterize(mu, logvar, torch.randn_like(mu))
        return {
            "encode": (mu, logvar),
            "decode": model.decoder(z),
            "train": (model.decoder(train_z), mu, logvar),
            drivers.DRAWN: (model.decoder(drawn_z), mu, logvar),
            "eval": (model.decoder(eval_z), mu, logvar),
        }


def _train_step_variant(i: dict[str, Any], train_mode: bool = True, beta_used: bool = True) -> dict[str, Any]:
    """What the vae_train_step driver returns for a step with one classic change (from stale gradients)."""
    model = vae.VAE(*i["dims"]).to(torch.float64)
    model.load_state_dict(i["state"])
    drivers.with_stale_grads(model).train(train_mode)
    optimizer = torch.optim.SGD(model.parameters(), lr=i["lr"])
    torch.manual_seed(i["seed"])
    optimizer.zero_grad()
    recon_x, mu, logvar = model(i["x"])
    total, recon, kl = vae.elbo_loss(recon_x, i["x"], mu, logvar, i["beta"] if beta_used else 1.0)
    total.backward()
    optimizer.step()
    result = {"total_loss": total.item(), "recon_loss": recon.item(), "kl_loss": kl.item()}
    return {"result": result, "params": drivers.parameters_of(model)}


CHECKS = [
    Check(
        "vae.reparameterize",
        2,
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
        input_classes=(*BOTH_DTYPES, *ranked(0, "mu", 1, 2, 3)),
    ),
    Check(
        "vae.elbo_loss",
        5,
        "call",
        elbo_cases(),
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
            Mistake(
                "squared error",
                "using a squared error (F.mse_loss) for the reconstruction, as many VAE examples do; the contract's "
                "decoder is Bernoulli: the binary cross-entropy of recon_x against x, summed over all elements.",
                lambda i: _elbo_variant(i, squared_error=True),
            ),
        ),
        input_classes=(
            *BOTH_DTYPES,
            *ranked(0, "recon_x", 2, 4),
            InputClass("binary x", lambda i: bool(((i["args"][1] == 0) | (i["args"][1] == 1)).all())),
            InputClass("recon_x near 1", lambda i: bool((i["args"][0] > 0.9999).any())),
            InputClass("beta ≠ 1", lambda i: i["args"][4] != 1.0),
        ),
    ),
    Check(
        "vae.VAE",
        4,
        "vae_model",
        model_cases(),
        mistakes=(
            Mistake(
                "samples in eval",
                "sampling z in eval mode too; in eval mode (model.eval()) z = mu, with no noise.",
                lambda i: _vae_variant(i, sample_in_eval=True),
            ),
            Mistake(
                "never samples",
                "using z = mu in training mode as well; there z = reparameterize(mu, logvar, eps).",
                lambda i: _vae_variant(i, sample_in_train=False),
            ),
            Mistake(
                "heads swapped",
                "swapping the heads: mu comes from fc_mu and logvar from fc_logvar.",
                lambda i: _vae_variant(i, heads_swapped=True),
            ),
            Mistake(
                "uniform eps",
                "drawing eps from the uniform distribution on [0, 1) (torch.rand_like) when forward is not given "
                "one; eps ~ N(0, I): torch.randn_like(mu).",
                lambda i: _vae_variant(i, draw=torch.rand_like),
            ),
        ),
        depends_on=("reparameterize",),
        input_classes=(*BOTH_DTYPES, InputClass("batch of 1", lambda i: i["x"].shape[0] == 1)),
    ),
    Check(
        "vae.vae_train_step",
        4,
        "vae_train_step",
        train_step_cases(),
        max_examples=10,
        shrink=False,
        depends_on=("VAE", "elbo_loss", "reparameterize"),
        mistakes=(
            Mistake(
                "no zero_grad",
                "not calling optimizer.zero_grad(): stale gradients were added to this step's.",
                lambda i: without_zero_grad("vae_train_step", vae, i),
            ),
            Mistake(
                "no train mode",
                "not calling model.train(): the model was handed over in eval mode, so it did not sample z.",
                lambda i: _train_step_variant(i, train_mode=False),
            ),
            Mistake(
                "beta ignored",
                "not passing beta on to elbo_loss: the KL term must be weighted by the step's beta.",
                lambda i: _train_step_variant(i, beta_used=False),
            ),
        ),
        input_classes=(InputClass("beta ≠ 1", lambda i: i["beta"] != 1.0),),
    ),
]
