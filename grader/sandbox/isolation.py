"""Which wall this machine allows, probed once per grader process, and bubblewrap's command line for it.

Three walls, strongest first, and every report names the one that held (``Wall.kind``):

- ``bubblewrap``: a user namespace of its own (uid 65534, no capabilities, no new user namespaces, a seccomp
  filter); the same without ``--disable-userns``; on a GPU machine where CUDA fails in a user namespace, the
  other namespaces without capabilities. The mounts show the system, the Python installation, the runtime and
  the private copy of the submission, read-only, files that not everyone may read masked, and a small writable
  /tmp and /dev/shm.
- ``process``: where bubblewrap cannot build its sandbox (Docker's default seccomp profile and most Kubernetes
  pods refuse namespaces) and the grader is root: each submission's workers run as an unprivileged uid of their
  own (grader/sandbox/uids.py), with no new privileges, the same seccomp filter, rlimits, and Landlock where the
  kernel has it (grader/sandbox/landlock.py); every process and file of that uid is removed after each
  submission. It holds only where the worker cannot read the project: the probe tries, as the worker would.
- ``none``: neither (a grader that is not root, or a project its workers could read). Workers still run in a
  session of their own under rlimits, no new privileges, the seccomp filter and Landlock where there is one.
"""

from __future__ import annotations

import functools
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from grader.sandbox import landlock, seccomp, uids
from grader.sandbox import scratch as scratch_folders
from grader.sandbox.confine import Confinement
from grader.sandbox.landlock import Ruleset

SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
MASKED_UNDER = ("/etc",)  # where files that not everyone may read are hidden from the worker
WORKER_ID = 65534  # uid and gid of a worker behind bubblewrap: "nobody"
TMPFS_MB = 64  # the sandbox's /tmp and /dev/shm, each
Isolation = Literal["auto", "required", "off"]  # bubblewrap where it works / or refuse to grade / never


class SandboxUnavailable(RuntimeError):
    """Grading other people's code was asked to run sandboxed, and no sandbox can be built here."""


WallKind = Literal["bubblewrap", "process", "none"]


@dataclass(frozen=True)
class Wall:
    """How workers are walled in on this machine (probed once per grader process)."""

    kind: WallKind
    bwrap: tuple[str, ...] | None = None  # bwrap and its privilege flags, when it builds the sandbox here
    own_uid: bool = False  # outside bubblewrap: each submission's workers run as a uid of their own (a slot)
    landlock: int = 0  # outside bubblewrap: the Landlock ABI version in force (0: none)
    masks: tuple[str, ...] = field(default=(), repr=False)
    seccomp: bytes | None = field(default=None, repr=False)
    problems: tuple[str, ...] = ()

    @property
    def sandboxed(self) -> bool:
        """Behind bubblewrap: the worker's own file system, /tmp and PID namespace."""
        return self.kind == "bubblewrap"

    @property
    def holds(self) -> bool:
        """A wall fit for other people's code: bubblewrap, or the process wall."""
        return self.kind != "none"

    def describe(self) -> str:
        """The wall in words, for reports: ``bubblewrap``, ``process (Landlock ABI 7)``, ``none``."""
        if self.kind == "bubblewrap":
            return "bubblewrap"
        extras = [f"Landlock ABI {self.landlock}" if self.landlock else "no Landlock"]
        if self.kind == "none" and self.own_uid:
            extras.append("own uid")
        return f"{self.kind} ({', '.join(extras)})"


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


def _closed_on_the_way(path: Path) -> str | None:
    """The first folder above ``path`` that other users cannot pass through, if any."""
    for folder in reversed(path.resolve().parents):
        if not os.stat(folder).st_mode & 0o001:
            return str(folder)
    return None


# What a root grader does to a worker uid's processes and files (grader/sandbox/uids.py, workers.py): give it
# folders and run it (chown, setgid, setuid), empty its HOME for the next student and remove what it left, in
# folders it may have locked with mode 000 (dac_override, fowner), and end what it left running (kill).
ROOT_NEEDS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7}


def _missing_capabilities() -> list[str]:
    """The capabilities of ``ROOT_NEEDS`` this process lacks: a container may drop some (Docker's default set
    keeps them all; a Kubernetes pod with ``drop: [ALL]`` has none)."""
    try:
        lines = Path("/proc/self/status").read_text().splitlines()
    except OSError:  # not Linux: root has every privilege
        return []
    status = dict(line.split(":", 1) for line in lines if ":" in line)
    effective = int(status["CapEff"], 16)
    return [name for name, bit in ROOT_NEEDS.items() if not effective >> bit & 1]


def _probe(
    command: list[str], confinement: Confinement | None = None, pass_fds: tuple[int, ...] = (), cwd: Path | None = None
) -> int | None:
    """The probe's exit status (None where it could not start)."""
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            timeout=30,
            pass_fds=pass_fds,
            preexec_fn=confinement.apply if confinement is not None else None,
            cwd=cwd or "/",
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.returncode


EXPOSED = 5  # the probe's status when it could read a file of the project


def project_files() -> list[str]:
    """One file of each of the project's packages that lie outside the Python installation's own folders, or
    inside them (a wheel install): what a worker must never read."""
    found = []
    for package in PROJECT_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            init = Path(location) / "__init__.py"
            found.append(str(init if init.exists() else next(Path(location).glob("*.py"), init)))
    return found


def landlock_paths(python: list[str]) -> list[str]:
    """What every worker outside bubblewrap may read: the system and the Python installation, /proc and /sys."""
    return [*SYSTEM_DIRS, *python, "/proc", "/sys"]


def ruleset(readable: list[str], writable: list[str]) -> Ruleset | None:
    """A Landlock ruleset for a worker, or None where the kernel has no Landlock."""
    if landlock.abi() < 1:
        return None
    return Ruleset.build(landlock_paths(python_dirs()) + readable, writable, [*landlock.DEVICES, *_gpu_devices()])


@functools.cache
def wall(isolation: Isolation = "auto") -> Wall:
    """What this machine allows, tried from the strongest wall down (probes of ~0.1 s, once per process;
    a few seconds on a GPU machine, where each candidate must also show the worker a working CUDA)."""
    problems: list[str] = []
    program = seccomp.program()
    masks = _masks()
    check = _python_check()
    if isolation != "off":
        path = shutil.which("bwrap") if sys.platform.startswith("linux") else None
        if path is None:
            problems.append("bubblewrap (bwrap) is not installed")
        else:
            scratch = Path(tempfile.mkdtemp(prefix=scratch_folders.prefix("probe")))
            try:
                for flags in _bwrap_flag_sets(program is not None):
                    candidate = Wall("bubblewrap", bwrap=(path, *flags), masks=masks, seccomp=program)
                    command, fds = bwrap_command(candidate, scratch, scratch, scratch, [sys.executable, *check])
                    try:
                        if _probe(command, pass_fds=fds) == 0:
                            if "--unshare-user" not in flags:
                                problems.append(
                                    "CUDA works only outside a user namespace here: workers run as root without "
                                    "capabilities"
                                )
                            return Wall("bubblewrap", candidate.bwrap, masks=masks, seccomp=program,
                                        problems=tuple(problems))  # fmt: skip
                    finally:
                        for fd in fds:
                            os.close(fd)
                problems.append("bubblewrap is installed but cannot build the sandbox here")
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return _outside_bubblewrap(problems, program, masks, check)


def _outside_bubblewrap(problems: list[str], program: bytes | None, masks: tuple[str, ...], check: list[str]) -> Wall:
    """The process wall where it holds, else none: each tried with the very steps a worker takes (a slot's uid,
    no new privileges, Landlock, the seccomp filter), and asked to read the project's files."""
    root = os.geteuid() == 0
    version = landlock.abi()
    if not version:
        problems.append("the kernel has no Landlock (Linux 5.13 or later)")
    probe = [sys.executable, *check, *project_files()]
    scratch = Path(tempfile.mkdtemp(prefix=scratch_folders.prefix("probe")))
    scratch.chmod(0o711)  # as a sandbox's scratch folder: the worker's own files are below it
    closed = _closed_on_the_way(scratch)
    if root and closed:
        problems.append(
            f"other users cannot reach the temporary folder {tempfile.gettempdir()} ({closed} is closed to them): "
            "set TMPDIR to a folder they can reach, such as /tmp"
        )
    missing = _missing_capabilities() if root else []
    if missing:
        problems.append(
            f"the grader runs as root without {', '.join(missing)} (a container that drops "
            f"{'it' if len(missing) == 1 else 'them'}): workers cannot run as a uid of their own"
        )
    may_hold = root and not closed and not missing  # a worker uid may be tried: else the problem is said above
    slot = uids.acquire() if may_hold else None
    if may_hold and slot is None:
        problems.append("no worker uid is free (grader/sandbox/uids.py)")
    try:
        if slot is not None:
            os.chown(scratch, slot.uid, slot.uid)
        tries: list[tuple[uids.Slot | None, int]] = [(slot, version), (slot, 0)] if slot is not None else []
        tries += [(None, version), (None, 0)]
        for held, abi in [t for k, t in enumerate(tries) if t not in tries[:k]]:
            try:
                rules = ruleset([], [str(scratch)]) if abi else None
            except OSError:
                continue
            try:
                status = _probe(probe, Confinement(held.uid if held else None, rules, program), cwd=scratch)
            finally:
                if rules is not None:
                    rules.close()
            if status not in (0, EXPOSED):
                continue
            if held is None and root and slot is not None:
                problems.append("no worker uid can run this Python installation (it must be readable by all)")
            elif held is None and not root:
                problems.append("the grader is not root, so workers cannot run as a uid of their own")
            if status == EXPOSED:
                problems.append(
                    "a worker can read the project's files: make grader/ and reference/ readable by root alone, "
                    "or grade on a kernel with Landlock"
                )
            kind: WallKind = "process" if held is not None and status == 0 else "none"
            return Wall(kind, own_uid=held is not None, landlock=abi, masks=masks, seccomp=program,
                        problems=tuple(problems))  # fmt: skip
        problems.append("no worker could start under the process wall's steps")
        return Wall("none", masks=masks, problems=tuple(problems))
    finally:
        if slot is not None:
            slot.release()
        shutil.rmtree(scratch, ignore_errors=True)


def _python_check() -> list[str]:
    """Arguments for the probes' Python: start, see torch (on a GPU machine: CUDA, which a user namespace can
    hide), and fail with ``EXPOSED`` if it can read any of the files named after these arguments."""
    sees = "torch.cuda.is_available()" if cuda_available() else "importlib.util.find_spec('torch')"
    code = (
        "import importlib.util, sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path, 'rb').close()\n"
        f"        sys.exit({EXPOSED})\n"
        "    except OSError:\n"
        "        pass\n" + ("import torch\n" if cuda_available() else "") + f"sys.exit(0 if {sees} else 3)\n"
    )
    return ["-I", "-c", code]


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


@functools.cache
def cuda_available() -> bool:
    """Whether torch sees a GPU here. Where no NVIDIA device node exists, no: said without importing torch
    (about 1 s), so that a grader can start its workers before it imports torch itself."""
    if not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/nvidiactl"):
        return False
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover
        return False
