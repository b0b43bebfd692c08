"""An nbgrader course for the five notebooks, and an isolated re-grade of its submissions.

    python -m grader nbgrader init COURSE_DIR [--assignment NAME] [--due WHEN] [--late-percent-per-day P]
    python -m grader nbgrader preflight COURSE_DIR [--assignment NAME]
    python -m grader nbgrader regrade COURSE_DIR [--assignment NAME] [--student ID ...] [--json FILE]
                                      [--use-isolated] [--csv FILE]

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
what changed), reads the in-kernel scores from the gradebook, and lists, item by item, every
submission that scored higher in the kernel (its code may have changed the tests' outcome) and every
one that scored higher isolated (what the kernel ran cost it points). ``use_isolated`` makes the
isolated scores the grades in the gradebook; ``write_csv`` writes them for an upload.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grader.contract import NOTEBOOK_NAMES
from grader.intake import MAX_FILE_BYTES, Refused, open_regular
from grader.intake.untrusted import clean_text, shown_name
from grader.nbgrader import item_of_test_id

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ASSIGNMENT = "generative_models"
CELL_TIMEOUT_S = 600  # a hidden check runs the full grader of an item; the DDPM demo trains for ~30 s

NEVER_SKIP = 'c.Execute.skip_cells_with_tag = "never-skipped-" + __import__("secrets").token_hex(16)'

CONFIG = '''"""nbgrader configuration of the generative-models course (written by `python -m grader nbgrader init`).

Run nbgrader from this folder. The notebooks' autograder cells import `grader` (and, in their
hidden tests, `reference`): the kernel that autogrades must have this package installed.
"""

c = get_config()  # noqa: F821 (nbgrader defines it)

c.CourseDirectory.course_id = {course_id!r}

# A hidden test runs the full grader of one item, and the DDPM notebook trains a small model.
c.Execute.timeout = {timeout}

# Every cell runs. The executor skips a cell that carries the tag named here ("skip-execution" unless
# set), and a student can tag an autograder cell in their copy: skipped, it shows no error, and nbgrader
# counts a test cell without an error as passed. A name drawn anew at each run is on no student's cell.
{never_skip}

# The autograded notebooks become the students' feedback pages: their tracebacks keep the frames of torch
# and NumPy but not the paths of this machine's installation (grader/kernel.py: hide_install_paths).
c.Execute.extra_arguments = [
    "--HistoryManager.hist_file=:memory:",
    "--IPKernelApp.exec_lines=__import__('grader.kernel', fromlist=['kernel']).hide_install_paths()",
]

# The feedback pages show each test cell's output (the grader's feedback), not its hidden tests' source.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests",
]
{late}'''
LATE = """
# Late submissions (after the due date in the gradebook, by the timestamp `nbgrader collect` wrote) lose
# {percent:g}% of each notebook's score per started day late (grader/nbgrader/late.py).
c.AssignLatePenalties.plugin_class = "grader.nbgrader.late.PercentPerDay"
c.PercentPerDay.percent_per_day = {percent!r}
"""


def init(
    course: Path,
    assignment: str = DEFAULT_ASSIGNMENT,
    course_id: str = "generative-models",
    due: datetime | None = None,
    late_percent_per_day: float | None = None,
) -> list[Path]:
    """Write a ready nbgrader course directory; refuses to overwrite an existing source folder. With ``due``,
    the gradebook gets the assignment and its due date; with ``late_percent_per_day``, the configuration
    names the late penalty (grader/nbgrader/late.py)."""
    if late_percent_per_day is not None and not 0 < late_percent_per_day <= 100:
        raise ValueError(
            f"the late penalty is a percentage per day above 0 and at most 100, not {late_percent_per_day}"
        )
    course = Path(course)
    if late_percent_per_day is not None and (course / "nbgrader_config.py").exists():
        raise FileExistsError(f"{course / 'nbgrader_config.py'} exists: add the late penalty to it by hand "
                              "(grader/nbgrader/late.py says how)")  # fmt: skip
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
        late = "" if late_percent_per_day is None else LATE.format(percent=float(late_percent_per_day))
        config.write_text(CONFIG.format(course_id=course_id, timeout=CELL_TIMEOUT_S, never_skip=NEVER_SKIP, late=late))
        written.append(config)
    if due is not None:
        with gradebook_of(_sqlite(course.resolve())) as gradebook:
            gradebook.update_or_create_assignment(assignment, duedate=due.astimezone(UTC).replace(tzinfo=None))
        written.append(course / "gradebook.db")
    return written


# --------------------------------------------------------------------------------------- preflight

UNREADABLE_SUFFIX = ".unreadable"


def lets_cells_be_skipped(course: Path) -> str | None:
    """What to add to the course's nbgrader_config.py, if it leaves the executor's skip tag as nbclient's
    default ("skip-execution"): a student who tags an autograder cell so has it skipped and counted as
    passed. The configuration that ``init`` writes names a tag drawn anew at each run."""
    config = Path(course) / "nbgrader_config.py"
    text = config.read_text(errors="replace") if config.is_file() else ""
    if "skip_cells_with_tag" in text:
        return None
    return (f"{config} lets a student skip an autograder cell by tagging it skip-execution (nbgrader then "
            f"counts it as passed); add this line to it: {NEVER_SKIP}")  # fmt: skip


def preflight(course: Path, assignment: str = DEFAULT_ASSIGNMENT) -> list[tuple[Path, str]]:
    """Rename every submitted notebook that nbgrader could not read; (new path, why) for each. Each notebook is
    a unit: one that cannot be examined or renamed (a folder already holds the new name) is its own line, with
    the path it keeps, and every other student's notebooks are still looked at."""
    from grader.runtime.convert import without_iri_grammar

    without_iri_grammar()
    import nbformat

    moved = []
    for path in sorted(Path(course).glob(f"submitted/*/{assignment}/*.ipynb")):
        try:
            reason = _unreadable(path, nbformat)
            if reason is None:
                continue
            target = path.with_name(path.name + UNREADABLE_SUFFIX)
            if os.path.lexists(target):
                target = path.with_name(f"{path.name}.{secrets.token_hex(4)}{UNREADABLE_SUFFIX}")
            os.rename(path, target)  # renames a link itself, never what it points to; never over an entry
            moved.append((target, clean_text(reason, 200)))
        except Exception as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
            moved.append((path, f"could not be renamed ({why}): nbgrader autograde may give up on this student"))
    return moved


def _unreadable(path: Path, nbformat: Any) -> str | None:
    """Why nbgrader could not read this submitted notebook, or None. It is opened as intake opens files
    (grader/intake/): a link (to /dev/zero, to another student's file), a FIFO or a huge file is never
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
    in_kernel: dict[str, float]  # item → score nbgrader's autograde gave (empty: never autograded)
    isolated: dict[str, int]  # item → score of the isolated grader
    feedback: dict[str, str] = field(default_factory=dict)  # item → the isolated grader's feedback
    problem: str | None = None  # why the isolated grader could not grade this submission at all
    lost: bool = False  # not graded through the grader's trouble (a lost pool process...): a re-run grades it

    @property
    def higher_in_kernel(self) -> list[str]:
        """Items the kernel scored higher: the student's code may have changed the tests' outcome."""
        return [item for item, score in self.in_kernel.items() if score > self.isolated.get(item, 0)]

    @property
    def higher_isolated(self) -> list[str]:
        """Items the isolated grader scored higher: what the kernel ran cost points (cells out of order, a
        cell that raised before the test, state left by another cell). Only for a submission both graded."""
        if not self.in_kernel or self.problem:
            return []
        return [item for item, score in self.isolated.items() if score > self.in_kernel.get(item, 0)]

    def as_dict(self) -> dict[str, Any]:
        def row(item: str) -> dict[str, Any]:
            return {"id": item, "in_kernel": self.in_kernel.get(item), "isolated": self.isolated.get(item, 0)}

        return {
            "student": self.student,
            "in_kernel": sum(self.in_kernel.values()),
            "isolated": sum(self.isolated.values()),
            "autograded": bool(self.in_kernel),
            "problem": self.problem,
            "lost": self.lost,
            "higher_in_kernel": [row(i) for i in self.higher_in_kernel],
            "higher_isolated": [row(i) for i in self.higher_isolated],
            "items": [{**row(i), "feedback": self.feedback.get(i, "")} for i in sorted(self.isolated)],
        }


def in_kernel_scores(gradebook: Any, assignment: str, student: str) -> dict[str, float]:
    """item → the autograder score in nbgrader's gradebook; empty when the submission was never autograded."""
    from nbgrader.api import MissingEntry

    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return {}
    from grader.grading.items import ITEMS

    ids = {item.id for item in ITEMS}
    scores: dict[str, float] = {}
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            item = item_of_test_id(grade.name, ids)
            if item is not None:  # the kernel's own score, not a manual one that use_isolated may have written
                scores[item] = float(grade.auto_score or 0.0)
    return scores


def regrade(
    course: Path,
    assignment: str = DEFAULT_ASSIGNMENT,
    db_url: str | None = None,
    isolation: str = "required",
    workers: int = 2,
    out: Path | None = None,
    force: bool = False,
    students: Collection[str] | None = None,
) -> list[Regraded]:
    """Every submission of the assignment (of ``students``, or all), graded in isolation beside its in-kernel
    scores, by the class engine (grader/batch/: ``workers`` processes, each student in a sandbox of their own,
    resumable): the results go to ``out`` (default COURSE/isolated/ASSIGNMENT: results/, grades.csv,
    report.html), and a re-run grades only the students whose submission changed since."""
    from grader.batch import engine
    from grader.batch.classroom import grade_class
    from grader.batch.entries import discover
    from grader.batch.store import Store

    course = Path(course).resolve()
    entries = discover(course, assignment)
    unknown = sorted(set(students or ()) - {e.student for e in entries})
    if unknown:
        raise ValueError(f"no submitted/<student>/ folder for {', '.join(unknown)} in {course}")
    out = Path(out) if out is not None else course / "isolated" / assignment
    summary = grade_class(course, out, lambda: engine.LocalPool(workers), engine.Settings(isolation=isolation), force,
                          assignment, students=students)  # fmt: skip
    lost = dict(summary.ungraded)
    store = Store(out)
    results = []
    with gradebook_of(db_url or _sqlite(course)) as gradebook:
        for entry in entries:
            if students is not None and entry.student not in students:
                continue
            stored = store.load(entry.key) or {}
            problem = None
            if entry.student in lost:
                problem = (f"not graded through no fault of theirs ({clean_text(lost[entry.student], 200)}): "
                           "run the same command again")  # fmt: skip
            elif stored.get("status") not in ("graded", "grader-fault"):
                why = clean_text(str(stored.get("message", "no result was stored")), 300)
                problem = f"could not be graded: {why}"
            try:  # each student is a unit: a result or a gradebook row that cannot be read is that student's line
                items = stored.get("items", [])
                isolated = {str(i["id"]): int(i["score"]) for i in items}
                feedback = {str(i["id"]): str(i.get("feedback", "")) for i in items}
                kernel = in_kernel_scores(gradebook, assignment, entry.student)
            except Exception as err:
                isolated, feedback, kernel = {}, {}, {}
                problem = f"could not be read back ({type(err).__name__}): grade this student again with --force"
            results.append(Regraded(entry.student, kernel, isolated, feedback, problem, entry.student in lost))
    return results


def _sqlite(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


def gradebook_of(db_url: str) -> Any:
    """nbgrader's Gradebook at ``db_url``. Opening one runs ``alembic`` by name, which is found only where this
    environment's bin/ is on PATH: it is put there, whether or not the environment was activated."""
    import os
    import sys

    from grader.runtime.convert import without_iri_grammar

    without_iri_grammar()  # nbgrader imports nbformat, and with it jsonschema, after the whole class is graded
    from nbgrader.api import Gradebook

    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    return Gradebook(db_url)


def use_isolated(course: Path, assignment: str, results: list[Regraded], db_url: str | None = None) -> list[str]:
    """Make the isolated scores the grades in nbgrader's gradebook. Each autograded test cell of a submission
    graded in isolation gets its item's isolated score as its manual score (what nbgrader's formgrader writes
    when a grader overrides a score: ``nbgrader export`` and ``generate_feedback`` use it, ``autograde`` keeps
    it); each late penalty is computed again, on the new score, by the course's own late-penalty plugin, as
    ``autograde`` computes it. Returns a line for each submission left as it was, saying why."""
    from nbgrader.api import MissingEntry

    from grader.grading.items import ITEMS

    ids = {item.id for item in ITEMS}
    plugin = _late_plugin(Path(course))
    left: list[str] = []
    with gradebook_of(db_url or _sqlite(Path(course).resolve())) as gradebook:
        for r in results:
            if r.problem:
                left.append(f"{r.student}: kept the in-kernel grade; the isolated grader {r.problem}")
                continue
            try:
                submission = gradebook.find_submission(assignment, r.student)
            except MissingEntry:
                left.append(f"{r.student}: not in the gradebook (run nbgrader autograde first)")
                continue
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    item = item_of_test_id(grade.name, ids)
                    if item is not None:
                        grade.manual_score = float(r.isolated.get(item, 0))
            gradebook.db.commit()
            late = submission.total_seconds_late
            for notebook in submission.notebooks:
                penalty = plugin.late_submission_penalty(r.student, notebook.score, late) if late > 0 else None
                notebook.late_submission_penalty = None if penalty is None else min(max(penalty, 0.0), notebook.score)
            gradebook.db.commit()
    return left


def _late_plugin(course: Path) -> Any:
    """The late-penalty plugin that the course's nbgrader_config.py names (nbgrader's own by default)."""
    from nbgrader.plugins import LateSubmissionPlugin
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader
    from traitlets.utils.importstring import import_item

    config = Config()
    if (course / "nbgrader_config.py").is_file():
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    chosen = config.AssignLatePenalties.get("plugin_class", LateSubmissionPlugin)
    return (import_item(chosen) if isinstance(chosen, str) else chosen)(config=config)


def write_csv(path: Path, results: list[Regraded]) -> Path:
    """An upload-ready CSV: student, grade (the isolated total; the in-kernel one where the isolated grader
    could not grade, with a note), the two totals and the items that differ. Scores before late penalties. Every
    cell is safe in a spreadsheet (grader/outputs/sheets.py)."""
    from grader.outputs.sheets import csv_text

    rows: list[list[Any]] = [["student", "grade", "isolated", "in_kernel", "differs", "note"]]
    for r in results:
        kernel = sum(r.in_kernel.values())
        isolated = sum(r.isolated.values())
        differs = " ".join(f"{i}:{r.in_kernel.get(i, 0):g}->{r.isolated.get(i, 0)}"
                           for i in sorted({*r.higher_in_kernel, *r.higher_isolated}))  # fmt: skip
        grade, note = (f"{kernel:g}", f"in-kernel grade: the isolated grader {r.problem}") if r.problem else (
            str(isolated), "")  # fmt: skip
        rows.append([r.student, grade, isolated if not r.problem else "", f"{kernel:g}" if r.in_kernel else "",
                     differs, note])  # fmt: skip
    path.write_text(csv_text(rows), encoding="utf-8")
    return path


def print_regrade(results: list[Regraded]) -> None:
    """The comparison as a table. Ids and problems are the students' text: shown as text, never as markup."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="in-kernel (nbgrader) against isolated scores")
    for column in ("student", "in kernel", "isolated", "differs (in kernel vs isolated)"):
        table.add_column(column)
    for r in results:
        differs = ", ".join(f"{i} ({r.in_kernel.get(i, 0):g} vs {r.isolated.get(i, 0)})"
                            for i in [*r.higher_in_kernel, *r.higher_isolated])  # fmt: skip
        kernel = f"{sum(r.in_kernel.values()):g}" if r.in_kernel else "not autograded"
        isolated = r.problem if r.problem else str(sum(r.isolated.values()))
        table.add_row(Text(shown_name(r.student)), kernel, Text(clean_text(isolated)), differs or "-")
    console = Console()
    console.print(table)
    higher = [shown_name(r.student) for r in results if r.higher_in_kernel]
    if higher:
        console.print(
            f"{len(higher)} submission(s) score higher in the kernel than isolated: "
            f"{', '.join(higher)}. Their code may have changed the tests' outcome; read it.",
            markup=False, highlight=False,
        )  # fmt: skip
    else:
        console.print("No submission scores higher in the kernel than isolated.")
    lower = [shown_name(r.student) for r in results if r.higher_isolated]
    if lower:
        console.print(
            f"{len(lower)} submission(s) score higher isolated than in the kernel: {', '.join(lower)}. What the "
            "kernel ran cost them points (cells out of order, a cell that raised); --use-isolated makes the "
            "isolated scores the grades.",
            markup=False, highlight=False,
        )  # fmt: skip
