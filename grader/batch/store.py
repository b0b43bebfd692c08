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
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grader import __version__
from grader.items import ITEMS

ROW_STATUSES = ("graded", "grader-fault", "empty", "unreadable", "failed")


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

    def is_current(self, key: str, digest: str, settings: dict[str, Any]) -> bool:
        """A stored result of this very submission by this very grader with the same settings (items, limits):
        a re-run skips it."""
        stored = self.load(key)
        return (
            stored is not None
            and stored.get("digest") == digest
            and stored.get("grader_version") == __version__
            and stored.get("settings") == settings
            and stored.get("status") != "failed"  # a student whose grading died is tried again
        )

    def write(self, key: str, result: dict[str, Any]) -> None:
        atomic_write(self.path(key), json.dumps(result, indent=2, ensure_ascii=False, sort_keys=True) + "\n")

    def all(self) -> Iterator[dict[str, Any]]:
        """Every stored result, by student id."""
        loaded = [self.load(p.stem) for p in self.results.glob("*.json")]
        yield from sorted((r for r in loaded if r is not None), key=lambda r: str(r.get("student", "")))

    def write_grades(self, students: list[str] | None = None) -> Path:
        """grades.csv from results/: student, total, one column per item, status. ``students`` limits the rows
        to this run's class (a result of a student no longer in the folder is kept on disk, not listed)."""
        wanted = set(students) if students is not None else None
        lines = [["student", "total", *(i.id for i in ITEMS), "status"]]
        for result in self.all():
            if wanted is not None and result.get("student") not in wanted:
                continue
            scores = {i.get("id"): i.get("score", 0) for i in result.get("items", [])}
            lines.append([
                result["student"], result.get("score", 0), *(scores.get(i.id, "") for i in ITEMS), result["status"]
            ])  # fmt: skip
        target = self.out / "grades.csv"
        buffer = _csv_text(lines)
        atomic_write(target, buffer)
        return target


def _csv_text(rows: list[list[Any]]) -> str:
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


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
