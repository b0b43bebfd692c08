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

The regrade is timed ``--regrades`` times (its results removed before each), and the ratio taken
against the median: one regrade varies by a second or two on the 2-core machine, as much as the
changes it is meant to measure. Beside each time, the machine's busy and idle CPU-seconds over it:
a regrade that leaves little idle is bound by the CPU it spends (``benchmarks.cpu_by_process``
says which processes spend it). ``nbgrader autograde`` takes minutes and is timed once.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import psutil

from benchmarks.cpu_by_process import machine_cpu
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
    return timed(command, cwd)[0]


def timed(command: list[str], cwd: Path | None = None) -> tuple[float, float, float]:
    """Wall time of a command that must succeed, and the machine's busy and idle CPU-seconds meanwhile."""
    before = psutil.cpu_times()
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True)
    wall = time.perf_counter() - start
    busy, idle = machine_cpu(before, psutil.cpu_times())
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return wall, busy, idle


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
    parser.add_argument("--regrades", type=int, default=3, help="times the regrade is timed (default 3)")
    args = parser.parse_args(argv)
    if args.regrades < 1:
        parser.error("--regrades must be at least 1")
    scratch = Path(tempfile.mkdtemp(prefix="nbgrader-vs-regrade-"))  # removed after a run whose scores were right
    course = scratch / "course"
    kinds = build(course, args.students)
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    autograde, busy, idle = timed([nbgrader, "autograde", ASSIGNMENT], cwd=course)
    cpu = [f"CPU: {busy:.1f} s busy, {idle:.1f} s idle"]
    report = course.parent / "regrade.json"
    command = [sys.executable, "-m", "grader", "nbgrader", "regrade", str(course), "--workers", str(args.workers)]
    regrades = []
    for _ in range(args.regrades):
        shutil.rmtree(course / "isolated", ignore_errors=True)  # or the next regrade finds every result stored
        wall, busy, idle = timed([*command, "--json", str(report)])
        regrades.append(wall)
        cpu.append(f"CPU: {busy:.1f} s busy, {idle:.1f} s idle")
    regrade = statistics.median(regrades)
    rows = {r["student"]: r for r in json.loads(report.read_text())["submissions"]}
    for student, kind in kinds.items():
        row = rows[student]
        expected = SCORES.get(kind)
        right = row["isolated"] == expected if expected is not None else 0 < row["isolated"] < 100
        if not right or row["in_kernel"] != row["isolated"]:
            raise SystemExit(
                f"{student} ({kind}): in the kernel {row['in_kernel']}, isolated {row['isolated']} (the course is "
                f"kept in {course})"
            )
    shutil.rmtree(scratch)
    n = args.students
    print(f"{n} students ({', '.join(f'{sum(k == kind for k in kinds.values())} {kind}' for kind in KINDS)})")
    print(f"  nbgrader autograde:               {autograde:7.1f} s  ({autograde / n:.1f} s a student; {cpu[0]})")
    for wall, said in zip(regrades, cpu[1:], strict=True):
        print(f"  nbgrader regrade --workers {args.workers}:    {wall:7.1f} s  ({said})")
    print(f"  regrade, median of {len(regrades)}:           {regrade:7.1f} s  ({regrade / n:.1f} s a student)")
    print(f"  ratio autograde / regrade:        {autograde / regrade:7.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
