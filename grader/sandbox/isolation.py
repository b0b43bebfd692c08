"""Which wall this machine allows, probed once per grader process, and bubblewrap's command line for it.

Strongest first: bubblewrap with a user namespace of its own (uid 65534, no capabilities, no new
user namespaces, a seccomp filter); the same without ``--disable-userns``; on a GPU machine where
CUDA fails in a user namespace, the other namespaces without capabilities. Without bubblewrap: a
PID namespace (util-linux ``unshare``) and, for a root grader, uid 65534 where that user can run the
Python installation. The mounts show the system, the Python installation, the runtime and the
private copy of the submission, read-only, files that not everyone may read masked, and a small
writable /tmp and /dev/shm.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.sandbox import seccomp

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
MASKED_UNDER = ("/etc",)  # where files that not everyone may read are hidden from the worker
WORKER_ID = 65534  # uid and gid of a worker: "nobody"
TMPFS_MB = 64  # the sandbox's /tmp and /dev/shm, each
Isolation = Literal["auto", "required", "off"]  # bubblewrap where it works / or refuse to grade / never


class SandboxUnavailable(RuntimeError):
    """Grading other people's code was asked to run sandboxed, and no sandbox can be built here."""


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


def python_dirs() -> list[str]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(d for d in dirs if d and os.path.isdir(d))


PROJECT_PACKAGES = ("grader", "reference", "solutions", "exercises")


def installed_project_packages() -> tuple[str, ...]:
    """Folders of this project's packages that lie inside the Python installation (a wheel install, not
    ``pip install -e .``). The sandbox must show the installation, so it hides these: a student's code
    cannot import the reference (or anything else of the project) from site-packages."""
    inside = [os.path.realpath(d) + os.sep for d in python_dirs()]
    found: list[str] = []
    for package in PROJECT_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            real = os.path.realpath(location)
            if any(real.startswith(d) for d in inside) and real not in found:
                found.append(real)
    return tuple(found)


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


def drop_privileges(uid: int) -> None:
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
            preexec_fn=(lambda: drop_privileges(drop_to)) if drop_to is not None else None,
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
                    command, fds = bwrap_command(candidate, scratch, scratch, scratch, [sys.executable, *check])
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
    if cuda_available():
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
    if cuda_available():
        sets.append((*no_user, "--cap-drop", "ALL", *extra))
    return sets


def bwrap_command(
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
    for d in python_dirs():
        mounts += ["--ro-bind", d, d]
    for package in installed_project_packages():  # after the installation's own mounts, which they cover
        mounts += ["--tmpfs", package, "--remount-ro", package]
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
    if not cuda_available():
        return ()
    return tuple(sorted(str(p) for p in Path("/dev").glob("nvidia*") if not p.is_dir()))


def bubblewrap() -> str | None:
    """The bwrap binary when it can build the grader's sandbox here."""
    built = wall("auto").bwrap
    return built[0] if built else None


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False
