"""What a worker does to itself between ``fork`` and ``exec`` outside bubblewrap: the process wall's own steps.

In this order, in the child, with the rlimits already set (grader/sandbox/processes.py):

1. become the slot's uid and gid, with no supplementary groups (a root grader; grader/sandbox/uids.py);
2. ``PR_SET_PDEATHSIG``: die with the grader (after the uid change, which clears it);
3. ``PR_SET_NO_NEW_PRIVS``: no set-user-ID program, no file capability can give it more than it has;
4. Landlock (grader/sandbox/landlock.py), where the kernel has it: what it may read and write;
5. the project's seccomp filter (grader/sandbox/seccomp.py), the same one bubblewrap loads.

Everything it starts inherits all five. A step that fails raises, so the worker does not start: the wall was
probed with the same steps (grader/sandbox/isolation.py), so that does not happen on a machine that passed it.
The steps themselves are grader/runtime/confinement.py, which a zygote forked from a class's template
(grader/sandbox/template.py) takes on itself.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from grader.runtime.confinement import SockFprog, seccomp_filter, take_steps
from grader.sandbox.landlock import Ruleset


@dataclass
class Confinement:
    """The steps for one child, prepared in the grader (nothing is allocated between fork and exec)."""

    uid: int | None = None
    ruleset: Ruleset | None = None
    seccomp: bytes | None = None
    death_signal: int = signal.SIGKILL

    def __post_init__(self) -> None:
        self._program: object = None
        self._fprog: SockFprog | None = None
        if self.seccomp:
            self._program, self._fprog = seccomp_filter(self.seccomp)

    def apply(self) -> None:
        """In the child, just before exec."""
        take_steps(self.uid, self.ruleset.fd if self.ruleset is not None else None, self._fprog, self.death_signal)
