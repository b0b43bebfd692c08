"""PrairieLearn's external grader: the released question and image, and the entry point run on a /grade laid out
as PrairieLearn lays it out (a scratch root), for the solutions, the stubs, an empty upload and a hostile one.
Every results.json is checked against PrairieLearn's documented format."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from grader.authoring import prairielearn
from grader.grading.items import ITEMS
from grader.sandbox import Wall, landlock, wall

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("mle", "divergences", "vae", "gan", "ddpm")
TEXT = {"type": "string"}
IMAGE = {  # an object with a url (a data URL) and an optional label, or the URL alone
    "oneOf": [
        {"type": "string"},
        {"type": "object", "required": ["url"], "additionalProperties": False,
         "properties": {"url": TEXT, "label": TEXT}},
    ]
}  # fmt: skip
SCHEMA: dict[str, Any] = {  # https://docs.prairielearn.com/externalGrading/ (Grading results)
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "gradable": {"type": "boolean"},
        "score": {"type": "number", "minimum": 0.0, "maximum": 1.0},
        "message": TEXT,
        "output": TEXT,
        "format_errors": {"oneOf": [TEXT, {"type": "array", "items": TEXT}]},
        "images": {"type": "array", "items": IMAGE},
        "tests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "points", "max_points"],
                "additionalProperties": False,
                "properties": {
                    "name": TEXT,
                    "description": TEXT,
                    "points": {"type": "number", "minimum": 0},
                    "max_points": {"type": "number", "minimum": 0},
                    "message": TEXT,
                    "output": TEXT,
                    "images": {"type": "array", "items": IMAGE},
                },
            },
        },
    },
    # gradable (or gradable left out): a score is mandatory; not gradable: format_errors say why
    "if": {"properties": {"gradable": {"const": False}}, "required": ["gradable"]},
    "then": {"required": ["gradable", "format_errors"]},
    "else": {"required": ["score"]},
}


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("prairielearn")
    prairielearn.build(out, image="course/genmath-grader:test")
    return out


def lay_out(root: Path, files: dict[str, bytes], in_data: bool = False) -> Path:
    """/grade as PrairieLearn makes it: student/ (the uploaded files), data/data.json (with the same files as
    submitted_answers._files, or only there), tests/ (empty: the question ships none); no results/."""
    (root / "student").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "data").mkdir()
    if not in_data:
        for name, content in files.items():
            (root / "student" / name).write_bytes(content)
    uploaded = [{"name": name, "contents": base64.b64encode(content).decode()} for name, content in files.items()]
    data = {"params": {}, "correct_answers": {}, "submitted_answers": {"_files": uploaded}, "format_errors": {},
            "partial_scores": {}, "score": 0, "feedback": {}, "variant_seed": 1, "options": {}}  # fmt: skip
    (root / "data" / "data.json").write_text(json.dumps(data))
    return root


NEEDS_A_WALL = pytest.mark.skipif(
    not wall("auto").holds, reason="needs a wall: bubblewrap, or the process wall (without one: the test below)"
)
# PrairieLearn runs its grading image in Docker, where bubblewrap cannot run. Where tests/test_process_wall.py's
# container run grades these (a root grader, a kernel with Landlock), they run there, behind the process wall,
# and not again out here behind bubblewrap, a wall PrairieLearn's containers do not have.
IN_THE_CONTAINER_RUN = pytest.mark.skipif(
    os.geteuid() == 0 and landlock.abi() >= 1 and not os.environ.get("GRADER_TEST_WALL"),
    reason="graded where PrairieLearn grades: inside tests/container.py (test_process_wall's container run)",
)


def run_entry_point(released: Path, root: Path, expect: int = 0) -> dict[str, Any]:
    """The image's entry point, with the release's own grader (its source first on the path) and this Python."""
    env = {**os.environ, "GRADER_PRAIRIELEARN_ROOT": str(root), "GRADER_ROOT": str(released / "image"),
           "GRADER_PYTHON": sys.executable, "PYTHONPATH": str(released / "image" / "source")}  # fmt: skip
    done = subprocess.run([str(released / "image" / "source" / "run_prairielearn")], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == expect, done.stderr[-3000:]
    raw = (root / "results" / "results.json").read_bytes()
    assert len(raw) <= prairielearn_limit()
    data = json.loads(raw)
    jsonschema.validate(data, SCHEMA)
    return data


def prairielearn_limit() -> int:
    from grader.platforms.prairielearn import MAX_RESULTS_BYTES

    return MAX_RESULTS_BYTES


def parts(folder: Path) -> dict[str, bytes]:
    return {f"{part}.py": (folder / f"{part}.py").read_bytes() for part in PARTS}


def test_the_release_is_a_question_and_an_image_without_answers(released: Path) -> None:
    info = json.loads((released / "questions" / "genmath" / "info.json").read_text())
    options = info["externalGradingOptions"]
    assert info["gradingMethod"] == "External" and info["type"] == "v3" and options["enabled"] is True
    assert options["image"] == "course/genmath-grader:test" and 0 < options["timeout"] <= 600  # PrairieLearn's cap
    entry = options["entrypoint"]
    assert entry.startswith(prairielearn.IMAGE_ROOT + "/")
    assert (released / "image" / entry.removeprefix(prairielearn.IMAGE_ROOT + "/")).stat().st_mode & 0o111
    html = (released / "questions" / "genmath" / "question.html").read_text()
    assert "<pl-external-grader-results>" in html and "<pl-file-upload" in html
    for name in prairielearn.UPLOADS:
        assert name in html
    dockerfile = (released / "image" / "Dockerfile").read_text()
    assert f"ENV GRADER_ROOT={prairielearn.IMAGE_ROOT}" in dockerfile and "setup.sh" in dockerfile
    shipped = {p.relative_to(released).as_posix() for p in released.rglob("*") if p.is_file()}
    assert not [p for p in shipped if "solutions" in p or "exercises" in p or "/authoring/" in p], shipped
    assert not (released / "questions" / "genmath" / "tests").exists()
    assert prairielearn.build(released, "course/genmath-grader:test")  # written again over itself: the same
    assert json.loads((released / "questions" / "genmath" / "info.json").read_text())["uuid"] == info["uuid"]


def test_the_scripts_pass_shellcheck(released: Path) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    scripts = [released / "image" / "source" / name for name in ("setup.sh", "run_prairielearn")]
    done = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


@NEEDS_A_WALL
@IN_THE_CONTAINER_RUN
def test_the_solutions_score_1_with_a_test_per_item_and_the_pictures(released: Path, tmp_path: Path) -> None:
    data = run_entry_point(released, lay_out(tmp_path / "grade", parts(ROOT / "solutions")))
    assert data["gradable"] is True and data["score"] == 1.0, data["message"]
    assert [t["name"] for t in data["tests"]] == [i.id for i in ITEMS]
    assert all(t["points"] == t["max_points"] and t["message"] == "passed" for t in data["tests"])
    assert data["images"] and all(i["url"].startswith("data:image/png;base64,") for i in data["images"])
    assert "Total: 100/100. Wall:" in data["message"] and "Wall: none" not in data["message"]
    if os.environ.get("GRADER_TEST_WALL"):  # in tests/container.py, as PrairieLearn's Docker runs the image
        assert f"Wall: {os.environ['GRADER_TEST_WALL']}." in data["message"], data["message"]


@NEEDS_A_WALL
@IN_THE_CONTAINER_RUN
def test_the_stubs_score_0_and_say_what_is_missing(released: Path, tmp_path: Path) -> None:
    data = run_entry_point(released, lay_out(tmp_path / "grade", parts(ROOT / "exercises")))
    assert data["gradable"] is True and data["score"] == 0.0
    assert all(t["points"] == 0 for t in data["tests"])
    assert "not implemented" in data["tests"][0]["output"].lower(), data["tests"][0]["output"]


def test_an_empty_upload_is_not_gradable_and_costs_no_attempt(released: Path, tmp_path: Path) -> None:
    data = run_entry_point(released, lay_out(tmp_path / "grade", {"notes.txt": b"my notes"}))
    assert data["gradable"] is False and data["tests"] == []
    assert "Nothing to grade: upload mle.py" in data["format_errors"][0] and "notes.txt" in data["format_errors"][0]


@NEEDS_A_WALL
@IN_THE_CONTAINER_RUN
def test_a_hostile_upload_cannot_write_its_own_result(released: Path, tmp_path: Path) -> None:
    """The files come in data.json only: one is a module that tries to write results.json (and to reach the
    instructor's side of /grade), one is named to climb out of the folder, one is not base64. A link planted
    where results.json goes is replaced, never followed."""
    root = tmp_path / "grade"
    forged = json.dumps({"gradable": True, "score": 1.0})
    attacker = f"""
import pathlib
for target in [pathlib.Path({str(root)!r}) / "results" / "results.json", pathlib.Path("/grade/results/results.json")]:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text({forged!r})
    except OSError:
        pass

def binomial_mle(successes, trials):
    return 1.0
"""
    lay_out(root, {"mle.py": attacker.encode(), "../escape.py": b"x = 1\n"}, in_data=True)
    data = json.loads((root / "data" / "data.json").read_text())
    data["submitted_answers"]["_files"].append({"name": "gan.py", "contents": "%%% not base64"})
    (root / "data" / "data.json").write_text(json.dumps(data))
    (root / "results").mkdir()
    (root / "results" / "results.json").symlink_to(tmp_path / "elsewhere.json")
    result = run_entry_point(released, root)
    assert result["gradable"] is True and result["score"] < 1.0
    assert {t["name"]: t["points"] for t in result["tests"]}["mle.binomial_mle"] == 0
    assert not (tmp_path / "elsewhere.json").exists() and not (root / "results" / "results.json").is_symlink()
    assert not (tmp_path / "escape.py").exists()
    assert "../escape.py is not a plain file name" in result["output"], result["output"]
    assert "gan.py could not be decoded" in result["output"], result["output"]


def test_where_no_wall_can_be_built_the_submission_is_not_gradable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A container where neither bubblewrap nor the process wall can run grades nobody behind no wall: the
    submission is not gradable (PrairieLearn costs the student no attempt), format_errors say it was not their
    doing, and the exit is 1 for the course staff's logs."""
    from grader import sandbox
    from grader.platforms import prairielearn as entry
    from grader.sandbox import workers

    bare = Wall("none", problems=("bubblewrap (bwrap) is not installed", "the grader is not root"))
    monkeypatch.setattr(sandbox, "wall", lambda isolation="auto": bare)
    monkeypatch.setattr(workers, "wall", lambda isolation="auto": bare)
    root = lay_out(tmp_path / "grade", parts(ROOT / "solutions"))
    assert entry.main(["--root", str(root)]) == 1
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["gradable"] is False and "nothing you did caused it" in data["format_errors"][0]
    assert "the grader is not root" in data["message"] and "the grader is not root" in capsys.readouterr().err
