"""Real nbgrader, end to end: init, generate_assignment, preflight, autograde, generate_feedback, export,
the gradebook's totals, and the isolated re-grade that catches a student who cheated inside the kernel.

Four students:
- alice pasted the solutions into the released notebooks: 100.
- bob submitted the release untouched: 0.
- carol: 01_mle.ipynb is not JSON (preflight renames it, so nbgrader grades the rest), a solution
  cell deleted and the cells reordered in 02_divergences, a solution cell that raises before its
  definition in 03_vae; nothing else submitted.
- mallory solved part 1 but returns 0.5 from binomial_mle and, in the same cell, replaces the
  grader's comparison inside the kernel: full marks in the kernel, caught by the isolated re-grade.
  She also empties a locked autograder cell of part 2, which nbgrader restores from its gradebook, tags
  the other autograder cells of part 2 "skip-execution" (nbclient's tag for a cell not to run, which
  would leave them without an error: passed), and submits nothing else.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest

from grader.authoring.corpus import MUTANTS
from grader.authoring.notebooks import NOTEBOOK_NAMES
from grader.grading.items import BY_ID
from grader.kernel import install_paths
from grader.nbgrader import course as course_mod
from tests.answer_key import filled, grade_id

ASSIGNMENT = "generative_models"
ROOT = Path(__file__).resolve().parents[1]
NAMES = [f"{name}.ipynb" for name in NOTEBOOK_NAMES.values()]
NBGRADER = [str(Path(sys.executable).with_name("nbgrader"))]
CHEAT = (
    "import grader.grading.compare\n"
    "grader.grading.compare.compare = lambda *args, **kwargs: None\n\n"
    "def binomial_mle(successes, trials):\n"
    "    return 0.5\n"
)

# nbgrader runs `alembic` and Jupyter kernels by name: the environment's bin/ comes first, as when it is activated
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}

pytestmark = pytest.mark.timeout(1200)
DEMO_STEPS = 20
INSTALL_PATHS = [p for p in install_paths() if p != "/"]  # where Python, its libraries and the course live


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


def pasted(course: Path, name: str) -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled in as the solution has it (markers dropped)."""
    return filled(stub_of=course / "release" / ASSIGNMENT / name, solution=course / "source" / ASSIGNMENT / name)


def submit(course: Path, student: str, name: str, nb: nbformat.NotebookNode | str) -> None:
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(nb, str):
        (folder / name).write_text(nb)
    else:
        nbformat.write(nb, folder / name)


def briefly(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``nb`` with its demos' long loops (3,000 DDPM training steps, 2,000 GAN steps, ...) cut to DEMO_STEPS, as a
    student trying her notebook out might: they still train, sample and plot through her functions, in a tenth of
    the time (test_student_package runs them at full length)."""
    for cell in nb.cells:
        if "demo" in cell.metadata.get("tags", []):
            cell.source = re.sub(r"range\(\d{3,}\)", f"range({DEMO_STEPS})", cell.source)
    return nb


def make_submissions(course: Path) -> None:
    for name in NAMES:
        submit(course, "alice", name, briefly(pasted(course, name)))
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
        elif (grade_id(cell) or "").startswith("test-"):  # and tags the others for the executor to skip
            cell.metadata["tags"] = ["skip-execution"]
    submit(course, "mallory", "02_divergences.ipynb", nb)
    # carol's and mallory's other notebooks are not submitted: nbgrader scores a missing notebook 0 without
    # running it (bob shows what an untouched one gets)


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
    # 03 loses what needs reparameterize and keeps elbo_loss (5); 04 and 05 not submitted
    assert scores["carol"] == {"01_mle": 0, "02_divergences": 0, "03_vae": 5, "04_gan": 0, "05_ddpm": 0}
    assert scores["mallory"]["01_mle"] == 20 and sum(scores["mallory"].values()) == 20  # the kernel was fooled
    # ... but not by the emptied test cell: nbgrader's checksummed copy ran, and found nothing implemented;
    # nor by the tags: every autograder cell ran
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
    # what a student reads names no file and no frame of the grader, and no path of this machine
    for page in (course / "feedback").rglob("*.html"):
        text = page.read_text()
        assert str(ROOT / "grader") not in text and "kernel.py" not in text, page
        assert not any(path in text for path in INSTALL_PATHS), page
        assert "HIDDEN TESTS" not in text and "hidden_check" not in text, page  # the output, not the source

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
    # isolated, carol's reordering is harmless and her unreadable notebook is named: she scores higher isolated
    assert rows["carol"]["higher_in_kernel"] == [] and rows["carol"]["isolated"] > 5
    assert "divergences.entropy" in {r["id"] for r in rows["carol"]["higher_isolated"]}  # her cell order
    assert "higher isolated than in the kernel: carol" in " ".join(out.split())
    assert {i["id"]: i["feedback"] for i in rows["carol"]["items"]}["mle.binomial_mle"]  # per item, with feedback

    # make the isolated scores the grades of two students (the others stay as the kernel graded them)
    picked = tmp_path / "picked.json"
    upload = tmp_path / "upload.csv"
    out = grader_cli(
        "nbgrader", "regrade", str(course), "--student", "carol", "--student", "mallory", "--use-isolated",
        "--csv", str(upload), "--json", str(picked),
    ).stdout  # fmt: skip
    assert [r["student"] for r in json.loads(picked.read_text())["submissions"]] == ["carol", "mallory"]
    assert "the isolated scores are now the grades of 2 submission(s)" in " ".join(out.split())
    after = {student: sum(scores.values()) for student, scores in gradebook(course).items()}
    assert after == {"alice": 100, "bob": 0, "carol": rows["carol"]["isolated"], "mallory": 18}
    with open(upload) as f:
        uploaded = {row["student"]: row for row in csv.DictReader(f)}
    assert uploaded["mallory"]["grade"] == "18" and uploaded["mallory"]["in_kernel"] == "20"
    assert "mle.binomial_mle:2->0" in uploaded["mallory"]["differs"]
    assert uploaded["carol"]["grade"] == str(rows["carol"]["isolated"])
    again = grader_cli("nbgrader", "regrade", str(course), "--student", "mallory", "--json", str(picked)).stdout
    assert "score higher in the kernel than isolated: mallory" in " ".join(again.split())  # the kernel's own score
    unknown = subprocess.run(
        [sys.executable, "-m", "grader", "nbgrader", "regrade", str(course), "--student", "nobody"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert unknown.returncode == 2 and "nobody" in unknown.stderr and len(unknown.stderr.splitlines()) == 1


def test_no_tag_a_student_can_set_makes_the_executor_skip_a_cell(tmp_path: Path) -> None:
    """The written configuration names a skip tag drawn anew at each run (the end-to-end test above shows
    mallory's "skip-execution" cells run); preflight warns about a configuration without one."""
    course_mod.init(tmp_path / "course")
    config = (tmp_path / "course" / "nbgrader_config.py").read_text()
    assert config.count(course_mod.NEVER_SKIP) == 1 and course_mod.lets_cells_be_skipped(tmp_path / "course") is None
    drawn = set()
    for _ in range(2):
        c = type("Config", (), {})()
        c.Execute = type("Section", (), {})()
        exec(course_mod.NEVER_SKIP, {"c": c})  # the line as an instructor pastes it into an older configuration
        drawn.add(c.Execute.skip_cells_with_tag)
    assert len(drawn) == 2 and "skip-execution" not in drawn

    older = tmp_path / "older"
    older.mkdir()
    (older / "nbgrader_config.py").write_text(config.replace(course_mod.NEVER_SKIP, ""))
    done = subprocess.run([sys.executable, "-m", "grader", "nbgrader", "preflight", str(older)], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "0 unreadable notebook(s)" in done.stdout
    assert f"skip-execution (nbgrader then counts it as passed); add this line to it: {course_mod.NEVER_SKIP}" in (
        " ".join(done.stderr.split())
    )


def test_init_refuses_to_overwrite_a_source_folder(tmp_path: Path) -> None:
    course_mod.init(tmp_path)
    with pytest.raises(FileExistsError):
        course_mod.init(tmp_path)


def test_the_jupyterhub_exchange_with_a_due_date_and_a_late_penalty(tmp_path: Path) -> None:
    """The exchange walk of docs/instructors/nbgrader.md, with nbgrader's own commands: release, fetch, submit,
    collect, autograde, feedback, release it and fetch it. The submission comes 36 hours after the due date: two
    started days at 25% each halve every notebook's score. She submits part 1 only, with a mistake, which her
    feedback page names."""
    exchange, home, course = tmp_path / "exchange", tmp_path / "home", tmp_path / "course"
    exchange.mkdir(mode=0o777)
    home.mkdir()
    due = (datetime.now(UTC) - timedelta(hours=36)).strftime("%Y-%m-%dT%H:%M")
    grader_cli("nbgrader", "init", str(course), "--due", due, "--late-percent-per-day", "25")
    with open(course / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    nbgrader(course, "generate_assignment", ASSIGNMENT)
    nbgrader(course, "release_assignment", ASSIGNMENT)

    as_student = ("--course", "generative-models", f"--Exchange.root={exchange}")
    nbgrader(home, "fetch_assignment", ASSIGNMENT, *as_student)
    fetched = home / ASSIGNMENT / "01_mle.ipynb"
    nb = filled(stub_of=fetched, solution=course / "source" / ASSIGNMENT / "01_mle.ipynb")
    unbiased = next(p for p in MUTANTS if (p.item, p.name) == ("mle.gaussian_mle", "unbiased"))
    (cell,) = [c for c in nb.cells if grade_id(c) == "mle-gaussian_mle"]
    assert unbiased.old in cell.source
    cell.source = cell.source.replace(unbiased.old, unbiased.new)
    nb.cells.append(nbformat.v4.new_code_cell("import torch\n\ntorch.nn.Linear(2, 3)(torch.zeros(4))"))  # her own
    nbformat.write(nb, fetched)
    for other in NAMES[1:]:  # she submits part 1 only
        (home / ASSIGNMENT / other).unlink()
    nbgrader(home, "submit", ASSIGNMENT, *as_student)

    nbgrader(course, "collect", ASSIGNMENT)
    (student,) = [p.name for p in (course / "submitted").iterdir()]
    nbgrader(course, "autograde", ASSIGNMENT)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        submission = gb.find_submission(ASSIGNMENT, student)
        assert 24 * 3600 < submission.total_seconds_late < 48 * 3600
        mle = submission.notebooks[[n.name for n in submission.notebooks].index("01_mle")]
        kept = 20 - BY_ID["mle.gaussian_mle"].points  # 17: everything but the variance
        assert (mle.score, mle.late_submission_penalty) == (kept, kept / 2)  # two started days late at 25%
        mle.late_submission_penalty = None  # forgotten: --use-isolated must compute it again, with the plugin
        gb.db.commit()
    grader_cli("nbgrader", "regrade", str(course), "--use-isolated")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebooks = {n.name: n for n in gb.find_submission(ASSIGNMENT, student).notebooks}
        assert (notebooks["01_mle"].score, notebooks["01_mle"].late_submission_penalty) == (kept, kept / 2)
    nbgrader(course, "generate_feedback", ASSIGNMENT)
    nbgrader(course, "release_feedback", ASSIGNMENT)
    nbgrader(home, "fetch_feedback", ASSIGNMENT, *as_student)
    (page,) = (home / ASSIGNMENT / "feedback").glob("*/01_mle.html")
    text = page.read_text()
    assert "This matches a known mistake: dividing by n - 1" in " ".join(text.split())
    # her own cell's error passed through torch: its frames are shown, this machine's paths are not
    assert "&lt;site-packages&gt;/torch/nn/modules/linear.py" in text
    assert str(ROOT) not in text and not any(path in text for path in INSTALL_PATHS)


def test_the_late_penalty_is_a_share_per_started_day_and_init_will_not_half_configure_it(tmp_path: Path) -> None:
    from grader.nbgrader.late import PercentPerDay

    plugin = PercentPerDay(percent_per_day=10.0)
    day = 86_400
    penalties = [plugin.late_submission_penalty("s", 20.0, late) for late in (0, 1, day, day + 1, 30 * day)]
    assert penalties == [None, 2.0, 2.0, 4.0, 20.0]
    course_mod.init(tmp_path)
    shutil.rmtree(tmp_path / "source")
    with pytest.raises(FileExistsError, match=r"nbgrader_config\.py exists"):
        course_mod.init(tmp_path, late_percent_per_day=10)
    with pytest.raises(ValueError, match="percentage per day"):
        course_mod.init(tmp_path / "other", late_percent_per_day=0)


def test_opening_the_gradebook_builds_no_grammar_it_never_uses(tmp_path: Path) -> None:
    """``nbgrader regrade`` opens the gradebook once the class is graded: without rfc3987_syntax's IRI grammar,
    which jsonschema builds as it loads (0.74 s) and nothing of the gradebook uses; the gradebook works as ever."""
    code = (
        "import sys\nfrom grader.nbgrader.course import gradebook_of\n"
        "with gradebook_of(sys.argv[1]) as gradebook:\n    gradebook.add_student('alice')\n"
        "with gradebook_of(sys.argv[1]) as gradebook:\n    print([s.id for s in gradebook.students])\n"
        "print(sys.modules.get('rfc3987_syntax') is not None)"
    )
    done = subprocess.run([sys.executable, "-c", code, f"sqlite:///{tmp_path / 'gradebook.db'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == ["['alice']", "False"], done.stdout
