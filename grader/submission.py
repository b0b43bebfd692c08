"""What a submission folder holds for each part: a module, an nbgrader notebook, or nothing.

A part is graded from ``<part>.py`` when there is one, else from a notebook named
``<part>.ipynb`` or ``NN_<part>.ipynb`` (``01_mle.ipynb``, as nbgrader collects them), or its
``.ipynb.unreadable`` rename by ``nbgrader preflight``. This module only looks at names and
entry types, in the grader's private copy of the submission (grader/intake.py); a notebook is
read and made into a module by grader/convert.py, in a sandboxed process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.contract import NOTEBOOK_NAME, PARTS


def part_of(name: str) -> str | None:
    """The part a file name would be graded as (``mle.py``, ``01_mle.ipynb``), or None."""
    if name.removesuffix(".py") in PARTS:
        return name.removesuffix(".py")
    match = NOTEBOOK_NAME.match(name)
    return match["part"] if match else None


@dataclass(frozen=True)
class PartSource:
    """Where one part comes from: ``label`` is the file the student knows ("mle.py" or "01_mle.ipynb")."""

    part: str
    label: str

    @property
    def is_notebook(self) -> bool:
        return not self.label.endswith(".py")


def find_parts(copy: Path) -> tuple[dict[str, PartSource], list[str]]:
    """Each part's source in the private copy (absent parts are left out), and notes for the report."""
    notebooks: dict[str, list[Path]] = {}
    # a notebook `nbgrader preflight` found unreadable keeps its place, renamed NAME.ipynb.unreadable
    for path in sorted(copy.glob("*.ipynb")) + sorted(copy.glob("*.ipynb.unreadable")):
        match = NOTEBOOK_NAME.match(path.name.removesuffix(".unreadable"))
        if match and path.is_file() and not path.is_symlink():
            notebooks.setdefault(match["part"], []).append(path)
    found: dict[str, PartSource] = {}
    notes: list[str] = []
    for part in PARTS:
        candidates = notebooks.get(part, [])
        module = copy / f"{part}.py"
        if module.is_file() and not module.is_symlink():
            found[part] = PartSource(part, f"{part}.py")
            if candidates:
                notes.append(f"Graded {part}.py; {candidates[0].name} beside it was not graded.")
            continue
        if module.is_dir() and candidates:
            notes.append(f"{part}.py is a folder, not a module; graded {candidates[0].name} instead.")
        if not candidates:
            continue
        path = candidates[0]
        if len(candidates) > 1:
            notes.append(f"Graded {path.name}; {', '.join(p.name for p in candidates[1:])} beside it was not graded.")
        found[part] = PartSource(part, path.name)
    return found, notes
