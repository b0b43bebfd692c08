"""Dependencies between items are measured, not remembered.

Each graded function of a solution is broken in turn (it raises), the other items of its part are
graded in this process (trusted code: grader.kernel.InKernel), and the items that stop passing are
the ones that call it, directly or through another. Each check must declare exactly those
(``Check.depends_on``), and the feedback of an item whose dependency failed its own check says so.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from grader.grading.items import CHECKS, ITEMS
from grader.grading.run import ItemResult, _point_to_failed_dependencies, grade, run_check
from grader.kernel import InKernel
from grader.sandbox import Limits

ROOT = Path(__file__).resolve().parents[1]
PARTS = sorted({item.module for item in ITEMS})


def solution_with(part: str, broken: str) -> dict[str, Any]:
    """The solution module's namespace with ``broken`` replaced by a function that raises; the other
    functions look it up in this namespace, so those that call it break too."""
    namespace: dict[str, Any] = {"__name__": f"broken_{part}"}
    exec(compile((ROOT / "solutions" / f"{part}.py").read_text(), f"{part}.py", "exec"), namespace)

    def raises(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{broken} is broken on purpose")

    namespace[broken] = raises
    return namespace


@pytest.mark.parametrize("part", PARTS)
def test_every_check_declares_exactly_the_functions_it_calls(part: str) -> None:
    items = [item for item in ITEMS if item.module == part and item.id in CHECKS]
    measured: dict[str, set[str]] = {item.function: set() for item in items}
    for broken in measured:
        namespace = solution_with(part, broken)
        for item in items:
            if item.function != broken:
                status, _ = run_check(CHECKS[item.id], InKernel(namespace), (part, part))
                if status != "passed":
                    measured[item.function].add(broken)
    declared = {item.function: set(CHECKS[item.id].depends_on) for item in items}
    assert declared == measured


def test_feedback_names_only_the_dependencies_that_failed() -> None:
    js = CHECKS["divergences.js_divergence"]
    results = [
        ItemResult("divergences.kl_divergence", 0, 4, "failed", "On input ..."),
        ItemResult("divergences.js_divergence", 0, 3, "failed", "On input ..."),
    ]
    _point_to_failed_dependencies(results)
    assert "`kl_divergence` (as the reference solution does), which failed its own check" in results[1].feedback
    passed = [
        ItemResult("divergences.kl_divergence", 4, 4, "passed", "All checks passed."),
        ItemResult("divergences.js_divergence", 0, 3, "failed", "On input ..."),
    ]
    _point_to_failed_dependencies(passed)
    assert passed[1].feedback == "On input ..."
    alone = [ItemResult("divergences.js_divergence", 0, 3, "failed", "On input ...")]  # --items: kl not graded
    _point_to_failed_dependencies(alone)
    assert "calls your `kl_divergence`; if one of them fails its own check" in alone[0].feedback
    assert js.depends_on == ("kl_divergence",)


def test_a_correct_js_divergence_beside_a_broken_kl_says_why_it_lost(tmp_path: Path) -> None:
    source = (ROOT / "solutions" / "divergences.py").read_text()
    broken = source.replace(
        "return terms.sum(dim=-1).clamp_min(0.0)", "return terms.sum(dim=-1).clamp_min(0.0) / math.log(2)"
    )
    assert broken != source
    (tmp_path / "divergences.py").write_text(broken)
    shutil.copy(ROOT / "solutions" / "mle.py", tmp_path / "mle.py")
    report = grade(tmp_path, ["divergences.kl_divergence", "divergences.js_divergence"], Limits(call_timeout_s=10))
    kl, js = report.items
    assert kl.status == "failed" and js.status == "failed"
    assert "`kl_divergence` (as the reference solution does), which failed its own check" in js.feedback
    assert "known mistake: using log base 2" in kl.feedback


NO_OPTIMIZER = """
import sys
from pathlib import Path

from grader.grading.items import CHECKS
from grader.kernel import InKernel
from grader.grading.run import run_check

assert "torch._dynamo" not in sys.modules, "importing the grader imports torch._dynamo"
root = Path(sys.argv[1])
namespaces = {}
for record in sorted(CHECKS.values(), key=lambda r: r.trains):  # every item that does not train first
    part = record.item.split(".")[0]
    if part not in namespaces:
        namespaces[part] = {"__name__": part}
        exec(compile((root / "solutions" / f"{part}.py").read_text(), f"{part}.py", "exec"), namespaces[part])
    status, feedback = run_check(record, InKernel(namespaces[part]), (part, part))
    assert status == "passed", (record.item, feedback)
    print(record.item, record.trains, "torch._dynamo" in sys.modules, flush=True)
    if record.trains:
        break
"""


def test_only_the_items_that_train_need_the_optimizer_warm_up(tmp_path: Path) -> None:
    """A process's first optimizer imports torch._dynamo (about 1 s), which the grader and the zygote pay in advance
    (drivers.warm_up) only where an item that trains is graded: grading every other item, the reference's side
    and the student's alike, must never import it, or its first graded call would pay it inside its time limit."""
    import subprocess
    import sys

    script = tmp_path / "no_optimizer.py"
    script.write_text(NO_OPTIMIZER)
    done = subprocess.run(
        [sys.executable, str(script), str(ROOT)], capture_output=True, text=True, timeout=600, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines()]
    assert [item for item, trains, imported in rows if imported == "True"] == [rows[-1][0]], rows
    assert rows[-1][1] == "True" and sum(trains == "False" for _, trains, _ in rows) == len(rows) - 1
    assert len(rows) == sum(not r.trains for r in CHECKS.values()) + 1
