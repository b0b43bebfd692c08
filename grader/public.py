"""Public checks: a few fixed cases per item with stored expected results, for students and releases.

``python -m grader check [PATH]`` runs them on a student's modules (by default exercises/) without
reference/ or the hidden checks: the expected values come from ``grader/public/expected.json``, which
grader/regenerate.py writes. This module imports nothing of reference/, the records or the grading
run, at any depth: it is part of the student's bundle.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.contract import TRAINING_PARTS, Item
from grader.grading import compare as cmp
from grader.intake.submission import did_you_mean, find_parts
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
    """The stored public results, parsed once per content of the file: a notebook's check cell asks three
    times, and parsing its 444 KB costs far more than reading and hashing them. Every caller shares the
    object and must not change it."""
    return _parse(EXPECTED.read_bytes())


@functools.lru_cache(maxsize=2)
def _parse(data: bytes) -> dict[str, Any]:
    return json.loads(data)


def load() -> list[dict[str, Any]]:
    return stored()["cases"]


def stored_items() -> dict[str, tuple[Item, str]]:
    """Item id → (the item, the item whose public cases check it), as the records said when regenerated."""
    return {i["id"]: (Item(i["id"], i["points"]), i["cases_of"]) for i in stored()["items"]}


def stored_mistakes() -> dict[str, dict[str, str]]:
    """Item id → its catalogued mistakes (name → the sentence that names it), as stored when regenerated."""
    return {i["id"]: i.get("mistakes", {}) for i in stored()["items"]}


def check(submission: Path, limits: Limits | None = None, items: Iterable[str] | None = None) -> list[PublicResult]:
    """Run the public cases on the modules or notebooks in ``submission`` (each part found as ``grade`` finds
    it, grader/intake/submission.py); one result per item (of ``items``, or all)."""
    cases = load()
    mistakes = stored_mistakes()
    wanted = set(items) if items is not None else None
    results: list[PublicResult] = []
    with Sandbox(submission, limits or Limits(call_timeout_s=20.0)) as sandbox:
        parts, _ = find_parts(sandbox.private)
        checked = [  # (an item checked by another item's cases, the timed step, is checked by the step's)
            item for item, cases_of in stored_items().values()
            if cases_of == item.id and (wanted is None or item.id in wanted)
        ]  # fmt: skip
        # The zygote imports torch now, while this process reads the stored results (this process needs no torch):
        # warm for training where a part that trains is checked (the drivers, which say exactly, import torch).
        sandbox.start(trains=any(item.module in TRAINING_PARTS and item.module in parts for item in checked))
        problems = sandbox.convert_notebooks({p.part: p.label for p in parts.values() if p.is_notebook})
        for item in checked:
            mine = [c for c in cases if c["item"] == item.id]
            source = parts.get(item.module)
            if source is None:
                guess = did_you_mean(sandbox.private, item.module)
                missing = f"Neither {item.module}.py nor its notebook is in {submission}.{guess}"
                results.append(PublicResult(item.id, 0, len(mine), missing))
            elif item.module in problems:
                results.append(PublicResult(item.id, 0, len(mine), problems[item.module]))
            else:
                results.append(check_item(sandbox, item.id, mine, source.filename, mistakes.get(item.id)))
    return results


class _Answer:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


RAISED: Any = _Answer("RAISED")  # the student's code raised (a mistake stored under "raise" agrees)
UNKNOWN: Any = _Answer("UNKNOWN")  # no answer to compare


@dataclass(frozen=True)
class CaseRun:
    """One public case run on the student's code: the feedback if it failed, and what the code answered (wire
    data, RAISED, or UNKNOWN where it gave no answer to compare: not implemented, out of time, its worker died)."""

    failure: str | None
    received: Any
    dtype_only: bool = False  # it failed on a dtype alone: a mistake must have that dtype too


def check_item(
    runner: Runner,
    item_id: str,
    cases: list[dict[str, Any]],
    filename: str | None = None,
    mistakes: dict[str, str] | None = None,
) -> PublicResult:
    """One item's public cases on ``runner`` (the part's module imported from ``filename``, by default
    ``<part>.py``); the feedback is the first failing case's, followed by the catalogued mistake (of
    ``mistakes``: name → sentence) that alone explains every answer, if exactly one does."""
    part = item_id.split(".")[0]
    source = (part, filename or f"{part}.py")
    runs = [run_case(runner, source, case) for case in cases]
    failures = [r.failure for r in runs if r.failure is not None]
    if not failures:
        return PublicResult(item_id, len(cases), len(cases), "All public checks passed.")
    named = explaining_mistakes(cases, runs, mistakes or {})
    line = cmp.mistake_line([mistakes[named[0]]]) if mistakes and len(named) == 1 else None
    return PublicResult(item_id, len(cases) - len(failures), len(cases), " ".join(filter(None, (failures[0], line))))


def explaining_mistakes(cases: list[dict[str, Any]], runs: list[CaseRun], mistakes: dict[str, str]) -> list[str]:
    """The catalogued mistakes whose stored outputs agree with the student's answer on every public case (the
    passing ones too: a mistake that would have failed one is not what the student wrote); the grader's rule
    (grader/grading/diagnosis.py) on the evidence a few fixed cases give. Nothing when any answer is missing."""
    if any(r.received is UNKNOWN for r in runs):
        return []
    strict = any(r.dtype_only for r in runs)

    def agrees(name: str, case: dict[str, Any], run: CaseRun) -> bool:
        if name in case.get("raise", ()) or run.received is RAISED:
            return name in case.get("raise", ()) and run.received is RAISED
        if name not in case.get("mistakes", {}):
            return False
        wrong = wire.decode(case["mistakes"][name], tensors=False)
        return cmp.compare(wrong, run.received, tuple(case["tol"]), dtypes=strict) is None

    return [name for name in mistakes if all(agrees(name, c, r) for c, r in zip(cases, runs, strict=True))]


def run_case(sandbox: Runner, source: tuple[str, str], case: dict[str, Any]) -> CaseRun:
    inputs = wire.Plain(case["inputs"])  # sent as stored: this process needs no torch
    try:
        reply = sandbox.run(*source, {"op": "run", "driver": case["driver"], "inputs": inputs})
    except WorkerDied as died:
        return CaseRun(f"On input {case['shown']}: {died}.", UNKNOWN)
    if "error" in reply:
        error = reply["error"]
        if cmp.not_implemented(error):
            return CaseRun("Not implemented yet.", UNKNOWN)
        received = RAISED if error.get("kind") == "raised" else UNKNOWN
        return CaseRun(f"On input {case['shown']}: {cmp.describe_error(error)}.", received)
    expected = wire.decode(case["expected"], tensors=False)
    mismatch = cmp.compare(expected, reply["ok"], tuple(case["tol"]))
    if mismatch is None:
        return CaseRun(None, reply["ok"])
    dtype_only = cmp.compare(expected, reply["ok"], tuple(case["tol"]), dtypes=False) is None
    return CaseRun(f"On input {case['shown']}: {mismatch.message}.", reply["ok"], dtype_only)


def print_results(results: list[PublicResult]) -> None:
    for r in results:
        mark = "ok  " if r.passed == r.total else "FAIL"
        print(f"{mark} {r.item}: {r.passed}/{r.total} public checks")
        if r.passed != r.total:
            print(f"     {r.feedback}")
    done = sum(r.passed == r.total for r in results)
    print(f"{done}/{len(results)} items pass their public checks. The grade comes from many more, hidden, checks.")
    sys.stdout.flush()
