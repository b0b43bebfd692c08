"""The process wall's steps, as a process takes them on itself (grader/sandbox/confine.py says when and why).

A worker, converter or zygote started by the grader takes them between ``fork`` and ``exec``; a zygote forked
from a class's template (worker.py, ``become_zygote``) takes them itself, in the runtime, where the grader's
package cannot be imported: hence this file, which imports nothing but the standard library. In this order:

1. become the slot's uid and gid, with no supplementary groups;
2. ``PR_SET_PDEATHSIG``: die with the parent (after the uid change, which clears it);
3. ``PR_SET_NO_NEW_PRIVS``: no set-user-ID program, no file capability can give it more than it has;
4. Landlock (``landlock_restrict_self`` with the ruleset the grader built), where the kernel has it;
5. the project's seccomp filter (grader/sandbox/seccomp.py), the same one bubblewrap loads.
"""

from __future__ import annotations

import ctypes
import os

PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP = 1, 38, 22
SECCOMP_MODE_FILTER = 2
SYS_LANDLOCK_RESTRICT_SELF = 446  # the same on x86_64 and aarch64


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


def restrict_self(ruleset_fd: int) -> None:
    """Landlock: confine this process, and all it will start, to the ruleset (after PR_SET_NO_NEW_PRIVS)."""
    if ctypes.CDLL(None, use_errno=True).syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset_fd, 0) != 0:
        error = ctypes.get_errno()
        raise OSError(error, "landlock_restrict_self: " + os.strerror(error))


def seccomp_filter(program: bytes) -> tuple[ctypes.Array[ctypes.c_char], SockFprog]:
    """The filter's buffer (kept alive by the caller) and the ``sock_fprog`` that points into it."""
    buffer = ctypes.create_string_buffer(program, len(program))
    return buffer, SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))


def take_steps(uid: int | None, ruleset_fd: int | None, fprog: SockFprog | None, death_signal: int) -> None:
    """The five steps, in order; a step that fails raises, so that nothing runs unconfined."""
    if uid is not None:
        drop_privileges(uid)
    prctl(PR_SET_PDEATHSIG, death_signal)
    prctl(PR_SET_NO_NEW_PRIVS, 1)
    if ruleset_fd is not None:
        restrict_self(ruleset_fd)
    if fprog is not None:
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog))
