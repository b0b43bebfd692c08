"""The grader's scratch folders in the temporary directory, named for the process that made them.

Every scratch folder of the grader (a sandbox's, a payload's, an entry's) is called
``grader-<kind>-<pid>-<random>``. A grader ends its own; one killed with ``kill -9`` cannot, and its
folders (a submission's copy among them) would stay: ``sweep``, run when a class run starts,
removes those whose process is gone, folders a student locked (mode 000) included, never following
a link. A process is gone once none of its threads runs: one killed and still tearing down, or a zombie
nobody has reaped yet (the first process of many containers reaps nothing), is gone too, or a run started
right after a ``kill -9`` would leave the folders to the run after it. Folders of a live process, and every
other entry, are left alone. Each folder goes through ``remove_tree`` (grader/runtime/tree_removal.py): however
deep a worker made it, never following a link.

Graders before 0.8.0 named theirs ``grader-<8 random characters>`` (``tempfile.mkdtemp``), with no pid
to ask: ``sweep`` removes such a folder once it has not changed for a day (``UNNAMED_STALE_S``), which
no grading of one student comes near.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from grader.runtime.tree_removal import remove_tree

NAME = re.compile(r"grader-(sandbox|payload|entry|probe|template)-(\d+)-")
UNNAMED = re.compile(r"grader-[a-z0-9_]{8}")  # before 0.8.0: tempfile.mkdtemp(prefix="grader-"), no pid
UNNAMED_STALE_S = 24 * 3600
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
