"""Grading from kept cases (grader/grading/replay.py) says exactly what the full Hypothesis run says.

The kept cases of an item are the ones its derandomized run draws; replaying them gives the same status and the
same words as drawing them, for the solutions, the stubs and every mutant and alternate of the corpus; a record is
read only under its own key, from a folder only the grader's user can enter, only behind a wall, and a worker can
neither read nor write one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.authoring import audit
from grader.authoring.corpus import ALTERNATES, MUTANTS
from grader.contract import TRAINING_PARTS
from grader.grading import replay, run
from grader.grading.items import CHECKS, RECORDS
from grader.grading.run import grade, item_seed
from grader.kernel import InKernel
from grader.sandbox import Limits, Sandbox, Wall, wall

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(call_timeout_s=20.0)
walled = pytest.mark.skipif(
    not wall("auto").holds, reason="no wall here: nothing is kept (test_no_replay_without_a_wall says so)"
)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A cache folder of this test's own, empty, and nothing kept in this process from before."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("GRADER_CACHE_DIR", str(folder))
    monkeypatch.setattr(replay, "_KEPT", {})
    yield folder


def outcomes(report: run.Report) -> list[tuple[Any, ...]]:
    return [(r.id, r.score, r.status, r.feedback, r.mistakes, r.limit) for r in report.items]


def scratch_names(feedback: str) -> str:
    """Feedback without the numbers of the audit's scratch modules (``divergences_p013.py``), which depend on how
    the corpus was dealt out to processes."""
    return re.sub(r"\b([a-z]+)_p\d{3}\.py\b", r"\1.py", feedback)


@walled
def test_the_kept_cases_are_the_ones_the_full_run_draws(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case the full run evaluates on the solutions, in order, is the record's, with the same expected value."""
    seen: dict[str, list[tuple[run.Case, Any]]] = {}
    evaluate = run.evaluate

    def spy(check: Any, case: Any, sandbox: Any, source: Any, expected: Any = None) -> Any:
        values = run.expected_output(check, case)
        seen.setdefault(check.item, []).append((case, values))
        return evaluate(check, case, sandbox, source, expected)

    monkeypatch.setattr(run, "evaluate", spy)
    report = grade(ROOT / "solutions", limits=LIMITS)
    assert report.score == report.max_score
    monkeypatch.setattr(replay, "_KEPT", {})  # read back from the files
    for item, drawn in seen.items():
        steps = replay.load(item, item_seed(item))
        assert steps is not None, f"{item}: no record kept"
        assert len(steps) == len(drawn), item
        for step, (case, expected) in zip(steps, drawn, strict=True):
            assert replay.same(step.case.inputs, case.inputs) and step.case.shown == case.shown, item
            assert replay.same(step.expected, expected), item
    assert set(seen) == {i for i, r in RECORDS.items() if r is CHECKS.get(i)}  # every item but the timed one
    assert all(path.stat().st_mode & 0o077 == 0 for path in [cache, *cache.iterdir()])


@walled
def test_the_reference_graded_as_a_submission_keeps_the_solutions_records(kept_cases: None, tmp_path: Path) -> None:
    """``python -m grader keep-cases`` (as Gradescope's and PrairieLearn's image is built: setup.sh) grades the
    reference laid out as a submission, and keeps a record for every item, byte for byte the one the solutions'
    passing run keeps (``kept_cases``: in the suite's folder); with the cache off it keeps nothing and says so."""
    suite = Path(os.environ["GRADER_CACHE_DIR"])
    folder = tmp_path / "kept"
    command = [sys.executable, "-m", "grader", "keep-cases"]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "GRADER_CACHE_DIR": str(folder)},
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"kept the cases of {len(CHECKS)} of {len(CHECKS)} items in {folder}" in done.stdout, done.stdout
    made = sorted(path.name for path in folder.glob("*.json"))
    assert made == sorted(f"{item}.json" for item in CHECKS)
    assert [name for name in made if (folder / name).read_bytes() != (suite / name).read_bytes()] == []
    off = subprocess.run(command, cwd=ROOT, env={**os.environ, "GRADER_CACHE_DIR": "off"},
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert off.returncode == 1 and "no folder to keep cases in" in off.stderr, off.stderr[-2000:]


@walled
def test_replay_gives_the_full_runs_verdicts_and_words_over_the_corpus(
    cache: Path, monkeypatch: pytest.MonkeyPatch, corpus_drawn: list[audit.Verdict]
) -> None:
    """The solutions, the stubs and every patch of the corpus, graded with kept cases and without (the corpus
    drawn once a run, for test_discrimination too): the same."""
    patches = audit.corpus()
    monkeypatch.setenv("GRADER_CACHE_DIR", "off")
    drawn = {name: outcomes(grade(ROOT / name, limits=LIMITS)) for name in ("solutions", "exercises")}
    assert [v.patch for v in corpus_drawn] == [patch for patch, _ in patches]
    drawn_corpus = [(v.status, scratch_names(v.feedback)) for v in corpus_drawn]
    monkeypatch.setenv("GRADER_CACHE_DIR", str(cache))
    first = outcomes(grade(ROOT / "solutions", limits=LIMITS))  # keeps every item's cases
    assert len(list(cache.glob("*.json"))) == len(RECORDS) - 1  # all but the timed item
    answered: list[bool] = []  # per replay: whether it gave the outcome (else the full run graded the item)
    real = run._replay

    def counted(*args: Any) -> Any:
        outcome = real(*args)
        answered.append(outcome is not None)
        return outcome

    monkeypatch.setattr(run, "_replay", counted)
    replayed = {name: outcomes(grade(ROOT / name, limits=LIMITS)) for name in ("solutions", "exercises")}
    assert answered.count(True) == 2 * (len(RECORDS) - 1), answered  # every item, solutions and stubs alike
    replayed_corpus = [(v.status, scratch_names(v.feedback)) for v in audit.grade_corpus(patches)]  # counted here
    assert answered.count(True) >= 2 * (len(RECORDS) - 1) + len(ALTERNATES) - 1  # all but the timed alternate
    assert answered.count(False) >= len(MUTANTS) - 2, "mutants that fail were graded by the full run"
    assert first == drawn["solutions"]
    assert replayed == drawn
    differ = [
        (patch.item, patch.name, a, b)
        for (patch, _), a, b in zip(patches, drawn_corpus, replayed_corpus, strict=True)
        if a != b
    ]
    assert not differ, differ


@walled
def test_a_record_is_read_only_under_its_own_key(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    item = "mle.binomial_mle"
    check = CHECKS[item]
    with Sandbox(ROOT / "solutions", LIMITS) as sandbox:
        assert run.judge(check, sandbox).status == "passed"
    path = cache / f"{item}.json"
    kept = json.loads(path.read_text())
    assert kept["key"] == replay.key(item, item_seed(item)) and kept["steps"]
    for part, value in [("hypothesis", "0.0.0"), ("sources", "0" * 64), ("seed", 1), ("grader", "0.0.0")]:
        monkeypatch.setattr(replay, "_KEPT", {})
        path.write_text(json.dumps({**kept, "key": {**kept["key"], part: value}}))
        assert replay.load(item, item_seed(item)) is None, part
    for broken in [b"", b"{", b"[]", b'{"key": 1}', json.dumps({**kept, "steps": [{"inputs": 1}]}).encode()]:
        monkeypatch.setattr(replay, "_KEPT", {})
        path.write_bytes(broken)
        assert replay.load(item, item_seed(item)) is None, broken
    monkeypatch.setattr(replay, "_KEPT", {})
    path.write_text(json.dumps(kept))
    assert replay.load(item, item_seed(item)) is not None
    monkeypatch.setattr(replay, "_KEPT", {})
    cache.chmod(0o755)  # a folder others can enter is not the grader's own: nothing is read from it
    assert replay.folder() is None and replay.load(item, item_seed(item)) is None


def test_no_replay_without_a_wall(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a notebook's kernel, or without a wall (``--no-sandbox`` where no worker uid can be had: a grader that is
    not root), the student's code could write a record (one of no cases would pass every submission): nothing is
    read or kept there."""
    from grader.sandbox import workers

    check = CHECKS["mle.binomial_mle"]
    namespace = vars(__import__("solutions.mle", fromlist=["mle"]))
    assert not run.replayable(check, InKernel(namespace))
    none = Wall("none", problems=("bubblewrap (bwrap) is not installed", "the grader is not root"))
    with monkeypatch.context() as patched:  # where a root grader's --no-sandbox still has the process wall
        patched.setattr(workers, "wall", lambda isolation="auto": none)
        with Sandbox(ROOT / "solutions", LIMITS, isolation="off") as bare:
            assert bare.wall is none
            assert not run.replayable(check, bare)
            assert run.judge(check, bare).status == "passed"
    assert not list(cache.glob("*.json"))
    with Sandbox(ROOT / "solutions", LIMITS) as auto:
        assert run.replayable(check, auto) == auto.wall.holds


@walled
def test_a_worker_can_neither_read_nor_write_a_record(cache: Path, tmp_path: Path) -> None:
    """A submission that knows where the records are tries to read one and to plant one of no cases for the next
    item: behind the wall it can do neither, and the next submission's stub still gets nothing."""
    grade(ROOT / "solutions", ["mle.binomial_mle"], LIMITS)
    record = cache / "mle.binomial_mle.json"
    before = record.read_bytes()
    planted = json.dumps({"key": replay.key("mle.gaussian_mle", item_seed("mle.gaussian_mle")), "steps": []})
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    source = (ROOT / "solutions" / "mle.py").read_text()
    (hostile / "mle.py").write_text(
        source + f"\ntry:\n    open({str(record)!r}).read()\n    raise SystemExit('read a record')\n"
        f"except OSError:\n    pass\n"
        f"try:\n    open({str(cache / 'mle.gaussian_mle.json')!r}, 'w').write({planted!r})\n"
        f"except OSError:\n    pass\n"
    )
    report = grade(hostile, ["mle.binomial_mle"], LIMITS)
    assert report.items[0].status == "passed", report.items[0].feedback
    assert record.read_bytes() == before
    assert not (cache / "mle.gaussian_mle.json").exists()
    stub = grade(ROOT / "exercises", ["mle.gaussian_mle"], LIMITS)
    assert stub.items[0].status == "missing"


def test_the_parts_the_command_warms_up_for_are_every_part_that_trains() -> None:
    """``python -m grader grade`` starts the zygote before it imports the checks, warm where a part in
    TRAINING_PARTS is present; a part that trains but is not listed would get a cold zygote, replaced later."""
    assert {item.split(".")[0] for item, record in RECORDS.items() if record.trains} <= set(TRAINING_PARTS)
    assert os.environ.get("GRADER_CACHE_DIR")  # the suite keeps records in a folder of its own (conftest.py)
