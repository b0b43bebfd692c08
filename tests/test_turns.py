"""Turns on the machine (grader/grading/turns.py): items share it, the timed item's rounds have it alone.

When two graders share a machine (``grade-class --workers 2``), the timed item's warm-up and rounds must run
while no other grader is inside an item, and what of it times nothing (the check that the step trained) must not
keep the other grader waiting.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from grader.grading import run, timing
from grader.grading.items import RECORDS
from grader.grading.turns import QUIET_S, Turns, busy_cpu_s
from grader.runtime import drivers
from grader.runtime.wire import Array
from reference import ddpm


class Spy(Turns):
    """Turns that take nothing but record which turn is held: None, "shared" or "alone"."""

    def __init__(self) -> None:
        super().__init__(None)
        self.held: str | None = None
        self.taken: list[str] = []

    @contextlib.contextmanager
    def take(self, alone: bool) -> Iterator[str | None]:
        assert self.held is None, "a turn taken inside another"
        self.held = "alone" if alone else "shared"
        self.taken.append(self.held)
        try:
            yield None
        finally:
            self.held = None


class Worker:
    """A runner that answers the timed item's requests as a right step would, and records each request's turn."""

    def __init__(self, turns: Spy, log: list[tuple[str, str, str | None]], side: str) -> None:
        self.turns, self.log, self.side = turns, log, side
        self.start: dict[str, np.ndarray] = {}

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.log.append((self.side, str(op["op"]), self.turns.held))
        if op["op"] in ("speed_run", "speed_params") and not self.start:  # as drivers.Calls answers it
            return {"error": {"kind": "raised", "type": "UnknownOp", "message": "no timed step set up", "where": None}}
        if op["op"] == "speed_setup":
            self.start = {k: v.numpy() for k, v in timing.start_state().items()}
        if op["op"] == "speed_run":
            time.sleep(0.002)  # both sides alike: a ratio of about 1
        if op["op"] == "speed_params":  # every parameter moved by the same amount on both sides: trained
            return {"ok": {k: Array(v + 0.5, "torch", "cpu") for k, v in self.start.items()}}
        return {"ok": True}

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]:
        return {"ok": True}

    def frozen(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def helpers(self) -> int:
        return 0

    def baseline(self, files: Mapping[str, Path], module: ModuleType) -> Worker:
        return Worker(self.turns, self.log, "reference")  # a new one each time, as in a notebook's kernel


def test_the_timed_item_holds_the_machine_alone_while_it_times_and_only_then() -> None:
    """Both sides' warm-up (speed_setup) and every timed round (speed_run) in the turn held alone; the parameters
    read after the rounds (speed_params), which time nothing, in a shared turn, as a judged item is."""
    turns, log = Spy(), []
    student = Worker(turns, log, "student")
    outcome = run.grade_record(RECORDS["ddpm.ddpm_train_step.speed"], student, ("ddpm", "ddpm.py"), turns=turns)
    assert outcome.status == "passed", outcome
    assert turns.taken == ["alone", "shared"], turns.taken
    rounds = [side for side, op, held in log if op == "speed_run" and held == "alone"]
    assert len(rounds) >= 2 * timing.EARLY_ROUNDS and set(rounds) == {"student", "reference"}, log
    turn_of = {(side, op): held for side, op, held in log}  # the last request of each kind on each side
    assert turn_of == {
        ("student", "speed_setup"): "alone", ("reference", "speed_setup"): "alone",
        ("student", "speed_run"): "alone", ("reference", "speed_run"): "alone",
        ("student", "speed_params"): "shared", ("reference", "speed_params"): "shared",
    }, log  # fmt: skip


def test_on_the_cpu_the_timed_steps_run_on_one_thread_and_the_process_gets_its_own_back() -> None:
    """Both sides' steps run on one torch thread while timed (drivers.SpeedSession): with two, load from elsewhere
    slowed each side's rounds at the threads' barriers by chance amounts, and a per-sample loop (7x idle) measured
    1.4x in one of ten runs with both cores busy. Whatever count the process had is set again afterwards (a
    notebook's kernel runs both sides in its own process)."""
    seen: list[int] = []

    def ddpm_train_step(*args: object) -> float:
        seen.append(torch.get_num_threads())
        return ddpm.ddpm_train_step(*args)  # type: ignore[arg-type]

    student = ModuleType("ddpm")
    student.ddpm_train_step = ddpm_train_step  # type: ignore[attr-defined]
    inputs = {**timing._inputs("cpu"), "dim": 8, "hidden": 16, "batch": 4, "warmup": 2}
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        calls = drivers.Calls()
        assert calls.perform(student, {"op": "speed_setup", "inputs": inputs}) is True
        assert calls.perform(student, {"op": "speed_run", "steps": 3}) is True
        assert seen == [1] * 5 and torch.get_num_threads() == 2, seen
    finally:
        torch.set_num_threads(before)


def test_a_judged_item_holds_a_shared_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    turns, seen = Spy(), []
    monkeypatch.setattr(run, "judge", lambda *args: seen.append(turns.held) or "judged")
    assert run.grade_record(RECORDS["mle.binomial_mle"], Worker(turns, [], "student"), ("mle", "mle.py"), turns=turns)
    assert seen == ["shared"] and turns.taken == ["shared"]


class Busy:
    """A machine whose CPUs are busy (``busy``: each reading a core-second more than the last), or idle."""

    def __init__(self, busy: bool) -> None:
        self.busy, self.seconds = busy, 0.0

    def __call__(self) -> float:
        self.seconds += 1.0 if self.busy else 0.0
        return self.seconds


def test_the_turn_alone_waits_for_shared_turns_and_holds_new_ones_back(tmp_path: Path) -> None:
    """Real locks (flock, one descriptor each, as two graders have), on a busy machine: the alone turn begins only
    once a shared turn held before it ends, and a shared turn asked for meanwhile begins only after the alone turn."""
    turns = Turns(tmp_path, Busy(True))
    events: list[str] = []
    shared_held, alone_asked = threading.Event(), threading.Event()

    def other_grader() -> None:
        with turns.take(alone=False):
            events.append("item starts")
            shared_held.set()
            assert alone_asked.wait(5)
            time.sleep(0.2)  # the timed rounds wait for this item
            events.append("item ends")
        time.sleep(0.05)
        with turns.take(alone=False):  # a next item, asked for while the rounds run
            events.append("next item")

    thread = threading.Thread(target=other_grader)
    thread.start()
    assert shared_held.wait(5)
    alone_asked.set()
    with turns.take(alone=True) as waited:
        events.append("rounds start")
        time.sleep(0.3)
        events.append("rounds end")
    thread.join(10)
    assert waited is None
    assert events == ["item starts", "item ends", "rounds start", "rounds end", "next item"], events


def test_on_a_quiet_machine_the_turn_alone_does_not_wait_for_an_item_that_computes_nothing(tmp_path: Path) -> None:
    """Another grader's item waits on a student's call that sleeps (to its time limit): nothing computes, so the
    timed item measures without waiting for it (both cores would idle), and still holds the gate, so that no
    new item begins until it is done."""
    turns = Turns(tmp_path, Busy(False))
    events: list[str] = []
    shared_held, rounds_done = threading.Event(), threading.Event()

    def other_grader() -> None:
        with turns.take(alone=False):
            events.append("item starts")
            shared_held.set()
            rounds_done.wait(5)  # the student's call sleeps through the rounds
            events.append("item ends")
        with turns.take(alone=False):
            events.append("next item")

    thread = threading.Thread(target=other_grader)
    thread.start()
    assert shared_held.wait(5)
    start = time.monotonic()
    with turns.take(alone=True) as waited:
        events.append("rounds start")
        waited_s = time.monotonic() - start
        time.sleep(0.1)
        rounds_done.set()
        time.sleep(0.2)  # the sleeping item ends meanwhile; its grader's next item waits at the gate
        events.append("rounds end")
    thread.join(10)
    assert waited is None
    assert QUIET_S <= waited_s < 5, waited_s
    assert events == ["item starts", "rounds start", "item ends", "rounds end", "next item"], events


def test_the_machine_meter_counts_cpu_time_spent() -> None:
    """busy_cpu_s (/proc/stat) grows at least by what this process computes: a busy machine never reads quiet."""
    before = busy_cpu_s()
    if before is None:
        pytest.skip("no /proc/stat here")
    spent = time.process_time()
    while time.process_time() - spent < 0.3:
        pass
    after = busy_cpu_s()
    assert after is not None and after - before >= 0.25, (before, after)


@pytest.mark.parametrize(
    ("ratio", "rounds", "status"),
    [(1.0, timing.EARLY_ROUNDS, "passed"), (timing.EARLY_FACTOR, timing.EARLY_ROUNDS, "passed"),
     (1.6, timing.REPEATS, "passed"), (2.9, timing.REPEATS, "passed"), (3.1, timing.MAX_REPEATS, "failed"),
     (timing.CLEARLY_SLOW_FACTOR, timing.MAX_REPEATS, "failed"), (9.5, timing.EARLY_ROUNDS, "failed")],
)  # fmt: skip
def test_a_step_clearly_within_or_past_the_limit_is_timed_for_fewer_rounds(
    monkeypatch: pytest.MonkeyPatch, ratio: float, rounds: int, status: str
) -> None:
    """Each side's round is timed at a fixed length (the student's ``ratio`` times the reference's): a step within
    half the limit, or past CLEARLY_SLOW_FACTOR, stops after EARLY_ROUNDS rounds; one nearer the limit takes all
    REPEATS, one past it MAX_REPEATS; the verdict is the ratio's."""
    turns, log = Spy(), []
    student = Worker(turns, log, "student")

    def clocked(runner: Worker, source: tuple[str, str], op: dict[str, Any], timeout: float) -> tuple[float, Any]:
        reply = runner.run(*source, op, timeout)
        return (0.01 * ratio if runner.side == "student" else 0.01), reply

    monkeypatch.setattr(timing, "_clocked", clocked)
    outcome = run.grade_record(RECORDS["ddpm.ddpm_train_step.speed"], student, ("ddpm", "ddpm.py"), turns=turns)
    assert outcome.status == status, outcome
    timed = [side for side, op, _ in log if op == "speed_run"]
    assert timed == ["reference", "student"] * rounds
    assert f"(fastest of {rounds} rounds)" in outcome.note, outcome.note
