"""Real nbgrader, end to end: init, generate_assignment, preflight, autograde, generate_feedback, export,
the gradebook's totals, and the isolated re-grade that catches a student who cheated inside the kernel.

Four students:
- alice pasted the solutions into the released notebooks: 100.
- bob submitted the release untouched: 0.
- carol: 01_mle.ipynb is not JSON (preflight renames it, so nbgrader grades the rest), a solution
  cell deleted and the cells reordered in 02_divergences, a solution cell that raises before its
  definition in 03_vae; the rest untouched.
- mallory solved part 1 but returns 0.5 from binomial_mle and, in the same cell, replaces the
  grader's comparison inside the kernel: full marks in the kernel, caught by the isolated re-grade.
  She also empties a locked autograder cell of part 2, which nbgrader restores from its gradebook.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.authoring.notebooks import NOTEBOOK_NAMES
from grader.nbgrader import course as course_mod

ASSIGNMENT = "generative_models"
ROOT = Path(__file__).resolve().parents[1]
NAMES = [f"{name}.ipynb" for name in NOTEBOOK_NAMES.values()]
NBGRADER = [str(Path(sys.executable).with_name("nbgrader"))]
CHEAT = (
    "import grader.compare\n"
    "grader.compare.compare = lambda *args, **kwargs: None\n\n"
    "def binomial_mle(successes, trials):\n"
    "    return 0.5\n"
)

# nbgrader runs `alembic` and Jupyter kernels by name: the environment's bin/ comes first, as when it is activated
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

pytestmark = pytest.mark.timeout(1200)


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*NBGRADER, *args], cwd=course, env=ENV, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def grader_cli(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def released(course: Path, name: str) -> nbformat.NotebookNode:
    return nbformat.read(course / "release" / ASSIGNMENT / name, as_version=4)


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def pasted(course: Path, name: str) -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled in as the solution has it (markers dropped)."""
    source = {grade_id(c): c for c in nbformat.read(course / "source" / ASSIGNMENT / name, as_version=4).cells}
    nb = released(course, name)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            lines = source[grade_id(cell)].source.splitlines()
            cell.source = "\n".join(line for line in lines if "### BEGIN" not in line and "### END" not in line)
    return nb


def submit(course: Path, student: str, name: str, nb: nbformat.NotebookNode | str) -> None:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, str):
        (folder / name).write_text(nb)
    else:
        nbformat.write(nb, folder / name)


def make_submissions(course: Path) -> None:
    for name in NAMES:
        submit(course, "alice", name, pasted(course, name))
        submit(course, "bob", name, released(course, name))
    submit(course, "carol", "01_mle.ipynb", '{"cells": [ this is not json')
    nb = pasted(course, "02_divergences.ipynb")
    nb.cells = [c for c in nb.cells if grade_id(c) != "divergences-kl_divergence"]
    nb.cells = nb.cells[:1] + nb.cells[1:][::-1]
    submit(course, "carol", "02_divergences.ipynb", nb)
    nb = pasted(course, "03_vae.ipynb")
    for cell in nb.cells:
        if grade_id(cell) == "vae-reparameterize":
            cell.source = "raise RuntimeError('half-finished cell')\n" + cell.source
    submit(course, "carol", "03_vae.ipynb", nb)
    nb = pasted(course, "01_mle.ipynb")
    for cell in nb.cells:
        if grade_id(cell) == "mle-binomial_mle":
            cell.source = CHEAT
    submit(course, "mallory", "01_mle.ipynb", nb)
    nb = released(course, "02_divergences.ipynb")  # and she empties a locked autograder cell
    for cell in nb.cells:
        if grade_id(cell) == "test-divergences-entropy":
            cell.source = "pass"
    submit(course, "mallory", "02_divergences.ipynb", nb)
    for name in NAMES[3:]:
        submit(course, "carol", name, released(course, name))
    for name in NAMES[2:]:
        submit(course, "mallory", name, released(course, name))


def gradebook(course: Path) -> dict[str, dict[str, float]]:
    """student → notebook → score, straight from nbgrader's SQLite gradebook."""
    from nbgrader.api import Gradebook

    scores: dict[str, dict[str, float]] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in ("alice", "bob", "carol", "mallory"):
            submission = gb.find_submission(ASSIGNMENT, student)
            scores[student] = {nb.name: nb.score for nb in submission.notebooks}
            assert submission.max_score == 100
    return scores


def test_an_nbgrader_course_from_init_to_gradebook(tmp_path: Path) -> None:
    course = tmp_path / "course"
    grader_cli("nbgrader", "init", str(course))
    assert (course / "nbgrader_config.py").is_file()
    assert sorted(p.name for p in (course / "source" / ASSIGNMENT).iterdir()) == NAMES

    nbgrader(course, "generate_assignment", ASSIGNMENT)
    release_text = "".join((course / "release" / ASSIGNMENT / n).read_text() for n in NAMES)
    assert "HIDDEN TESTS" not in release_text and "BEGIN SOLUTION" not in release_text

    make_submissions(course)
    out = grader_cli("nbgrader", "preflight", str(course)).stdout
    assert "1 unreadable notebook(s)" in out and "carol" in out
    assert (course / "submitted" / "carol" / ASSIGNMENT / "01_mle.ipynb.unreadable").is_file()

    nbgrader(course, "autograde", ASSIGNMENT)
    scores = gradebook(course)
    assert sum(scores["alice"].values()) == 100, scores["alice"]
    assert sum(scores["bob"].values()) == 0, scores["bob"]
    # carol: 01 not submitted (unreadable), 02 in the wrong order runs its tests before its code: 0;
    # 03 loses what needs reparameterize and keeps elbo_loss (5); 04 and 05 untouched
    assert scores["carol"] == {"01_mle": 0, "02_divergences": 0, "03_vae": 5, "04_gan": 0, "05_ddpm": 0}
    assert scores["mallory"]["01_mle"] == 20 and sum(scores["mallory"].values()) == 20  # the kernel was fooled
    # ... but not by the emptied test cell: nbgrader's checksummed copy ran, and found nothing implemented
    assert scores["mallory"]["02_divergences"] == 0
    # alice's notebooks ran top to bottom, plots and training included, without a single error
    for name in NAMES:
        autograded = nbformat.read(course / "autograded" / "alice" / ASSIGNMENT / name, as_version=4)
        errors = [o for c in autograded.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
        assert errors == [], (name, errors[:1])
        assert any("image/png" in o.get("data", {}) for c in autograded.cells for o in c.get("outputs", []))

    nbgrader(course, "generate_feedback", ASSIGNMENT)
    for student in ("alice", "bob"):
        pages = sorted(p.name for p in (course / "feedback" / student / ASSIGNMENT).glob("*.html"))
        assert pages == [n.replace(".ipynb", ".html") for n in NAMES]
    bob_page = (course / "feedback" / "bob" / ASSIGNMENT / "01_mle.html").read_text()
    assert "Not implemented yet" in bob_page
    # what a student reads names no file and no frame of the grader (a student's own error that passes through
    # torch still shows torch's frames, with the path of the installation: see the README)
    for page in (course / "feedback").rglob("*.html"):
        text = page.read_text()
        assert str(ROOT / "grader") not in text and "kernel.py" not in text, page

    nbgrader(course, "export")
    with open(course / "grades.csv") as f:
        exported = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert exported == {"alice": 100.0, "bob": 0.0, "carol": 5.0, "mallory": 20.0}

    report = tmp_path / "regrade.json"
    out = grader_cli("nbgrader", "regrade", str(course), "--json", str(report)).stdout
    assert "1 submission(s) score higher in the kernel than isolated: mallory" in " ".join(out.split())
    rows = {r["student"]: r for r in json.loads(report.read_text())["submissions"]}
    assert (rows["alice"]["in_kernel"], rows["alice"]["isolated"]) == (100, 100)
    assert (rows["bob"]["in_kernel"], rows["bob"]["isolated"]) == (0, 0)
    assert rows["mallory"]["higher_in_kernel"] == [{"id": "mle.binomial_mle", "in_kernel": 2.0, "isolated": 0}]
    assert rows["mallory"]["isolated"] == 18
    # isolated, carol's reordering is harmless and her unreadable notebook is named; she is not flagged
    assert rows["carol"]["higher_in_kernel"] == [] and rows["carol"]["isolated"] > 5


def test_init_refuses_to_overwrite_a_source_folder(tmp_path: Path) -> None:
    course_mod.init(tmp_path)
    with pytest.raises(FileExistsError):
        course_mod.init(tmp_path)
