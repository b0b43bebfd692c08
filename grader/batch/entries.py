"""What a class folder holds: one entry per student, each read into a payload, or a reason it cannot be.

Two layouts are recognised:

- a folder with one entry per student: a folder of modules or notebooks, or a ``.zip`` of one;
  the student id is the entry's name (``.zip`` removed);
- an nbgrader course folder, recognised by its ``submitted/`` folder: the entries are
  ``submitted/<student>/<assignment>/``.

Hidden entries (``.DS_Store``, ``.ipynb_checkpoints``) are not students. Anything else is one,
so a stray file or a broken zip gets its row in the grades with the reason, rather than being
skipped in silence. Reading an entry (``Entry.read``) takes it in as ``grade`` does
(grader/intake.py), never following a link, and packs the copy (grader/archive.py): the payload
and its digest are all that the batch keeps of it.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grader.archive import Unreadable, digest, pack, unpack
from grader.intake import MAX_TOTAL_BYTES, Intake, Refused, open_regular, take_in
from grader.submission import find_parts, unwrap
from grader.untrusted import clean_text

DEFAULT_ASSIGNMENT = "generative_models"
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Entry:
    """One student's entry in the class folder: ``path`` is a folder or a zip file, or something else."""

    student: str
    path: Path

    @property
    def key(self) -> str:
        """The name of the student's result file: the id itself where it is a plain name, else a readable
        version of it and a hash, so that ``Ana María``, ``ana maría`` and ``../x`` stay distinct and safe."""
        if SAFE_NAME.fullmatch(self.student) and self.student not in (".", ".."):
            return self.student
        readable = re.sub(r"[^A-Za-z0-9._-]+", "_", self.student).strip("._-")[:60] or "student"
        return f"{readable}-{hashlib.sha256(self.student.encode()).hexdigest()[:10]}"

    def read(self) -> Payload:
        """The entry taken in and packed; a Payload with ``problem`` set when there is nothing to grade."""
        with tempfile.TemporaryDirectory(prefix="grader-entry-") as scratch:
            copy = Path(scratch) / "copy"
            try:
                intake = self._take_in(Path(scratch), copy)
            except Unreadable as err:
                return Payload(self, problem=f"{self.path.name} could not be read: {err}")
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
    folder's own entries."""
    folder = Path(folder)
    if is_nbgrader_course(folder):
        students = sorted(p for p in (folder / "submitted").iterdir() if not p.name.startswith("."))
        return [Entry(p.name, p if p.is_symlink() else p / assignment) for p in students]  # a link is not read
    paths = [p for p in sorted(folder.iterdir()) if not p.name.startswith(".") and p.name != "__pycache__"]
    names = {p.name for p in paths}
    entries = []
    for path in paths:
        bare = path.name[: -len(".zip")] if path.name.lower().endswith(".zip") else path.name
        # alice.zip beside a folder alice/ keeps its full name: two rows, never one student graded twice
        entries.append(Entry(bare if bare == path.name or bare not in names else path.name, path))
    return entries
