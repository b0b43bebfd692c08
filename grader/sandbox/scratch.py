"""The grader's scratch folders in the temporary directory, named for the process that made them.

Every scratch folder of the grader (a sandbox's, a payload's, an entry's) is called
``grader-<kind>-<pid>-<random>``. A grader ends its own; one killed with ``kill -9`` cannot, and its
folders (a submission's copy among them) would stay: ``sweep``, run when a class run starts,
removes those whose process is gone, folders a student locked (mode 000) included, never following
a link. A process is gone once none of its threads runs: one killed and still tearing down, or a zombie
nobody has reaped yet (the first process of many containers reaps nothing), is gone too, or a run started
right after a ``kill -9`` would leave the folders to the run after it. Folders of a live process, and every
other entry, are left alone. ``remove_tree`` removes a folder a worker may have written in (a sandbox's, a
worker uid's in /tmp), however deep, without following a link.

Graders before 0.8.0 named theirs ``grader-<8 random characters>`` (``tempfile.mkdtemp``), with no pid
to ask: ``sweep`` removes such a folder once it has not changed for a day (``UNNAMED_STALE_S``), which
no grading of one student comes near.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

NAME = re.compile(r"grader-(sandbox|payload|entry|probe|template)-(\d+)-")
UNNAMED = re.compile(r"grader-[a-z0-9_]{8}")  # before 0.8.0: tempfile.mkdtemp(prefix="grader-"), no pid
UNNAMED_STALE_S = 24 * 3600
_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC  # a folder to list (a name is opened with O_NOFOLLOW too)
PF_EXITING = 0x4  # include/linux/sched.h: a task's flag from the moment it begins to exit


def prefix(kind: str) -> str:
    """The prefix of a new scratch folder of ``kind`` (sandbox, payload, entry, probe, template) for this process."""
    return f"grader-{kind}-{os.getpid()}-"


def sweep(root: Path | None = None) -> list[str]:
    """Remove the scratch folders of grader processes that are gone; the names of those removed."""
    return _remove_where(lambda owner: gone(int(owner)), root, unnamed=True)


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended or is ending: there is none, or every thread of it is a zombie or exiting.
    A thread group's leader that ended before its other threads reads as a zombie while they run: each thread
    is read. Where there is no /proc (not Linux), whether a signal can be sent to ``pid``."""
    if not os.path.isdir("/proc/self/task"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # someone else's: it exists
            pass
        return False
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    except OSError:  # another user's, behind /proc's hidepid=1: it exists
        return False
    return all(_ending(f"/proc/{pid}/task/{tid}/stat") for tid in threads)


def _ending(stat_file: str) -> bool:
    """Whether the task of ``stat_file`` (/proc's) is gone, a zombie, dead or exiting."""
    try:
        line = Path(stat_file).read_bytes()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    fields = line[line.rindex(b")") + 2 :].split()  # the name, in parentheses, may hold spaces and parentheses
    state, flags = fields[0], int(fields[6])
    return state in (b"Z", b"X", b"x") or bool(flags & PF_EXITING)


def remove_own(root: Path | None = None) -> list[str]:
    """Remove every scratch folder this process made that is still there, as it ends; the names of those removed.
    A signal that ends a grading process between making a folder and handing it to the sandbox that closes it
    would otherwise leave it to the next run's ``sweep``."""
    own = str(os.getpid())
    return _remove_where(lambda owner: owner == own, root, unnamed=False)


def _remove_where(owned: Callable[[str], bool], root: Path | None, unnamed: bool) -> list[str]:
    """Remove the scratch folders whose owner (the pid in their name) is ``owned`` and, with ``unnamed``, those of
    graders before 0.8.0 unchanged for a day; the names of those removed."""
    root = Path(root or tempfile.gettempdir())
    removed = []
    try:
        entries = list(os.scandir(root))
    except OSError:
        return []
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        found = NAME.match(entry.name)
        if found is not None:
            if not owned(found.group(2)):
                continue
        elif not unnamed or UNNAMED.fullmatch(entry.name) is None or not _unchanged_for(entry, UNNAMED_STALE_S):
            continue
        if remove_tree(entry.path):
            removed.append(entry.name)
    return removed


def _unchanged_for(entry: os.DirEntry[str], seconds: float) -> bool:
    try:
        return time.time() - entry.stat(follow_symlinks=False).st_mtime > seconds
    except OSError:
        return False


def remove_tree(path: str) -> bool:
    """Remove ``path`` and everything in it, however deep or wide, never following a link; folders a student
    locked (mode 000) are opened up first. Whether it is gone. ``shutil.rmtree`` (and ``os.walk``) recurse
    once a level: a tree a few thousand folders deep, which a worker makes in a blink where it may write, raised
    RecursionError, which ended the grading process and, left behind, every later class run's sweep. Here no
    more than two folders are open at once, and each step goes through a descriptor, not a path a link could
    redirect."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            return False
        return True
    top = _open_folder(path, None)
    if top is None:
        return False
    try:
        if not _flatten(top):
            return False
    finally:
        os.close(top)
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError:
        return False
    return True


def _flatten(top: int) -> bool:
    """Empty the folder ``top``: each folder in it is emptied of its files, its own folders moved up into ``top``
    (under fresh names, and taken in turn), and removed. ``top`` is listed again only at the end (a folder
    keeps its size once grown: listing it after every level made a deep and wide tree quadratic)."""
    names = itertools.count()
    for _ in range(3):  # a second look: what a process still running may have added meanwhile
        pending = _empty_of_files(top)
        if pending is None:
            return False
        if not pending:
            return True
        while pending:
            name = pending.pop()
            folder = _open_folder(name, top)
            if folder is None:
                return False
            try:
                inner = _empty_of_files(folder)
                if inner is None:
                    return False
                for sub in inner:
                    moved = _move_up(sub, folder, top, names)
                    if moved is None:
                        return False
                    pending.append(moved)
            finally:
                os.close(folder)
            try:
                os.rmdir(name, dir_fd=top)
            except FileNotFoundError:
                pass
            except OSError:
                return False
    return False


def _open_folder(name: str, parent: int | None) -> int | None:
    """A descriptor of the folder ``name`` (in the folder ``parent``, or a path) that its owner may list and write,
    mode 700 given where it had less; None if it is not a folder (a link is not one) or cannot be opened."""
    folder: int | None
    try:
        folder = os.open(name, _READ | os.O_NOFOLLOW, dir_fd=parent)
    except PermissionError:  # locked (mode 000), and this is not root: opened up through an O_PATH descriptor
        folder = _opened_up(name, parent)
    except OSError:  # gone, a link (ELOOP), not a folder (ENOTDIR)
        return None
    if folder is None:
        return None
    try:
        if stat.S_IMODE(os.fstat(folder).st_mode) & stat.S_IRWXU != stat.S_IRWXU:
            os.fchmod(folder, stat.S_IRWXU)
    except OSError:
        os.close(folder)
        return None
    return folder


def _opened_up(name: str, parent: int | None) -> int | None:
    """The folder ``name``, which its owner may not read, given mode 700 and opened; None if it cannot be."""
    if not hasattr(os, "O_PATH"):  # not Linux: chmod there can refuse to follow a link
        try:
            os.chmod(name, stat.S_IRWXU, dir_fd=parent, follow_symlinks=False)
            return os.open(name, _READ | os.O_NOFOLLOW, dir_fd=parent)
        except (OSError, NotImplementedError):
            return None
    try:
        held = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
    except OSError:
        return None
    try:
        os.chmod(f"/proc/self/fd/{held}", stat.S_IRWXU)  # the folder held, whatever its name is now
        return os.open(f"/proc/self/fd/{held}", _READ)
    except OSError:
        return None
    finally:
        os.close(held)


def _empty_of_files(folder: int) -> list[str] | None:
    """Remove every entry of the folder ``folder`` (a descriptor) that is not a folder, links included; the names
    of its folders, or None if something could not be removed."""
    if not isinstance(folder, int):  # os.scandir(None) would list, and this empty, the current folder
        raise TypeError("a folder's descriptor is needed")
    folders = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.name, dir_fd=folder)
    except OSError:
        return None
    return folders


def _move_up(name: str, parent: int, top: int, names: itertools.count[int]) -> str | None:
    """Move the folder ``name`` of ``parent`` into ``top`` under a name no entry of ``top`` has; that name, or None
    if it could not be moved."""
    while True:
        new = f".grader-{next(names)}"
        try:
            os.stat(new, dir_fd=top, follow_symlinks=False)
            continue
        except FileNotFoundError:
            pass
        except OSError:
            return None
        try:
            os.rename(name, new, src_dir_fd=parent, dst_dir_fd=top)
            return new
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                return None


def own_folder(folder: Path, parents: bool = False) -> Path | None:
    """``folder``, created 0700 if it is missing (with its ``parents``); None if it is not a folder of this user
    that only this user can enter (a link, another user's, or one others may enter): nothing is kept there."""
    with contextlib.suppress(OSError):
        folder.mkdir(mode=0o700, parents=parents, exist_ok=True)
    try:
        info = os.lstat(folder)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
        return None
    return folder
