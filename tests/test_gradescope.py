"""The Gradescope autograder, run as Gradescope runs it: the zip unpacked into a folder laid out like
/autograder, run_autograder on what a student may upload, every results.json checked against a schema
of Gradescope's format, and setup.sh and run_autograder through shellcheck."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from grader.authoring import gradescope_zip
from grader.items import ITEMS, MAX_SCORE

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("mle", "divergences", "vae", "gan", "ddpm")
STATUS = {"enum": ["passed", "failed"]}
VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
SCHEMA: dict[str, Any] = {  # https://gradescope-autograders.readthedocs.io/en/latest/specs/ (output format)
    "type": "object",
    "required": ["tests"],
    "additionalProperties": False,
    "properties": {
        "score": {"type": "number"},
        "execution_time": {"type": "number", "minimum": 0},
        "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["score", "max_score", "name", "output"],
                "additionalProperties": False,
                "properties": {
                    "score": {"type": "number"},
                    "max_score": {"type": "number"},
                    "status": STATUS,
                    "name": {"type": "string"},
                    "number": {"type": "string"},
                    "output": {"type": "string"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "visibility": VISIBILITY,
                    "extra_data": {"type": "object"},
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("zip") / "autograder.zip"
    gradescope_zip.build(out, feedback_visibility="after_published")
    return out


def lay_out(autograder_zip: Path, root: Path) -> Path:
    """/autograder as Gradescope builds it: source/ (the zip), run_autograder, submission/, results/."""
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    shutil.copyfile(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def environment(root: Path) -> dict[str, str]:
    """The zip's grader imported (its source folder first on the path), with this test's Python."""
    return {**os.environ, "GRADER_GRADESCOPE_ROOT": str(root), "GRADER_PYTHON": sys.executable,
            "PYTHONPATH": str(root / "source")}  # fmt: skip


def run_autograder(root: Path) -> dict[str, Any]:
    result = subprocess.run(
        [str(root / "run_autograder")], env=environment(root), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert [t["name"] for t in data["tests"]] == [i.id for i in ITEMS]
    assert [t["number"] for t in data["tests"]] == [str(n) for n in range(1, len(ITEMS) + 1)]
    assert data["score"] == sum(t["score"] for t in data["tests"])
    return data


def copy_parts(source: Path, target: Path, parts: tuple[str, ...] = PARTS) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for part in parts:
        shutil.copyfile(source / f"{part}.py", target / f"{part}.py")


def test_the_zip_holds_the_grader_and_no_answers(autograder_zip: Path) -> None:
    with zipfile.ZipFile(autograder_zip) as archive:
        names = archive.namelist()
        text = "".join(archive.read(n).decode(errors="replace") for n in names if n.endswith(".py"))
        modes = {n: archive.getinfo(n).external_attr >> 16 for n in ("setup.sh", "run_autograder")}
    assert {"setup.sh", "run_autograder", "gradescope.json", "pyproject.toml", "grader/gradescope.py"} <= set(names)
    assert not [n for n in names if n.startswith(("solutions/", "exercises/", "grader/authoring/"))]
    assert "### BEGIN SOLUTION" not in text
    assert all(mode & 0o111 for mode in modes.values()), "setup.sh and run_autograder must be executable"


def test_the_autograder_runs_the_zips_own_grader(autograder_zip: Path, tmp_path: Path) -> None:
    root = lay_out(autograder_zip, tmp_path / "autograder")
    where = subprocess.run(
        [sys.executable, "-P", "-c", "import grader; print(grader.__file__)"], env=environment(root), cwd=root,
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.strip().startswith(str(root / "source"))


@pytest.mark.parametrize("upload", ["modules", "zip of a folder", "notebooks", "stubs", "empty", "hostile"])
def test_run_autograder_on_what_students_upload(autograder_zip: Path, tmp_path: Path, upload: str) -> None:
    root = lay_out(autograder_zip, tmp_path / "autograder")
    submission = root / "submission"
    if upload == "modules":
        copy_parts(ROOT / "solutions", submission)
    elif upload == "zip of a folder":
        copy_parts(ROOT / "solutions", tmp_path / "mine")
        with zipfile.ZipFile(submission / "submission.zip", "w") as archive:
            for path in sorted((tmp_path / "mine").iterdir()):
                archive.write(path, f"mine/{path.name}")
    elif upload == "notebooks":
        for notebook in sorted((ROOT / "solutions" / "notebooks").glob("*.ipynb")):
            shutil.copyfile(notebook, submission / notebook.name)
    elif upload == "stubs":
        copy_parts(ROOT / "exercises", submission)
    elif upload == "hostile":  # reads the autograder's files, forges results.json, then answers binomial_mle wrongly
        copy_parts(ROOT / "solutions", submission)
        source = (submission / "mle.py").read_text()
        forge = (
            "    import json, pathlib\n"
            "    for path in ('/autograder/results/results.json', '" + str(root / "results" / "results.json") + "'):\n"
            "        try:\n            pathlib.Path(path).write_text(json.dumps({'score': 100, 'tests': []}))\n"
            "        except OSError:\n            pass\n"
            "    for path in ('" + str(root / "source" / "reference" / "mle.py") + "',):\n"
            "        try:\n            return open(path).read()\n        except OSError:\n            pass\n"
            "    return -1.0\n"
        )
        marker = (
            "    ### BEGIN SOLUTION\n    k, n = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))\n"
            "    return float("
        )
        assert source.count(marker) == 1
        (submission / "mle.py").write_text(source.replace(marker, forge + marker, 1))
    data = run_autograder(root)
    by_name = {t["name"]: t for t in data["tests"]}
    assert all(t["visibility"] == "after_published" for t in data["tests"])  # as the release asked
    if upload in ("modules", "zip of a folder", "notebooks"):
        assert data["score"] == MAX_SCORE, data["output"]
        # the feedback page's pictures are the top-level output: five, every one matching the reference's
        assert data["output_format"] == "html" and data["output"].startswith(f"<p>Total: {MAX_SCORE}/{MAX_SCORE}.")
        assert data["output"].count('<img alt="') == 5 and data["output"].count("Yours matches the reference") == 5
    elif upload == "stubs":
        assert data["score"] == 0 and "Not implemented yet" in by_name["mle.binomial_mle"]["output"]
    elif upload == "empty":
        assert data["score"] == 0 and data["output"].startswith("Nothing to grade")
    else:
        assert by_name["mle.binomial_mle"]["score"] == 0
        assert data["score"] == MAX_SCORE - by_name["mle.binomial_mle"]["max_score"]
        assert "def binomial_mle" not in json.dumps(data), "the reference's source reached the results"


def test_setup_and_run_scripts_pass_shellcheck(autograder_zip: Path, tmp_path: Path) -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (Debian's package; .ci/run installs it)")
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(tmp_path, members=["setup.sh", "run_autograder"])
    result = subprocess.run([shellcheck, "--shell=bash", str(tmp_path / "setup.sh"), str(tmp_path / "run_autograder")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stdout
