"""Public checks: a few fixed cases per item with stored expected results, for students and releases.

``python -m grader check [PATH]`` runs them on a student's modules (by default exercises/) without
reference/ or the hidden checks: the expected values come from ``grader/public/expected.json``.
``python -m grader reference regenerate`` rewrites that file, and ``manifest.json`` beside it (library
versions, how the cases were drawn, a checksum), from the reference; ``reference verify`` recomputes
every stored value and reports drift beyond each case's tolerance. This module imports neither
reference/ nor grader.checks at the top: a student's release has neither.
"""

from __future__ import annotations

import hashlib
import json
import platform
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
GENERATED_PER_ITEM = 2  # drawn cases per item, beside up to two pinned ones: a quick look, not the grade
PINNED_PER_ITEM = 2


@dataclass(frozen=True)
class PublicResult:
    item: str
    passed: int
    total: int
    feedback: str


# ------------------------------------------------------------------------------- writing (needs reference/)


def build_cases() -> list[dict[str, Any]]:
    """The public cases, computed from the reference: float64 cases only, so one run gives value and dtype."""
    from hypothesis import HealthCheck, Phase, given, settings

    from grader.items import CHECKS
    from grader.run import expected_output

    cases: list[dict[str, Any]] = []
    for item_id, check in CHECKS.items():  # a timed item is checked by its step's public cases
        drawn = _draw(check.cases, given, settings, HealthCheck, Phase)
        chosen = [c for c in check.examples if c.reference_inputs is None][:PINNED_PER_ITEM] + drawn
        for case in chosen:
            cases.append({
                "item": item_id,
                "driver": check.driver,
                "shown": case.shown,
                "tol": list(case.tol),
                "inputs": wire.encode(case.inputs),
                "expected": wire.encode(_unwire(expected_output(check, case))),
            })  # fmt: skip
    return cases


def _draw(strategy: Any, given: Any, settings: Any, health: Any, phase: Any) -> list[Any]:
    """The first GENERATED_PER_ITEM float64 cases a derandomized run of ``strategy`` draws."""
    drawn: list[Any] = []

    @settings(derandomize=True, database=None, deadline=None, max_examples=25, phases=[phase.generate],
              suppress_health_check=list(health))  # fmt: skip
    @given(strategy)
    def collect(case: Any) -> None:
        if case.reference_inputs is None and len(drawn) < GENERATED_PER_ITEM:
            drawn.append(case)

    collect()
    return drawn


def _unwire(value: Any) -> Any:
    """An expected output in wire form (Arrays) back to NumPy/torch values that wire.encode accepts."""
    import torch

    if isinstance(value, wire.Array):
        return torch.from_numpy(value.array.copy()) if value.kind == "torch" else value.array
    if isinstance(value, dict):
        return {k: _unwire(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_unwire(v) for v in value)
    return value


def build_items() -> list[dict[str, Any]]:
    """The graded items as the student's side needs them, from the records: id, points, whose public cases."""
    from grader.items import RECORDS

    return [{"id": r.item, "points": r.points, "cases_of": r.public_cases_of} for r in RECORDS.values()]


def _serialise(items: list[dict[str, Any]], cases: list[dict[str, Any]]) -> str:
    return json.dumps({"items": items, "cases": cases}, sort_keys=True, separators=(",", ":")) + "\n"


def regenerate() -> tuple[Path, Path]:
    import hypothesis
    import numpy
    import scipy
    import torch

    text = _serialise(build_items(), build_cases())
    EXPECTED.parent.mkdir(parents=True, exist_ok=True)
    EXPECTED.write_text(text)
    data = json.loads(text)
    manifest = {
        "file": EXPECTED.name,
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "cases": len(data["cases"]),
        "items": len({c["item"] for c in data["cases"]}),
        "drawn": f"up to {PINNED_PER_ITEM} pinned and {GENERATED_PER_ITEM} drawn float64 cases per item, "
                 "derandomized Hypothesis (the grading strategies), no example database",
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__, "scipy": scipy.__version__,
                     "torch": torch.__version__, "hypothesis": hypothesis.__version__},
    }  # fmt: skip
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n")
    return EXPECTED, MANIFEST


def verify() -> list[str]:
    """Drift between the stored expected results and the reference now; [] when none."""
    stored = load()
    manifest = json.loads(MANIFEST.read_text())
    problems = []
    if hashlib.sha256(EXPECTED.read_bytes()).hexdigest() != manifest["sha256"]:
        problems.append(f"{EXPECTED.name} does not match the checksum in {MANIFEST.name}")
    if _stored()["items"] != build_items():
        problems.append("the stored list of items and points differs from the check records")
    live = build_cases()
    if len(live) != len(stored):
        return [*problems, f"{len(stored)} stored cases but the reference now makes {len(live)}"]
    for old, new in zip(stored, live, strict=True):
        if (old["item"], old["shown"]) != (new["item"], new["shown"]):
            problems.append(f"{old['item']}: the cases changed ({old['shown']} became {new['shown']})")
            continue
        expected = wire.decode(old["expected"], tensors=False)
        now = wire.decode(new["expected"], tensors=False)
        mismatch = cmp.compare(now, expected, tuple(old["tol"]))
        if mismatch:
            problems.append(f"{old['item']} on {old['shown']}: {mismatch.message}")
    return problems


# ------------------------------------------------------------------------------- checking (no reference/)


def _stored() -> dict[str, Any]:
    return json.loads(EXPECTED.read_text())


def load() -> list[dict[str, Any]]:
    return _stored()["cases"]


def stored_items() -> dict[str, tuple[Item, str]]:
    """Item id → (the item, the item whose public cases check it), as the records said when regenerated."""
    return {i["id"]: (Item(i["id"], i["points"]), i["cases_of"]) for i in _stored()["items"]}


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
