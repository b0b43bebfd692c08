"""The wall around student code: worker processes, time and memory limits, and bubblewrap where present.

Every submission is graded by worker processes (``worker.py``) that receive plain
inputs and return plain data over a pipe. A worker runs in its own session and
process group with a memory limit; each request has a time limit. A worker that
hangs, crashes, exits or grows past its memory limit is killed with everything it
started, the request is answered with a ``WorkerDied`` that says why, and the next
request gets a fresh worker.

With bubblewrap (``bwrap``) on Linux the worker also runs in a filesystem sandbox:
it sees the system's read-only directories, the Python installation, a private
writable copy of the submission at /submission, the worker's own three files at
/opt/grader-runtime and an empty /tmp, with no network and its own PID namespace.
The project (``reference/``, ``solutions/``, the grader), the original submission,
the gradebook and the report being written are not in its world at all.
"""

from __future__ import annotations

import importlib.util
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psutil

from grader import wire

HERE = Path(__file__).resolve().parent
RUNTIME_FILES = ("worker.py", "wire.py", "drivers.py")
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
MEMORY_POLL_S = 0.05


@dataclass(frozen=True)
class Limits:
    """Per-request wall time, per-worker memory, and the start-up allowance (importing torch)."""

    call_timeout_s: float = 10.0
    memory_mb: int = 4096
    startup_timeout_s: float = 60.0


class WorkerDied(RuntimeError):
    """The worker did not answer: ``kind`` is "timeout", "memory" or "crash"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class Runner(Protocol):
    """What the checks need from whatever runs a student's functions: a Sandbox, or grader.kernel.InKernel."""

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]: ...

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]: ...


def bubblewrap() -> str | None:
    """The bwrap binary when it exists and can actually create a sandbox here."""
    path = shutil.which("bwrap")
    if path is None or not sys.platform.startswith("linux"):
        return None
    probe = subprocess.run(
        [path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent", "true"],
        capture_output=True,
        timeout=30,
    )
    return path if probe.returncode == 0 else None


def _python_dirs() -> list[str]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(d for d in dirs if d and os.path.isdir(d))


class Sandbox:
    """Workers for one submission folder; use as a context manager."""

    def __init__(
        self,
        submission: Path,
        limits: Limits | None = None,
        use_bwrap: bool | None = None,
        worker_per_module: bool = True,
        generated: dict[str, str] | None = None,
    ) -> None:
        self.limits = limits or Limits()
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-"))
        self.runtime = self.scratch / "runtime"
        self.runtime.mkdir()
        for name in RUNTIME_FILES:
            shutil.copy2(HERE / name, self.runtime / name)
        self.private = self.scratch / "submission"
        shutil.copytree(submission, self.private, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        for filename, text in (generated or {}).items():  # modules made from notebooks (grader/submission.py)
            (self.private / filename).write_text(text)
        _become_subreaper()
        found = bubblewrap() if use_bwrap in (None, True) else None
        if use_bwrap and found is None:
            raise RuntimeError("bubblewrap was required but cannot create a sandbox on this machine")
        self.bwrap = found
        self.process: subprocess.Popen[bytes] | None = None
        self.reply_fd: int | None = None
        self.loaded: dict[str, str] = {}  # module name → path inside the worker's world
        self.broken: dict[str, dict[str, Any]] = {}  # module name → the error its import caused
        self.notes: dict[str, list[str]] = {}  # module name → what its import reported (notebook cells that raised)
        self.buffer = b""
        # One worker per module, so that a module that sabotages its worker at import costs only its own
        # items; the next worker starts importing torch in the background while the current one works.
        self.worker_per_module = worker_per_module
        self.owner: str | None = None  # the module the current worker serves
        self.spare: tuple[subprocess.Popen[bytes], int] | None = None

    # -------------------------------------------------------------- lifecycle

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._kill()
        if self.spare is not None:
            _terminate(*self.spare)
            self.spare = None
        _reap_orphans(str(self.scratch))
        shutil.rmtree(self.scratch, ignore_errors=True)

    @property
    def sandboxed(self) -> bool:
        return self.bwrap is not None

    def exposures(self) -> list[str]:
        """Instructor code the sandbox has to show: packages installed inside the Python installation."""
        found = []
        for package in ("reference", "solutions", "grader"):
            spec = importlib.util.find_spec(package)
            origin = os.path.realpath(spec.origin) if spec and spec.origin else ""
            if origin and any(origin.startswith(os.path.realpath(d) + os.sep) for d in _python_dirs()):
                found.append(
                    f"{package}/ is installed inside the Python installation ({os.path.dirname(origin)}), which "
                    "the sandbox must show to students' code; install the grader with `pip install -e .` instead."
                )
        return found

    def submission_path(self, filename: str) -> str:
        return f"/submission/{filename}" if self.bwrap else str(self.private / filename)

    def _command(self, reply_fd: int) -> list[str]:
        worker = "/opt/grader-runtime/worker.py" if self.bwrap else str(self.runtime / "worker.py")
        python = [sys.executable, "-I", "-B", worker, str(reply_fd)]
        if not self.bwrap:
            return python
        mounts: list[str] = []
        for d in SYSTEM_DIRS:
            if os.path.exists(d):
                mounts += ["--ro-bind", d, d]
        for d in _python_dirs():
            mounts += ["--ro-bind", d, d]
        mounts += ["--ro-bind", str(self.runtime), "/opt/grader-runtime", "--bind", str(self.private), "/submission"]
        # bwrap applies mounts in order: the empty /tmp, /dev and /proc first, so that a Python
        # installation or a scratch folder that lives under /tmp is bound on top of them, not hidden.
        return [
            self.bwrap,
            "--tmpfs", "/tmp",
            "--dev", "/dev",
            "--proc", "/proc",
            *mounts,
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--chdir", "/submission",
            "--setenv", "HOME", "/tmp",
            "--setenv", "MPLCONFIGDIR", "/tmp",
            *python,
        ]  # fmt: skip

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        """A new worker process and the read end of its reply pipe; it imports torch on its own time."""
        read_fd, write_fd = os.pipe()
        data_cap = self.limits.memory_mb * 1024 * 1024 if not _cuda_available() else resource.RLIM_INFINITY

        def limit() -> None:  # in the child, before exec
            # Memory: RLIMIT_DATA turns a hog's allocation into a MemoryError in the student's own code;
            # the RSS watch in _request is the second line. RLIMIT_AS would stop a CUDA build of torch
            # from importing at all, and a CUDA context may need large private mappings, so with a GPU
            # only the RSS watch applies.
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024 * 1024, 256 * 1024 * 1024))
            resource.setrlimit(resource.RLIMIT_DATA, (data_cap, data_cap))

        env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": str(torch_threads()), "HOME": str(self.scratch)}
        process = subprocess.Popen(
            self._command(write_fd),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(write_fd,),
            start_new_session=True,
            cwd=self.private,
            env=env,
            preexec_fn=limit,
        )
        os.close(write_fd)
        return process, read_fd

    def _start(self) -> None:
        spare, self.spare = self.spare, None
        self.process, self.reply_fd = spare if spare is not None else self._spawn()
        self.buffer = b""
        self.loaded = {}
        if self.worker_per_module:
            self.spare = self._spawn()
        self._request({"op": "ping"}, self.limits.startup_timeout_s)

    def _kill(self) -> None:
        process, self.process = self.process, None
        reply_fd, self.reply_fd = self.reply_fd, None
        self.owner = None
        if process is not None:
            _terminate(process, reply_fd)
            _reap_orphans(str(self.scratch), keep=self.spare[0].pid if self.spare else None)
        elif reply_fd is not None:
            os.close(reply_fd)

    # -------------------------------------------------------------- requests

    def _rss_mb(self) -> float:
        assert self.process is not None
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
            return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
        except psutil.Error:
            return 0.0

    def _request(self, request: dict[str, Any], timeout: float) -> Any:
        assert self.process is not None and self.process.stdin is not None and self.reply_fd is not None
        try:
            self.process.stdin.write(wire.dumps(request))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._kill()
            raise WorkerDied("crash", "the worker process had exited") from None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                raise WorkerDied("timeout", f"no answer within {timeout:g} s")
            ready, _, _ = select.select([self.reply_fd], [], [], min(left, MEMORY_POLL_S))
            if not ready:
                if self._rss_mb() > self.limits.memory_mb:
                    self._kill()
                    raise WorkerDied("memory", f"used more than {self.limits.memory_mb} MB of memory")
                continue
            chunk = os.read(self.reply_fd, 1 << 20)
            if not chunk:
                try:
                    code: int | None = self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    code = None
                sandboxed = self.bwrap is not None
                self._kill()
                raise WorkerDied("crash", f"the worker process {_how_it_ended(code, sandboxed)}")
            self.buffer += chunk
            if len(self.buffer) > wire.MAX_MESSAGE_BYTES:
                self._kill()
                raise WorkerDied("crash", "the reply was larger than the grader accepts")
        line, self.buffer = self.buffer.split(b"\n", 1)
        try:
            reply = wire.loads(line, tensors=False)
        except wire.WireError as err:  # a submission that rewrote the worker's own code can send anything
            self._kill()
            raise WorkerDied("crash", f"the worker sent a reply the grader cannot read ({err})") from None
        if not isinstance(reply, dict) or not ({"ok", "error"} & set(reply)):
            self._kill()
            raise WorkerDied("crash", "the worker sent a reply the grader cannot read")
        return reply

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]:
        """Start a worker if needed and import the submission's module; the reply of the import.

        A module whose import killed the worker is remembered, so that its other items are
        reported at once instead of each starting a worker that the import kills again.
        """
        if name in self.broken:
            return self.broken[name]
        if self.worker_per_module and self.process is not None and self.owner not in (None, name):
            self._kill()
        if self.process is None:
            self._start()
            self.owner = name
        if name in self.loaded:
            return {"ok": True}
        request = {"op": "load", "name": name, "path": self.submission_path(filename)}
        try:
            reply = self._request(request, self.limits.call_timeout_s)
        except WorkerDied as died:
            self.broken[name] = {
                "error": {"kind": "died", "type": died.kind, "message": f"while importing it {died}", "where": None}
            }
            return self.broken[name]
        if "ok" in reply:
            self.loaded[name] = filename
            notes = reply.get("notes")
            if isinstance(notes, list):
                self.notes[name] = [str(n)[:700] for n in notes[:5]]
        return reply

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request for ``module`` (imported from ``filename`` first); its reply or WorkerDied."""
        loaded = self.ensure_loaded(module, filename)
        if "error" in loaded:
            return loaded
        return self._request({**op, "module": module}, timeout or self.limits.call_timeout_s)


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux), so that a worker's child that
    double-forks away from its process group, or a sandbox's inner process killed mid-start-up, is
    reparented to the grader, where _reap_orphans finds it, instead of to init."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover
        pass


def _reap_orphans(marker: str, keep: int | None = None) -> None:
    """Kill and reap every descendant whose command line names this sandbox's scratch folder, and reap
    the zombies that orphans leave behind (as a subreaper, the grader inherits them)."""
    _reap_zombies(keep)
    for _ in range(3):
        found = []
        for child in psutil.Process().children(recursive=True):
            try:
                if child.pid != keep and marker in " ".join(child.cmdline()) and child.pid not in _spare_family(keep):
                    found.append(child)
            except psutil.Error:
                continue
        for child in found:
            try:
                child.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(found, timeout=5)
        _reap_zombies(keep)
        if not found:
            return
        time.sleep(0.05)


def _reap_zombies(keep: int | None) -> None:
    """waitpid() every dead child but ``keep``: the grader's other children are waited for synchronously."""
    for child in psutil.Process().children():
        try:
            if child.pid != keep and child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


def _spare_family(pid: int | None) -> set[int]:
    if pid is None:
        return set()
    try:
        return {c.pid for c in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return set()


def _terminate(process: subprocess.Popen[bytes], reply_fd: int | None) -> None:
    """Kill a worker, its process group and anything it started that left the group."""
    if reply_fd is not None:
        os.close(reply_fd)
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        family = []
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for child in family:  # anything that left the group with setsid()
        try:
            child.kill()
        except psutil.Error:
            pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass
    if process.stdin:
        try:
            process.stdin.close()
        except OSError:
            pass


def _how_it_ended(code: int | None, sandboxed: bool) -> str:
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


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False


def torch_threads() -> int:
    """Threads for torch in grader and worker alike, so timings compare like with like."""
    return max(1, min(4, os.cpu_count() or 1))
