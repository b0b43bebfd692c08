"""A class's results on disk: one JSON file per student, written atomically, and the grades rebuilt from them.

``OUT/results/<key>.json`` is the contract's JSON of one student (score, max_score, items) with
the student's id, a ``status``, the submission's ``digest`` and the ``grader_version``. Each file
is written to a temporary name in the same folder and renamed over the old one: a batch killed at
any moment leaves every result whole or absent, never torn. ``grades.csv`` and the class report
are rebuilt from ``results/`` alone, so they cannot disagree with it.

Statuses of a student's row:
  graded        every item graded (whatever the score)
  grader-fault  graded, but the grader's own code failed on an item: an instructor must look
  empty         the entry was read, but holds no module or notebook to grade
  unreadable    the entry could not be read (a corrupt zip, a stray file)
  failed        the process grading it died twice; nothing of the submission was kept
  missing       (grades.csv only) no result of this student is stored
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import __version__
from grader.items import ITEMS
from grader.sheets import csv_text

if TYPE_CHECKING:
    from grader.batch.entries import Entry

ROW_STATUSES = ("graded", "grader-fault", "empty", "unreadable", "failed", "missing")


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader, or a run killed meanwhile, sees the old file or the new one."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class Store:
    """The results folder of one class run."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.results = self.out / "results"

    def open(self) -> Store:
        self.results.mkdir(parents=True, exist_ok=True)
        for stale in self.results.glob(".*.tmp"):  # a run killed while writing: the rename never happened
            stale.unlink(missing_ok=True)
        return self

    def path(self, key: str) -> Path:
        return self.results / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def stale(self, key: str, digest: str, settings: dict[str, Any]) -> str | None:
        """Why the stored result of this student cannot be reused for this submission with these settings
        (``settings`` holds everything that can change a verdict: engine.Settings.as_dict), or None when it
        can and a re-run skips the student. A student with no stored result at all: "new"."""
        if not self.path(key).exists():
            return "new"
        stored = self.load(key)
        if stored is None:
            return "unreadable"
        if stored.get("status") == "failed":  # a student whose grading died is tried again
            return "failed"
        if stored.get("digest") != digest:
            return "changed"
        if stored.get("grader_version") != __version__ or stored.get("settings") != settings:
            return "settings"
        if settings.get("isolation") != "off" and stored.get("sandboxed") is not True:
            return "settings"  # graded without the sandbox: never reused by a sandboxed run
        return None

    def write(self, key: str, result: dict[str, Any]) -> None:
        # ASCII JSON: an id or a note that holds a name which is not UTF-8 is written as its escapes
        atomic_write(self.path(key), json.dumps(result, indent=2, ensure_ascii=True, sort_keys=True) + "\n")

    def all(self) -> Iterator[dict[str, Any]]:
        """Every stored result, by student id."""
        loaded = [self.load(p.stem) for p in self.results.glob("*.json")]
        yield from sorted((r for r in loaded if r is not None), key=lambda r: str(r.get("student", "")))

    def of(self, entries: list[Entry]) -> list[dict[str, Any]]:
        """The stored result of each entry, in the entries' order: exactly one per entry, read from the entry's
        own key and only if it is that student's (else a row that says it has none)."""
        results = []
        for entry in entries:
            stored = self.load(entry.key)
            if stored is None or stored.get("student") != entry.student:
                stored = unread(entry.student, "", {}, "missing", "no result is stored for this student", [])
            results.append(stored)
        return results

    def write_grades(self, entries: list[Entry]) -> Path:
        """grades.csv from results/: student, total, one column per item, status; one row per entry of the
        class, every cell safe in a spreadsheet (grader/sheets.py)."""
        lines: list[list[Any]] = [["student", "total", *(i.id for i in ITEMS), "status"]]
        for entry, result in zip(entries, self.of(entries), strict=True):
            items = result.get("items")
            scores = {i.get("id"): i.get("score", 0) for i in items if isinstance(i, dict)} if isinstance(
                items, list) else {}  # fmt: skip
            lines.append([entry.student, result.get("score", 0), *(scores.get(i.id, "") for i in ITEMS),
                          result.get("status", "missing")])  # fmt: skip
        target = self.out / "grades.csv"
        atomic_write(target, csv_text(lines))
        return target


def unread(
    student: str, digest: str, settings: dict[str, Any], status: str, message: str, notes: list[str]
) -> dict[str, Any]:
    """The result of a student whose entry gave nothing to grade (``empty``, ``unreadable``) or whose grading
    died (``failed``): every item at 0, and why."""
    items = settings.get("items")
    return {
        "student": student,
        "status": status,
        "message": message,
        "digest": digest,
        "settings": settings,
        "grader_version": __version__,
        "score": 0,
        "max_score": sum(i.points for i in ITEMS if items is None or i.id in items),
        "items": [],
        "notes": notes,
        "sandboxed": None,
    }
