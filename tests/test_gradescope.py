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
from grader.grading.items import CHECKS, ITEMS, MAX_SCORE
from grader.sandbox import Wall, wall

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


@pytest.fixture(scope="module")
def image_cases(autograder_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The records setup.sh keeps as the image is built (``python -m grader keep-cases``, the zip's own grader), in
    the folder run_autograder names: ``lay_out`` puts a copy in each root, as each of Gradescope's containers
    starts from the image."""
    root = lay_out(autograder_zip, tmp_path_factory.mktemp("image") / "autograder")
    env = {**environment(root), "GRADER_CACHE_DIR": str(root / "kept-cases")}
    done = subprocess.run([sys.executable, "-P", "-m", "grader", "keep-cases"], env=env, cwd=root,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0 or not wall("required").holds, done.stderr[-3000:]
    return root / "kept-cases"


def lay_out(autograder_zip: Path, root: Path, kept: Path | None = None) -> Path:
    """/autograder as Gradescope builds it: source/ (the zip), run_autograder, submission/, results/, and the
    records ``kept`` (``image_cases``) in kept-cases/."""
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    shutil.copyfile(root / "source" / "run_autograder", root / "run_autograder")
    (root / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    if kept is not None and kept.is_dir():
        shutil.copytree(kept, root / "kept-cases")
    return root


def environment(root: Path) -> dict[str, str]:
    """The zip's grader imported (its source folder first on the path), with this test's Python; the records where
    run_autograder looks for them (not the suite's folder, where the zip's grader, keyed apart, would replace the
    checkout's records with its own)."""
    env = {**os.environ, "GRADER_GRADESCOPE_ROOT": str(root), "GRADER_PYTHON": sys.executable,
           "PYTHONPATH": str(root / "source")}  # fmt: skip
    env.pop("GRADER_CACHE_DIR", None)
    return env


def records(root: Path) -> dict[str, tuple[int, int]]:
    """Each record in root's kept-cases/ by name: (inode, modification time); a record written again changes."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted((root / "kept-cases").glob("*.json"))}


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
    shipped = {"setup.sh", "run_autograder", "gradescope.json", "pyproject.toml", "grader/platforms/gradescope.py"}
    assert shipped <= set(names)
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
def test_run_autograder_on_what_students_upload(
    autograder_zip: Path, image_cases: Path, tmp_path: Path, upload: str
) -> None:
    if not wall("required").holds and upload != "empty":
        pytest.skip("no wall for a student's code here: run_autograder refuses (tested below)")
    root = lay_out(autograder_zip, tmp_path / "autograder", image_cases)
    image = records(root)
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
    if upload != "empty":
        assert data["extra_data"]["wall"] == wall("required").kind in ("bubblewrap", "process")
        assert f"Wall: {data['extra_data']['wall']}." in data["output"]
    if upload in ("modules", "zip of a folder", "notebooks"):
        assert data["score"] == MAX_SCORE, data["output"]
        # every item replayed from the image's records (a full run would have written its record again)
        assert len(image) == len(CHECKS) and records(root) == image
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


SHIMS = {  # programs setup.sh runs, standing in for an Ubuntu image's: each writes what it was asked to $LOG
    "apt-get": 'echo "apt-get $*" >> "$LOG"\ncase "$*" in *bubblewrap*) [ -z "${NO_BWRAP:-}" ];; esac',
    "id": "exit 1",  # no worker user exists yet
    "useradd": 'echo "useradd $*" >> "$LOG"',
    "python3": 'exec "$(dirname "$0")/python-like" "$IMAGE_PYTHON" "$@"',
    "python3.11": 'exec "$(dirname "$0")/python-like" 3.11 "$@"',
    "python-like": """version=$1; shift
case "$*" in
  *"sys.exit(sys.version_info"*) [ "$version" != 3.10 ];;
  *print*) echo "$version";;
  "-m venv "*)
    echo "venv $3 by python$version" >> "$LOG"
    mkdir -p "$3/bin" "$3/lib/site/grader" "$3/lib/site/reference"
    printf '#!/usr/bin/env bash\\necho "pip $*" >> "$LOG"\\n' > "$3/bin/pip"
    printf '#!/usr/bin/env bash\\necho "python $* cache=${GRADER_CACHE_DIR:-}" >> "$LOG"\\n' > "$3/bin/python"
    printf 'case "$*" in *keep-cases*) [ -z "${NO_BWRAP:-}" ];; *) echo %s/lib/site;; esac\\n' "$3" >> "$3/bin/python"
    chmod 700 "$3/bin/pip" "$3/bin/python" "$3/lib/site/grader";;
  *) exit 9;;
esac""",
}


@pytest.mark.parametrize("image", ["3.10", "3.12"], ids=["ubuntu 22.04", "ubuntu 24.04"])
@pytest.mark.parametrize("bubblewrap", [True, False], ids=["apt has bubblewrap", "no bubblewrap"])
def test_setup_sh_on_gradescopes_base_images(
    autograder_zip: Path, tmp_path: Path, image: str, bubblewrap: bool
) -> None:
    """setup.sh's own steps, on a scratch root, with apt, useradd and Python standing in for an image's: the
    image's python3 where it is 3.11 or later, apt's python3.11 where it is older; the worker users made; the
    venv readable by all, the source, the grader and the reference by root alone; every item's cases kept; no
    bubblewrap, or no case kept, is no failure."""
    root = lay_out(autograder_zip, tmp_path / "autograder")
    shutil.copyfile(root / "source" / "setup.sh", tmp_path / "setup.sh")
    (root / "source").chmod(0o755)
    shims = tmp_path / "shims"
    shims.mkdir()
    for name, body in SHIMS.items():
        (shims / name).write_text("#!/usr/bin/env bash\n" + body + "\n")
        (shims / name).chmod(0o755)
    log = tmp_path / "log"
    env = {"PATH": f"{shims}:/usr/bin:/bin", "LOG": str(log), "IMAGE_PYTHON": image,
           "GRADER_GRADESCOPE_ROOT": str(root), **({} if bubblewrap else {"NO_BWRAP": "1"})}  # fmt: skip
    done = subprocess.run(["bash", str(tmp_path / "setup.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = log.read_text().splitlines()
    if image == "3.12":
        assert "apt-get install -y -qq python3.12-venv" in lines and f"venv {root}/venv by python3.12" in lines
    else:
        assert "apt-get install -y -qq python3.11 python3.11-venv" in lines
        assert f"venv {root}/venv by python3.11" in lines
    assert ("process wall will hold" in done.stdout) is not bubblewrap
    users = [line for line in lines if line.startswith("useradd")]
    assert [line.split("--uid ")[1].split()[0] for line in users] == [str(60100 + k) for k in range(8)]
    assert all("--shell /usr/sbin/nologin" in line and "grader-worker" in line for line in users)
    assert any(line.startswith("pip install -q") and line.endswith(f"{root}/source") for line in lines), lines
    # every item's cases kept once, into the folder run_autograder names; where no wall holds (here: without
    # bubblewrap, as the shim has it) setup.sh goes on all the same
    assert f"python -P -m grader keep-cases cache={root}/kept-cases" in lines, lines
    assert ("the cases were not kept" in done.stdout) is not bubblewrap

    def mode(path: Path) -> int:
        return path.stat().st_mode & 0o777

    assert mode(root) & 0o001, "workers must reach the venv through the root"
    assert mode(root / "venv" / "bin" / "python") & 0o005 == 0o005, "workers must run the venv's Python"
    for private in (
        root / "source",
        root / "venv" / "lib" / "site" / "grader",
        root / "venv" / "lib" / "site" / "reference",
    ):
        assert mode(private) & 0o077 == 0, (private, oct(mode(private)))


def test_where_no_wall_can_be_built_nothing_is_graded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A container where neither bubblewrap nor the process wall can run (the grader not root, say) grades nobody
    behind no wall: results.json says the submission was not graded and why, every item at 0, and the exit is 1."""
    from grader import sandbox
    from grader.platforms import gradescope
    from grader.sandbox import workers

    bare = Wall("none", problems=("bubblewrap (bwrap) is not installed", "the grader is not root"))
    monkeypatch.setattr(sandbox, "wall", lambda isolation="auto": bare)
    monkeypatch.setattr(workers, "wall", lambda isolation="auto": bare)
    copy_parts(ROOT / "solutions", tmp_path / "submission")
    assert gradescope.main(["--root", str(tmp_path)]) == 1
    data = json.loads((tmp_path / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["score"] == 0 and len(data["tests"]) == len(ITEMS)
    assert data["output"].startswith("This submission was not graded") and "the grader is not root" in data["output"]
    assert "the grader is not root" in capsys.readouterr().err
