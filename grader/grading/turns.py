"""Turns on the CPU between the graders of one machine: items share it, a timed item has it alone.

The timed item compares the student's training step with the reference's (grader/grading/timing.py).
Both sides are timed in alternation, so load from elsewhere slows both; but load does not slow
them equally (two torch threads suffer more from a busy core than a Python loop does), so a
verdict taken while another submission is graded beside it can move. When several submissions
are graded at once (``grade-class --workers N``, several ``grade`` commands, Dask workers on one
node), every grader takes a turn here: each item is graded under a shared lock, and the timed item's
warm-up and rounds wait until no other grader is inside an item, then hold the lock alone while they
measure (its check that the step trained, which times nothing, takes a shared turn: grader/grading/timing.py).

Two ``flock`` files in a folder of the grader's own user (mode 0700, checked): ``gate`` and
``room``. An item passes through the gate and holds the room shared; a timed item holds the gate
(so no new item enters) while it waits for the room and holds it exclusively. It waits for the room
only while the machine is busy: when the graders inside items compute nothing (each waits on a
student's call that sleeps, or reads input, until its time limit), the machine is as quiet as an
alone turn would make it, and the timed item measures at once (``Quiet``) rather than leave both
cores idle for up to a call's time limit; the gate it holds keeps every new item out all the same.
Waiting is bounded (``WAIT_S``): a grader stuck inside an item that computes delays a timed item by
that much at most, after which it measures anyway and the report says so. The lock files live
outside every sandbox: a worker under bubblewrap cannot see them, and one without it runs as
another user where the grader is root, so it cannot open them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from grader.sandbox.scratch import own_folder

WAIT_S = 60.0  # a timed item waits at most this long for the other graders to finish their items
POLL_S = 0.01
# Quiet: over the last QUIET_S the whole machine's CPUs were busy for at most QUIET_CPU_S (a tenth of one core;
# /proc/stat counts in ticks of 10 ms). A grader waiting on a sleeping call wakes every 50 ms for a few
# microseconds (grader/sandbox/channel.py); one computing a tenth of a core is already too much to time beside.
QUIET_S = 0.2
QUIET_CPU_S = 0.02


def busy_cpu_s() -> float | None:
    """CPU-seconds the machine has spent busy since it started, every core together (user, nice, system and
    interrupts, from /proc/stat: iowait, idle and time stolen by the host are not this machine's work); None
    where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[1:8])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


class Quiet:
    """Whether the machine has been quiet (see QUIET_S) since this began watching, sampled at each call."""

    def __init__(self, meter: Callable[[], float | None]) -> None:
        self.meter = meter
        self.samples: list[tuple[float, float]] = []

    def __call__(self) -> bool:
        busy = self.meter()
        if busy is None:
            return False  # nothing known: wait for the room
        now = time.monotonic()
        self.samples.append((now, busy))
        while len(self.samples) > 1 and now - self.samples[1][0] >= QUIET_S:
            self.samples.pop(0)  # keep one sample at least QUIET_S old
        since, before = self.samples[0]
        return now - since >= QUIET_S and busy - before <= QUIET_CPU_S


def machine_folder() -> Path | None:
    """The folder every grader of this user on this machine takes turns in: created 0700, and refused
    (None) if it exists but is not a folder of this user that only this user can enter."""
    return own_folder(Path(tempfile.gettempdir()) / f"genmath-grader-{os.getuid()}")


class Turns:
    """Shared and exclusive turns in ``folder`` (None: no other grader to wait for); ``meter`` tells how busy the
    machine is (``busy_cpu_s``)."""

    def __init__(self, folder: Path | None, meter: Callable[[], float | None] = busy_cpu_s) -> None:
        self.folder = folder
        self.meter = meter

    def _open(self, name: str) -> int:
        assert self.folder is not None
        return os.open(self.folder / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    @staticmethod
    def _lock(fd: int, operation: int, deadline: float, quiet: Callable[[], bool] | None = None) -> bool:
        """flock ``operation`` on ``fd`` before the deadline, or before ``quiet()`` says there is no need: True
        when it is held, else False (nothing held)."""
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline or (quiet is not None and quiet()):
                    return False
                time.sleep(POLL_S)

    @contextlib.contextmanager
    def take(self, alone: bool) -> Iterator[str | None]:
        """Hold a turn for one item: alone for a timed item. Yields None, or for a timed item that could not
        be alone within WAIT_S, a note saying so."""
        if self.folder is None:
            yield None
            return
        try:
            gate, room = self._open("gate"), self._open("room")
        except OSError:
            yield None
            return
        try:
            deadline = time.monotonic() + WAIT_S
            if alone:
                self._lock(gate, fcntl.LOCK_EX, deadline)
                held = self._lock(room, fcntl.LOCK_EX, deadline, Quiet(self.meter))
                if held or time.monotonic() < deadline:  # the room, or a machine as quiet as the room would make it
                    yield None
                else:
                    yield (
                        f"other grading on this machine did not pause within {WAIT_S:g} s; the step was timed beside it"
                    )
            else:
                if self._lock(gate, fcntl.LOCK_EX, deadline):
                    fcntl.flock(gate, fcntl.LOCK_UN)
                self._lock(room, fcntl.LOCK_SH, deadline)
                yield None
        finally:
            os.close(room)  # closing releases what this descriptor held
            os.close(gate)
