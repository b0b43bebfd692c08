"""What a worker does to itself between ``fork`` and ``exec`` outside bubblewrap: the process wall's own steps.

In this order, in the child, with the rlimits already set (grader/sandbox/processes.py):

1. become the slot's uid and gid, with no supplementary groups (a root grader; grader/sandbox/uids.py);
2. ``PR_SET_PDEATHSIG``: die with the grader (after the uid change, which clears it);
3. ``PR_SET_NO_NEW_PRIVS``: no set-user-ID program, no file capability can give it more than it has;
4. Landlock (grader/sandbox/landlock.py), where the kernel has it: what it may read and write;
5. the project's seccomp filter (grader/sandbox/seccomp.py), the same one bubblewrap loads.

Everything it starts inherits all five. A step that fails raises, so the worker does not start: the wall was
probed with the same steps (grader/sandbox/isolation.py), so that does not happen on a machine that passed it.
"""

from __future__ import annotations

import ctypes
import os
import signal
from dataclasses import dataclass

from grader.sandbox.landlock import Ruleset

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 38, 22
SECCOMP_MODE_FILTER = 2


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def prctl(option: int, value: int, pointer: object = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(ctypes.c_int(option), ctypes.c_ulong(value), pointer, ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"prctl({option}): {os.strerror(error)}")


@dataclass
class Confinement:
    """The steps for one child, prepared in the grader (nothing is allocated between fork and exec)."""

    uid: int | None = None
    ruleset: Ruleset | None = None
    seccomp: bytes | None = None
    death_signal: int = signal.SIGKILL

    def __post_init__(self) -> None:
        self._program = ctypes.create_string_buffer(self.seccomp, len(self.seccomp)) if self.seccomp else None
        self._fprog = (
            SockFprog(len(self.seccomp) // 8, ctypes.cast(self._program, ctypes.c_void_p))
            if self._program is not None and self.seccomp
            else None
        )

    def apply(self) -> None:
        """In the child, just before exec."""
        if self.uid is not None:
            drop_privileges(self.uid)
        prctl(PR_SET_PDEATHSIG, self.death_signal)
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        if self.ruleset is not None:
            self.ruleset.enforce()
        if self._fprog is not None:
            prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self._fprog))
