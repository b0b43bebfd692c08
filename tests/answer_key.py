"""The answer key as tests use it: its distinctive lines (to prove that something holds none of them) and the
released notebooks filled in with it (as a student who solved everything would hand them in)."""

from __future__ import annotations

from pathlib import Path

import nbformat

from grader.contract import PARTS

ROOT = Path(__file__).resolve().parents[1]
DISTINCTIVE = 20  # characters: shorter solution lines ("else:", "return x") also occur in the grader's own code


def solution_lines() -> set[str]:
    """Every line between the solutions' BEGIN and END SOLUTION markers that is long enough to be telling."""
    lines: set[str] = set()
    for part in PARTS:
        solution = (ROOT / "solutions" / f"{part}.py").read_text()
        for block in solution.split("### BEGIN SOLUTION")[1:]:
            lines |= {line.strip() for line in block.split("### END SOLUTION")[0].splitlines()}
    return {line for line in lines if len(line) >= DISTINCTIVE}


def grade_id(cell: nbformat.NotebookNode) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def filled(stub_of: Path, solution: Path) -> nbformat.NotebookNode:
    """The released notebook ``stub_of`` with every solution cell as the notebook ``solution`` has it (the
    instructor's source, markers dropped)."""
    source = {grade_id(c): c for c in nbformat.read(solution, as_version=4).cells}
    nb = nbformat.read(stub_of, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            lines = source[grade_id(cell)].source.splitlines()
            cell.source = "\n".join(line for line in lines if "### BEGIN" not in line and "### END" not in line)
    return nb
