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
(so no new item enters) while it waits for the room and holds it exclusively. Waiting is bounded
(``WAIT_S``): a grader stuck inside an item (a student's call that sleeps to its time limit) delays
a timed item by that much at most, after which it measures anyway and the report says so. The lock
files live outside every sandbox: a worker under bubblewrap cannot see them, and one without it runs
as another user where the grader is root, so it cannot open them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from grader.sandbox.scratch import own_folder

WAIT_S = 60.0  # a timed item waits at most this long for the other graders to finish their items
POLL_S = 0.01


def machine_folder() -> Path | None:
    """The folder every grader of this user on this machine takes turns in: created 0700, and refused
    (None) if it exists but is not a folder of this user that only this user can enter."""
    return own_folder(Path(tempfile.gettempdir()) / f"genmath-grader-{os.getuid()}")


class Turns:
    """Shared and exclusive turns in ``folder`` (None: no other grader to wait for)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder

    def _open(self, name: str) -> int:
        assert self.folder is not None
        return os.open(self.folder / name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)

    @staticmethod
    def _lock(fd: int, operation: int, deadline: float) -> bool:
        """flock ``operation`` on ``fd`` before the deadline: True, else False (nothing held)."""
        while True:
            try:
                fcntl.flock(fd, operation | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
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
                held = self._lock(room, fcntl.LOCK_EX, deadline)
                yield (
                    None
                    if held
                    else (
                        f"other grading on this machine did not pause within {WAIT_S:g} s; the step was timed beside it"
                    )
                )
            else:
                if self._lock(gate, fcntl.LOCK_EX, deadline):
                    fcntl.flock(gate, fcntl.LOCK_UN)
                self._lock(room, fcntl.LOCK_SH, deadline)
                yield None
        finally:
            os.close(room)  # closing releases what this descriptor held
            os.close(gate)
