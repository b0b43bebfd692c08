"""python -m grader grade end to end: 100 for the solutions, 0 for the stubs, the JSON of the contract,
Gradescope's results.json, identical output on every run, missing modules, bad arguments."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import grader
from grader.grading.items import ITEMS

ROOT = Path(__file__).resolve().parents[1]
STATUSES = {"passed", "failed", "error", "timeout", "missing"}


def grade(submission: Path, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(submission), "--json", str(out / "grade.json"),
         "--gradescope", str(out / "results.json"), *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result, json.loads((out / "grade.json").read_text()), json.loads((out / "results.json").read_text())


@pytest.fixture(scope="module")
def solutions(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict, dict]:
    return grade(ROOT / "solutions", tmp_path_factory.mktemp("solutions"))


def test_solutions_score_100(solutions: tuple) -> None:
    result, data, _ = solutions
    assert data["score"] == 100 and data["max_score"] == 100
    assert [i["id"] for i in data["items"]] == [i.id for i in ITEMS]
    assert all(i["status"] == "passed" for i in data["items"])
    assert "Total: 100/100" in result.stdout


def test_json_has_the_contracts_shape(solutions: tuple) -> None:
    _, data, _ = solutions
    assert set(data) == {"score", "max_score", "items", "grader_version", "wall"}
    assert data["wall"] in ("bubblewrap", "process", "none")
    assert data["grader_version"] == grader.__version__
    for item in data["items"]:
        assert set(item) == {"id", "score", "max_score", "status", "feedback"}
        assert item["status"] in STATUSES and isinstance(item["feedback"], str)


def test_gradescope_results(solutions: tuple) -> None:
    _, _, gs = solutions
    assert gs["score"] == 100 and len(gs["tests"]) == len(ITEMS)
    assert gs["extra_data"] == {"grader_version": grader.__version__, "wall": gs["extra_data"]["wall"]}
    assert gs["extra_data"]["wall"] in ("bubblewrap", "process", "none")
    for test in gs["tests"]:
        assert set(test) == {"name", "number", "score", "max_score", "status", "output", "visibility"}
        assert test["status"] in ("passed", "failed") and test["visibility"] == "visible"


def test_stubs_score_0_as_not_implemented(tmp_path: Path) -> None:
    _, data, gs = grade(ROOT / "exercises", tmp_path)
    assert data["score"] == 0 and gs["score"] == 0
    assert {i["status"] for i in data["items"]} == {"missing"}
    assert all("Not implemented yet" in i["feedback"] for i in data["items"])


def test_missing_modules_score_0_and_the_rest_is_graded(tmp_path: Path) -> None:
    submission = tmp_path / "sub"
    submission.mkdir()
    shutil.copy(ROOT / "solutions" / "divergences.py", submission)
    _, data, _ = grade(submission, tmp_path)
    assert data["score"] == 20
    for item in data["items"]:
        if item["id"].startswith("divergences."):
            assert item["status"] == "passed"
        else:
            assert item["status"] == "missing" and "nor a notebook such as" in item["feedback"]


def test_same_submission_same_json_and_feedback(tmp_path: Path) -> None:
    """A wrong submission exercises shrinking and mistake naming: two runs must agree to the byte."""
    submission = tmp_path / "sub"
    submission.mkdir()
    source = (ROOT / "solutions" / "mle.py").read_text()
    source = source.replace(
        "return float(mu), float(np.mean((x - mu) ** 2))", "return float(mu), float(np.var(x, ddof=1))"
    )
    source = source.replace("return float(k.sum() / n.sum())", "return float(np.mean(k / n))")
    (submission / "mle.py").write_text(source)
    shutil.copy(ROOT / "solutions" / "divergences.py", submission)
    first = tmp_path / "first"
    second = tmp_path / "second"
    first.mkdir()
    second.mkdir()
    grade(submission, first)
    grade(submission, second)
    assert (first / "grade.json").read_bytes() == (second / "grade.json").read_bytes()
    data = json.loads((first / "grade.json").read_text())
    by_id = {i["id"]: i for i in data["items"]}
    assert by_id["mle.gaussian_mle"]["status"] == "failed"
    assert "n - 1" in by_id["mle.gaussian_mle"]["feedback"]  # the catalogued mistake is named
    assert "averaging the ratios" in by_id["mle.binomial_mle"]["feedback"]
    assert data["score"] == 40 - 3 - 2


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    missing = subprocess.run([sys.executable, "-m", "grader", "grade", str(tmp_path / "nope")], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2 and "is not a folder" in missing.stderr
    unknown = subprocess.run([sys.executable, "-m", "grader", "grade", "solutions", "--items", "mle.nope"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert unknown.returncode == 2 and "unknown item" in unknown.stderr


def test_near_miss_names_are_graded_or_named(tmp_path: Path) -> None:
    """Jupyter's and browsers' names for copies, a capitalised module: graded when exactly one fits, with a
    note; named in a "did you mean" when several do."""
    folder = tmp_path / "s"
    folder.mkdir()
    shutil.copyfile(ROOT / "solutions" / "mle.py", folder / "MLE.py")
    shutil.copyfile(ROOT / "solutions" / "notebooks" / "02_divergences.ipynb", folder / "02_divergences (1).ipynb")
    shutil.copyfile(ROOT / "solutions" / "vae.py", folder / "vae-Copy1.py")
    shutil.copyfile(ROOT / "solutions" / "vae.py", folder / "vae (1).py")
    items = ("mle.binomial_mle", "divergences.entropy", "vae.reparameterize")
    result, data, _ = grade(folder, tmp_path, "--items", *items)
    by_id = {i["id"]: i for i in data["items"]}
    assert [by_id[i]["status"] for i in items] == ["passed", "passed", "missing"]
    assert "Did you mean vae (1).py or vae-Copy1.py? Keep one, named vae.py." in by_id["vae.reparameterize"]["feedback"]
    said = " ".join(result.stdout.split())
    assert "Graded MLE.py as mle's module: name it mle.py next time." in said
    assert "Graded 02_divergences (1).ipynb as divergences's notebook: name it 02_divergences.ipynb next time." in said


def test_grade_on_a_folder_of_submissions_points_to_the_class_command(tmp_path: Path) -> None:
    def refused(folder: Path) -> str:
        done = subprocess.run([sys.executable, "-m", "grader", "grade", str(folder)], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        return " ".join(done.stderr.split())

    folder = tmp_path / "class"
    (folder / "alice").mkdir(parents=True)
    shutil.copyfile(ROOT / "solutions" / "mle.py", folder / "alice" / "mle.py")
    assert f"holds no module or notebook itself, but {folder / 'alice'} does: grade that folder" in refused(folder)
    (folder / "bob.zip").write_bytes(b"PK")
    assert (
        "looks like a folder of 2 submissions (alice, bob.zip), not one; grade them all with: "
        f"python -m grader grade-class {folder} --out DIR"
    ) in refused(folder)


def test_check_takes_a_notebook_a_single_module_and_items(tmp_path: Path) -> None:
    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "grader", "check", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)  # fmt: skip

    notebook = check(str(ROOT / "solutions" / "notebooks" / "01_mle.ipynb"))
    assert notebook.returncode == 0, notebook.stdout + notebook.stderr
    assert "11/11 items pass their public checks" in notebook.stdout and "divergences" not in notebook.stdout
    stub = check(str(ROOT / "exercises" / "notebooks"), "--items", "ddpm.q_sample", "vae.reparameterize")
    assert stub.returncode == 1 and stub.stdout.count("Not implemented yet.") == 2, stub.stdout
    assert "0/2 items pass" in stub.stdout
    single = check(str(ROOT / "solutions" / "gan.py"), "--items", "gan.generator_loss")
    assert single.returncode == 0 and "1/1 items pass" in single.stdout, single.stdout + single.stderr
    assert check(".", "--items", "mle.nothing").returncode == 2
