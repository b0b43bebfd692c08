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
  failed        (before 0.8.0) the process grading it died twice; now such a student is not stored at all,
                so that the next run grades them (the grader's trouble is never the student's result)
  missing       (grades.csv only) no result of this student is stored
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import socket
import stat
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader import __version__
from grader.outputs.sheets import csv_text

if TYPE_CHECKING:
    from grader.batch.entries import Entry

ROW_STATUSES = ("graded", "grader-fault", "empty", "unreadable", "failed", "missing")
WALLS = ("bubblewrap", "process")  # the walls fit for other people's code (grader/sandbox/isolation.py)
MAX_RESULT_BYTES = 16 * 2**20  # a stored result is a few KB; a larger file is not one


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


class Busy(RuntimeError):
    """Another run holds the out folder; the message names it (pid, host, since when) and what to do."""


SIGNATURE = "signature"  # the field of a stored result that holds its keyed digest


def results_key() -> bytes | None:
    """The key of the results' keyed digests, kept outside every out folder (``$GRADER_RESULTS_KEY``, else
    ``~/.config/genmath-grader/results.key``, made with mode 0600 on first use); None where it cannot be kept,
    and then no stored result is ever reused."""
    configured = os.environ.get("GRADER_RESULTS_KEY")
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    path = Path(configured) if configured else base / "genmath-grader" / "results.key"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            key = handle.read(64)
    except OSError:
        return None
    return key if len(key) >= 32 else None


def signature(key: bytes, name: str, result: dict[str, Any]) -> str:
    """HMAC-SHA256 of the result (without its signature) bound to the file it is stored under: a result edited,
    or copied over another student's, no longer verifies."""
    body = {k: v for k, v in result.items() if k != SIGNATURE}
    text = json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hmac.new(key, f"{name}\n{text}".encode(), hashlib.sha256).hexdigest()


def _well_formed(result: dict[str, Any]) -> bool:
    """Every field the grades are made from, of the right type, and a total that is the sum of the items."""
    items = result.get("items")
    if not (isinstance(result.get("student"), str) and result.get("status") in ROW_STATUSES
            and isinstance(items, list) and all(isinstance(i, dict) for i in items)):  # fmt: skip
        return False
    scores = [i.get("score") for i in items]
    if not all(type(x) is int and isinstance(i.get("id"), str) for x, i in zip(scores, items, strict=True)):
        return False
    return type(result.get("score")) is int and result["score"] == sum(scores)


class Store:
    """The results folder of one class run. ``open`` takes the folder's lock: one run at a time."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.results = self.out / "results"
        self.key = results_key()
        self._lock: int | None = None

    def open(self) -> Store:
        """Lock the out folder for this run (Busy if another live run holds it; a dead run's lock is free: the
        kernel drops a flock with its process), then remove what a killed run left half-written."""
        self.results.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.out / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another run"
            os.close(fd)
            raise Busy(
                f"{self.out} is being written by {holder}: wait for it to finish, or give another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}\n".encode())
        self._lock = fd
        for stale in self.results.glob(".*.tmp"):  # only the lock's holder: a run killed while writing
            stale.unlink(missing_ok=True)
        return self

    def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # the flock goes with the descriptor
            self._lock = None

    def __enter__(self) -> Store:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def path(self, key: str) -> Path:
        return self.results / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The stored result of ``key``, only if it is a regular file (never through a link), parses, has every
        field of the right type, and its keyed digest verifies; else None (``check`` says why)."""
        return self.check(key)[0]

    def check(self, key: str) -> tuple[dict[str, Any] | None, str]:
        """(the stored result or None, why not: "new", "unreadable" or "tampered")."""
        path = self.path(key)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None, "new"
        except OSError:
            return None, "tampered"  # a link, or what cannot be opened
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None, "tampered"
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = json.loads(handle.read(MAX_RESULT_BYTES + 1).decode("utf-8"))
        except (OSError, ValueError):
            return None, "unreadable"
        finally:
            os.close(fd)
        if not isinstance(data, dict) or not _well_formed(data):
            return None, "unreadable"
        given = data.get(SIGNATURE)
        if given is None and data.get("grader_version") != __version__:
            return None, "settings"  # written before results were signed (0.7.0 and earlier): simply old
        if self.key is None or not isinstance(given, str):
            return None, "tampered"
        if not hmac.compare_digest(given, signature(self.key, path.name, data)):
            return None, "tampered"
        return data, ""

    def stale(self, key: str, digest: str, settings: dict[str, Any]) -> str | None:
        """Why the stored result of this student cannot be reused for this submission with these settings
        (``settings`` holds everything that can change a verdict: engine.Settings.as_dict), or None when it
        can and a re-run skips the student. A student with no stored result at all: "new"."""
        stored, why = self.check(key)
        if stored is None:
            return why
        if stored.get("status") == "failed":  # a student whose grading died is tried again
            return "failed"
        if stored.get("digest") != digest:
            return "changed"
        if stored.get("grader_version") != __version__ or stored.get("settings") != settings:
            return "settings"
        if settings.get("isolation") != "off" and stored.get("wall") not in WALLS:
            return "settings"  # graded without a wall: never reused by a run that requires one
        return None

    def write(self, key: str, result: dict[str, Any]) -> None:
        """Store the result under ``key``, with its keyed digest. ASCII JSON: an id or a note that holds a name
        which is not UTF-8 is written as its escapes."""
        if self.key is not None:
            result = {**result, SIGNATURE: signature(self.key, self.path(key).name, result)}
        atomic_write(self.path(key), json.dumps(result, indent=2, ensure_ascii=True, sort_keys=True) + "\n")

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
        class, every cell safe in a spreadsheet (grader/outputs/sheets.py)."""
        from grader.grading.items import ITEMS  # see ``unread``

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
    """The result of a student whose entry gave nothing to grade (``empty``, ``unreadable``), or the row of one
    with no result stored (``missing``): every item at 0, and why."""
    # The item list comes from the checks, which import torch (a second of CPU): a batch imports it when it first
    # writes a row, not before its grading processes start, whose own imports it would slow down.
    from grader.grading.items import ITEMS

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
        "wall": None,
    }
