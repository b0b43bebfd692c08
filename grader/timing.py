"""The timed check of ddpm.ddpm_train_step: the student's step against the reference's, in one grading run.

Both steps train an ``EpsNet`` of the Denoiser's size (784 → 512 → 784) with Adam on
the same batch of 128, the same t and noise, on CUDA when the grader sees a GPU,
else the CPU, with the same number of torch threads. After warm-up the runner
alternates: STEPS reference steps timed in this process, then STEPS student steps
in the worker, timed from here by the wall clock around the request (the worker's
own clock is never asked). The fastest of REPEATS rounds on each side are compared, as
``timeit`` advises: load from elsewhere on the machine only ever adds time, so the minimum
is the step's own cost; full marks when the student's is at most SPEED_FACTOR times the
reference's. A per-sample
Python loop over the batch is ~100x slower and fails; the solution, ~1x, passes with
room for a loaded machine. The feedback states the verdict, not the measured times,
so that it is the same on every run; the times go to the report's notes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from grader import drivers
from grader.compare import not_implemented
from grader.sandbox import Runner, WorkerDied
from reference import ddpm

SPEED_FACTOR = 3.0
STEPS = 3  # per timed round
REPEATS = 9  # rounds; the fastest of each side is compared
WARMUP = 3
BATCH, DIM, HIDDEN, T = 128, 784, 512, 1000
SETUP_TIMEOUT_S = 120.0
ROUND_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SpeedResult:
    status: str
    feedback: str
    note: str


def _inputs(device: str) -> dict[str, object]:
    torch.manual_seed(0)
    state = {k: v for k, v in drivers.EpsNet(DIM, HIDDEN).state_dict().items()}
    return {
        "dim": DIM,
        "hidden": HIDDEN,
        "batch": BATCH,
        "T": T,
        "betas": ddpm.linear_beta_schedule(T),
        "eps_state": state,
        "seed": 0,
        "device": device,
        "warmup": WARMUP,
    }


def time_speed(sandbox: Runner, source: tuple[str, str] = ("ddpm", "ddpm.py")) -> SpeedResult:
    name, filename = source
    device = "cuda" if torch.cuda.is_available() else "cpu"
    inputs = _inputs(device)
    try:
        reply = sandbox.run(name, filename, {"op": "speed_setup", "inputs": inputs}, SETUP_TIMEOUT_S)
    except WorkerDied as died:
        return SpeedResult(
            "timeout" if died.kind == "timeout" else "error", f"The timed step did not finish its warm-up: {died}.", ""
        )
    if "error" in reply:
        error = reply["error"]
        if not_implemented(error):
            return SpeedResult("missing", "Not implemented yet: ddpm_train_step still raises NotImplementedError.", "")
        return SpeedResult("error", f"The timed step raised {error.get('type')}: {error.get('message')}.", "")
    reference = drivers.SpeedSession(ddpm, inputs)
    reference.run(WARMUP)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(REPEATS):
        ours.append(drivers.timed_run(reference, STEPS))
        start = time.perf_counter()
        try:
            reply = sandbox.run(name, filename, {"op": "speed_run", "steps": STEPS}, ROUND_TIMEOUT_S)
        except WorkerDied as died:
            status = "timeout" if died.kind == "timeout" else "error"
            return SpeedResult(status, f"The timed step did not finish {STEPS} steps: {died}.", "")
        theirs.append(time.perf_counter() - start)
        if "error" in reply:
            return SpeedResult(
                "error", f"The timed step raised {reply['error'].get('type')}: {reply['error'].get('message')}.", ""
            )
    ratio = min(theirs) / min(ours)
    note = (
        f"ddpm.ddpm_train_step.speed on {device}: reference {1e3 * min(ours) / STEPS:.1f} ms/step, "
        f"submission {1e3 * min(theirs) / STEPS:.1f} ms/step (fastest of {REPEATS} rounds), "
        f"ratio {ratio:.2f} (limit {SPEED_FACTOR:g})"
    )
    if ratio <= SPEED_FACTOR:
        return SpeedResult(
            "passed", f"Your training step runs within {SPEED_FACTOR:g}x of the reference's time on {device}.", note
        )
    return SpeedResult(
        "failed",
        f"Your training step is more than {SPEED_FACTOR:g}x slower than the reference's on {device} "
        f"(batch {BATCH}, {DIM} inputs). Vectorise over the batch: no Python loop over samples.",
        note,
    )
