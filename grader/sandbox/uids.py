"""The process wall's users: an unprivileged uid for each submission graded at once, and a clean slate after each.

Where bubblewrap cannot run, a root grader runs each submission's workers as a uid of their own, taken from
``FIRST_UID`` .. ``FIRST_UID + SLOTS - 1`` (``GRADER_WORKER_UIDS=FIRST-LAST`` to choose others). A uid is a
*slot*: a grading process holds it, with an exclusive ``flock`` on a file under ``LOCKS`` (kept by root), for
as long as one submission is graded, so that no two submissions on this machine, in this grading process or
another, ever share a uid. One student's process cannot signal, trace or read another student's workers: the
kernel refuses it across uids.

A uid with an entry in the password database is used only when the entry is this project's (its name starts
with ``USER_PREFIX``, as Gradescope's setup.sh makes them): an account of somebody else is never touched.

Before a slot is handed out and after its submission, ``clear`` ends every process of the uid (found by uid
in /proc, not by name or command line: a helper that becomes the uid sends ``kill(-1, SIGKILL)``, which
reaches exactly the processes that uid owns, until none is left) and removes every file the uid owns in
/tmp and /dev/shm, and its System V IPC objects. What a student leaves behind never meets the next student.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from grader.runtime.tree_removal import remove_tree

FIRST_UID = 60100
SLOTS = 64
USER_PREFIX = "grader-worker"
LOCKS = ("/run/genmath-grader/uids", "/var/tmp/genmath-grader-uids")  # the first root can keep
SHARED = ("/tmp", "/dev/shm", "/var/tmp")  # where any uid may leave files
SYSV = {"shm": "shmctl", "sem": "semctl", "msg": "msgctl"}
IPC_RMID = 0
KILL_ROUNDS = 200
SHELL = "/bin/sh"  # its kill builtin: every image has it, and every uid may run it


def candidates() -> list[int]:
    """The uids this grader may use, in order."""
    chosen = os.environ.get("GRADER_WORKER_UIDS", "").strip()
    if chosen:
        first, _, last = chosen.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise ValueError(f"GRADER_WORKER_UIDS={chosen!r}: give a range of uids, such as 60100-60163") from None
        if not 0 < low <= high:
            raise ValueError(f"GRADER_WORKER_UIDS={chosen!r}: give a range of uids above 0, such as 60100-60163")
        return list(range(low, high + 1))
    return list(range(FIRST_UID, FIRST_UID + SLOTS))


def usable(uid: int) -> bool:
    """Nobody else's: no account, or one of this project's."""
    try:
        return pwd.getpwuid(uid).pw_name.startswith(USER_PREFIX)
    except KeyError:
        return True


def lock_folder() -> Path | None:
    """The folder of the slots' lock files: made by root, root's alone (never one a worker could have made)."""
    for name in LOCKS:
        folder = Path(name)
        with contextlib.suppress(OSError):
            folder.parent.mkdir(mode=0o755, exist_ok=True)
            folder.mkdir(mode=0o700, exist_ok=True)
            info = os.lstat(folder)
            if stat.S_ISDIR(info.st_mode) and info.st_uid == 0 and not info.st_mode & 0o022:
                return folder
    return None


@dataclass
class Slot:
    """A uid held by this grading process until ``release``."""

    uid: int
    fd: int

    def release(self) -> None:
        """Clear the uid (every process ended, every file removed) and let another submission have it."""
        if self.fd < 0:
            return
        try:
            clear(self.uid)
        finally:
            os.close(self.fd)
            self.fd = -1


def acquire() -> Slot | None:
    """A free slot, cleared; None when every slot is held (or none can be kept here)."""
    folder = lock_folder()
    if folder is None:
        return None
    for uid in candidates():
        if not usable(uid):
            continue
        fd = hold(folder, uid)
        if fd is None:
            continue
        try:
            if not clear(uid):
                raise OSError(f"processes of uid {uid} could not be ended")
        except BaseException:
            os.close(fd)
            raise
        return Slot(uid, fd)
    return None


def hold(folder: Path, uid: int) -> int | None:
    """The descriptor of ``uid``'s lock, taken without waiting; None while another process holds it."""
    fd = os.open(folder / str(uid), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def processes_of(uid: int) -> list[int]:
    """Live processes whose real, effective or saved uid is ``uid`` (zombies aside: they run nothing)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status", encoding="ascii", errors="replace") as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uids = fields.get("Uid", "").split()[:4]
        if str(uid) in uids and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(name))
    return found


def kill_all(uid: int) -> bool:
    """End every process of ``uid``, frozen or stopped ones included; True when none is left."""
    for _ in range(KILL_ROUNDS):
        if not processes_of(uid):
            return True
        # kill(-1) as the uid reaches every process the uid may signal, which is every process it owns, and no
        # other; a fork in flight is caught by the next round (RLIMIT_NPROC bounds them).
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                [SHELL, "-c", "kill -9 -1"],
                user=uid, group=uid, extra_groups=[], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, timeout=10, close_fds=True, cwd="/",
            )  # fmt: skip
        for pid in processes_of(uid):  # a process its helper could not reach (stopped in a frozen cgroup)
            with contextlib.suppress(OSError):
                os.kill(pid, 9)
        time.sleep(0.01)
    return not processes_of(uid)


def remove_files(uid: int, tops: tuple[str, ...] = SHARED) -> list[str]:
    """Remove what ``uid`` owns in the shared folders ``tops``: its files and folders there, and inside the
    machine's folders that anyone may write to (/tmp/.X11-unix); the paths it could not remove. Folders of other
    worker uids are not looked into: they go whole when their uid is cleared, and a student may make them
    thousands of folders deep (``os.walk``, which recurses once a level, raised RecursionError there)."""
    left = []
    workers = set(candidates())
    to_look = list(tops)
    while to_look:
        try:
            with os.scandir(to_look.pop()) as listing:
                entries = list(listing)
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid == uid:
                if not remove_tree(entry.path):
                    left.append(entry.path)
            elif stat.S_ISDIR(info.st_mode) and info.st_mode & 0o002 and info.st_uid not in workers:
                to_look.append(entry.path)
    return left


def ipc_of(uid: int) -> list[tuple[str, int]]:
    """The System V shared memory segments, semaphore sets and message queues ``uid`` owns or made."""
    found = []
    for kind in SYSV:
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()
        except OSError:
            continue
        header = lines[0].split() if lines else []
        for line in lines[1:]:
            fields = dict(zip(header, line.split(), strict=False))
            ident = fields.get("shmid") or fields.get("semid") or fields.get("msqid") or ""
            if str(uid) in (fields.get("uid"), fields.get("cuid")) and ident.isdigit():
                found.append((kind, int(ident)))
    return found


def remove_ipc(uid: int) -> None:
    """Remove ``uid``'s IPC objects, as their owner (root needs CAP_SYS_ADMIN for that, which a container lacks)."""
    import ctypes

    objects = ipc_of(uid)
    if not objects:
        return
    libc = ctypes.CDLL(None, use_errno=True)

    def remove() -> None:  # in the helper, once it is the uid
        for kind, ident in objects:
            if kind == "sem":
                libc.semctl(ident, 0, IPC_RMID)
            else:
                getattr(libc, SYSV[kind])(ident, IPC_RMID, None)

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run([SHELL, "-c", ":"], user=uid, group=uid, extra_groups=[], preexec_fn=remove,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
                       cwd="/")  # fmt: skip


def clear(uid: int) -> bool:
    """Every process of ``uid`` ended, its files in the shared folders and its IPC objects removed; True when no
    process of it is left."""
    ended = kill_all(uid)
    remove_files(uid)
    remove_ipc(uid)
    return ended
