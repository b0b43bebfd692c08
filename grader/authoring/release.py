"""Build the student bundle: exercises, public checks with their stored results, and the code to run them.

    python -m grader release OUT

OUT gets the five student notebooks (at the top, so that their cells can import ``grader``),
``exercises/`` (the stubs), ``grader/`` with exactly the modules that the student's command line
(grader/student/) and the notebooks' check cells (grader/kernel.py) import, at any depth, found by
reading their imports; grader/runtime/ (which the sandbox copies) and grader/public/ (the stored
expected results and their manifest), which that code reads; the student's command line as
``python -m grader``; and a README. Not a line of
solutions/, reference/ or the hidden checks: a test scans the bundle for every solution line and for
any import of reference or solutions.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = ("grader.student.cli", "grader.student.__main__", "grader.kernel")  # the command line, check cells
READ_AT_RUN_TIME = ("runtime", "public")  # folders of grader/ the shipped code reads rather than imports
README = """# Generative models: exercises

Work in the notebooks (01_mle.ipynb ... 05_ddpm.ipynb: the math, your code, a check cell after
each function, plots), or fill in the functions in exercises/ (each docstring gives the formula,
the shapes and a hint) and check your work against the public checks:

    python -m grader check exercises

The public checks are a few fixed cases per item; your grade comes from many more, hidden, checks
of the same functions. Needs Python 3.11 with numpy, scipy, torch and psutil.
"""


def module_path(name: str) -> Path | None:
    """The file of module ``name`` of this project (a package's __init__.py), or None: ``grader.compare.FLOAT32``
    names an attribute, ``numpy`` is not ours."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (function-level imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def shipped_modules(entries: tuple[str, ...] = ENTRY_POINTS) -> dict[str, Path]:
    """The grader's modules a student's bundle needs: everything ``entries`` import, at any depth, with the
    packages on the way. Derived from the code, so the bundle cannot miss a module nor carry an unused one."""
    found: dict[str, Path] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in found or name.split(".")[0] != "grader":
            continue
        path = module_path(name)
        if path is None:
            continue
        found[name] = path
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # the packages it lives in
        todo += sorted(imports_of(path))
    return found


def release(out: Path) -> list[Path]:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "exercises", out / "exercises", ignore=shutil.ignore_patterns("__pycache__", "notebooks"))
    for notebook in sorted((ROOT / "exercises" / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, out / notebook.name)
    for path in shipped_modules().values():
        target = out / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    for folder in READ_AT_RUN_TIME:
        shutil.copytree(
            ROOT / "grader" / folder, out / "grader" / folder, ignore=shutil.ignore_patterns("__pycache__"),
            dirs_exist_ok=True,
        )  # fmt: skip
    shutil.copy2(ROOT / "grader" / "student" / "__main__.py", out / "grader" / "__main__.py")  # the student's CLI
    (out / "README.md").write_text(README)
    return sorted(p for p in out.rglob("*") if p.is_file())
