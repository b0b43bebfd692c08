"""Where one ``grade`` of a submission spends its time, phase by phase.

    python -m benchmarks.grade_phases [--repeats 3] [--pictures] [SUBMISSION]

Grades SUBMISSION (default: solutions/) ``--repeats`` times, each in a fresh interpreter and in
the order ``python -m grader grade`` takes, and prints, for the fastest run, the wall time of each
phase as seen from the grader's process:

- sandbox: entering the sandbox and starting the workers' zygote (which imports torch meanwhile),
  and the grader's own warm-up where it computes training steps;
- start-up: importing the grader (torch, Hypothesis, the checks);
- worker round trips: requests to the workers, the student's code included (the timed item's not);
- reference: the expected values the grader computes for each case;
- engine and draws: what remains of the Hypothesis runs (drawing cases, comparing, the diagnosis);
- timed item: ``ddpm.ddpm_train_step.speed``, both sides;
- pictures: the feedback page's pictures (with ``--pictures``).

The phases nest (a timed item's requests are not counted as round trips); "other" is what no phase
names. Figures vary from run to run; compare phases within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class Phases:
    """Wall time per phase; a phase entered inside another is counted in the inner one only."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.stack: list[str] = []

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        outer = self.stack[-1] if self.stack else None
        self.stack.append(name)
        try:
            yield
        finally:
            self.stack.pop()
            elapsed = time.perf_counter() - start
            self.seconds[name] += elapsed
            if outer is not None:
                self.seconds[outer] -= elapsed

    def wrap(self, owner: Any, attribute: str, name: str) -> Callable[[], None]:
        """Count every call of ``owner.attribute`` in phase ``name``; returns the undo."""
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if "timed item" in self.stack:  # all of the timed item is its own phase
                return original(*args, **kwargs)
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)
        return lambda: setattr(owner, attribute, original)


def profile(submission: Path, pictures: bool) -> dict[str, Any]:
    """One grade in this (fresh) process, in the order ``python -m grader grade`` takes: the sandbox entered and
    its zygote started first, then the grader's imports, then the items."""
    phases = Phases()
    start = time.perf_counter()
    from grader.__main__ import _may_train
    from grader.sandbox import Sandbox, workers

    with phases.phase("sandbox"), contextlib.ExitStack() as stack:
        sandbox = stack.enter_context(Sandbox(submission))
        sandbox.start(trains=_may_train(sandbox, None))
        closing = stack.pop_all()
    with closing, phases.phase("other"):
        with phases.phase("start-up (imports)"):
            from grader.grading import run, timing
        undo = [
            phases.wrap(workers.Sandbox, "__enter__", "sandbox"),
            phases.wrap(workers.Sandbox, "start", "sandbox"),
            phases.wrap(run.drivers, "warm_up", "sandbox"),
            phases.wrap(workers.Sandbox, "run", "worker round trips"),
            phases.wrap(workers.Sandbox, "ensure_loaded", "worker round trips"),
            phases.wrap(run, "expected_output", "reference"),
            phases.wrap(run, "judge", "engine and draws"),
            phases.wrap(timing, "time_speed", "timed item"),
            phases.wrap(run, "_take_pictures", "pictures"),
        ]
        try:
            report = run.grade(submission, pictures=pictures, sandbox=sandbox)
        finally:
            for step in reversed(undo):
                step()
    return {"total": time.perf_counter() - start, "seconds": dict(phases.seconds), "score": report.score}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submission", nargs="?", default=str(ROOT / "solutions"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pictures", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(profile(Path(args.submission), args.pictures)))
        return 0
    command = [sys.executable, "-m", "benchmarks.grade_phases", "--child", args.submission]
    command += ["--pictures"] if args.pictures else []
    runs = [
        json.loads(subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT).stdout)
        for _ in range(args.repeats)
    ]
    fastest = min(runs, key=lambda r: r["total"])
    print(
        f"{Path(args.submission).name}: score {fastest['score']}; fastest of {args.repeats}: {fastest['total']:.2f} s"
    )
    for name, value in sorted(fastest["seconds"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<22} {value:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
