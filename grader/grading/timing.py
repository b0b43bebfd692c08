"""The timed check of ddpm.ddpm_train_step: the student's step against the reference's, in one grading run.

Both steps train an ``EpsNet`` of the Denoiser's size (784 → 512 → 784) with Adam on
the same batch of 128, the same t and noise, on CUDA when the grader sees a GPU,
else the CPU. Like is timed against like: the reference's step runs in a worker of
its own, in a sandbox beside the student's built with the same wall and limits
(``Sandbox.baseline``), and each side is timed by the grader's wall clock around the
same request (neither worker's own clock is asked). Where the student's code runs in
the grader's own process (a notebook's hidden tests), so does the reference's.

Timing the reference in the grader's process instead let load move a verdict: the grader
shares its session with whatever started it (pytest, a class's other grading processes),
while a worker starts a session of its own, and the kernel shares the CPU between sessions
(autogroups) before it shares it between processes. A per-sample loop, 5.6x the reference
on an idle machine, once earned full marks in CI, with the other test process (of the grader's
session) busy beside it.

After warm-up the runner alternates: STEPS reference steps, then STEPS student steps. The
fastest of REPEATS rounds on each side are compared, as ``timeit`` advises: load from
elsewhere on the machine only ever adds time, so the minimum is the step's own cost; full
marks when the student's is at most SPEED_FACTOR times the reference's. While it is not, up to
MAX_REPEATS rounds are taken: more rounds can only lower a minimum, so a busy moment on a
loaded machine does not fail a fast step, and a slow step stays slow. A step within EARLY_FACTOR
(half the limit) of the reference after EARLY_ROUNDS rounds is timed no more: further rounds could
lift its ratio past the limit only by halving the reference's fastest round, which load that slowed
every one of the reference's rounds and none of the student's would take (the solution measures
about 1x, a per-sample loop 5x and more, under load too). Likewise a step past CLEARLY_SLOW_FACTOR (three
times the limit) after EARLY_ROUNDS rounds: only load that slowed every one of its rounds threefold and none of
the reference's could hide a step within the limit there (load moved the per-sample loop from about 5.6x idle to
at most 10.4x, a factor under 2). A step that computes its schedule per sample in Python, some 28x, took all
MAX_REPEATS rounds and 26.7 s to grade before. The solutions' timed item took 0.80 s
instead of 1.30 (``benchmarks.grade_phases``, fastest of 3, one run each, one hour). On the CPU both sides'
steps run on one torch thread (``drivers.SpeedSession``): with two, load from elsewhere made
rounds of either side 2 to 30 times slower at the threads' barriers, unevenly, and a per-sample
loop measured 1.4x in one of ten runs with both cores busy. On this project's 2-core machine
the solution measures 0.9-1.1x idle and 1.1x with both cores busy, and a per-sample Python loop
over the batch 7x idle and 6x busy (far more on a GPU). The feedback states the verdict, not the
measured times, so that it is the same on every run; the times go to the report's notes.

The speed has to be earned: while the reference is timed, every process of the submission
is frozen (its cgroup's freezer, else SIGSTOP), so a process it left running cannot slow
the reference down; the step must run alone, so a submission that keeps processes of its own
alive beside the worker while it is timed fails (on a loaded machine, a few processes that
merely wake every millisecond made a 5.4x-slow step measure 1.8x, idle it measured 5.4x: the
kernel's group scheduler favours the tree they are in); and after the timed rounds the
student's model must have moved as the reference's did (``_untrained``), so a step that
returns at once without training fails.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from grader.checks import Outcome
from grader.grading.compare import describe_error, not_implemented
from grader.grading.turns import Turns
from grader.runtime import drivers
from grader.runtime.wire import Array
from grader.sandbox import Runner, Sandbox, WorkerDied
from reference import ddpm

SPEED_FACTOR = 3.0
STEPS = 3  # per timed round
REPEATS = 9  # rounds; the fastest of each side is compared
EARLY_ROUNDS = 5  # after as many rounds, a step already within EARLY_FACTOR of the reference is timed no more
EARLY_FACTOR = SPEED_FACTOR / 2
MAX_REPEATS = 27  # rounds while the student's step still looks too slow: a busy moment only ever adds time
CLEARLY_SLOW_FACTOR = 3 * SPEED_FACTOR  # after EARLY_ROUNDS, a step this far past the reference is timed no more
WARMUP = 3
BATCH, DIM, HIDDEN, T = 128, 784, 512, 1000
SEED = 0  # of the model's initial weights and of the batch, t and noise
TRAINED_RTOL = 0.05  # see _untrained: float32 rounding moves Adam's 30 steps apart by well under 1% here
SETUP_TIMEOUT_S = 120.0
ROUND_TIMEOUT_S = 60.0


ALONE = (
    "Your code keeps other processes running beside the timed training step (started at import or by the "
    "step): the step is timed only when it runs alone in its own process. Remove the fork, subprocess or "
    "multiprocessing call."
)


def _inputs(device: str) -> dict[str, object]:
    """Both sides' timed state: the model's weights (``drivers.timed_eps_net``) and the batch come from ``seed``."""
    return {
        "dim": DIM,
        "hidden": HIDDEN,
        "batch": BATCH,
        "T": T,
        "betas": ddpm.linear_beta_schedule(T),
        "seed": SEED,
        "device": device,
        "warmup": WARMUP,
    }


def reference_files() -> dict[str, Path]:
    """What the reference's worker holds: reference/ddpm.py as ddpm.py, and the package it imports from."""
    package = Path(ddpm.__file__).resolve().parent
    return {
        "ddpm.py": package / "ddpm.py",
        "reference/__init__.py": package / "__init__.py",
        "reference/_validation.py": package / "_validation.py",
    }


REFERENCE_SOURCE = ("ddpm", "ddpm.py")  # the module and file the reference's worker loads


def prepare(runner: Runner) -> None:
    """Start the reference's worker now (its imports and warm-up), while the other items are graded."""
    reference = runner.baseline(reference_files(), ddpm)
    if isinstance(reference, Sandbox):
        reference.start(trains=True)


def _clocked(runner: Runner, source: tuple[str, str], op: dict[str, object], timeout: float) -> tuple[float, Any]:
    """One request to ``runner`` and its reply, with its wall time from here (request and reply included)."""
    start = time.perf_counter()
    reply = runner.run(*source, op, timeout)
    return time.perf_counter() - start, reply


def _ours(reference: Runner, op: dict[str, object], timeout: float) -> tuple[float, Any]:
    """A request to the reference's worker, which runs only the grader's code, timed: its answer, or an error
    that says the grader failed (never the student)."""
    try:
        elapsed, reply = _clocked(reference, REFERENCE_SOURCE, op, timeout)
    except WorkerDied as died:
        raise RuntimeError(f"the reference's timed step stopped: {died}") from None
    if "ok" not in reply:
        raise RuntimeError(f"the reference's timed step failed: {reply.get('error')}")
    return elapsed, reply["ok"]


def time_speed(
    sandbox: Runner,
    source: tuple[str, str] = ("ddpm", "ddpm.py"),
    item: str = "ddpm.ddpm_train_step.speed",
    turns: Turns | None = None,
) -> Outcome:
    """The timed item's outcome. It holds the machine alone (grader/grading/turns.py) while both sides warm up and
    are timed, and shares it again to check that the step trained: the other graders' items wait for the timing
    only. (Warming up beside their items cost more than it saved: two torch processes of two threads each on
    two cores spin at each other's barriers; a class of 40 with two workers used 124 and 129 CPU-seconds
    instead of 102.)"""
    turns = turns or Turns(None)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    inputs = _inputs(device)
    ours: list[float] = []
    theirs: list[float] = []
    with turns.take(alone=True) as waited:
        failed = _set_up(sandbox, source, inputs)
        if failed is not None:
            return failed
        reference = sandbox.baseline(reference_files(), ddpm)
        _ours(reference, {"op": "speed_setup", "inputs": inputs}, SETUP_TIMEOUT_S)
        while len(ours) < REPEATS or (min(theirs) > SPEED_FACTOR * min(ours) and len(ours) < MAX_REPEATS):
            with sandbox.frozen():  # nothing the submission started runs while the reference is timed
                ours.append(_ours(reference, {"op": "speed_run", "steps": STEPS}, ROUND_TIMEOUT_S)[0])
            try:
                elapsed, reply = _clocked(sandbox, source, {"op": "speed_run", "steps": STEPS}, ROUND_TIMEOUT_S)
            except WorkerDied as died:
                status = "timeout" if died.kind == "timeout" else "error"
                feedback = f"The timed step did not finish {STEPS} steps: {died}."
                return Outcome(status, feedback, "", limit=died.limit)
            theirs.append(elapsed)
            if "error" in reply:
                return Outcome("error", f"The timed step {describe_error(reply['error'])}.", "")
            if sandbox.helpers():
                return Outcome("failed", ALONE, "")
            clear = not EARLY_FACTOR * min(ours) < min(theirs) <= CLEARLY_SLOW_FACTOR * min(ours)
            if len(ours) >= EARLY_ROUNDS and clear:
                break  # more rounds cannot take it across SPEED_FACTOR unless all of one side's so far ran 2-3x slow
    with turns.take(alone=False):
        untrained = _untrained(
            sandbox, source, _ours(reference, {"op": "speed_params"}, ROUND_TIMEOUT_S)[1], start_state()
        )
    if untrained:
        return Outcome("failed", untrained, "")
    ratio = min(theirs) / min(ours)
    note = (
        f"{item} on {device}: reference {1e3 * min(ours) / STEPS:.1f} ms/step, "
        f"submission {1e3 * min(theirs) / STEPS:.1f} ms/step (fastest of {len(ours)} rounds), "
        f"ratio {ratio:.2f} (limit {SPEED_FACTOR:g})" + (f"; {waited}" if waited else "")
    )
    if ratio <= SPEED_FACTOR:
        return Outcome(
            "passed", f"Your training step runs within {SPEED_FACTOR:g}x of the reference's time on {device}.", note
        )
    return Outcome(
        "failed",
        f"Your training step is more than {SPEED_FACTOR:g}x slower than the reference's on {device} "
        f"(batch {BATCH}, {DIM} inputs). Vectorise over the batch: no Python loop over samples.",
        note,
    )


def _set_up(sandbox: Runner, source: tuple[str, str], inputs: dict[str, object]) -> Outcome | None:
    """The student's timed state built and warmed up: None, or the outcome that ends the item."""
    name, filename = source
    try:
        reply = sandbox.run(name, filename, {"op": "speed_setup", "inputs": inputs}, SETUP_TIMEOUT_S)
    except WorkerDied as died:
        return Outcome(
            "timeout" if died.kind == "timeout" else "error", f"The timed step did not finish its warm-up: {died}.", "",
            limit=died.limit,
        )  # fmt: skip
    if "error" in reply:
        error = reply["error"]
        if not_implemented(error):
            return Outcome("missing", "Not implemented yet: ddpm_train_step still raises NotImplementedError.", "")
        return Outcome("error", f"The timed step {describe_error(error)}.", "")
    if sandbox.helpers():
        return Outcome("failed", ALONE, "")
    return None


def start_state() -> dict[str, torch.Tensor]:
    """The timed model's weights before the first step, as both sides build them."""
    return drivers.timed_eps_net(DIM, HIDDEN, SEED).state_dict()


def _untrained(
    sandbox: Runner, source: tuple[str, str], reference: dict[str, Array], start: dict[str, torch.Tensor]
) -> str | None:
    """None when the timed steps moved the model as the reference's did; else the feedback saying they did not.

    Both sides took WARMUP + (rounds)·STEPS Adam steps from the same weights on the same batch (``reference``:
    the parameters the reference's worker sent after its rounds). The
    distance between the two results is measured against how far the reference moved:
    ‖θ_student − θ_reference‖ ≤ TRAINED_RTOL · ‖θ_reference − θ_0‖ over all parameters."""
    name, filename = source
    failed = (
        "The timed steps did not train the model as ddpm_train_step should: after them the parameters differ from "
        "the reference's (same weights, batch, t and noise, Adam). Speed counts only for a step that trains."
    )
    try:
        reply = sandbox.run(name, filename, {"op": "speed_params"}, ROUND_TIMEOUT_S)
    except WorkerDied as died:
        return f"The grader could not read the parameters after the timed steps: {died}."
    params = reply.get("ok")
    expected = {k: torch.from_numpy(v.array.astype("float64")) for k, v in reference.items()}
    if not isinstance(params, dict) or set(params) != set(expected):
        return failed
    moved = gap = 0.0
    for key, value in expected.items():
        got = params[key]
        if not isinstance(got, Array) or tuple(got.array.shape) != tuple(value.shape):
            return failed
        theirs = torch.from_numpy(got.array.astype("float64"))
        if not torch.isfinite(theirs).all():
            return failed
        moved += float(((value - start[key].double()) ** 2).sum())
        gap += float(((theirs - value) ** 2).sum())
    return None if gap**0.5 <= TRAINED_RTOL * moved**0.5 else failed
