"""What a class folder holds: one entry per student, each read into a payload, or a reason it cannot be.

Two layouts are recognised:

- a folder with one entry per student: a folder of modules or notebooks, or a ``.zip`` of one;
  the student id is the entry's name (``.zip`` removed);
- an nbgrader course folder, recognised by its ``submitted/`` folder: the entries are
  ``submitted/<student>/<assignment>/``.

Hidden entries (``.DS_Store``, ``.ipynb_checkpoints``) are not students. Anything else is one,
so a stray file or a broken zip gets its row in the grades with the reason, rather than being
skipped in silence. Reading an entry (``Entry.read``) takes it in as ``grade`` does
(grader/intake/), never following a link, and packs the copy (grader/intake/archive.py): the payload
and its digest are all that the batch keeps of it.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from grader.intake import MAX_TOTAL_BYTES, Intake, Refused, open_regular, take_in
from grader.intake.archive import Unreadable, digest, pack, unpack
from grader.intake.submission import find_parts, unwrap
from grader.intake.untrusted import clean_text, shown_name
from grader.sandbox import scratch as scratch_folders

DEFAULT_ASSIGNMENT = "generative_models"
# An id kept as its own result key: lower case only, so that two keys never name one file on a disk that ignores
# case (macOS, Windows); and never a "+", which every other key has before its hash (keys are one-to-one).
SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Entry:
    """One student's entry in the class folder: ``path`` is a folder or a zip file, or something else."""

    student: str
    path: Path

    @property
    def key(self) -> str:
        """The name of the student's result file, one-to-one with the id: the id itself where it is a plain
        lower-case name, else a readable version of it, "+" and a hash of its bytes, so that ``Ana``, ``ana``,
        ``../x`` and a name that is not UTF-8 each get a file of their own, and no id is another's key."""
        if SAFE_NAME.fullmatch(self.student):
            return self.student
        readable = re.sub(r"[^a-z0-9._-]+", "_", self.student.lower()).strip("._-")[:60] or "student"
        return f"{readable}+{hashlib.sha256(os.fsencode(self.student)).hexdigest()[:32]}"

    @property
    def shown(self) -> str:
        """The id as every output shows it (grader/intake/untrusted.py: escaped, one-to-one)."""
        return shown_name(self.student)

    def read(self) -> Payload:
        """The entry taken in and packed; a Payload with ``problem`` set when there is nothing to grade. Never
        raises for what the entry holds: whatever fails is this student's row, in words that name no path of
        the grader's."""
        try:
            return self._read()
        except Exception as err:  # one student's entry never ends the class
            why = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
            return Payload(self, problem=f"{shown_name(self.path.name)} could not be read ({why})")

    def _read(self) -> Payload:
        with tempfile.TemporaryDirectory(prefix=scratch_folders.prefix("entry")) as scratch:
            copy = Path(scratch) / "copy"
            try:
                intake = self._take_in(Path(scratch), copy)
            except Unreadable as err:
                return Payload(self, problem=f"{shown_name(self.path.name)} could not be read: {err}")
            notes = list(intake.problems)
            if not find_parts(copy)[0]:
                found = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())[:8]
                shown = ", ".join(clean_text(f, 80) for f in found) if found else "no files at all"
                return Payload(
                    self, problem=f"nothing to grade: no mle.py ... ddpm.py nor 01_mle.ipynb ... (found {shown})",
                    notes=notes, empty=True,
                )  # fmt: skip
            return Payload(self, data=pack(copy), digest=digest(copy), notes=notes)

    def _take_in(self, scratch: Path, copy: Path) -> Intake:
        if self.path.is_dir() and not self.path.is_symlink():
            return take_in(self.path, copy)
        if self.path.name.lower().endswith(".zip"):
            try:
                fd, info = open_regular(self.path)
            except Refused as refused:
                raise Unreadable(str(refused)) from None
            if info.st_size > MAX_TOTAL_BYTES:
                raise Unreadable(f"it is larger than {MAX_TOTAL_BYTES // 2**20} MB")
            with open(fd, "rb", closefd=True) as handle:
                data = handle.read(MAX_TOTAL_BYTES + 1)
            unpacked = scratch / "unpacked"
            intake = unpack(data, unpacked)
            root = unwrap(unpacked)  # a zip of the folder, rather than of its files
            copied = take_in(root, copy)
            copied.problems[:0] = intake.problems
            return copied
        kind = "a link" if self.path.is_symlink() else "a file" if self.path.is_file() else "not a folder"
        raise Unreadable(f"it is {kind}, not a folder of modules or notebooks nor a .zip of one")


@dataclass
class Payload:
    """One student's submission as bytes (a canonical zip) and its digest, or why there is none."""

    entry: Entry
    data: bytes = b""
    digest: str = ""
    notes: list[str] = field(default_factory=list)
    problem: str | None = None
    empty: bool = False  # read, but nothing in it to grade (as opposed to unreadable)


def is_nbgrader_course(folder: Path) -> bool:
    return (folder / "submitted").is_dir() and not (folder / "submitted").is_symlink()


def discover(folder: Path, assignment: str = DEFAULT_ASSIGNMENT) -> list[Entry]:
    """Every student's entry, sorted by id: an nbgrader course's submitted/<student>/<assignment>/, else the
    folder's own entries. Two entries whose ids would be one after the grader's normalisation (``bob.zip`` and
    ``bob.ZIP``) keep their full names: both are graded, and ``alike`` names them for the instructor."""
    folder = Path(folder)
    if is_nbgrader_course(folder):
        students = sorted(p for p in (folder / "submitted").iterdir() if not p.name.startswith("."))
        return [Entry(p.name, p if p.is_symlink() else p / assignment) for p in students]  # a link is not read
    paths = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".") and p.name != "__pycache__"]
    bare = {p: p.name[: -len(".zip")] if p.name.lower().endswith(".zip") else p.name for p in paths}
    claims = Counter(bare.values())
    # alice.zip beside a folder alice/, or bob.zip beside bob.ZIP: full names, two rows, never one student twice
    return [Entry(bare[p] if claims[bare[p]] == 1 else p.name, p) for p in paths]


def alike(entries: list[Entry]) -> list[str]:
    """A line for each group of entries whose ids differ only in case or Unicode form (``Bob`` and ``bob``,
    ``José`` written two ways): each is graded on its own, and the instructor should know."""
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        same = unicodedata.normalize("NFC", entry.student).casefold()
        groups.setdefault(same, []).append(entry)
    return [
        "entries " + ", ".join(repr(e.shown) for e in group) + " differ only in case or Unicode form: each is "
        "graded as its own student; check that they are not one student's two submissions"
        for group in groups.values()
        if len(group) > 1
    ]
