"""The grader fails closed: a fault of its own makes an item `error` (never `passed`), and says so.

Each kind of break is injected into a real check run on real submissions: a strategy that can draw
nothing, a case builder that raises, a reference that raises, a comparison that raises, a timed item
that raises. A non-finite expected value is matched exactly, and grading writes nothing into the
working directory it is run from.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

from grader.grading import compare as cmp
from grader.grading import run, timing
from grader.grading.items import CHECKS
from grader.grading.run import GRADER_FAULT, run_check
from grader.runtime.wire import Array
from grader.sandbox import Limits, Sandbox

ROOT = Path(__file__).resolve().parents[1]
ITEM = "divergences.entropy"


@pytest.fixture(scope="module", params=["solutions", "exercises"])
def sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    with Sandbox(ROOT / request.param, Limits(call_timeout_s=10.0)) as box:
        yield box


def broken(kind: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    check = CHECKS[ITEM]
    if kind == "strategy draws nothing":
        return dataclasses.replace(check, cases=st.nothing(), examples=())
    if kind == "case builder raises":
        return dataclasses.replace(check, cases=check.cases.map(lambda case: 1 / 0), examples=())
    if kind == "reference raises":  # and no kept cases (grader/grading/replay.py): the reference runs
        monkeypatch.setenv("GRADER_CACHE_DIR", "off")
        monkeypatch.setattr(run, "expected_output", lambda check, case: {}["missing"])
    if kind == "comparison raises":
        monkeypatch.setattr(cmp, "compare", lambda *args: None.shape)  # type: ignore[attr-defined]
    return check


KINDS = ["strategy draws nothing", "case builder raises", "reference raises", "comparison raises"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_broken_check_is_an_error_of_the_grader_never_a_pass(
    kind: str, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = broken(kind, monkeypatch)
    status, feedback = run_check(check, sandbox)
    stub = "exercises" in str(sandbox.submission)
    if stub and kind in ("reference raises", "comparison raises"):
        # the stub raises NotImplementedError before the grader's own code runs: that verdict is right
        assert status == "missing", feedback
        return
    assert status == "error", feedback
    assert feedback.startswith(GRADER_FAULT) and "not your fault" in feedback


def test_a_fault_in_one_item_is_that_items_error_and_grade_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader import __main__ as cli

    def broken_timing(*args: object) -> None:
        raise RuntimeError("the timing code broke")

    monkeypatch.setattr(timing, "time_speed", broken_timing)
    out = tmp_path / "r.json"
    items = ["ddpm.ddpm_train_step.speed", "ddpm.q_sample"]
    code = cli.main(["grade", str(ROOT / "solutions"), "--items", *items, "--json", str(out)])
    assert code == cli.GRADER_FAULT_EXIT
    report = run.grade(ROOT / "solutions", items)
    by_id = {r.id: r for r in report.items}
    assert by_id["ddpm.ddpm_train_step.speed"].status == "error" and by_id["ddpm.ddpm_train_step.speed"].fault
    assert by_id["ddpm.q_sample"].status == "passed"
    assert report.faults == ["ddpm.ddpm_train_step.speed"]


def test_a_reference_whose_timed_worker_fails_is_the_graders_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reference's timed step runs in a worker of its own (grader/grading/timing.py): when that worker cannot
    import the reference, or dies, the item is the grader's error, never the student's."""
    broken_reference = tmp_path / "reference_ddpm.py"
    broken_reference.write_text("raise ImportError('the reference is missing a file')\n")
    monkeypatch.setattr(timing, "reference_files", lambda: {"ddpm.py": broken_reference})
    report = run.grade(ROOT / "solutions", ["ddpm.ddpm_train_step.speed"], Limits(call_timeout_s=10.0))
    (result,) = report.items
    assert result.status == "error" and result.fault, result.feedback
    assert result.feedback.startswith(GRADER_FAULT) and "the reference's timed step failed" in result.feedback


def leaf(*values: float) -> Array:
    return Array(np.array(values, dtype=np.float64), "numpy", "cpu")


@pytest.mark.parametrize(
    ("expected", "received", "matches"),
    [
        ((np.nan,), (np.nan,), True),
        ((np.nan,), (1.0,), False),
        ((np.nan,), (np.inf,), False),
        ((1.0,), (np.nan,), False),
        ((np.inf,), (np.inf,), True),
        ((np.inf,), (-np.inf,), False),
        ((-np.inf,), (-np.inf,), True),
        ((-np.inf,), (1e308,), False),
        ((1.0, np.nan), (1.0, np.nan), True),
        ((1.0, np.nan), (1.0, 0.0), False),
    ],
)
def test_non_finite_expected_values_are_matched_exactly(
    expected: tuple[float, ...], received: tuple[float, ...], matches: bool
) -> None:
    assert (cmp.compare(leaf(*expected), leaf(*received), cmp.FLOAT64) is None) is matches


def test_grading_writes_nothing_where_it_is_run(tmp_path: Path) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(ROOT / "solutions"), "--items", "mle.binomial_mle"],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert list(work.iterdir()) == []
