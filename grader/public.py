"""Public checks: a few fixed cases per item with stored expected results, for students and releases.

``python -m grader check [PATH]`` runs them on a student's modules (by default exercises/) without
reference/ or the hidden checks: the expected values come from ``grader/public/expected.json``, which
grader/regenerate.py writes. This module imports nothing of reference/, the records or the grading
run, at any depth: it is part of the student's bundle.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import compare as cmp
from grader.contract import Item
from grader.runtime import wire
from grader.sandbox import Limits, Runner, Sandbox, WorkerDied

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


def check(submission: Path, limits: Limits | None = None) -> list[PublicResult]:
    """Run the public cases on the modules in ``submission``; one result per item."""
    cases = load()
    results: list[PublicResult] = []
    with Sandbox(submission, limits or Limits(call_timeout_s=20.0)) as sandbox:
        for item, cases_of in stored_items().values():
            if cases_of != item.id:  # checked by another item's cases (the timed step: the step's)
                continue
            mine = [c for c in cases if c["item"] == item.id]
            if not (sandbox.private / f"{item.module}.py").is_file():
                results.append(PublicResult(item.id, 0, len(mine), f"{item.module}.py is not in {submission}."))
                continue
            results.append(check_item(sandbox, item.id, mine))
    return results


def check_item(runner: Runner, item_id: str, cases: list[dict[str, Any]]) -> PublicResult:
    """One item's public cases on ``runner``; the feedback is the first failing case's."""
    part = item_id.split(".")[0]
    failures = [message for case in cases if (message := run_case(runner, part, case)) is not None]
    feedback = failures[0] if failures else "All public checks passed."
    return PublicResult(item_id, len(cases) - len(failures), len(cases), feedback)


def run_case(sandbox: Runner, part: str, case: dict[str, Any]) -> str | None:
    inputs = wire.decode(case["inputs"])
    try:
        reply = sandbox.run(part, f"{part}.py", {"op": "run", "driver": case["driver"], "inputs": inputs})
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
