"""The student package, as a JupyterHub image gets it: the release's folder installed with its declared
dependencies and nothing else, and every released notebook run there with nbclient.

The environment is a fresh virtual environment holding the wheel ``pip`` builds from the release and,
linked from this test's own environment, exactly the distributions its requirements name, at any depth
(the course machines have no index to download them from, and this keeps the test to seconds). In it:
the stub notebooks run to the end, every check cell saying "Not implemented yet" and nothing failing to
import; the notebooks filled with the solutions pass every check cell; nothing importable holds a
solution or the reference.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from packaging.requirements import Requirement

from grader import __version__
from grader.authoring.release import DISTRIBUTION, release
from tests.answer_key import filled, solution_lines

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_TIMEOUT_S = 300  # per cell; the demos train small models for a few seconds on a laptop


def closure(requirements: list[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions that ``requirements`` name, and theirs, at any depth (markers evaluated
    for this Python, no extras but those named)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        requirement, extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": extra}):
            continue
        key = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if key in found:
            continue
        dist = importlib.metadata.distribution(requirement.name)
        found[key] = dist
        for extra_name in requirement.extras or {""}:
            todo += [(Requirement(r), extra_name) for r in dist.requires or []]
    return list(found.values())


def top_level(dist: importlib.metadata.Distribution) -> set[str]:
    """The names a distribution puts directly in site-packages (packages, modules, .libs, its dist-info)."""
    return {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}


@pytest.fixture(scope="module")
def student_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("student")
    bundle = tmp / "release"
    release(bundle)
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
         str(bundle)], check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("*.whl")
    env = tmp / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               check=True, capture_output=True, text=True).stdout.strip())  # fmt: skip
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        declared = [line.split(":", 1)[1].strip() for line in archive.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]  # fmt: skip
    ours = Path(importlib.metadata.distribution("numpy").locate_file(""))
    for dist in closure(declared):
        for name in top_level(dist):
            if not (site / name).exists():
                (site / name).symlink_to(ours / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         str(wheel)], check=True, capture_output=True,
    )  # fmt: skip
    kernels = tmp / "jupyter" / "kernels" / "student"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student image", "language": "python",
    }))  # fmt: skip
    home = tmp / "home"  # where the student works: not the release folder, whose grader/ would be imported
    home.mkdir()
    return {"bundle": bundle, "python": python, "site": site, "jupyter": tmp / "jupyter", "home": home}


def in_env(env: dict[str, Path], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([env["python"], "-c", code], cwd=env["home"], capture_output=True, text=True, timeout=300)


def test_nothing_importable_holds_a_solution_or_the_reference(student_env: dict[str, Path]) -> None:
    found = in_env(student_env, (
        "import importlib.util, json, grader\n"
        "print(json.dumps({'grader': grader.__file__,\n"
        "    'missing': [n for n in ('reference', 'solutions', 'exercises', 'grader.checks', 'grader.grading.run',\n"
        "                            'grader.hidden', 'grader.regenerate') if importlib.util.find_spec(n) is None]}))\n"
    ))  # fmt: skip
    assert found.returncode == 0, found.stderr
    seen = json.loads(found.stdout)
    assert seen["grader"].startswith(str(student_env["site"]))  # the installed package, not a folder nearby
    assert seen["missing"] == ["reference", "solutions", "exercises", "grader.checks", "grader.grading.run",
                               "grader.hidden", "grader.regenerate"]  # fmt: skip
    installed = {p.name for p in student_env["site"].iterdir() if not p.is_symlink()}
    assert {n for n in installed if not n.startswith(("_", "__pycache__"))} == {
        "grader",
        f"{DISTRIBUTION.replace('-', '_')}-{__version__}.dist-info",
    }  # the package is all the environment holds beside its dependencies
    lines = solution_lines()
    for path in (student_env["site"] / "grader").rglob("*"):
        if path.suffix in (".py", ".json"):
            text = path.read_text()
            assert "import reference" not in text and "from reference" not in text, path
            assert not lines & {line.strip() for line in text.splitlines()}, path


def run_notebook(env: dict[str, Path], nb: nbformat.NotebookNode, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_PATH", str(env["jupyter"]))
    client = NotebookClient(nb, kernel_name="student", timeout=NOTEBOOK_TIMEOUT_S, allow_errors=True,
                            resources={"metadata": {"path": str(env["home"])}})  # fmt: skip
    client.execute()


def errors(nb: nbformat.NotebookNode) -> list[tuple[str, str, str]]:
    """(the cell's grade id or its first line, the error's name, its value) for every cell that raised."""
    found = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                where = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.source.splitlines()[0]
                found.append((where, output["ename"], output["evalue"]))
    return found


def check_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and "public_check(" in c.source]


@pytest.mark.parametrize("name", [p.name for p in sorted((ROOT / "exercises" / "notebooks").glob("*.ipynb"))])
def test_released_notebooks_run_in_the_students_environment(
    name: str, student_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = nbformat.read(student_env["bundle"] / name, as_version=4)
    run_notebook(student_env, stub, monkeypatch)
    raised = errors(stub)
    assert not [e for e in raised if e[1] in ("ImportError", "ModuleNotFoundError")], raised
    by_cell = {e[0]: e for e in raised}
    for cell in check_cells(stub):
        where = cell.metadata["nbgrader"]["grade_id"]
        assert where in by_cell and by_cell[where][1] == "CheckFailed", (where, raised)
        assert "Not implemented yet." in by_cell[where][2], by_cell[where]
    assert {e[1] for e in raised} <= {"CheckFailed", "NotImplementedError"}, raised  # demos call the stubs

    assert str(ROOT) not in nbformat.writes(stub)  # nothing of the instructor's checkout in what students read

    mine = filled(stub_of=student_env["bundle"] / name, solution=ROOT / "solutions" / "notebooks" / name)
    run_notebook(student_env, mine, monkeypatch)
    assert errors(mine) == []
    for cell in check_cells(mine):
        text = "".join(o.get("text", "") for o in cell.outputs)
        assert re.search(r": (\d+)/\1 public checks pass\.", text), text
