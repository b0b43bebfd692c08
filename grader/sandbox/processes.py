"""Starting a worker under its limits, watching it, and ending it with everything it started.

A worker is started in a session of its own, in a cgroup of its own where the grader may make
one (memory counted once, including tmpfs and memfd pages; at most ``MAX_PIDS`` processes; a
freezer), under rlimits (no core dumps, bounded file size, bounded data segment on the CPU), as
the wall's uid, with ``PR_SET_PDEATHSIG`` so that it dies with the grader. The grader is a child
subreaper: whatever a worker double-forks away comes back to it, to be killed and reaped.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from grader.sandbox.cgroups import Cgroup
from grader.sandbox.isolation import Wall, cuda_available, drop_privileges

MAX_PIDS = 256  # processes and threads of one worker (torch starts a few threads per core)
FILE_SIZE_MB = 256
PASSED_ENV = ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES")


@dataclass(frozen=True)
class Limits:
    """Per-request wall time, per-worker memory, and the start-up allowance (importing torch)."""

    call_timeout_s: float = 10.0
    memory_mb: int = 4096
    startup_timeout_s: float = 60.0


def _alive(proc: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return proc.status() != psutil.STATUS_ZOMBIE
    return False


@dataclass
class Process:
    """One started worker or converter: its process, the read end of its reply pipe, its cgroup."""

    popen: subprocess.Popen[bytes]
    reply_fd: int
    cgroup: Cgroup | None
    buffer: bytearray = field(default_factory=bytearray)  # received, not yet a whole line
    sequence: int = 0  # of the last request; each reply echoes it
    stopped: list[int] = field(default_factory=list)  # pids stopped with SIGSTOP (no freezer)

    def family(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.popen.pid), *psutil.Process(self.popen.pid).children(recursive=True)]
        except psutil.Error:
            return []

    def freeze(self, frozen: bool) -> None:
        """Stop every process of this worker (the cgroup's freezer, else SIGSTOP to its tree), or resume them."""
        if not frozen:
            if self.cgroup is not None:
                self.cgroup.freeze(False)
            for pid in self.stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            self.stopped.clear()
            return
        if self.cgroup is not None and self.cgroup.freeze(True):
            return
        for _ in range(2):  # no freezer: stop the tree twice over, so that a child forked meanwhile is caught
            for proc in self.family():
                with contextlib.suppress(psutil.Error):
                    proc.send_signal(signal.SIGSTOP)
                    self.stopped.append(proc.pid)

    def helpers(self) -> int:
        """Live processes the worker started (its descendants, zombies aside): the wall's own processes and
        the worker itself (the first Python process of the tree) are not counted."""
        python = os.path.realpath(sys.executable)
        for proc in self.family():
            with contextlib.suppress(psutil.Error, OSError):
                if os.path.realpath(proc.exe()) == python:
                    return sum(1 for child in proc.children(recursive=True) if _alive(child))
        return 0

    def memory_mb(self) -> float:
        """Proportional set size of the tree plus the memfd and tmpfs files it holds open (no cgroup)."""
        total = 0
        files: set[tuple[int, int]] = set()
        for proc in self.family():
            with contextlib.suppress(psutil.Error, OSError):
                total += proc.memory_full_info().pss
                for fd in os.listdir(f"/proc/{proc.pid}/fd"):
                    link = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                    if link.startswith(("/memfd:", "/dev/shm/", "/tmp/")):
                        info = os.stat(f"/proc/{proc.pid}/fd/{fd}")
                        if (info.st_dev, info.st_ino) not in files:
                            files.add((info.st_dev, info.st_ino))
                            total += info.st_blocks * 512
        return total / 2**20

    def end(self) -> None:
        """Kill the process, its group, everything in its cgroup and tree, and remove the cgroup."""
        with contextlib.suppress(OSError):
            os.close(self.reply_fd)
        family = self.family()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        for proc in family:  # anything that left the group with setsid()
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if self.cgroup is not None:
            self.cgroup.remove()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        psutil.wait_procs(family, timeout=10)  # a PID namespace dies with its first process, but not at once
        if self.popen.stdin:
            with contextlib.suppress(OSError):
                self.popen.stdin.close()
        reap_zombies()


def spawn(
    wall: Wall,
    limits: Limits,
    command: list[str],
    fds: tuple[int, ...],
    write_fd: int,
    read_fd: int,
    cwd: Path,
    home: str,
) -> Process:
    """Start ``command`` (a worker or converter, which imports on its own time) under the limits; ``write_fd``
    is the reply pipe's end it inherits, with ``fds``, and ``read_fd`` the end the grader keeps."""
    cuda = cuda_available()
    data_cap = limits.memory_mb * 2**20 if not cuda else resource.RLIM_INFINITY
    cgroup = Cgroup.create(limits.memory_mb * 2**20, MAX_PIDS)
    drop_to, worker_uid = wall.drop_to, wall.worker_uid

    def limit() -> None:  # in the child, before exec
        if cgroup is not None:
            cgroup.enter(os.getpid())
        # RLIMIT_DATA turns a hog's allocation into a MemoryError in the student's own code; the
        # cgroup (or the PSS watch in _request) is the line that binds. RLIMIT_DATA would stop a CUDA
        # build of torch from making its context, so with a GPU only the cgroup or the watch applies.
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_MB * 2**20, FILE_SIZE_MB * 2**20))
        resource.setrlimit(resource.RLIMIT_DATA, (data_cap, data_cap))
        if cgroup is None and worker_uid is not None:  # binds for a uid other than root: the cap without cgroups
            resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PIDS, MAX_PIDS))
        if drop_to is not None:
            drop_privileges(drop_to)
        _die_with_parent()

    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": str(torch_threads()), "HOME": home, "TMPDIR": home,
           "MPLCONFIGDIR": home}  # fmt: skip
    env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})  # where the CUDA driver lives
    try:
        popen = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_fd, *fds),
            start_new_session=True,
            cwd=cwd,
            env=env,
            preexec_fn=limit,
        )
    except BaseException:
        os.close(read_fd)
        if cgroup is not None:
            cgroup.remove()
        raise
    finally:
        os.close(write_fd)
        for fd in fds:
            os.close(fd)
    return Process(popen, read_fd, cgroup)


PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1


def _prctl(option: int, value: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover
        pass


def become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux), so that a worker's child that
    double-forks away is reparented to the grader, where it is killed and reaped, instead of to init."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _die_with_parent() -> None:
    """In a child before exec: SIGKILL when the grader dies (set after the uid change, which clears it)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def reap_zombies() -> None:
    """waitpid() every dead child: orphans of a worker come back to the grader as a subreaper."""
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


def how_it_ended(code: int | None, sandboxed: bool) -> str:
    """Words for a worker's exit status; bubblewrap reports a child's fatal signal N as 128 + N."""
    signal_number = (
        -code if code is not None and code < 0 else (code - 128 if sandboxed and code and code > 128 else None)
    )
    if signal_number:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = f"signal {signal_number}"
        crash = " (a crash, such as a segmentation fault)" if name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGABRT") else ""
        return f"was killed by signal {name}{crash}"
    return f"exited with status {code}" if code is not None else "stopped answering and was killed"


def torch_threads() -> int:
    """Threads for torch in grader and worker alike, so timings compare like with like."""
    return max(1, min(4, os.cpu_count() or 1))
