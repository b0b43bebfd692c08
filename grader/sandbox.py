"""The wall around student code: worker processes, with no privilege, bounded, in a sandbox.

Every submission is graded by worker processes (``worker.py``) that receive plain inputs and
return plain data over a pipe; notebooks are read by a converter process (``convert.py``)
started the same way. What the grader puts around each of them, strongest first:

- **bubblewrap** (``bwrap``), where it can build the sandbox here: a new user, mount, PID,
  network, IPC and UTS namespace, in which the process runs as uid/gid 65534 with no
  capabilities (``--cap-drop ALL``), cannot create another user namespace
  (``--disable-userns``) and runs under a seccomp filter (grader/seccomp.py: no ptrace,
  mount, unshare, keyring, BPF, ...). It sees the system's directories, the Python
  installation, its own runtime files and the private copy of the submission, all
  read-only (files that not everyone may read, such as /etc/shadow, are masked), and a
  writable /tmp and /dev/shm of ``TMPFS_MB`` each. Not the project (``reference/``,
  ``solutions/``), the original submission, the gradebook or the report.
- **a cgroup per worker** (grader/cgroups.py), where the grader may create them: memory
  that binds, counted once and including tmpfs and memfd pages; at most ``MAX_PIDS``
  processes; a freezer.
- **rlimits** (core dumps, file size, data segment on the CPU) and, without cgroups, a
  watch on the proportional set size (PSS, so pages shared between a worker and its forks
  count once) plus memfd files.
- **its own PID namespace**: bwrap's, or util-linux ``unshare``'s without bubblewrap, so a
  worker cannot see or signal the grader, and every process it starts dies with it.
  Without bubblewrap a root grader also runs the worker as uid 65534 where that user can
  run the Python installation.
- **its own session and process group**, a time limit per request, and the grader as a
  child subreaper that kills whatever is left in a worker's cgroup or process tree.

A worker that hangs, crashes, exits, sends what cannot be read or grows past its memory
limit is killed with everything it started, the request is answered with ``WorkerDied``
saying why, and the next request gets a fresh worker.
"""

from __future__ import annotations

import contextlib
import functools
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import psutil

from grader import seccomp
from grader.cgroups import Cgroup
from grader.intake import Intake, take_in
from grader.runtime import wire
from grader.untrusted import clean

HERE = Path(__file__).resolve().parent
RUNTIME = HERE / "runtime"  # what a worker sees of the grader, copied whole (grader/runtime/__init__.py)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
MASKED_UNDER = ("/etc",)  # where files that not everyone may read are hidden from the worker
WORKER_ID = 65534  # uid and gid of a worker: "nobody"
TMPFS_MB = 64  # the sandbox's /tmp and /dev/shm, each
MAX_PIDS = 256  # processes and threads of one worker (torch starts a few threads per core)
FILE_SIZE_MB = 256
MEMORY_POLL_S = 0.05
PASSED_ENV = ("LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES")
Isolation = Literal["auto", "required", "off"]  # bubblewrap where it works / or refuse to grade / never


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


class SandboxUnavailable(RuntimeError):
    """Grading other people's code was asked to run sandboxed, and no sandbox can be built here."""


class Runner(Protocol):
    """What the checks need from whatever runs a student's functions: a Sandbox, or grader.kernel.InKernel."""

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]: ...

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]: ...

    def frozen(self) -> contextlib.AbstractContextManager[None]: ...

    def helpers(self) -> int: ...


# ------------------------------------------------------------------------------------- the wall


@dataclass(frozen=True)
class Wall:
    """How workers are walled in on this machine (probed once per grader process)."""

    bwrap: tuple[str, ...] | None  # bwrap and its privilege flags, when it builds the sandbox here
    unshare: tuple[str, ...] | None  # without bwrap: unshare and its flags, for a PID namespace
    drop_to: int | None  # without bwrap, a root grader runs workers as this uid/gid
    masks: tuple[str, ...] = field(default=(), repr=False)
    seccomp: bytes | None = field(default=None, repr=False)
    problems: tuple[str, ...] = ()

    @property
    def sandboxed(self) -> bool:
        return self.bwrap is not None

    @property
    def worker_uid(self) -> int | None:
        """The uid a worker ends up with outside bubblewrap, where it is not the grader's own."""
        if self.drop_to is not None:
            return self.drop_to
        return WORKER_ID if self.unshare is not None and "--setuid" in self.unshare else None


def _python_dirs() -> list[str]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(d for d in dirs if d and os.path.isdir(d))


def _masks() -> tuple[str, ...]:
    """Entries under MASKED_UNDER that not everyone may read: a worker (uid 65534 inside, but root's
    files look like its own there) must not see them."""
    found: list[str] = []
    for top in MASKED_UNDER:
        for folder, dirs, files in os.walk(top):
            for name in [*dirs, *files]:
                path = os.path.join(folder, name)
                try:
                    mode = os.lstat(path).st_mode
                except OSError:
                    continue
                if not (mode & 0o004) and not os.path.islink(path):
                    found.append(path)
            dirs[:] = [d for d in dirs if os.path.join(folder, d) not in found]
            if len(found) > 1000:
                break
    return tuple(found)


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _probe(command: list[str], drop_to: int | None = None, pass_fds: tuple[int, ...] = ()) -> bool:
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=30,
            pass_fds=pass_fds,
            preexec_fn=(lambda: _drop_privileges(drop_to)) if drop_to is not None else None,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def wall(isolation: Isolation = "auto") -> Wall:
    """What this machine allows, tried from the strongest wall down (probes of ~0.1 s, once per process;
    a few seconds on a GPU machine, where each candidate must also show the worker a working CUDA)."""
    problems: list[str] = []
    program = seccomp.program()
    masks = _masks()
    root = os.geteuid() == 0
    check = _python_check()
    if isolation != "off":
        path = shutil.which("bwrap") if sys.platform.startswith("linux") else None
        if path is None:
            problems.append("bubblewrap (bwrap) is not installed")
        else:
            scratch = Path(tempfile.mkdtemp(prefix="grader-probe-"))
            try:
                for flags in _bwrap_flag_sets(program is not None):
                    candidate = Wall(bwrap=(path, *flags), unshare=None, drop_to=None, masks=masks, seccomp=program)
                    command, fds = _bwrap_command(candidate, scratch, scratch, scratch, [sys.executable, *check])
                    try:
                        if _probe(command, pass_fds=fds):
                            if "--unshare-user" not in flags:
                                problems.append(
                                    "CUDA works only outside a user namespace here: workers run as root without "
                                    "capabilities"
                                )
                            return Wall(candidate.bwrap, None, None, masks, program, tuple(problems))
                    finally:
                        for fd in fds:
                            os.close(fd)
                problems.append("bubblewrap is installed but cannot build the sandbox here")
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    can_drop = root and _probe([sys.executable, *check], drop_to=WORKER_ID)
    if root and not can_drop:
        problems.append(f"uid {WORKER_ID} cannot run this Python installation, so workers run as root")
    unshare = shutil.which("unshare")
    pid_namespace = ("--pid", "--fork", "--kill-child")
    as_worker = ("--setuid", str(WORKER_ID), "--setgid", str(WORKER_ID))
    candidates: list[tuple[tuple[str, ...] | None, int | None]] = []  # (unshare command, uid to drop to before it)
    if unshare and can_drop:  # unshare makes the PID namespace as root, then becomes WORKER_ID inside it
        candidates.append(((unshare, *pid_namespace, *as_worker), None))
    if can_drop:
        candidates.append((None, WORKER_ID))
    if unshare:
        own = (unshare, *pid_namespace) if root else (unshare, "--user", "--map-current-user", *pid_namespace)
        candidates.append((own, None))
    for prefix, drop_to in candidates:
        if _probe([*(prefix or ()), sys.executable, *check], drop_to):
            if prefix is None:
                problems.append("no PID namespace could be made (util-linux unshare)")
            return Wall(bwrap=None, unshare=prefix, drop_to=drop_to, masks=masks, problems=tuple(problems))
    problems.append("no PID namespace could be made (util-linux unshare)")
    return Wall(bwrap=None, unshare=None, drop_to=None, masks=masks, problems=tuple(problems))


def _python_check() -> list[str]:
    """Arguments for the probes' Python: start, and on a GPU machine, see CUDA (a user namespace can hide it)."""
    if _cuda_available():
        return ["-I", "-c", "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 4)"]
    return ["-I", "-c", "import importlib.util as u, sys; sys.exit(0 if u.find_spec('torch') else 3)"]


def _bwrap_flag_sets(with_seccomp: bool) -> list[tuple[str, ...]]:
    """The privilege flags, strongest first: uid 65534 in a user namespace of its own; the same without
    --disable-userns (older bubblewraps); and, on a GPU machine where CUDA fails in a user namespace, no
    capabilities in the other namespaces."""
    extra = ("--seccomp",) if with_seccomp else ()
    user = ("--unshare-all", "--unshare-user", "--uid", str(WORKER_ID), "--gid", str(WORKER_ID), "--cap-drop", "ALL")
    no_user = ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try")
    sets = [(*user, "--disable-userns", *extra), (*user, *extra)]
    if _cuda_available():
        sets.append((*no_user, "--cap-drop", "ALL", *extra))
    return sets


def _bwrap_command(
    wall: Wall, runtime: Path, private: Path, generated: Path, python: list[str]
) -> tuple[list[str], tuple[int, ...]]:
    """The bwrap command line for ``python`` and the descriptors it must inherit (the seccomp program)."""
    assert wall.bwrap is not None
    path, *flags = wall.bwrap
    fds: tuple[int, ...] = ()
    if "--seccomp" in flags:  # the flag sets name it last, without its descriptor: the program goes in a pipe
        assert wall.seccomp is not None and flags[-1] == "--seccomp"
        read_end, write_end = os.pipe()
        os.write(write_end, wall.seccomp)  # a few hundred bytes: fits the pipe's buffer
        os.close(write_end)
        flags.append(str(read_end))
        fds = (read_end,)
    tmpfs = str(TMPFS_MB * 2**20)
    mounts: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):  # /bin -> usr/bin on merged-/usr systems
            mounts += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            mounts += ["--ro-bind", d, d]
    for d in _python_dirs():
        mounts += ["--ro-bind", d, d]
    for masked in wall.masks:
        mounts += (
            ["--tmpfs", masked, "--remount-ro", masked] if os.path.isdir(masked) else ["--ro-bind", "/dev/null", masked]
        )
    mounts += ["--ro-bind", str(runtime), "/opt/grader-runtime"]
    mounts += ["--ro-bind", str(private), "/submission", "--ro-bind", str(generated), "/generated"]
    for device in _gpu_devices():
        mounts += ["--dev-bind", device, device]
    # bwrap applies mounts in order: the empty /tmp, /dev and /proc first, so that a Python
    # installation or a scratch folder that lives under /tmp is bound on top of them, not hidden.
    return [
        path,
        "--perms", "1777", "--size", tmpfs, "--tmpfs", "/tmp",
        "--dev", "/dev",
        "--perms", "1777", "--size", tmpfs, "--tmpfs", "/dev/shm",
        "--proc", "/proc",
        *mounts,
        *flags,
        "--die-with-parent",
        "--new-session",
        "--chdir", "/submission",
        "--setenv", "HOME", "/tmp",
        "--setenv", "TMPDIR", "/tmp",
        "--setenv", "MPLCONFIGDIR", "/tmp",
        *python,
    ], fds  # fmt: skip


@functools.cache
def _gpu_devices() -> tuple[str, ...]:
    """The NVIDIA device files a CUDA worker needs inside the sandbox (none without a GPU)."""
    if not _cuda_available():
        return ()
    return tuple(sorted(str(p) for p in Path("/dev").glob("nvidia*") if not p.is_dir()))


def bubblewrap() -> str | None:
    """The bwrap binary when it can build the grader's sandbox here."""
    built = wall("auto").bwrap
    return built[0] if built else None


# ------------------------------------------------------------------------------------- a worker


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
        _reap_zombies()


class Sandbox:
    """Workers for one submission; use as a context manager: entering takes the submission in."""

    def __init__(
        self,
        submission: Path,
        limits: Limits | None = None,
        isolation: Isolation = "auto",
    ) -> None:
        self.submission = Path(submission)
        self.limits = limits or Limits()
        self.isolation = isolation
        self.scratch: Path | None = None
        self.intake = Intake()
        self.process: Process | None = None
        self.spare: Process | None = None
        self.loaded: dict[str, str] = {}  # module name → path inside the worker's world
        self.broken: dict[str, dict[str, Any]] = {}  # module name → the error its import caused
        self.notes: dict[str, list[str]] = {}  # module name → what its import reported (notebook cells that raised)
        self.generated: set[str] = set()  # file names of modules made from notebooks
        self.owner: str | None = None  # the module the current worker serves

    # -------------------------------------------------------------- lifecycle

    def __enter__(self) -> Sandbox:
        self.wall = wall(self.isolation)
        if self.isolation == "required" and not self.wall.sandboxed:
            raise SandboxUnavailable(
                "no sandbox can be built on this machine ("
                + "; ".join(self.wall.problems)
                + "): install bubblewrap, or pass --no-sandbox to grade without one"
            )
        _become_subreaper()
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-"))
        try:
            self.scratch.chmod(0o711)  # a worker running as another uid must reach its files
            self.runtime = self.scratch / "runtime"
            self.runtime.mkdir(mode=0o755)
            for source in sorted(RUNTIME.glob("*.py")):
                shutil.copyfile(source, self.runtime / source.name)
                (self.runtime / source.name).chmod(0o644)
            self.private = self.scratch / "submission"
            self.intake = take_in(self.submission, self.private)
            self.generated_dir = self.scratch / "generated"
            self.generated_dir.mkdir(mode=0o755)
            self.home = self.scratch / "home"  # the writable folder of a worker without bubblewrap
            self.home.mkdir(mode=0o700)
            if self.wall.worker_uid is not None:
                os.chown(self.home, self.wall.worker_uid, self.wall.worker_uid)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._kill()
        if self.spare is not None:
            self.spare.end()
            self.spare = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    @property
    def sandboxed(self) -> bool:
        return self.wall.sandboxed

    def wall_notes(self) -> list[str]:
        """What the report should say about the wall, when it is not the full one."""
        if self.wall.sandboxed:
            return [f"Sandbox: {problem}." for problem in self.wall.problems]
        return ["Ran without a filesystem sandbox (" + "; ".join(self.wall.problems or ("--no-sandbox",)) + ")."]

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

    def _inside(self, folder: str, filename: str) -> str:
        """A path of the worker's world: /submission/<file> or /generated/<file> (their real paths without bwrap)."""
        if self.wall.sandboxed:
            return f"/{folder}/{filename}"
        return str((self.private if folder == "submission" else self.generated_dir) / filename)

    def submission_path(self, filename: str) -> str:
        return self._inside("generated" if filename in self.generated else "submission", filename)

    # -------------------------------------------------------------- processes

    def _command(self, script: str, reply_fd: int) -> tuple[list[str], tuple[int, ...]]:
        inside = f"/opt/grader-runtime/{script}" if self.wall.sandboxed else str(self.runtime / script)
        python = [sys.executable, "-I", "-B", inside, str(reply_fd)]
        if self.wall.sandboxed:
            return _bwrap_command(self.wall, self.runtime, self.private, self.generated_dir, python)
        return [*(self.wall.unshare or ()), *python], ()

    def _spawn(self, script: str = "worker.py") -> Process:
        """A new worker (or converter) process and the read end of its reply pipe; it imports on its own time."""
        read_fd, write_fd = os.pipe()
        cuda = _cuda_available()
        data_cap = self.limits.memory_mb * 2**20 if not cuda else resource.RLIM_INFINITY
        cgroup = Cgroup.create(self.limits.memory_mb * 2**20, MAX_PIDS)
        drop_to, worker_uid = self.wall.drop_to, self.wall.worker_uid
        command, fds = self._command(script, write_fd)

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
                _drop_privileges(drop_to)
            _die_with_parent()

        home = "/tmp" if self.wall.sandboxed else str(self.home)
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
                cwd=self.private,
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

    def _start(self) -> None:
        spare, self.spare = self.spare, None
        self.process = spare if spare is not None else self._spawn()
        self.loaded = {}
        self.spare = self._spawn()
        self._request({"op": "ping"}, self.limits.startup_timeout_s)

    def _kill(self) -> None:
        process, self.process = self.process, None
        self.owner = None
        if process is not None:
            process.end()

    def helpers(self) -> int:
        """Live processes the current worker started (see Process.helpers)."""
        return self.process.helpers() if self.process is not None else 0

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of this sandbox stopped (cgroup freezer, else SIGSTOP), for the timed item."""
        processes = [p for p in (self.process, self.spare) if p is not None]
        for p in processes:
            p.freeze(True)
        try:
            yield
        finally:
            for p in processes:
                p.freeze(False)

    # -------------------------------------------------------------- requests

    def _request(
        self, request: dict[str, Any], timeout: float, process: Process | None = None, code: bool = False
    ) -> dict[str, Any]:
        """One request to ``process`` (the current worker by default) and its reply, read with suspicion;
        ``code``: the answer is a module's source (the converter's), kept whole for a worker to run."""
        worker = process or self.process
        assert worker is not None and worker.popen.stdin is not None
        end = self._kill if process is None else worker.end
        worker.sequence += 1
        try:
            worker.popen.stdin.write(wire.dumps({**request, "seq": worker.sequence}))
            worker.popen.stdin.flush()
        except (BrokenPipeError, OSError):
            end()
            raise WorkerDied("crash", "the worker process had exited") from None
        deadline = time.monotonic() + timeout
        while True:
            line = self._read_line(worker, deadline, timeout, end)
            try:
                reply = wire.loads(line, tensors=False)
                sequence = reply.pop("seq", None) if isinstance(reply, dict) else None
                if type(sequence) is int and sequence < worker.sequence:
                    continue  # the late answer to an earlier request, after a line the submission wrote itself
                if sequence != worker.sequence:
                    raise wire.WireError("a reply to a request that was never sent")
                return checked_reply(reply, code)
            except wire.WireError as err:  # a submission that writes to the worker's channel can send anything
                end()
                raise WorkerDied(
                    "crash", f"it sent the grader a reply that cannot be read ({clean(str(err), 200)})"
                ) from None

    def _read_line(self, worker: Process, deadline: float, timeout: float, end: Callable[[], None]) -> bytes:
        """The next line from the worker, watching the time, its memory and its death."""
        end_of_line = worker.buffer.find(b"\n")
        while end_of_line < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                end()
                raise WorkerDied("timeout", f"no answer within {timeout:g} s")
            ready, _, _ = select.select([worker.reply_fd], [], [], min(left, MEMORY_POLL_S))
            if not ready:
                if worker.cgroup is None and worker.memory_mb() > self.limits.memory_mb:
                    end()
                    raise WorkerDied("memory", f"used more than {self.limits.memory_mb} MB of memory")
                continue
            chunk = os.read(worker.reply_fd, 1 << 20)
            if not chunk:
                try:
                    status: int | None = worker.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    status = None
                oom = worker.cgroup is not None and worker.cgroup.oom_kills() > 0
                end()
                if oom:
                    raise WorkerDied("memory", f"used more than {self.limits.memory_mb} MB of memory")
                raise WorkerDied("crash", f"the worker process {_how_it_ended(status, self.wall.sandboxed)}")
            newline = chunk.find(b"\n")  # only the new bytes are searched: a 64 MB line costs linear time
            if newline >= 0:
                end_of_line = len(worker.buffer) + newline
            worker.buffer += chunk  # a bytearray grows in place
            if len(worker.buffer) > wire.MAX_MESSAGE_BYTES:
                end()
                raise WorkerDied("crash", "its reply was larger than the grader accepts")
        line = bytes(worker.buffer[:end_of_line])
        del worker.buffer[: end_of_line + 1]
        return line

    def convert_notebooks(self, notebooks: dict[str, str]) -> dict[str, str]:
        """Make each notebook (part → file name in the copy) into ``<part>.py`` in the generated folder, in a
        sandboxed converter with a time limit per notebook; part → why it could not be read, for the others."""
        problems: dict[str, str] = {}
        converter: Process | None = None
        timeout = max(self.limits.call_timeout_s, 10.0)
        try:
            for part, label in notebooks.items():
                if converter is None:
                    converter = self._spawn("convert.py")
                    self._request({"op": "ping"}, self.limits.startup_timeout_s, converter)
                request = {"op": "convert", "path": self._inside("submission", label), "part": part}
                try:
                    reply = self._request(request, timeout, converter, code=True)
                except WorkerDied as died:
                    converter = None
                    why = f"reading it took longer than {timeout:g} s" if died.kind == "timeout" else str(died)
                    problems[part] = f"{label} could not be graded: {why}."
                    continue
                if "error" in reply:  # checked_reply(code=True): otherwise "ok" holds the module's text
                    message = reply["error"]["message"]
                    problems[part] = f"{label} could not be graded: {message}. Re-save it from Jupyter."
                    continue
                target = self.generated_dir / f"{part}.py"
                target.write_text(reply["ok"])
                target.chmod(0o644)
                self.generated.add(f"{part}.py")
        except WorkerDied as died:
            for part, label in notebooks.items():
                problems.setdefault(part, f"{label} could not be graded: the notebook reader did not start ({died}).")
        finally:
            if converter is not None:
                converter.end()
        return problems

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]:
        """Start a worker if needed and import the submission's module; the reply of the import.

        A module whose import killed the worker is remembered, so that its other items are
        reported at once instead of each starting a worker that the import kills again.
        """
        if name in self.broken:
            return self.broken[name]
        if self.process is not None and self.owner not in (None, name):
            self._kill()
        if self.process is None:
            self._start()
            self.owner = name
        if name in self.loaded:
            return {"ok": True}
        request = {
            "op": "load",
            "name": name,
            "path": self.submission_path(filename),
            "search": [self._inside("submission", ""), self._inside("generated", "")],
        }
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
                self.notes[name] = [str(n) for n in notes[:5]]
        return reply

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request for ``module`` (imported from ``filename`` first); its reply or WorkerDied."""
        loaded = self.ensure_loaded(module, filename)
        if "error" in loaded:
            return loaded
        return self._request({**op, "module": module}, timeout or self.limits.call_timeout_s)


ERROR_FIELDS = ("kind", "type", "message", "where")


def checked_reply(reply: Any, code: bool = False) -> dict[str, Any]:
    """A reply of the form the grader expects, every string in it cleaned; WireError for anything else.

    ``{"ok": value}`` (with ``"notes"``: a list of strings, after an import) or ``{"error": {"kind",
    "type", "message", "where"}}`` with strings (``where`` may be None). With ``code`` the answer must
    be a string, the source of a module, which is kept whole: it is never shown, only run by a worker."""
    if not isinstance(reply, dict) or len({"ok", "error"} & set(reply)) != 1:
        raise wire.WireError("a reply that is neither an answer nor an error")
    if "error" in reply:
        error = reply["error"]
        if not isinstance(error, dict) or not all(isinstance(error.get(k), str) for k in ERROR_FIELDS[:3]):
            raise wire.WireError("an error report of the wrong form")
        if error.get("where") is not None and not isinstance(error["where"], str):
            raise wire.WireError("an error report of the wrong form")
        return {"error": clean({k: error.get(k) for k in ERROR_FIELDS})}
    if code:
        if not isinstance(reply["ok"], str):
            raise wire.WireError("a module that is not text")
        return {"ok": reply["ok"]}
    notes = reply.get("notes")
    if notes is not None and not (isinstance(notes, list) and all(isinstance(n, str) for n in notes)):
        raise wire.WireError("notes of the wrong form")
    return clean({k: v for k, v in reply.items() if k in ("ok", "notes")})


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


def _become_subreaper() -> None:
    """Make this process the reaper of its orphaned descendants (Linux), so that a worker's child that
    double-forks away is reparented to the grader, where it is killed and reaped, instead of to init."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def _die_with_parent() -> None:
    """In a child before exec: SIGKILL when the grader dies (set after the uid change, which clears it)."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _reap_zombies() -> None:
    """waitpid() every dead child: orphans of a worker come back to the grader as a subreaper."""
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


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
