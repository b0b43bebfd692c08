"""The feedback page's pictures: what each asks of the student's code and of the reference, and how it is drawn.

A scene names its part, the driver calls it makes (grader/runtime/drivers.py, the same code on both
sides), and a drawing function. ``take`` runs every scene whose part was handed in: the student's side
in the submission's sandbox (under the same limits as grading, one call at a time), the reference's
in this process, and keeps only plain arrays of the expected sizes. A call that raises, hangs, dies or
returns something else costs that picture, which the page replaces by a sentence saying why; never the
page, never the grade (pictures are taken after grading, and nothing in them is scored).

The pictures:
- ``schedules``: β_t and ᾱ_t = ∏_{s≤t} (1 − β_s) of linear_beta_schedule and cosine_beta_schedule (T = 1000);
- ``q_sample``: one digit noised at t = 0, 50, 200, 500, 999 with the same ε (Ho et al. 2020, eq. 4);
- ``samples``: p_sample_loop with the same trained ε-model (weights.py) and the same generator seed;
- ``vae``: the VAE's reconstructions (eval mode) and decoded samples, with the same trained weights;
- ``discriminator``: D*(x) = p_data / (p_data + p_model) (Goodfellow et al. 2014, Prop. 1) on a grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from grader.grading import compare as cmp
from grader.grading.expected import reference_module, to_wire
from grader.pictures import weights
from grader.runtime import drivers, wire
from grader.sandbox import Runner, WorkerDied

TIMEOUT_FACTOR = 3.0  # a picture's call may take this many times a graded call's limit: the sampler takes T = 1000
# steps (about a second for the reference), the graded cases far fewer
Q_SAMPLE_T = (0, 50, 200, 500, 999)
DIGIT = 3  # which of scikit-learn's digits q_sample noises (a "3", whose strokes stay readable longest)
SAMPLES = 16
VAE_ROWS = 8
SEED = 0
GRID = 401  # points of the D*(x) curve


@dataclass(frozen=True)
class Call:
    driver: str
    inputs: dict[str, Any]
    shapes: tuple[tuple[int, ...], ...]  # what the picture draws: an output with this many numbers is reshaped
    pick: Callable[[Any], list[Any]] = lambda value: [value]  # the outputs to draw, from the driver's reply


@dataclass
class Picture:
    """One scene's arrays (reference and student, call by call) or why the student's side could not be drawn."""

    name: str
    title: str
    caption: str
    reference: list[np.ndarray]
    student: list[np.ndarray] | None
    problem: str | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # inputs the drawing shows (the digits, densities)


@dataclass(frozen=True)
class Scene:
    name: str
    part: str
    items: tuple[str, ...]  # the graded functions it calls: one that timed out in grading is not called again
    title: str
    caption: str
    calls: Callable[[], tuple[list[Call], dict[str, np.ndarray]]]


# ---------------------------------------------------------------------------------------------- inputs


def _digits(value_range: tuple[float, float]) -> torch.Tensor:
    from reference.data import digits

    images, _ = digits(weights.SIDE, value_range)
    return images  # (1797, 64) float32


def _betas() -> torch.Tensor:
    return torch.linspace(1e-4, 0.02, weights.T, dtype=torch.float64)  # the contract's linear schedule


def _schedules() -> tuple[list[Call], dict[str, np.ndarray]]:
    return [
        Call("call", {"function": "linear_beta_schedule", "args": [weights.T]}, ((weights.T,),)),
        Call("call", {"function": "cosine_beta_schedule", "args": [weights.T]}, ((weights.T,),)),
    ], {}


def _q_sample() -> tuple[list[Call], dict[str, np.ndarray]]:
    x_0 = _digits((-1.0, 1.0))[DIGIT].expand(len(Q_SAMPLE_T), -1).clone()  # (5, 64)
    noise = torch.randn(x_0.shape, generator=torch.Generator().manual_seed(SEED))
    t = torch.tensor(Q_SAMPLE_T, dtype=torch.int64)
    call = Call("call", {"function": "q_sample", "args": [x_0, t, noise, _betas()]}, (tuple(x_0.shape),))
    return [call], {"x_0": x_0[0].numpy()}


def _samples() -> tuple[list[Call], dict[str, np.ndarray]]:
    inputs = {
        "dim": weights.DIM,
        "hidden": weights.DIGIT_HIDDEN,
        "state": weights.state("digits"),
        "seed": SEED,
        "shape": [SAMPLES, weights.DIM],
        "betas": _betas(),
    }
    return [Call("sample_digits", inputs, ((SAMPLES, weights.DIM),))], {}


def _vae() -> tuple[list[Call], dict[str, np.ndarray]]:
    g = torch.Generator().manual_seed(SEED)
    x = _digits((0.0, 1.0))[:VAE_ROWS]
    latent = weights.VAE_DIMS[2]
    inputs = {
        "dims": list(weights.VAE_DIMS),
        "state": weights.state("vae"),
        "dtype": "float32",
        "x": x,
        "eps": torch.randn(VAE_ROWS, latent, generator=g),
        "z": torch.randn(VAE_ROWS, latent, generator=g),
    }
    shape = (VAE_ROWS, weights.DIM)
    call = Call("vae_model", inputs, (shape, shape), pick=lambda out: [out["eval"][0], out["decode"]])
    return [call], {"x": x.numpy()}


def _normal_pdf(x: torch.Tensor, mean: float, sd: float) -> torch.Tensor:
    return torch.exp(-0.5 * ((x - mean) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def _discriminator() -> tuple[list[Call], dict[str, np.ndarray]]:
    x = torch.linspace(-5.0, 5.0, GRID, dtype=torch.float64)
    p_data = 0.5 * _normal_pdf(x, -2.0, 0.6) + 0.5 * _normal_pdf(x, 1.5, 0.9)  # a two-mode "data" density
    p_model = _normal_pdf(x, 0.0, 1.5)  # a generator that has not found the modes yet
    call = Call("call", {"function": "optimal_discriminator", "args": [p_data, p_model]}, ((GRID,),))
    return [call], {"x": x.numpy(), "p_data": p_data.numpy(), "p_model": p_model.numpy()}


SCENES: tuple[Scene, ...] = (
    Scene(
        "schedules", "ddpm", ("ddpm.linear_beta_schedule", "ddpm.cosine_beta_schedule"), "Noise schedules",
        "Your β_t and ᾱ_t (dashed) over the reference's (solid), T = 1000. ᾱ_t is computed here from your β_t.",
        _schedules,
    ),
    Scene(
        "q_sample", "ddpm", ("ddpm.q_sample",), "Forward process q(x_t | x_0)",
        "One digit noised by your q_sample and by the reference's, with the same ε and the linear schedule.",
        _q_sample,
    ),
    Scene(
        "samples", "ddpm", ("ddpm.p_sample_loop",), "Samples from p_sample_loop",
        "Your p_sample_loop and the reference's, with the same trained ε-model and the same generator seed: "
        "with a correct sampler the two grids match.",
        _samples,
    ),
    Scene(
        "vae", "vae", ("vae.VAE",), "VAE reconstructions and samples",
        "Your VAE with the reference's trained weights: digits, their reconstructions in eval mode, and decoded "
        "samples of the same z.",
        _vae,
    ),
    Scene(
        "discriminator", "gan", ("gan.optimal_discriminator",), "The optimal discriminator",
        "D*(x) = p_data(x) / (p_data(x) + p_model(x)): yours (dashed) over the reference's (solid), with the two "
        "densities below.",
        _discriminator,
    ),
)  # fmt: skip


# ---------------------------------------------------------------------------------------------- running


class Unusable(Exception):
    """The student's side of a picture cannot be drawn: the message says why, in a student's words."""


def _plain(reply: Any, call: Call, function: str) -> list[np.ndarray]:
    """The picked outputs as float64 arrays of the call's shapes, or Unusable."""
    try:
        values = list(call.pick(reply))
    except (LookupError, TypeError):
        values = [reply]
    if len(values) != len(call.shapes):
        raise Unusable(f"your {function} returned {cmp.short(reply)}")
    arrays = []
    for value, shape in zip(values, call.shapes, strict=True):
        if not isinstance(value, wire.Array) or value.array.dtype.kind not in "fiub":
            raise Unusable(f"your {function} returned {cmp.short(value)}, not an array of numbers")
        if value.array.size != math.prod(shape):
            raise Unusable(f"your {function} returned shape {tuple(value.array.shape)}; the picture needs {shape}")
        arrays.append(value.array.astype(np.float64).reshape(shape))
    return arrays


def _student(sandbox: Runner, source: tuple[str, str], call: Call, timeout_s: float) -> list[np.ndarray]:
    function = call.inputs.get("function") or {"sample_digits": "p_sample_loop", "vae_model": "VAE"}[call.driver]
    try:
        reply = sandbox.run(*source, {"op": "run", "driver": call.driver, "inputs": call.inputs}, timeout_s)
    except WorkerDied as died:
        raise Unusable(f"your {function}: {died}") from None
    if "error" in reply:
        error = reply["error"]
        if cmp.not_implemented(error):
            raise Unusable(f"your {function} is not implemented yet")
        raise Unusable(f"your {function} {cmp.describe_error(error)}")
    return _plain(reply["ok"], call, function)


def _reference(part: str, call: Call) -> list[np.ndarray]:
    return _plain(to_wire(drivers.run_driver(call.driver, reference_module(part), call.inputs)), call, "reference")


def take(sandbox: Runner, parts: dict[str, str], statuses: dict[str, str], call_timeout_s: float) -> list[Picture]:
    """Every scene whose part was handed in (part → the file its worker imports), the student's side from
    ``sandbox``; ``statuses``: each graded
    item's status (grading has finished), so that a function that ran out of time there is not waited for again;
    ``call_timeout_s``: a graded call's limit (a picture's call gets TIMEOUT_FACTOR times it)."""
    pictures = []
    for scene in SCENES:
        if scene.part not in parts:
            continue
        calls, extra = scene.calls()
        reference = [a for c in calls for a in _reference(scene.part, c)]
        picture = Picture(scene.name, scene.title, scene.caption, reference, None, extra=extra)
        try:
            slow = [i.split(".")[1] for i in scene.items if statuses.get(i) == "timeout"]
            if slow:
                raise Unusable(f"your {slow[0]} ran out of time when it was graded")
            timeout_s = TIMEOUT_FACTOR * call_timeout_s
            source = (scene.part, parts[scene.part])
            picture.student = [a for c in calls for a in _student(sandbox, source, c, timeout_s)]
        except Unusable as why:
            picture.problem = f"{why}, so this picture shows the reference alone."
        pictures.append(picture)
    return pictures
