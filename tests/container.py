"""Run a command as a container runtime would run the grader: root, but no namespaces, no bubblewrap.

    python -m tests.container [--cgroups rw] -- COMMAND ...

Docker's default seccomp profile and most Kubernetes pods refuse the namespaces bubblewrap and util-linux
``unshare`` need, drop ``CAP_SYS_ADMIN`` and mount the cgroup file system read-only. This does the same to
COMMAND, in a mount namespace of its own (nothing here changes the machine's mounts):

- the cgroup file systems are remounted read-only (``--cgroups rw`` keeps them writable);
- folders of mode 0700 on the way to the Python installation and the project (root's home, where pyenv and
  a clone live) are opened up as a container's image has them: a 0755 folder holding just those;
- ``bwrap``, ``unshare`` and ``nsenter`` are not on PATH, and HOME is an empty folder;
- a seccomp filter refuses ``unshare``, ``setns``, ``mount``, ``umount2``, ``pivot_root`` and namespace
  flags to ``clone`` (EPERM; ``clone3`` ENOSYS), and ``CAP_SYS_ADMIN`` leaves the bounding set, so that
  COMMAND runs without it.

Root only (it makes a mount namespace); the grader inside finds bubblewrap unable to run and takes the
process wall.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from grader.runtime.confinement import PR_SET_SECCOMP, SECCOMP_MODE_FILTER, SockFprog
from grader.sandbox import seccomp

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
PR_CAPBSET_DROP, CAP_SYS_ADMIN = 24, 21
HIDDEN_PROGRAMS = ("bwrap", "unshare", "nsenter")
REFUSED = ("unshare", "setns", "mount", "umount2", "pivot_root")
ROOT = Path(__file__).resolve().parents[1]

libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encoded = [x.encode() if x is not None else None for x in (source, target, fstype, data)]
    _check(libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3]), f"mount {target}")


def cgroups_read_only() -> None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2"):
            mount(None, fields[4], None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def open_up(paths: list[str], keep: Path) -> None:
    """Make each 0700 folder on the way to ``paths`` a 0755 tmpfs that holds just the way on (bind mounts)."""
    closed: dict[str, set[str]] = {}
    for path in paths:
        parts = Path(path).resolve().parts
        for depth in range(1, len(parts) - 1):
            folder = str(Path(*parts[: depth + 1]))
            if not os.stat(folder).st_mode & stat.S_IXOTH:
                closed.setdefault(folder, set()).add(parts[depth + 1])
                break
    for k, (folder, children) in enumerate(sorted(closed.items())):
        original = keep / str(k)
        original.mkdir()
        mount(folder, str(original), None, MS_BIND)
        mount("tmpfs", folder, "tmpfs", 0, "mode=0755")
        for child in sorted(children):
            source = original / child
            target = Path(folder) / child
            target.mkdir() if source.is_dir() else target.touch()
            mount(str(source), str(target), None, MS_BIND | MS_REC)


def path_without(programs: tuple[str, ...], into: Path) -> str:
    """A PATH of one folder that holds links to every program on PATH but ``programs``."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(folder):
            continue
        for name in os.listdir(folder):
            link = into / name
            if name not in programs and not link.exists() and os.access(os.path.join(folder, name), os.X_OK):
                link.symlink_to(os.path.join(folder, name))
    return str(into)


def refuse_namespaces() -> None:
    program = seccomp.program(refused=REFUSED)
    assert program is not None, "no seccomp table for this architecture"
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")
    _check(libc.prctl(PR_CAPBSET_DROP, CAP_SYS_ADMIN, 0, 0, 0), "drop CAP_SYS_ADMIN")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.container", description=__doc__.split("\n")[0])
    parser.add_argument("--cgroups", choices=("ro", "rw"), default="ro")
    parser.add_argument("--work", type=Path, help="a folder for the container's own files (default: a new one in /tmp)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    if os.geteuid() != 0:
        sys.exit("tests.container: run as root (it makes a mount namespace, as a container runtime does)")
    work = args.work or Path(tempfile.mkdtemp(prefix="container-", dir="/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    _check(libc.unshare(CLONE_NEWNS), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    if args.cgroups == "ro":
        cgroups_read_only()
    keep = work / "originals"
    keep.mkdir()
    installation = [os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, str(ROOT)]
    open_up(installation, keep)
    home = work / "home"
    home.mkdir()
    programs = work / "bin"
    programs.mkdir()
    os.environ["PATH"] = path_without(HIDDEN_PROGRAMS, programs)
    os.environ["HOME"] = str(home)
    refuse_namespaces()
    try:
        os.execvp(command[0], command)
    except OSError as err:
        shutil.rmtree(work, ignore_errors=True)
        sys.exit(f"tests.container: {command[0]}: {err}")


if __name__ == "__main__":
    main()
