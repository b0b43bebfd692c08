"""An nbgrader course for the five notebooks, and an isolated re-grade of its submissions.

    python -m grader nbgrader init COURSE_DIR [--assignment NAME]
    python -m grader nbgrader preflight COURSE_DIR [--assignment NAME]
    python -m grader nbgrader regrade COURSE_DIR [--assignment NAME] [--json FILE]

``init`` writes ``nbgrader_config.py`` and ``source/<assignment>/01_mle.ipynb`` ... ``05_ddpm.ipynb``
(the source notebooks of solutions/notebooks). From there the ordinary nbgrader commands run
unchanged, from COURSE_DIR: ``generate_assignment``, ``autograde``, ``generate_feedback``,
``export``, with nbgrader's own SQLite gradebook (``gradebook.db``).

One submitted notebook that nbformat cannot read (not JSON, no cells) makes ``nbgrader autograde``
give up on that student's whole assignment. ``preflight``, run before ``autograde``, renames such a
notebook to ``NAME.ipynb.unreadable`` (nothing is deleted) and says so; nbgrader then grades the
student's other notebooks and counts that one as not submitted.

nbgrader runs each submission in a Jupyter kernel, with the student's code in the same process as
the tests. ``regrade`` grades every ``submitted/<student>/<assignment>/`` folder again in the
isolated grader, with the class engine of ``grade-class`` (``--workers`` at once, each student in a
sandbox of their own, results kept in COURSE_DIR/isolated/ASSIGNMENT so that a re-run grades only
what changed), reads the in-kernel scores from the gradebook, and lists every submission whose
in-kernel score is higher, item by item.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.contract import NOTEBOOK_NAMES
from grader.intake import MAX_FILE_BYTES, Refused, open_regular
from grader.nbgrader import item_of_test_id
from grader.untrusted import clean_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ASSIGNMENT = "generative_models"
CELL_TIMEOUT_S = 600  # a hidden check runs the full grader of an item; the DDPM demo trains for ~30 s

CONFIG = '''"""nbgrader configuration of the generative-models course (written by `python -m grader nbgrader init`).

Run nbgrader from this folder. The notebooks' autograder cells import `grader` (and, in their
hidden tests, `reference`): the kernel that autogrades must have this package installed.
"""

c = get_config()  # noqa: F821 (nbgrader defines it)

c.CourseDirectory.course_id = {course_id!r}

# A hidden test runs the full grader of one item, and the DDPM notebook trains a small model.
c.Execute.timeout = {timeout}
'''


def init(course: Path, assignment: str = DEFAULT_ASSIGNMENT, course_id: str = "generative-models") -> list[Path]:
    """Write a ready nbgrader course directory; refuses to overwrite an existing source folder."""
    course = Path(course)
    source = course / "source" / assignment
    if source.exists() and any(source.iterdir()):
        raise FileExistsError(f"{source} exists and is not empty")
    source.mkdir(parents=True, exist_ok=True)
    written = []
    for name in NOTEBOOK_NAMES.values():
        target = source / f"{name}.ipynb"
        shutil.copyfile(ROOT / "solutions" / "notebooks" / f"{name}.ipynb", target)
        written.append(target)
    config = course / "nbgrader_config.py"
    if not config.exists():
        config.write_text(CONFIG.format(course_id=course_id, timeout=CELL_TIMEOUT_S))
        written.append(config)
    return written


# --------------------------------------------------------------------------------------- preflight

UNREADABLE_SUFFIX = ".unreadable"


def preflight(course: Path, assignment: str = DEFAULT_ASSIGNMENT) -> list[tuple[Path, str]]:
    """Rename every submitted notebook that nbgrader could not read; (new path, why) for each."""
    import nbformat

    moved = []
    for path in sorted(Path(course).glob(f"submitted/*/{assignment}/*.ipynb")):
        reason = _unreadable(path, nbformat)
        if reason is not None:
            target = path.with_name(path.name + UNREADABLE_SUFFIX)
            path.rename(target)  # renames a link itself, never what it points to
            moved.append((target, clean_text(reason, 200)))
    return moved


def _unreadable(path: Path, nbformat: Any) -> str | None:
    """Why nbgrader could not read this submitted notebook, or None. It is opened as intake opens files
    (grader/intake.py): a link (to /dev/zero, to another student's file), a FIFO or a huge file is never
    followed or read."""
    try:
        fd, _ = open_regular(path)
    except Refused as refused:
        return f"it {refused}, not a notebook file"
    try:
        with open(fd, encoding="utf-8", errors="replace") as f:
            nbformat.reads(f.read(MAX_FILE_BYTES + 1), as_version=4)
    except RecursionError:
        return "its JSON is nested too deeply"
    except Exception as err:  # nbgrader reads with nbformat too, and stops at the first that fails
        return str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return None


# ----------------------------------------------------------------------------------------- regrade


@dataclass
class Regraded:
    student: str
    in_kernel: dict[str, float]  # item → score nbgrader's autograde gave (absent: never autograded)
    isolated: dict[str, int]  # item → score of the isolated grader
    problem: str | None = None  # why the isolated grader could not grade this submission at all

    @property
    def higher_in_kernel(self) -> list[str]:
        return [item for item, score in self.in_kernel.items() if score > self.isolated.get(item, 0)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "student": self.student,
            "in_kernel": sum(self.in_kernel.values()),
            "isolated": sum(self.isolated.values()),
            "autograded": bool(self.in_kernel),
            "problem": self.problem,
            "higher_in_kernel": [
                {"id": i, "in_kernel": self.in_kernel[i], "isolated": self.isolated.get(i, 0)}
                for i in self.higher_in_kernel
            ],
        }


def in_kernel_scores(gradebook: Any, assignment: str, student: str) -> dict[str, float]:
    """item → the autograder score in nbgrader's gradebook; empty when the submission was never autograded."""
    from nbgrader.api import MissingEntry

    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return {}
    from grader.items import ITEMS

    ids = {item.id for item in ITEMS}
    scores: dict[str, float] = {}
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            item = item_of_test_id(grade.name, ids)
            if item is not None:
                scores[item] = float(grade.score or 0.0)
    return scores


def regrade(
    course: Path,
    assignment: str = DEFAULT_ASSIGNMENT,
    db_url: str | None = None,
    isolation: str = "required",
    workers: int = 2,
    out: Path | None = None,
    force: bool = False,
) -> list[Regraded]:
    """Every submission of the assignment, graded in isolation beside its in-kernel scores, by the class engine
    (grader/batch/: ``workers`` processes, each student in a sandbox of their own, resumable): the results go
    to ``out`` (default COURSE/isolated/ASSIGNMENT: results/, grades.csv, report.html), and a re-run grades
    only the students whose submission changed since."""
    from nbgrader.api import Gradebook

    from grader.batch import engine
    from grader.batch.classroom import grade_class
    from grader.batch.entries import discover
    from grader.batch.store import Store

    course = Path(course).resolve()
    out = Path(out) if out is not None else course / "isolated" / assignment
    grade_class(course, out, lambda: engine.LocalPool(workers), engine.Settings(isolation=isolation), force, assignment)
    store = Store(out)
    results = []
    with Gradebook(db_url or f"sqlite:///{course / 'gradebook.db'}") as gradebook:  # opening one runs alembic
        for entry in discover(course, assignment):
            stored = store.load(entry.key) or {}
            isolated = {str(i["id"]): int(i["score"]) for i in stored.get("items", [])}
            problem = None
            if stored.get("status") not in ("graded", "grader-fault"):
                why = clean_text(str(stored.get("message", "no result was stored")), 300)
                problem = f"could not be graded: {why}"
            results.append(Regraded(entry.student, in_kernel_scores(gradebook, assignment, entry.student), isolated,
                                    problem))  # fmt: skip
    return results


def print_regrade(results: list[Regraded]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="in-kernel (nbgrader) against isolated scores")
    for column in ("student", "in kernel", "isolated", "higher in the kernel"):
        table.add_column(column)
    for r in results:
        flagged = ", ".join(f"{i} ({r.in_kernel[i]:g} vs {r.isolated.get(i, 0)})" for i in r.higher_in_kernel)
        kernel = f"{sum(r.in_kernel.values()):g}" if r.in_kernel else "not autograded"
        isolated = r.problem if r.problem else str(sum(r.isolated.values()))
        table.add_row(r.student, kernel, isolated, flagged or "-")
    console = Console()
    console.print(table)
    flagged_students = [r.student for r in results if r.higher_in_kernel]
    if flagged_students:
        console.print(
            f"{len(flagged_students)} submission(s) score higher in the kernel than isolated: "
            f"{', '.join(flagged_students)}. Their code may have changed the tests' outcome; read it."
        )
    else:
        console.print("No submission scores higher in the kernel than isolated.")
