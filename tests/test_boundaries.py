"""The project's boundaries are folders, and what crosses them is read from the code, not remembered.

- grader/runtime/ is what the sandbox sees: its files import only each other, the standard library,
  NumPy, torch, nbformat and IPython (to read notebooks); never the rest of the grader, reference/ or solutions/.
- grader/contract.py, the constants everyone shares, imports nothing of the project.
- No module on the grading path (what ``grade`` and the student's ``check`` import) imports
  grader/authoring/ (generation, notebooks, the corpus, the audit, the release).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader.authoring.release import imports_of

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "grader" / "runtime"
AUTHORING_PACKAGE = "grader.authoring"  # generation, notebooks, corpus, audit, release


@pytest.mark.parametrize("path", sorted(RUNTIME.glob("*.py")), ids=lambda p: p.name)
def test_the_runtime_imports_only_itself_the_standard_library_and_numerics(path: Path) -> None:
    siblings = {p.stem for p in RUNTIME.glob("*.py")}
    allowed_third_party = {"numpy", "torch", "nbformat", "IPython"}  # the last two: the converter reads notebooks
    for name in imports_of(path):
        top = name.split(".")[0]
        if top in siblings or top in allowed_third_party or top in sys.stdlib_module_names or top == "__future__":
            continue
        pytest.fail(f"grader/runtime/{path.name} imports {name}: the sandbox sees only grader/runtime/")


def test_the_contract_imports_nothing_of_the_project() -> None:
    tops = {name.split(".")[0] for name in imports_of(ROOT / "grader" / "contract.py")}
    assert not tops & {"grader", "reference", "solutions", "exercises"}, tops


GRADING_PATH = ("grader.grading.run", "grader.public", "grader.kernel", "grader.sandbox", "grader.grading.timing",
                "grader.outputs.report", "grader.nbgrader.course")  # fmt: skip


def test_the_grading_path_imports_no_authoring_module() -> None:
    code = "import sys; " + "; ".join(f"import {m}" for m in GRADING_PATH) + "; print(' '.join(sys.modules))"
    loaded = set(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.split())  # fmt: skip
    authoring = sorted(m for m in loaded if m == AUTHORING_PACKAGE or m.startswith(AUTHORING_PACKAGE + "."))
    assert set(GRADING_PATH) <= loaded and not authoring, authoring
