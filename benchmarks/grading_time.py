"""Wall time of grading one full submission, with and without the filesystem sandbox.

    python -m benchmarks.grading_time [--repeats 3] [SUBMISSION ...]

Grades each submission (default: solutions/, its nbgrader notebooks solutions/notebooks/, and
exercises/) in a fresh ``grade`` call, alternating
bubblewrap on and off, and prints the median wall time of each and the ratio sandboxed / plain.
"plain" is the wall without bubblewrap (a PID namespace, cgroups and rlimits), not no wall at all.
Start-up (importing torch in the grader and in each module's worker) is included, as a course sees it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from grader.grading.run import grade
from grader.sandbox import bubblewrap

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "submissions", nargs="*", default=[str(ROOT / d) for d in ("solutions", "solutions/notebooks", "exercises")]
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    modes = [("sandboxed", "auto"), ("plain", "off")] if bubblewrap() else [("plain", "off")]
    for submission in map(Path, args.submissions):
        times: dict[str, list[float]] = {name: [] for name, _ in modes}
        score = None
        for _ in range(args.repeats):
            for name, flag in modes:
                start = time.perf_counter()
                report = grade(submission, isolation=flag)
                times[name].append(time.perf_counter() - start)
                score = report.score
        medians = {name: statistics.median(v) for name, v in times.items()}
        line = ", ".join(f"{name} {m:.1f} s" for name, m in medians.items())
        ratio = f"; sandboxed / plain = {medians['sandboxed'] / medians['plain']:.2f}" if "sandboxed" in medians else ""
        print(f"{submission.name}: score {score}/100; median of {args.repeats}: {line}{ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
