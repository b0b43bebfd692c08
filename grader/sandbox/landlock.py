"""Landlock (Linux 5.13 and later): the files a worker may read and write, confined by the kernel, no privilege needed.

Where bubblewrap cannot build its sandbox (a Docker container, a Kubernetes pod) the process wall still hides the
grader from the worker: before it starts Python, the worker restricts itself (``landlock_restrict_self``) to a
ruleset that allows

- reading and executing the system's folders, the Python installation and the runtime copied for it;
- reading the private copy of the submission and the modules made from its notebooks;
- reading /proc and /sys (Python and torch read CPU and memory facts there), and the harmless devices;
- writing only its own scratch folder (HOME and TMPDIR).

Everything else, the project (``grader/``, ``reference/``, ``solutions/``), other students' folders, /tmp and
/dev/shm, Gradescope's ``/autograder/source``, is out of its reach, whatever the files' modes say. From ABI 4
the worker may neither bind nor connect a TCP socket, and from ABI 6 it may not signal a process outside its
own domain (the grader, another student's worker) nor reach an abstract Unix socket outside it.

The ruleset is built by the grader (``Ruleset.build``) and inherited by the forked child, which applies it
(``Ruleset.enforce``) after ``PR_SET_NO_NEW_PRIVS`` and just before ``exec``. See the kernel's
Documentation/userspace-api/landlock.rst for the system calls and the access rights of each ABI version.
"""

from __future__ import annotations

import ctypes
import os
import stat
import struct
import sys
from dataclasses import dataclass

from grader.runtime.confinement import restrict_self

SYS_CREATE_RULESET, SYS_ADD_RULE = 444, 445  # the same on x86_64 and aarch64 (restrict_self: 446)
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

# LANDLOCK_ACCESS_FS_*: bit k, and the ABI version that brought it
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ABI1 = (1 << 13) - 1  # EXECUTE ... MAKE_SYM
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3 and 5
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # what a rule on a file (not a folder) may name
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

READ = EXECUTE | READ_FILE | READ_DIR
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi() -> int:
    """The Landlock ABI version the kernel offers: 0 where it has none (too old, or not enabled)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        version = _libc().syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), CREATE_RULESET_VERSION)
    except (OSError, AttributeError):  # pragma: no cover
        return 0
    return max(0, int(version))


def handled_fs(version: int) -> int:
    rights = FS_ABI1
    if version >= 2:
        rights |= REFER
    if version >= 3:
        rights |= TRUNCATE
    if version >= 5:
        rights |= IOCTL_DEV
    return rights


@dataclass
class Ruleset:
    """A ruleset's descriptor (kept open by the grader until the worker has started) and its ABI version."""

    fd: int
    version: int

    @classmethod
    def build(cls, readable: list[str], writable: list[str], devices: list[str] = ()) -> Ruleset:  # type: ignore[assignment]
        """The ruleset for a worker: ``readable`` folders and files read (and executed), ``writable`` ones
        written too, ``devices`` read, written and (ABI 5) ioctl'd. OSError where the kernel refuses it."""
        version = abi()
        if version < 1:
            raise OSError("Landlock is not available")
        libc = _libc()
        handled = handled_fs(version)
        attr = struct.pack("=Q", handled)
        if version >= 4:
            attr += struct.pack("=Q", NET_BIND_TCP | NET_CONNECT_TCP)
        if version >= 6:
            attr += struct.pack("=Q", SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL)
        buffer = ctypes.create_string_buffer(attr, len(attr))
        fd = libc.syscall(SYS_CREATE_RULESET, buffer, ctypes.c_size_t(len(attr)), 0)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset: " + os.strerror(ctypes.get_errno()))
        ruleset = cls(fd, version)
        try:
            for paths, rights in ((readable, READ), (writable, handled), (devices, READ_FILE | WRITE_FILE | IOCTL_DEV)):
                for path in paths:
                    ruleset._allow(libc, path, rights & handled)
        except BaseException:
            ruleset.close()
            raise
        return ruleset

    def _allow(self, libc: ctypes.CDLL, path: str, rights: int) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:  # not on this machine (/lib32): nothing to allow
            return
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                rights &= FILE_ONLY
            attr = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)  # packed landlock_path_beneath_attr
            if libc.syscall(SYS_ADD_RULE, self.fd, RULE_PATH_BENEATH, attr, 0) != 0:
                error = ctypes.get_errno()
                raise OSError(error, f"landlock_add_rule({path}): {os.strerror(error)}")
        finally:
            os.close(fd)

    def enforce(self) -> None:
        """In the child, after PR_SET_NO_NEW_PRIVS: confine this process and all it will start."""
        restrict_self(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
