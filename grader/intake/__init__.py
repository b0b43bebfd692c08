"""Taking a submission in: a private copy of its regular files and folders, and nothing else.

A submission is hostile data. Every entry is examined with ``lstat`` and never followed: a
symbolic link (to the solutions, to ``/proc/self/environ``, to a classmate's folder, to
``/dev/zero``), a FIFO, a socket or a device is left out and reported as what it is. Regular
files are opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the open descriptor,
so an entry swapped for a link or a FIFO between the look and the copy is refused too. Caps
on the number of entries, the depth, the size of one file and the total size keep a
submission from filling the disk or the grader's time. Hidden entries (``.git``,
``.ipynb_checkpoints``) and ``__pycache__`` are skipped silently: they are never graded.

The copy is the only thing the grader reads afterwards (and the only thing a worker sees, at
/submission, read-only): notebooks are converted from it in a sandboxed worker, never
in the grader's own process.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from grader.intake.untrusted import clean_text

MAX_ENTRIES = 500  # files and folders
MAX_DEPTH = 6  # folders below the submission's own
MAX_FILE_BYTES = 32 * 1024 * 1024  # one file; the largest real submission file, a notebook with outputs, is ~2 MB
MAX_TOTAL_BYTES = 128 * 1024 * 1024
CHUNK = 1 << 20
KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


NOT_TEXT = "has a name that is not UTF-8 text (as zips made on some systems write them)"


def is_text(name: str) -> bool:
    """Whether a name read from the file system is UTF-8 text: only such names are carried, packed and graded."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class Intake:
    """What was copied, and what was left out and why (in words for the student)."""

    files: int = 0
    bytes: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    def refuse(self, name: str, why: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(f"{clean_text(name, 120)} {why}, so the grader left it out.")
        elif len(self.problems) == 20:
            self.problems.append("More entries were left out; only the first 20 are listed.")


def take_in(submission: Path, copy: Path, into_existing: bool = False) -> Intake:
    """Copy the regular files and folders of ``submission`` into the new folder ``copy`` (or, ``into_existing``,
    into the empty folder ``copy``)."""
    intake = Intake()
    if into_existing:
        assert copy.is_dir() and not any(copy.iterdir()), "take_in copies into an empty folder"
    else:
        copy.mkdir(mode=0o755)
    _copy_folder(Path(submission), copy, "", 0, intake)
    return intake


def _copy_folder(source: Path, target: Path, shown: str, depth: int, intake: Intake) -> None:
    try:
        with os.scandir(source) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as err:
        intake.refuse(shown or "the submission folder", f"could not be listed ({err.strerror})")
        return
    for entry in entries:
        name = entry.name
        label = f"{shown}{name}"
        if name.startswith(".") or name == "__pycache__":
            continue
        intake.entries += 1
        if intake.entries > MAX_ENTRIES:
            intake.refuse(label, f"is past the first {MAX_ENTRIES} files and folders")
            continue
        if not is_text(name):
            intake.refuse(label, NOT_TEXT)
            continue
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as err:
            intake.refuse(label, f"could not be examined ({err.strerror})")
            continue
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFDIR:
            if depth >= MAX_DEPTH:
                intake.refuse(label, f"is a folder more than {MAX_DEPTH} levels deep")
                continue
            (target / name).mkdir(mode=0o755)
            _copy_folder(source / name, target / name, f"{label}/", depth + 1, intake)
        elif kind == stat.S_IFREG:
            _copy_file(source / name, target / name, label, intake)
        else:
            intake.refuse(label, f"is {KINDS.get(kind, 'not a regular file')}")


class Refused(OSError):
    """An entry the grader will not read; the message says what it is, in words for the student."""


def open_regular(path: Path) -> tuple[int, os.stat_result]:
    """A descriptor of ``path`` and its status, if it is a regular file within MAX_FILE_BYTES; else Refused.

    Opened with O_NOFOLLOW | O_NONBLOCK and checked on the descriptor: a link, or an entry swapped for a
    FIFO after a look at it, is refused without being followed or blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        raise Refused("is a symbolic link" if err.errno == 40 else f"could not be opened ({err.strerror})") from None
    info = os.fstat(fd)
    why = None
    if not stat.S_ISREG(info.st_mode):
        why = f"is {KINDS.get(stat.S_IFMT(info.st_mode), 'not a regular file')}"
    elif info.st_size > MAX_FILE_BYTES:
        why = f"is larger than {MAX_FILE_BYTES // 2**20} MB"
    if why is not None:
        os.close(fd)
        raise Refused(why)
    return fd, info


def _copy_file(source: Path, target: Path, label: str, intake: Intake) -> None:
    try:
        fd, info = open_regular(source)
    except Refused as refused:
        intake.refuse(label, str(refused))
        return
    try:
        if intake.bytes + info.st_size > MAX_TOTAL_BYTES:
            intake.refuse(label, f"would take the submission past {MAX_TOTAL_BYTES // 2**20} MB in all")
            return
        written = 0
        out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with open(out, "wb", closefd=True) as sink:
            while chunk := os.read(fd, CHUNK):
                written += len(chunk)
                if written > MAX_FILE_BYTES:  # it grew while being copied
                    break
                sink.write(chunk)
        if written > MAX_FILE_BYTES:
            os.unlink(target)
            intake.refuse(label, f"is larger than {MAX_FILE_BYTES // 2**20} MB")
            return
        intake.files += 1
        intake.bytes += written
    except OSError as err:
        intake.refuse(label, f"could not be read ({err.strerror})")
    finally:
        os.close(fd)
