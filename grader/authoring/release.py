"""Build the student bundle: exercises, public checks with their stored results, and the code to run them.

    python -m grader release OUT

OUT gets the five student notebooks (at the top, so that their cells can import ``grader``),
``exercises/`` (the stubs), ``grader/`` with only what ``python -m grader check`` and the notebooks'
check cells need (the public checks, the worker and its wire format, the comparison, grader/kernel.py)
and ``grader/public/`` (stored expected results and their manifest), plus a README. Not a line of
solutions/, reference/ or the hidden checks: a test scans the bundle for every solution line and for
any import of reference or solutions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GRADER_FILES = ("__init__.py", "__main__.py", "compare.py", "contract.py", "intake.py", "kernel.py", "public.py",
                "untrusted.py")  # fmt: skip
GRADER_FOLDERS = ("runtime", "sandbox")  # copied whole
README = """# Generative models: exercises

Work in the notebooks (01_mle.ipynb ... 05_ddpm.ipynb: the math, your code, a check cell after
each function, plots), or fill in the functions in exercises/ (each docstring gives the formula,
the shapes and a hint) and check your work against the public checks:

    python -m grader check exercises

The public checks are a few fixed cases per item; your grade comes from many more, hidden, checks
of the same functions. Needs Python 3.11 with numpy, scipy, torch and psutil.
"""


def release(out: Path) -> list[Path]:
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty")
    (out / "grader" / "public").mkdir(parents=True)
    shutil.copytree(ROOT / "exercises", out / "exercises", ignore=shutil.ignore_patterns("__pycache__", "notebooks"))
    for notebook in sorted((ROOT / "exercises" / "notebooks").glob("*.ipynb")):
        shutil.copy2(notebook, out / notebook.name)
    for name in GRADER_FILES:
        shutil.copy2(ROOT / "grader" / name, out / "grader" / name)
    shutil.copytree(
        ROOT / "grader" / "runtime", out / "grader" / "runtime", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("expected.json", "manifest.json"):
        shutil.copy2(ROOT / "grader" / "public" / name, out / "grader" / "public" / name)
    (out / "README.md").write_text(README)
    return sorted(p for p in out.rglob("*") if p.is_file())
