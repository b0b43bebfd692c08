"""What checking a class's stored results costs, against reading them as plain JSON.

    python -m benchmarks.stored_results [--students 40] [--repeats 5]

A class run reuses a stored result only when it checks out (grader/batch/store.py): a regular file
opened without following a link, parsed, every field of the right type, its total the sum of its
items, and its keyed digest (HMAC-SHA256) verified. This grades the solutions once, stores that
report for ``--students`` students under a throwaway key and out folder, and times, fastest of
``--repeats``, for the whole class: writing the signed results, ``Store.stale`` (what a re-run asks
for each student), and plain ``json.loads`` of the same files (what a run that believed them would
pay). The figures are per student; compare them with a class's seconds per submission
(benchmarks/class_throughput.py).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fastest(repeats: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-results-") as scratch:
        os.environ["GRADER_RESULTS_KEY"] = str(Path(scratch) / "results.key")  # never the user's own key
        from grader.batch import engine, store
        from grader.intake.archive import pack

        settings = engine.Settings()
        result = engine.grade_payload("s000", pack(ROOT / "solutions"), "0" * 64, [], settings)
        assert result["score"] == 100, result["score"]
        keys = [f"s{k:03d}" for k in range(args.students)]
        results = store.Store(Path(scratch) / "out")
        results.results.mkdir(parents=True)
        wanted = settings.as_dict()

        def write() -> None:
            for key in keys:
                results.write(key, {**result, "student": key})

        def check() -> None:
            for key in keys:
                assert results.stale(key, result["digest"], wanted) is None

        def believe() -> None:
            for key in keys:
                json.loads(results.path(key).read_bytes())

        written, checked, believed = (fastest(args.repeats, w) for w in (write, check, believe))
    size = len(json.dumps(result))
    print(f"{args.students} stored results of the solutions' report ({size} bytes each), fastest of {args.repeats}:")
    for name, seconds in (("write (signed)", written), ("check (Store.stale)", checked), ("plain json", believed)):
        print(f"  {name:22s} {seconds * 1e3 / args.students:7.3f} ms a student")
    print(f"  checking costs {checked / believed:.1f}x plain reading, {1e3 * (checked - believed) / args.students:.3f} "
          "ms a student more")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
