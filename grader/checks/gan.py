"""Checks of gan.py: the three losses, the optimal discriminator, and one training step of both nets."""

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
    Property,
    as_tensor,
    dtypes,
    fmt,
    ranked,
    torch_call,
)
from grader.grading import strategies as gs
from grader.grading.compare import FLOAT64
from grader.runtime import drivers
from reference import gan

DIMS = (4, 8, 6)  # noise, hidden, data
TRAIN_LR = 0.05


def args(i: dict[str, Any]) -> list[Any]:
    return i["args"]


def output_shape(draw: st.DrawFn) -> tuple[int, ...]:
    """A discriminator's outputs: (n, 1) as Discriminator returns them, or (n,) squeezed."""
    n = draw(st.integers(1, 6))
    return draw(st.sampled_from([(n, 1), (n,)]))


@st.composite
def output_pairs(draw: st.DrawFn, function: Callable[..., Any]) -> Case:
    real = draw(gs.probabilities_open(output_shape(draw)))
    fake = draw(gs.probabilities_open(output_shape(draw)))
    return torch_call(function, {"real_output": real, "fake_output": fake}, draw(dtypes))


@st.composite
def fake_outputs(draw: st.DrawFn) -> Case:
    fake = draw(gs.probabilities_open(output_shape(draw)))
    return torch_call(gan.generator_loss, {"fake_output": fake}, draw(dtypes))


OUTPUTS = (*BOTH_DTYPES, *ranked(0, "the outputs", 1, 2))


@st.composite
def density_pairs(draw: st.DrawFn) -> Case:
    shape = draw(st.sampled_from([(draw(st.integers(1, 6)),), (2, 3)]))
    element = st.one_of(st.just(0.0), gs.readable(0.001, 10.0))
    p_data = draw(gs.hnp.arrays(np.float64, shape, elements=element))
    p_model = draw(gs.hnp.arrays(np.float64, shape, elements=element))
    return torch_call(gan.optimal_discriminator, {"p_data": p_data, "p_model": p_model}, draw(dtypes))


def _bce(x: torch.Tensor, label: float) -> torch.Tensor:
    return F.binary_cross_entropy(x, torch.full_like(x, label))


def _state(seed: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    torch.manual_seed(seed)
    noise, hidden, data = DIMS
    g = dict(gan.Generator(noise, hidden, data).double().state_dict())
    d = dict(gan.Discriminator(data, hidden).double().state_dict())
    return g, d


@st.composite
def train_step_cases(draw: st.DrawFn) -> Case:
    seed, batch = draw(st.integers(0, 2**16)), draw(st.integers(1, 5))
    real = draw(gs.hnp.arrays(np.float64, (batch, DIMS[2]), elements=gs.readable(-1.0, 1.0)))
    z_d = draw(gs.hnp.arrays(np.float64, (batch, DIMS[0]), elements=gs.readable(-3.0, 3.0)))
    z_g = draw(gs.hnp.arrays(np.float64, (batch, DIMS[0]), elements=gs.readable(-3.0, 3.0)))
    g_state, d_state = _state(seed)
    inputs = {
        "dims": list(DIMS),
        "g_state": g_state,
        "d_state": d_state,
        "dtype": "float64",
        "lr": TRAIN_LR,
        "real": as_tensor(real, torch.float64),
        "z_d": as_tensor(z_d, torch.float64),
        "z_g": as_tensor(z_g, torch.float64),
    }
    shown = (
        f"Generator{DIMS} and Discriminator{DIMS[2], DIMS[1]} (seed {seed}), real_data={fmt(real)}, "
        f"z_d={fmt(z_d)}, z_g={fmt(z_g)}, SGD lr={TRAIN_LR}, stale gradients"
    )
    return Case(inputs, shown, FLOAT64)


def _step_variant(
    i: dict[str, Any],
    zero_d: bool = True,
    zero_g: bool = True,
    g_before_d_step: bool = False,
    reuse_fake: bool = False,
) -> dict[str, Any]:
    """What the gan_train_step driver returns for a step with one classic change, from the reference's nets
    (both start from stale gradients, as the driver's do)."""
    noise, hidden, data = DIMS
    G = gan.Generator(noise, hidden, data).double()
    D = gan.Discriminator(data, hidden).double()
    G.load_state_dict(i["g_state"])
    D.load_state_dict(i["d_state"])
    drivers.with_stale_grads(G)
    drivers.with_stale_grads(D)
    g_opt = torch.optim.SGD(G.parameters(), lr=i["lr"])
    d_opt = torch.optim.SGD(D.parameters(), lr=i["lr"])
    if zero_d:
        d_opt.zero_grad()
    real_out = D(i["real"])
    fake = G(i["z_d"])
    fake_out = D(fake.detach())
    d_real, d_fake = _bce(real_out, 1.0), _bce(fake_out, 0.0)
    (d_real + d_fake).backward()
    if not g_before_d_step:
        d_opt.step()
    if zero_g:
        g_opt.zero_grad()
    g_loss = _bce(D(fake if reuse_fake else G(i["z_g"])), 1.0)
    g_loss.backward()
    if g_before_d_step:  # D's step now also carries the generator loss's gradient
        d_opt.step()
    g_opt.step()
    result = {
        "d_loss": (d_real + d_fake).item(),
        "d_loss_real": d_real.item(),
        "d_loss_fake": d_fake.item(),
        "g_loss": g_loss.item(),
        "real_acc": (real_out > 0.5).double().mean().item(),
        "fake_acc": (fake_out <= 0.5).double().mean().item(),
    }
    return {"result": result, "g_params": drivers.parameters_of(G), "d_params": drivers.parameters_of(D)}


CHECKS = [
    Check(
        "gan.discriminator_loss",
        4,
        "call",
        output_pairs(gan.discriminator_loss),
        mistakes=(
            Mistake(
                "labels swapped",
                "swapping the labels: real samples are labelled 1 and fakes 0.",
                lambda i: _bce(args(i)[0], 0.0) + _bce(args(i)[1], 1.0),
            ),
            Mistake(
                "sum",
                "summing the BCE terms instead of averaging each.",
                lambda i: (
                    F.binary_cross_entropy(args(i)[0], torch.ones_like(args(i)[0]), reduction="sum")
                    + F.binary_cross_entropy(args(i)[1], torch.zeros_like(args(i)[1]), reduction="sum")
                ),
            ),
            Mistake(
                "average of the two",
                "averaging the real and fake terms; the loss is their sum.",
                lambda i: gan.discriminator_loss(*args(i)) / 2,
            ),
        ),
        input_classes=OUTPUTS,
    ),
    Check(
        "gan.generator_loss",
        2,
        "call",
        fake_outputs(),
        mistakes=(
            Mistake(
                "minimax",
                "using the minimax form mean log(1 - D(G(z))); the contract asks for the non-saturating "
                "-mean log D(G(z)).",
                lambda i: torch.log1p(-args(i)[0]).mean(),
            ),
            Mistake(
                "label 0",
                "labelling the fakes 0 in the generator's loss; G wants D to call them real (label 1).",
                lambda i: _bce(args(i)[0], 0.0),
            ),
        ),
        input_classes=OUTPUTS,
    ),
    Check(
        "gan.gan_value_function",
        1,
        "call",
        output_pairs(gan.gan_value_function),
        mistakes=(
            Mistake(
                "sign",
                "the sign: V = mean log D(x) + mean log(1 - D(G(z))) is ≤ 0 (it is minus the discriminator's loss).",
                lambda i: -gan.gan_value_function(*args(i)),
            ),
            Mistake(
                "log D(G(z))",
                "using log D(G(z)) for the fake term; V uses log(1 - D(G(z))).",
                lambda i: torch.log(args(i)[0]).mean() + torch.log(args(i)[1]).mean(),
            ),
        ),
        properties=(Property("V ≤ 0", lambda r, c: bool((r.array <= 1e-9).all())),),
        input_classes=OUTPUTS,
    ),
    Check(
        "gan.optimal_discriminator",
        2,
        "call",
        density_pairs(),
        examples=(
            torch_call(
                gan.optimal_discriminator,
                {"p_data": np.array([0.0, 1.0, 0.0]), "p_model": np.array([0.0, 3.0, 2.0])},
                torch.float64,
            ),
        ),
        mistakes=(
            Mistake(
                "swapped",
                "p_model / (p_data + p_model): D* is the probability of *real*, p_data on top.",
                lambda i: gan.optimal_discriminator(args(i)[1], args(i)[0]),
            ),
            Mistake(
                "zero where both vanish",
                "returning 0 where p_data = p_model = 0; the contract says 1/2 there.",
                lambda i: torch.where(
                    (args(i)[0] + args(i)[1]) > 0, gan.optimal_discriminator(*args(i)), torch.zeros_like(args(i)[0])
                ),
            ),
        ),
        properties=(Property("0 ≤ D* ≤ 1", lambda r, c: bool(((r.array >= 0) & (r.array <= 1)).all())),),
        input_classes=(
            *BOTH_DTYPES,
            *ranked(0, "p_data", 1, 2),
            InputClass("p_data = p_model = 0", lambda i: bool(((i["args"][0] == 0) & (i["args"][1] == 0)).any())),
        ),
    ),
    Check(
        "gan.gan_train_step",
        6,
        "gan_train_step",
        train_step_cases(),
        max_examples=10,
        shrink=False,
        depends_on=("generator_loss",),
        mistakes=(
            Mistake(
                "no zero_grad for G",
                "not zeroing the generator's gradients before its step: stale gradients were added to this step's.",
                lambda i: _step_variant(i, zero_g=False),
            ),
            Mistake(
                "no zero_grad for D",
                "not zeroing the discriminator's gradients before its step: stale gradients were added to this step's.",
                lambda i: _step_variant(i, zero_d=False),
            ),
            Mistake(
                "old D",
                "computing and backpropagating the generator's loss before d_optimizer.step(): G then trains against "
                "the old D, and D's step also carries the generator loss's gradient. Step D first, then compute "
                "generator_loss with the updated D.",
                lambda i: _step_variant(i, g_before_d_step=True),
            ),
            Mistake(
                "reused fake batch",
                "reusing the discriminator step's fake batch G(z_d) for the generator's loss (as the PyTorch DCGAN "
                "tutorial does); the contract draws a fresh batch: generator_loss(D(G(z_g))).",
                lambda i: _step_variant(i, reuse_fake=True),
            ),
        ),
        input_classes=(InputClass("a batch of one", lambda i: i["real"].shape[0] == 1),),
    ),
]
