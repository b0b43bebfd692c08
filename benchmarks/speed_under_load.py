"""The timed item's verdict with every core busy: the solution must pass every run, a per-sample loop fail every run.

    python -m benchmarks.speed_under_load [--runs 10] [--burners N] [--sessions grader|own]

Starts N busy processes (default: one per core, each for at most the benchmark's length), in the
grader's own session (as a class's other grading processes or another pytest process are) or each
in a session of its own (the kernel shares the CPU between sessions first: autogroups), then
grades ``ddpm.ddpm_train_step.speed`` of the solution and of a step that loops over the batch,
alternately, ``--runs`` times each, through the real sandbox, and prints each verdict and ratio
and the tally. Load from elsewhere slows the reference's rounds and the student's alike; the
grader compares the fastest rounds and takes more rounds while a step still looks too slow.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from grader.grading.timing import time_speed
from grader.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
STEP = "    loss = ddpm_loss(model, x_0, t, noise, betas)\n"
LOOP = (
    "    loss = sum(ddpm_loss(model, x_0[i : i + 1], t[i : i + 1], noise[i : i + 1], betas)"
    " for i in range(len(t))) / len(t)\n"
)
BURN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def submission(folder: Path, body: str) -> Path:
    source = (ROOT / "solutions" / "ddpm.py").read_text()
    assert source.count(STEP) == 1
    folder.mkdir()
    (folder / "ddpm.py").write_text(source.replace(STEP, body))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--sessions", choices=("grader", "own"), default="grader")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="speed-under-load-"))
    steps = {"solution": submission(scratch / "solution", STEP), "per-sample loop": submission(scratch / "loop", LOOP)}
    seconds = 60 * args.runs  # an upper bound on the benchmark's length: the burners stop by themselves
    own = args.sessions == "own"
    burners = [
        subprocess.Popen([sys.executable, "-c", BURN.format(seconds=seconds)], start_new_session=own)
        for _ in range(args.burners)
    ]
    tally: dict[str, list[str]] = {name: [] for name in steps}
    try:
        for run in range(args.runs):
            for name, folder in steps.items():
                with Sandbox(folder) as sandbox:
                    result = time_speed(sandbox)
                ratio = re.search(r"ratio ([0-9.]+)", result.note)
                tally[name].append(result.status)
                print(f"run {run + 1}: {name}: {result.status}, ratio {ratio[1] if ratio else '?'}", flush=True)
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()
    print(f"with {args.burners} busy processes ({args.sessions} sessions) on {os.cpu_count()} cores:")
    for name, verdicts in tally.items():
        print(f"  {name}: passed {verdicts.count('passed')} of {len(verdicts)}, failed {verdicts.count('failed')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
