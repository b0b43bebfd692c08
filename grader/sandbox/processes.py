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
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from grader.sandbox.cgroups import Cgroup
from grader.sandbox.confine import Confinement
from grader.sandbox.isolation import Wall, cuda_available

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
    """One worker, converter or zygote: its process (started by the grader, ``popen``, or forked by a zygote),
    its stdin, the read end of its reply pipe, its cgroup."""

    pid: int  # as the grader sees it
    requests: IO[bytes] | None  # the process's stdin
    reply_fd: int  # -1 for a zygote, which answers on its control socket
    cgroup: Cgroup | None
    popen: subprocess.Popen[bytes] | None = None
    status_of: Callable[[float], int | None] | None = None  # a forked worker's exit code, from its zygote
    sandboxed: bool = False  # started through bwrap, which reports a child's fatal signal N as 128 + N
    buffer: bytearray = field(default_factory=bytearray)  # received, not yet a whole line
    sequence: int = 0  # of the last request; each reply echoes it
    stopped: list[int] = field(default_factory=list)  # pids stopped with SIGSTOP (no freezer)

    def family(self) -> list[psutil.Process]:
        try:
            return [psutil.Process(self.pid), *psutil.Process(self.pid).children(recursive=True)]
        except psutil.Error:
            return []

    def exit_code(self, timeout: float) -> int | None:
        """How the process ended, waiting up to ``timeout``: its exit code, -N for signal N, or None."""
        if self.popen is not None:
            try:
                code = self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return None
            return -(code - 128) if self.sandboxed and code > 128 else code
        return self.status_of(timeout) if self.status_of is not None else None

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

    def python(self) -> psutil.Process | None:
        """The first Python process of the tree: the worker itself, below bwrap or unshare if there are any."""
        python = os.path.realpath(sys.executable)
        for proc in self.family():
            with contextlib.suppress(psutil.Error, OSError):
                if os.path.realpath(proc.exe()) == python:
                    return proc
        return None

    def helpers(self) -> int:
        """Live processes the worker started (its descendants, zombies aside): the wall's own processes and
        the worker itself are not counted."""
        worker = self.python()
        with contextlib.suppress(psutil.Error):
            return sum(1 for child in worker.children(recursive=True) if _alive(child)) if worker else 0
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
        if self.reply_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.reply_fd)
        family = self.family()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for proc in family:  # anything that left the group with setsid()
            with contextlib.suppress(psutil.Error):
                proc.kill()
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=10)
        _wait_gone(family, 10.0)  # a PID namespace dies with its first process, but not at once
        if self.requests is not None:
            with contextlib.suppress(OSError):
                self.requests.close()
        reap_zombies()


def _wait_gone(family: list[psutil.Process], timeout: float) -> None:
    """Wait until every process of ``family`` has exited: gone, or a zombie its parent (a zygote) will reap."""
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in family) and time.monotonic() < deadline:
        time.sleep(0.005)


def rlimits(limits: Limits, own_uid: bool) -> list[tuple[str, int]]:
    """The rlimits of a worker, converter or zygote, by name, in the order they are set."""
    # RLIMIT_DATA turns a hog's allocation into a MemoryError in the student's own code; the
    # cgroup (or the PSS watch in channel.read_line) is the line that binds. RLIMIT_DATA would stop a CUDA
    # build of torch from making its context, so with a GPU only the cgroup or the watch applies.
    data_cap = limits.memory_mb * 2**20 if not cuda_available() else resource.RLIM_INFINITY
    caps = [
        ("RLIMIT_CORE", 0),
        # No POSIX message queue can be made: the zygote cannot list them to empty them between two students
        # (their file system is not mounted in the sandbox), so none may exist to carry a message across.
        ("RLIMIT_MSGQUEUE", 0),
        ("RLIMIT_FSIZE", FILE_SIZE_MB * 2**20),
        ("RLIMIT_DATA", data_cap),
    ]
    if own_uid:  # processes of the slot's uid, machine-wide: binds for a uid other than root, cgroup or not
        caps.append(("RLIMIT_NPROC", MAX_PIDS))
    return caps


def environment(home: str) -> dict[str, str]:
    """A worker's whole environment: nothing of the grader's but where the CUDA driver lives."""
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": str(torch_threads()), "HOME": home, "TMPDIR": home,
           "MPLCONFIGDIR": home}  # fmt: skip
    env.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
    return env


def spawn(
    wall: Wall,
    limits: Limits,
    command: list[str],
    fds: tuple[int, ...],
    write_fd: int,
    read_fd: int,
    cwd: Path,
    home: str,
    confinement: Confinement | None = None,
) -> Process:
    """Start ``command`` (a worker, converter or zygote, which imports on its own time) under the limits;
    ``write_fd`` is the descriptor it inherits to answer on (a pipe, or a zygote's control socket), with
    ``fds``, and ``read_fd`` the reply pipe's end the grader keeps (-1 for a zygote). Outside bubblewrap,
    ``confinement`` is the process wall's steps (grader/sandbox/confine.py)."""
    cgroup = Cgroup.create(limits.memory_mb * 2**20, MAX_PIDS)
    own_uid = confinement is not None and confinement.uid is not None
    caps = [(getattr(resource, name), value) for name, value in rlimits(limits, own_uid)]

    def limit() -> None:  # in the child, before exec
        if cgroup is not None:
            cgroup.enter(os.getpid())
        for which, value in caps:
            resource.setrlimit(which, (value, value))
        if confinement is not None:
            confinement.apply()
        else:
            die_with_parent()

    env = environment(home)
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
        if read_fd >= 0:
            os.close(read_fd)
        if cgroup is not None:
            cgroup.remove()
        raise
    finally:
        os.close(write_fd)
        for fd in fds:
            os.close(fd)
    return Process(popen.pid, popen.stdin, read_fd, cgroup, popen=popen, sandboxed=wall.sandboxed)


class Zygote:
    """A worker that imported torch and the drivers once and forks a fresh worker for each module
    (grader/runtime/worker.py, ``zygote``): one import per submission instead of one per module.

    It never runs a line of the submission. Each forked worker is moved into a cgroup of its own (memory,
    processes, freezer) before its first request, has its own session and pipes, and is ended with
    everything it started, as a worker started directly is. The zygote and its workers share the
    submission's sandbox: nothing crosses from one submission to another."""

    def __init__(self, process: Process, control: socket.socket, limits: Limits, *, warm: bool) -> None:
        self.process, self.control, self.limits = process, control, limits
        self.warm = warm  # it took an optimizer step before forking (``worker.py --zygote FD --warm-up``)
        self.used = False  # it forked a worker: a submission's code may have run in its sandbox

    def _ask(self, message: bytes, fds: list[int], timeout: float) -> bytes:
        """Send one request and read its one-line answer; recv() takes no descriptors, so none can be passed
        to the grader (the kernel closes any that are sent)."""
        self.control.settimeout(timeout)
        socket.send_fds(self.control, [message], fds)
        answer = self.control.recv(64)
        if not answer.endswith(b"\n"):
            raise OSError("the zygote did not answer")
        return answer.strip()

    def fork(self) -> Process:
        """A fresh worker, in a cgroup of its own, waiting for its first request; OSError when the zygote fails."""
        self.used = True
        for proc in self.process.family():  # a module's worker may have stopped it (SIGSTOP): it must answer
            with contextlib.suppress(psutil.Error):
                proc.resume()
        stdin_read, stdin_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            answer = self._ask(b"F", [stdin_read, reply_write], self.limits.startup_timeout_s)
        except BaseException:
            for fd in (stdin_write, reply_read):
                os.close(fd)
            raise
        finally:
            os.close(stdin_read)
            os.close(reply_write)
        requests = os.fdopen(stdin_write, "wb")
        zygote = self.process.python()
        pid = _host_pid(zygote.pid if zygote else None, answer)
        if pid is None:
            requests.close()
            os.close(reply_read)
            raise OSError("the zygote's worker could not be found")
        cgroup = Cgroup.create(self.limits.memory_mb * 2**20, MAX_PIDS)
        if cgroup is not None:
            cgroup.enter(pid)
        namespace_pid = int(answer)

        def status_of(timeout: float) -> int | None:
            with contextlib.suppress(OSError, ValueError):
                answer = self._ask(b"S%d" % namespace_pid, [], timeout + 1.0)
                return int(answer) if answer.lstrip(b"-").isdigit() else None
            return None

        return Process(pid, requests, reply_read, cgroup, status_of=status_of)

    def clear(self, timeout: float) -> bool:
        """Between two submissions: kill whatever the last one left running in the sandbox, then have the
        zygote empty the sandbox's /tmp and /dev/shm and remove its System V IPC objects. True when all of that
        is shown done; False means the sandbox cannot be trusted clean (the caller ends it)."""
        strays = self.strays()
        for stray in strays:
            with contextlib.suppress(psutil.Error):
                stray.kill()
        _wait_gone(strays, 10.0)
        if self.strays():
            return False
        for proc in self.process.family():  # it answers only when running (a worker may have stopped it)
            with contextlib.suppress(psutil.Error):
                proc.resume()
        try:
            return self._ask(b"W", [], timeout) == b"ok"
        except OSError:
            return False

    def strays(self) -> list[psutil.Process]:
        """Every process of the zygote's sandbox except the wall (bwrap, outside and as the namespace's init)
        and the zygote itself: what a submission left running. Spared by pid, not by what they run."""
        zygote = self.process.python()
        if zygote is None:
            return self.process.family()
        spared = {self.process.pid, zygote.pid}
        with contextlib.suppress(psutil.Error):
            spared.update(p.pid for p in zygote.parents() if p.pid not in (1, os.getpid()))
        return [p for p in self.process.family() if p.pid not in spared and _alive(p)]

    def end(self) -> None:
        with contextlib.suppress(OSError):
            self.control.close()
        self.process.end()


def _host_pid(zygote: int | None, answer: bytes) -> int | None:
    """The pid, as the grader sees it, of the zygote's child that the zygote calls ``answer`` in its own PID
    namespace (the last field of NSpid in /proc/PID/status)."""
    if zygote is None or not answer.isdigit():
        return None
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(zygote).children():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{child.pid}/status").read_text()
                ns_pids = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
                if ns_pids and ns_pids[-1] == answer.decode():
                    return child.pid
    return None


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


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """In a child before exec: ``signum`` (SIGKILL) when the grader dies (set after the uid change, which clears
    it)."""
    _prctl(PR_SET_PDEATHSIG, signum)


def reap_zombies() -> None:
    """waitpid() every dead child: orphans of a worker come back to the grader as a subreaper."""
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


def how_it_ended(code: int | None) -> str:
    """Words for a worker's exit code (``Process.exit_code``: -N for signal N)."""
    signal_number = -code if code is not None and code < 0 else None
    if signal_number:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = f"signal {signal_number}"
        crash = " (a crash, such as a segmentation fault)" if name in ("SIGSEGV", "SIGBUS", "SIGILL", "SIGABRT") else ""
        return f"was killed by signal {name}{crash}"
    return f"exited with status {code}" if code is not None else "stopped answering and was killed"


def torch_threads() -> int:
    """Threads for torch in every worker, the reference's and the student's alike: one per core, at most 4,
    or fewer where the grader's OMP_NUM_THREADS asks for fewer (a machine that runs several graders at once: two
    torch processes of two threads each on two cores spend their time spinning at each other's barriers). The
    timed steps run on one thread on the CPU whatever this says (drivers.SpeedSession)."""
    cores = max(1, min(4, os.cpu_count() or 1))
    asked = os.environ.get("OMP_NUM_THREADS", "").strip()
    return min(cores, int(asked)) if asked.isdigit() and int(asked) > 0 else cores
