"""Class throughput: a synthetic class graded by ``grade-class`` with 1 and with 2 workers, in one run.

    python -m benchmarks.class_throughput [--size 20] [--workers 1 2]

The class: full solutions (each with a distinct comment, so that no digest repeats), the stubs,
a few mutants of the discrimination corpus, and one submission whose ``binomial_mle`` hangs (every
call runs into the time limit). Each worker count grades the whole class afresh (``--force``, a new
output folder) through the command line, start-up of the pool included, as a course sees it.
Printed: submissions per minute, seconds per submission amortized, the speedup of each worker count
over the first, and the same figures for one ``grade`` of the solutions, measured in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from grader.authoring.corpus import MUTANTS, patched

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("mle", "divergences", "vae", "gan", "ddpm")
MUTANT_NAMES = {("mle.gaussian_mle", "unbiased"), ("divergences.kl_divergence", "reversed"),
                ("ddpm.ddpm_train_step.speed", "per-sample loop")}  # fmt: skip
HANG = "    ### BEGIN SOLUTION\n    k, n = "


def build(folder: Path, size: int) -> dict[str, int]:
    """Write the class into ``folder``; how many submissions of each kind."""
    kinds = {"solutions": 0, "stubs": 0, "mutants": 0, "hanging": 0}
    mutants = [m for m in MUTANTS if (m.item, m.name) in MUTANT_NAMES]
    for k in range(size):
        student = folder / f"student{k:03d}"
        student.mkdir()
        for part in PARTS:
            shutil.copyfile(ROOT / "solutions" / f"{part}.py", student / f"{part}.py")
        if k == 1:
            for part in PARTS:
                shutil.copyfile(ROOT / "exercises" / f"{part}.py", student / f"{part}.py")
            kinds["stubs"] += 1
        elif k == 2:
            source = (student / "mle.py").read_text()
            (student / "mle.py").write_text(source.replace(HANG, "    import time\n    time.sleep(60)\n" + HANG, 1))
            kinds["hanging"] += 1
        elif 3 <= k < 3 + len(mutants):
            mutant = mutants[k - 3]
            (student / f"{mutant.part}.py").write_text(patched(mutant, ROOT / "solutions"))
            kinds["mutants"] += 1
        else:
            with (student / "mle.py").open("a") as handle:
                handle.write(f"# student {k}\n")
            kinds["solutions"] += 1
    return kinds


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-sandbox", action="store_true")
    args = parser.parse_args(argv)
    flags = ["--no-sandbox"] if args.no_sandbox else []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "class"
        folder.mkdir()
        kinds = build(folder, args.size)
        print(f"class of {args.size}: " + ", ".join(f"{n} {kind}" for kind, n in kinds.items()))
        single = timed([sys.executable, "-m", "grader", "grade", str(ROOT / "solutions"), *flags])
        print(f"one `grade` of the solutions: {single:.1f} s")
        first = None
        for workers in args.workers:
            out = Path(scratch) / f"out{workers}"
            seconds = timed([sys.executable, "-m", "grader", "grade-class", str(folder), "--out", str(out),
                             "--workers", str(workers), "--force", *flags])  # fmt: skip
            first = first or seconds
            print(
                f"{workers} worker(s): {seconds:.0f} s, {60 * args.size / seconds:.1f} submissions/min, "
                f"{seconds / args.size:.1f} s per submission amortized, speedup {first / seconds:.2f}x"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
