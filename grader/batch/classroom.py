"""``python -m grader grade-class``: every student of a class folder graded once, resumably, with a report.

    entries (grader/batch/entries.py)  → payloads and digests, or why an entry gives none
    results/ (grader/batch/store.py)   → which students already have a current result (skipped)
    a pool (grader/batch/engine.py)    → results as they arrive, each written at once, atomically
    grades.csv and report.html         → rebuilt from results/ at the end (grader/batch/page.py)

A run killed at any moment (``kill -9``) leaves whole results only; the next run grades exactly
the students without a current one.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from grader import import_before_grading
from grader.batch.engine import Pool, Result, Settings, Task
from grader.batch.entries import DEFAULT_ASSIGNMENT, Entry, alike, discover
from grader.batch.store import Store, atomic_write, unread
from grader.sandbox import cgroups
from grader.sandbox import scratch as scratch_folders


@dataclass
class Summary:
    """What one run did."""

    students: int = 0
    graded: int = 0
    skipped: int = 0
    unreadable: int = 0  # read, nothing to grade, or not readable at all
    failed: int = 0  # not graded through the grader's trouble: nothing stored, the next run grades them
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)
    regraded: Counter[str] = field(default_factory=Counter)  # why a stored result was not reused → how many
    warnings: list[str] = field(default_factory=list)  # for the instructor: entries alike but for case, ...
    ungraded: list[tuple[str, str]] = field(default_factory=list)  # (student, why) the grader could not grade

    def line(self) -> str:
        rate = f", {60 * self.graded / self.seconds:.1f}/min" if self.graded and self.seconds > 0 else ""
        again = {k: n for k, n in self.regraded.items() if k != "new"}
        regraded = (
            "; graded again: " + ", ".join(f"{n} {k}" for k, n in sorted(again.items()))
            if again else ""
        )  # fmt: skip
        return (
            f"{self.students} students: {self.graded} graded, {self.skipped} skipped (already graded), "
            f"{self.unreadable} with nothing to grade, {self.failed} not graded (the grader's trouble, not theirs); "
            f"{self.seconds:.0f} s{rate}{regraded}"
        )


NO_KEY = (
    "no key for the results' digests could be kept (set GRADER_RESULTS_KEY to a writable file): no stored result "
    "can be trusted, so every student is graded"
)
REGRADE_REASONS = {  # Store.stale's answers (but "new"): why a stored result was not reused
    "unreadable": "its stored result did not parse or lacked a field",
    "tampered": "its stored result failed its keyed digest (edited, copied from another student, a link, or "
    "signed with another key)",
    "failed": "its grading had failed",
    "changed": "its submission changed",
    "settings": "it was stored with other settings, wall or grader version",
}


class Preload:
    """An import in a thread of its own, started while the grading processes leave a core idle, so that the batch
    does not pay it on its tail, after the last result: the item list (``grader.grading.items``, grades.csv's
    columns) imports the checks and torch, a second of CPU. Joined before the batch imports anything itself; a
    failure is left to that import to raise. (Importing matplotlib and nbgrader's gradebook the same way as well
    slowed the last student down by more than it spared: 12.0 s against 11.8 s for a regrade of 6 students.)"""

    def __init__(self, module: str) -> None:
        self.thread = threading.Thread(target=self._run, args=(module,), name=f"import {module}", daemon=True)
        self.started = False

    @staticmethod
    def _run(module: str) -> None:
        with contextlib.suppress(BaseException):
            import_before_grading(module)

    def start(self) -> None:
        if not self.started:
            self.started = True
            self.thread.start()

    def join(self) -> None:
        if self.started:
            self.thread.join()


def grade_class(
    folder: Path,
    out: Path,
    pool: Callable[[], Pool],
    settings: Settings,
    force: bool = False,
    assignment: str = DEFAULT_ASSIGNMENT,
    on_start: Callable[[int], None] | None = None,
    on_result: Callable[[str, Result], None] | None = None,
    students: Collection[str] | None = None,
) -> Summary:
    """Grade every student of ``folder`` (of ``students``, or all) into ``out``; ``pool`` is called only when
    there is work for it. grades.csv and report.html cover the whole class's stored results, one row per entry."""
    start = time.monotonic()
    everyone = discover(folder, assignment)
    entries = [e for e in everyone if students is None or e.student in students]
    with Store(out) as store:  # one run per out folder: Busy while another holds it
        cgroups.sweep()  # what a grader killed with -9 left: its workers' groups, frozen ones thawed and killed
        scratch_folders.sweep()  # ... and its scratch folders (submissions' copies)
        summary = Summary(students=len(entries), warnings=alike(everyone))
        if store.key is None:
            summary.warnings.append(NO_KEY)
        by_student: dict[str, Entry] = {e.student: e for e in entries}
        tasks: list[Task] = []
        wanted = settings.as_dict()
        for entry in entries:
            payload = entry.read()
            if payload.problem is not None:
                status = "empty" if payload.empty else "unreadable"
                store.write(entry.key, unread(entry.student, payload.digest, wanted, status, payload.problem,
                                              payload.notes))  # fmt: skip
                summary.unreadable += 1
                continue
            stale = "forced" if force else store.stale(entry.key, payload.digest, wanted)
            if stale is None:
                summary.skipped += 1
                continue
            if stale in REGRADE_REASONS:
                summary.regraded[stale] += 1
                if stale in ("unreadable", "tampered"):
                    summary.warnings.append(f"{entry.shown} was graded again: {REGRADE_REASONS[stale]}")
            tasks.append((entry.student, payload.data, payload.digest, payload.notes))
        if on_start:
            on_start(len(tasks))
        runner = pool() if tasks else None
        item_list = Preload("grader.grading.items")
        try:
            if runner is not None:
                left = len(tasks)
                width = getattr(runner, "workers", 1)  # a local pool's processes (a Dask cluster's is not known here)
                for student, result, problem in runner.results(tasks, settings):
                    left -= 1
                    if left < width:  # a grading process has no student left: a core is free
                        item_list.start()
                    if result is None:  # the grader's trouble (a process lost twice, a worker, the scheduler):
                        summary.failed += 1  # nothing is stored, so that the next run grades this student
                        summary.ungraded.append((student, problem))
                        continue
                    summary.graded += 1
                    page = result.pop("page", None)
                    if isinstance(page, str):  # before the result: a stored result always has its page
                        (out / "pages").mkdir(exist_ok=True)
                        atomic_write(out / "pages" / f"{by_student[student].key}.html", page)
                    store.write(by_student[student].key, result)
                    if on_result:
                        on_result(student, result)
                runner.release()  # the grading processes end their sandboxes while the outputs are written
            item_list.join()
            summary.outputs.append(store.write_grades(everyone))
            from grader.batch import page

            summary.outputs.append(page.write(store, everyone, out / "report.html"))
        finally:
            if runner is not None:
                runner.close()
    summary.seconds = time.monotonic() - start
    return summary
