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

The bundle is also the **student package**: its ``pyproject.toml`` installs ``grader/`` (the public checks,
their stored results, the notebooks' helpers) as the distribution ``genmath-student``, which is what a
JupyterHub image needs for the notebooks' check cells to run; ``requirements.txt`` pins the versions the
release was made with. tests/test_student_package.py installs it, with its declared dependencies and
nothing else, and runs every notebook there.
"""

from __future__ import annotations

import ast
import importlib.metadata
import shutil
from pathlib import Path

from grader import __version__

ROOT = Path(__file__).resolve().parents[2]
ENTRY_POINTS = ("grader.student.cli", "grader.student.__main__", "grader.kernel")  # the command line, check cells
READ_AT_RUN_TIME = ("runtime", "public")  # folders of grader/ the shipped code reads rather than imports
# What the bundle's code and notebooks import (tests/test_public_and_release.py derives the imports and
# checks that each is here), as pip names with the project's version floors.
REQUIREMENTS = {
    "numpy": "numpy>=1.26",
    "scipy": "scipy>=1.11",
    "torch": "torch>=2.4",
    "psutil": "psutil>=5.9",
    "nbformat": "nbformat>=5.9",
    "IPython": "ipykernel>=6",
    "matplotlib": "matplotlib>=3.8",
    "sklearn": "scikit-learn>=1.3",
}
DISTRIBUTION = "genmath-student"
PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = "Public checks of the generative-models exercises and the notebooks' helpers: no solution, no reference."
requires-python = ">=3.11"
dependencies = [{dependencies}]

[tool.setuptools.packages.find]
include = ["grader*"]

[tool.setuptools.package-data]
grader = ["public/*.json"]
"""
README = """# Generative models: exercises

## Install

Python 3.11 or newer, then, in this folder:

    python3 -m venv .venv && .venv/bin/pip install {requirements} jupyterlab

On your own machine this folder needs no install of its own: run everything from here.

## On a JupyterHub

The notebooks' check cells import `grader`, the public checks this folder holds. Put them on the
students' image as a package, `{name}`, with the versions this release was checked with:

    pip install -r requirements.txt .        # in this folder, in the image's build (a Dockerfile's RUN)

It holds the public checks, their stored results and the notebooks' helpers, and nothing of the
solutions or of the grader's reference. It is named `grader` when imported, as the instructor's own
grader is: install it on students' images only.

## Work

In the notebooks (01_mle.ipynb ... 05_ddpm.ipynb: the math, your code, a check cell after each
function, plots), or in the modules of exercises/ (each docstring gives the formula, the shapes and
a hint). CONTRACT.md names every graded function, its signature, its definition and its points.

## Check

    python -m grader check exercises                       # every item, on your modules
    python -m grader check 01_mle.ipynb                    # one notebook (or one module)
    python -m grader check . --items mle.binomial_mle      # only some items

The public checks are a few fixed cases per item; your grade comes from many more, hidden, checks
of the same functions.

## Hand in

Either the five modules (mle.py, divergences.py, vae.py, gan.py, ddpm.py) or the five notebooks,
under these names. This runs the public checks and writes submission.zip holding exactly those files:

    python -m grader submit exercises        # your modules
    python -m grader submit .                # or your notebooks, in this folder
"""


def module_path(name: str) -> Path | None:
    """The file of module ``name`` of this project (a package's __init__.py), or None:
    ``grader.grading.compare.FLOAT32`` names an attribute, ``numpy`` is not ours."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (function-level imports too)."""
    return imports_in(path.read_text())


def imports_in(source: str) -> set[str]:
    """Every module the Python ``source`` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
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
    (out / "README.md").write_text(
        README.format(requirements=" ".join(f'"{r}"' for r in REQUIREMENTS.values()), name=DISTRIBUTION)
    )
    shutil.copy2(ROOT / "CONTRACT.md", out / "CONTRACT.md")
    dependencies = ", ".join(f'"{r}"' for r in REQUIREMENTS.values())
    (out / "pyproject.toml").write_text(PYPROJECT.format(name=DISTRIBUTION, version=__version__,
                                                         dependencies=dependencies))  # fmt: skip
    (out / "requirements.txt").write_text(pinned())
    return sorted(p for p in out.rglob("*") if p.is_file())


def pinned() -> str:
    """requirements.txt: each dependency at the version installed where the release is made (the versions its
    stored results were checked with), without a local build tag such as +cpu."""
    lines = ["# The versions this release was made and checked with (python -m grader release)."]
    for requirement in REQUIREMENTS.values():
        name = requirement.split(">")[0].split("=")[0]
        lines.append(f"{name}=={importlib.metadata.version(name).split('+')[0]}")
    return "\n".join(lines) + "\n"
