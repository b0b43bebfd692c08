"""``nbgrader autograde`` against the isolated ``nbgrader regrade`` of the same course, in one run.

    python -m benchmarks.nbgrader_vs_regrade [--students 6] [--workers 2]

Builds a course (``python -m grader nbgrader init``, ``nbgrader generate_assignment``) with
``--students`` submissions of all five notebooks, passing and failing ones in turn: the released
notebooks filled in with the solutions, the release untouched, and the solutions with one mistake
in part 1 (the unbiased variance). Times ``nbgrader autograde`` of the whole course (every
notebook executed in a kernel, hidden tests included), then ``python -m grader nbgrader regrade``
of the same course (each student graded in the sandbox by the class engine, ``--workers`` at once),
both through their command lines, start-up included, and prints each time, the seconds per
student and the ratio. The regrade's scores are checked against the kinds of submission.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.authoring.notebooks import NOTEBOOK_NAMES
from tests.answer_key import filled, grade_id

ASSIGNMENT = "generative_models"
NAMES = [f"{name}.ipynb" for name in NOTEBOOK_NAMES.values()]
KINDS = ("solved", "untouched", "unbiased variance")
SCORES = {"solved": 100, "untouched": 0}
MLE = "return float(mu), float(np.mean((x - mu) ** 2))"
UNBIASED = "return float(mu), float(np.sum((x - mu) ** 2) / (len(x) - 1))"
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def run(command: list[str], cwd: Path | None = None) -> float:
    """Wall time of a command that must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start


def build(course: Path, students: int) -> dict[str, str]:
    """The course and its submissions; student → kind."""
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    run([sys.executable, "-m", "grader", "nbgrader", "init", str(course)])
    run([nbgrader, "generate_assignment", ASSIGNMENT], cwd=course)
    kinds = {f"student{k:02d}": KINDS[k % len(KINDS)] for k in range(students)}
    for student, kind in kinds.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        for name in NAMES:
            release = course / "release" / ASSIGNMENT / name
            if kind == "untouched":
                nb = nbformat.read(release, as_version=4)
            else:
                nb = filled(stub_of=release, solution=course / "source" / ASSIGNMENT / name)
            if kind == "unbiased variance":
                for cell in nb.cells:
                    if grade_id(cell) == "mle-gaussian_mle":
                        assert MLE in cell.source
                        cell.source = cell.source.replace(MLE, UNBIASED)
            nbformat.write(nb, folder / name)
    return kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    course = Path(tempfile.mkdtemp(prefix="nbgrader-vs-regrade-")) / "course"
    kinds = build(course, args.students)
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    autograde = run([nbgrader, "autograde", ASSIGNMENT], cwd=course)
    report = course.parent / "regrade.json"
    command = [sys.executable, "-m", "grader", "nbgrader", "regrade", str(course), "--workers", str(args.workers)]
    regrade = run([*command, "--json", str(report)])
    rows = {r["student"]: r for r in json.loads(report.read_text())["submissions"]}
    for student, kind in kinds.items():
        row = rows[student]
        expected = SCORES.get(kind)
        right = row["isolated"] == expected if expected is not None else 0 < row["isolated"] < 100
        if not right or row["in_kernel"] != row["isolated"]:
            raise SystemExit(f"{student} ({kind}): in the kernel {row['in_kernel']}, isolated {row['isolated']}")
    n = args.students
    print(f"{n} students ({', '.join(f'{sum(k == kind for k in kinds.values())} {kind}' for kind in KINDS)})")
    print(f"  nbgrader autograde:               {autograde:7.1f} s  ({autograde / n:.1f} s a student)")
    print(f"  nbgrader regrade --workers {args.workers}:    {regrade:7.1f} s  ({regrade / n:.1f} s a student)")
    print(f"  ratio autograde / regrade:        {autograde / regrade:7.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
