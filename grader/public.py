"""Public checks: a few fixed cases per item with stored expected results, for students and releases.

``python -m grader check [PATH]`` runs them on a student's modules (by default exercises/) without
reference/ or the hidden checks: the expected values come from ``grader/public/expected.json``, which
grader/regenerate.py writes. This module imports nothing of reference/, the records or the grading
run, at any depth: it is part of the student's bundle.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import compare as cmp
from grader.contract import Item
from grader.runtime import wire
from grader.sandbox import Limits, Runner, Sandbox, WorkerDied
from grader.submission import did_you_mean, find_parts

HERE = Path(__file__).resolve().parent
EXPECTED = HERE / "public" / "expected.json"
MANIFEST = HERE / "public" / "manifest.json"


@dataclass(frozen=True)
class PublicResult:
    item: str
    passed: int
    total: int
    feedback: str


# ------------------------------------------------------------------------------- checking (no reference/)


def stored() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text())


def load() -> list[dict[str, Any]]:
    return stored()["cases"]


def stored_items() -> dict[str, tuple[Item, str]]:
    """Item id → (the item, the item whose public cases check it), as the records said when regenerated."""
    return {i["id"]: (Item(i["id"], i["points"]), i["cases_of"]) for i in stored()["items"]}


def check(submission: Path, limits: Limits | None = None, items: Iterable[str] | None = None) -> list[PublicResult]:
    """Run the public cases on the modules or notebooks in ``submission`` (each part found as ``grade`` finds
    it, grader/submission.py); one result per item (of ``items``, or all)."""
    cases = load()
    wanted = set(items) if items is not None else None
    results: list[PublicResult] = []
    with Sandbox(submission, limits or Limits(call_timeout_s=20.0)) as sandbox:
        parts, _ = find_parts(sandbox.private)
        problems = sandbox.convert_notebooks({p.part: p.label for p in parts.values() if p.is_notebook})
        for item, cases_of in stored_items().values():
            if cases_of != item.id or (wanted is not None and item.id not in wanted):
                continue  # (an item checked by another item's cases, the timed step, is checked by the step's)
            mine = [c for c in cases if c["item"] == item.id]
            source = parts.get(item.module)
            if source is None:
                guess = did_you_mean(sandbox.private, item.module)
                missing = f"Neither {item.module}.py nor its notebook is in {submission}.{guess}"
                results.append(PublicResult(item.id, 0, len(mine), missing))
            elif item.module in problems:
                results.append(PublicResult(item.id, 0, len(mine), problems[item.module]))
            else:
                results.append(check_item(sandbox, item.id, mine, source.filename))
    return results


def check_item(runner: Runner, item_id: str, cases: list[dict[str, Any]], filename: str | None = None) -> PublicResult:
    """One item's public cases on ``runner`` (the part's module imported from ``filename``, by default
    ``<part>.py``); the feedback is the first failing case's."""
    part = item_id.split(".")[0]
    source = (part, filename or f"{part}.py")
    failures = [message for case in cases if (message := run_case(runner, source, case)) is not None]
    feedback = failures[0] if failures else "All public checks passed."
    return PublicResult(item_id, len(cases) - len(failures), len(cases), feedback)


def run_case(sandbox: Runner, source: tuple[str, str], case: dict[str, Any]) -> str | None:
    inputs = wire.decode(case["inputs"])
    try:
        reply = sandbox.run(*source, {"op": "run", "driver": case["driver"], "inputs": inputs})
    except WorkerDied as died:
        return f"On input {case['shown']}: {died}."
    if "error" in reply:
        error = reply["error"]
        if cmp.not_implemented(error):
            return "Not implemented yet."
        return f"On input {case['shown']}: {cmp.describe_error(error)}."
    mismatch = cmp.compare(wire.decode(case["expected"], tensors=False), reply["ok"], tuple(case["tol"]))
    return None if mismatch is None else f"On input {case['shown']}: {mismatch.message}."


def print_results(results: list[PublicResult]) -> None:
    for r in results:
        mark = "ok  " if r.passed == r.total else "FAIL"
        print(f"{mark} {r.item}: {r.passed}/{r.total} public checks")
        if r.passed != r.total:
            print(f"     {r.feedback}")
    done = sum(r.passed == r.total for r in results)
    print(f"{done}/{len(results)} items pass their public checks. The grade comes from many more, hidden, checks.")
    sys.stdout.flush()
