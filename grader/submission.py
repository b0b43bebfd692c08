"""What a submission folder holds for each part: a module, an nbgrader notebook, or nothing.

A part is graded from ``<part>.py`` when there is one, else from a notebook named
``<part>.ipynb`` or ``NN_<part>.ipynb`` (``01_mle.ipynb``, as nbgrader collects them). A
notebook becomes a module made of its code cells, minus nbgrader's autograder (test) cells and
the cells tagged ``demo``; each cell runs on its own, so a cell that raises costs only the
definitions after the error in that cell, and IPython magics (``%matplotlib``, ``!pip``) do
nothing. Cell order does not matter: annotations are not evaluated (as under ``from __future__
import annotations``), and cells that raised run again, up to twice, after the others, so a cell
moved above the imports still defines its function. The module is written by the parent as text
and runs only in a worker, like any other student code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.generate import PARTS
from grader.notebooks import DEMO_TAG

NOTEBOOK_NAME = re.compile(r"^(?:\d+[_-])?(?P<part>mle|divergences|vae|gan|ddpm)\.ipynb$")
CELL_ERRORS = "__grader_cell_errors__"  # the generated module's list of "cell N raised ..." lines
MAX_CELLS = 500  # a notebook with more code cells than this is not a submission

PRELUDE = '''"""{part}, made by the grader from the code cells of {notebook}; each cell runs on its own."""

import linecache as _linecache
import os as _os


class _NoIPython:
    """Magics and shell escapes (%matplotlib, !pip) do nothing outside Jupyter."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def get_ipython():
    return _NoIPython()


_CELLS = {cells!r}
_FLAGS = __import__("__future__").annotations.compiler_flag  # annotations are not evaluated, as in a module
_pending = list(_CELLS)
for _pass in range(3):  # a cell that needs a name defined further down runs again once the rest has run
    _failed, {errors} = [], []
    for _label, _code in _pending:
        _name = _os.path.join(_os.path.dirname(__file__), {notebook!r} + ", " + _label)
        _linecache.cache[_name] = (len(_code), None, _code.splitlines(True), _name)
        try:
            exec(compile(_code, _name, "exec", flags=_FLAGS, dont_inherit=True), globals())
        except BaseException as _exc:
            _failed.append((_label, _code))
            {errors}.append(f"{{_label}} raised {{type(_exc).__name__}}: {{_exc}}")
    if len(_failed) in (0, len(_pending)):
        break
    _pending = _failed
'''


@dataclass(frozen=True)
class PartSource:
    """Where one part comes from; ``problem`` says why it cannot be graded, ``module`` is generated code."""

    part: str
    label: str  # the file the student knows: "mle.py" or "01_mle.ipynb"
    module: str | None = None
    problem: str | None = None


def _transform(code: str) -> str:
    """IPython syntax (magics, shell escapes) as plain Python calls, when IPython is installed."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover
        return code
    try:
        return TransformerManager().transform_cell(code)
    except Exception:
        return code


def notebook_module(path: Path, part: str) -> str:
    """The module text of one notebook, or ValueError saying why it is not a readable notebook."""
    try:
        notebook = nbformat.reads(path.read_text(encoding="utf-8", errors="replace"), as_version=4)
    except (json.JSONDecodeError, nbformat.reader.NotJSONError) as err:
        raise ValueError(f"it is not valid notebook JSON ({str(err).splitlines()[0][:200]})") from None
    except Exception as err:
        raise ValueError(f"it is not a notebook nbformat can read ({type(err).__name__}: {str(err)[:200]})") from None
    cells = notebook.get("cells")
    if not isinstance(cells, list) or not cells:
        raise ValueError("it has no cells")
    code: list[tuple[str, str]] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata") or {}
        nbgrader = meta.get("nbgrader") or {}
        if nbgrader.get("grade") is True or DEMO_TAG in (meta.get("tags") or []):
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        code.append((f"cell {number}", _transform(source)))
    if len(code) > MAX_CELLS:
        raise ValueError(f"it has {len(code)} code cells (at most {MAX_CELLS})")
    return PRELUDE.format(part=part, notebook=path.name, cells=code, errors=CELL_ERRORS)


def find_parts(submission: Path) -> tuple[dict[str, PartSource], list[str]]:
    """Each part's source in the folder (absent parts are left out), and notes for the report."""
    notebooks: dict[str, list[Path]] = {}
    # a notebook `nbgrader preflight` found unreadable keeps its place, renamed NAME.ipynb.unreadable
    for path in sorted(submission.glob("*.ipynb")) + sorted(submission.glob("*.ipynb.unreadable")):
        match = NOTEBOOK_NAME.match(path.name.removesuffix(".unreadable"))
        if match and path.is_file():
            notebooks.setdefault(match["part"], []).append(path)
    found: dict[str, PartSource] = {}
    notes: list[str] = []
    for part in PARTS:
        candidates = notebooks.get(part, [])
        if (submission / f"{part}.py").is_file():
            found[part] = PartSource(part, f"{part}.py")
            if candidates:
                notes.append(f"Graded {part}.py; {candidates[0].name} beside it was not graded.")
            continue
        if not candidates:
            continue
        path = candidates[0]
        if len(candidates) > 1:
            notes.append(f"Graded {path.name}; {', '.join(p.name for p in candidates[1:])} beside it was not graded.")
        try:
            found[part] = PartSource(part, path.name, module=notebook_module(path, part))
        except ValueError as err:
            found[part] = PartSource(
                part, path.name, problem=f"{path.name} could not be graded: {err}. Re-save it from Jupyter."
            )
    return found, notes
