"""What a submission folder holds for each part: a module, an nbgrader notebook, or nothing.

A part is graded from ``<part>.py`` when there is one, else from a notebook named
``<part>.ipynb`` or ``NN_<part>.ipynb`` (``01_mle.ipynb``, as nbgrader collects them), or its
``.ipynb.unreadable`` rename by ``nbgrader preflight``. Failing those, from the one file whose name is
a near miss of them (``MLE.py``, ``01_mle.py`` exported from the notebook, Jupyter's
``01_mle-Copy1.ipynb``, a browser's ``02_divergences (1).ipynb``), with a note; when several near
misses fit, none is graded and the missing part's feedback names them. This module only looks at names and
entry types, in the grader's private copy of the submission (grader/intake/); a notebook is
read and made into a module by grader/convert.py, in a sandboxed process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from grader.contract import NOTEBOOK_NAME, NOTEBOOK_NAMES, PARTS

COPY_MARK = re.compile(r"(?:[-_ ]?copy\d*|\s*\(\d+\))+$", re.IGNORECASE)  # -Copy1, " (1)", " copy", "_copy2"
NUMBER = re.compile(r"^\d+[_-]")


def near_part(name: str) -> str | None:
    """The part a file name that ``part_of`` does not take was most likely meant as, or None: ``MLE.py``,
    ``01_mle.py``, ``01_mle-Copy1.ipynb``, ``02_divergences (1).ipynb``, ``Mle copy.py``."""
    lower = name.lower()
    suffix = next((s for s in (".ipynb", ".py") if lower.endswith(s)), None)
    if suffix is None or part_of(name) is not None:
        return None
    stem = NUMBER.sub("", COPY_MARK.sub("", name[: -len(suffix)]).strip()).lower()
    return stem if stem in PARTS else None


def near_misses(copy: Path, part: str) -> list[str]:
    """The files in ``copy`` whose names are near misses of ``part``'s module or notebook."""
    return [p.name for p in sorted(copy.iterdir()) if near_part(p.name) == part and p.is_file() and not p.is_symlink()]


def did_you_mean(copy: Path, part: str) -> str:
    """' Did you mean A or B? Keep one, named <part>.py.' for a missing part's feedback, or '' when no name is near."""
    near = near_misses(copy, part)
    return f" Did you mean {' or '.join(near)}? Keep one, named {part}.py." if near else ""


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
        return self.label.lower().endswith((".ipynb", ".ipynb.unreadable"))

    @property
    def expected_name(self) -> str:
        """The name the grader expects for this part's file: ``mle.py``, or ``01_mle.ipynb`` for a notebook."""
        return f"{NOTEBOOK_NAMES[self.part]}.ipynb" if self.is_notebook else f"{self.part}.py"

    @property
    def filename(self) -> str:
        """The file a worker imports: the module as handed in, or the module made from the notebook."""
        return f"{self.part}.py" if self.is_notebook else self.label


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
            near = near_misses(copy, part)
            if len(near) == 1:
                source = found[part] = PartSource(part, near[0])
                notes.append(f"Graded {near[0]} as {part}'s {'notebook' if source.is_notebook else 'module'}: "
                             f"name it {source.expected_name} next time.")  # fmt: skip
            continue
        path = candidates[0]
        if len(candidates) > 1:
            notes.append(f"Graded {path.name}; {', '.join(p.name for p in candidates[1:])} beside it was not graded.")
        found[part] = PartSource(part, path.name)
    return found, notes


def unwrap(folder: Path) -> Path:
    """The folder to grade in a copied or unpacked upload: a folder that holds one folder and nothing else is a
    wrapper (``alice.zip`` → ``alice/mle.py``, or a zip of a folder of a folder)."""
    while True:
        inside = list(folder.iterdir())
        if len(inside) == 1 and inside[0].is_dir() and not inside[0].is_symlink():
            folder = inside[0]
        else:
            return folder
