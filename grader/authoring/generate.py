"""Make the student stubs in exercises/ from the instructor sources in solutions/.

Each ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block (nbgrader's markers) is
replaced, at its indentation, by ``raise NotImplementedError(...)`` naming the graded
item the enclosing function belongs to; ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN
TESTS`` blocks are dropped. Everything else (docstrings, given scaffolding such as
``VAE.__init__``, ``Generator``, ``Denoiser``) is copied as it is. A test regenerates the
stubs and fails when exercises/ differs from what is committed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from grader.contract import PARTS

ROOT = Path(__file__).resolve().parents[2]

BEGIN_SOLUTION = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION\s*$")
END_SOLUTION = re.compile(r"^\s*### END SOLUTION\s*$")
BEGIN_HIDDEN = re.compile(r"^\s*### BEGIN HIDDEN TESTS\s*$")
END_HIDDEN = re.compile(r"^\s*### END HIDDEN TESTS\s*$")

EXERCISES_DOC = '"""Student stubs of the five parts, generated from solutions/ by ``python -m grader generate``."""\n'


class MarkerError(ValueError):
    """A solution file whose markers do not pair up."""


def _enclosing_functions(source: str) -> dict[int, str]:
    """Line number (1-based) → qualified name of the innermost function defined around it."""
    owner: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    for line in range(child.lineno, (child.end_lineno or child.lineno) + 1):
                        owner[line] = name
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return owner


def strip_solutions(source: str, part: str) -> str:
    """The student version of one solution module's source."""
    owner = _enclosing_functions(source)
    out: list[str] = []
    state = "code"
    for number, line in enumerate(source.splitlines(keepends=True), start=1):
        if state == "code":
            if match := BEGIN_SOLUTION.match(line):
                function = owner.get(number)
                if function is None:
                    raise MarkerError(f"{part}.py:{number}: a solution block must sit inside a function")
                message = f"{part}.{function}: not implemented yet"
                out.append(f'{match["indent"]}raise NotImplementedError("{message}")\n')
                state = "solution"
            elif BEGIN_HIDDEN.match(line):
                state = "hidden"
            elif END_SOLUTION.match(line) or END_HIDDEN.match(line):
                raise MarkerError(f"{part}.py:{number}: an END marker without its BEGIN")
            else:
                out.append(line)
        elif state == "solution" and END_SOLUTION.match(line):
            state = "code"
        elif state == "hidden" and END_HIDDEN.match(line):
            state = "code"
        elif BEGIN_SOLUTION.match(line) or BEGIN_HIDDEN.match(line):
            raise MarkerError(f"{part}.py:{number}: a BEGIN marker inside an open block")
    if state != "code":
        raise MarkerError(f"{part}.py: a {state} block is never closed")
    return "".join(out)


def exercise_sources(solutions: Path = ROOT / "solutions") -> dict[str, str]:
    """File name → content of every file exercises/ should hold."""
    files = {"__init__.py": EXERCISES_DOC}
    for part in PARTS:
        files[f"{part}.py"] = strip_solutions((solutions / f"{part}.py").read_text(), part)
    return files


def generate(out: Path = ROOT / "exercises", solutions: Path = ROOT / "solutions") -> list[Path]:
    """Write exercises/ from solutions/; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in exercise_sources(solutions).items():
        path = out / name
        path.write_text(text)
        written.append(path)
    return written
