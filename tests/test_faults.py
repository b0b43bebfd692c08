"""Class grading under the faults an instructor's machine has: two runs on one out folder, a disk that cannot be
written, and stored results that were edited, copied, replaced by links or broken. Nothing already written is lost,
every fault is one sentence, and a stored result is reused only when it checks out."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from grader.batch import engine, store
from grader.batch.classroom import grade_class
from grader.batch.store import Busy, Store

ROOT = Path(__file__).resolve().parents[1]
ITEMS = ("mle.binomial_mle",)
WRONG = "def binomial_mle(successes, trials):\n    return 0.0\n"


def klass(folder: Path, wrong: tuple[str, ...] = ("s3",)) -> Path:
    for name in ("s1", "s2", "s3"):
        (folder / name).mkdir(parents=True)
        source = WRONG if name in wrong else (ROOT / "solutions" / "mle.py").read_text()
        (folder / name / "mle.py").write_text(source)
    return folder


def run(folder: Path, out: Path) -> Any:
    return grade_class(folder, out, lambda: engine.LocalPool(1), engine.Settings(ITEMS, isolation="auto"))


def test_one_out_folder_one_run_and_a_dead_runs_lock_is_free(tmp_path: Path) -> None:
    first = Store(tmp_path / "out").open()
    with pytest.raises(Busy, match=f"pid {os.getpid()} on "):
        Store(tmp_path / "out").open()
    first.close()
    Store(tmp_path / "out").open().close()
    holder = subprocess.Popen(  # a run killed with -9 while it holds the lock
        [sys.executable, "-c", "import sys, time; from grader.batch.store import Store; "
         f"Store({str(tmp_path / 'out')!r}).open(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(Busy, match=f"pid {holder.pid} "):
            Store(tmp_path / "out").open()
        (tmp_path / "out" / "results" / ".s1.json.abc.tmp").write_text("half")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    taken = Store(tmp_path / "out").open()  # taken over; the dead run's temporary file is removed by the holder
    assert not list((tmp_path / "out" / "results").glob(".*.tmp"))
    taken.close()


def test_a_second_grade_class_on_the_same_out_folder_refuses_in_one_line(tmp_path: Path) -> None:
    klass(tmp_path / "class")
    held = Store(tmp_path / "out").open()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "grader", "grade-class", str(tmp_path / "class"), "--out", str(tmp_path / "out"),
             "--items", *ITEMS],
            capture_output=True, text=True, cwd=ROOT, timeout=300,
        )  # fmt: skip
    finally:
        held.close()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"is being written by pid {os.getpid()}" in done.stderr


def test_disk_trouble_is_a_sentence_and_a_rerun_completes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    from grader.__main__ import main

    folder = klass(tmp_path / "class")
    (tmp_path / "file").write_text("not a folder")
    assert main(["grade-class", str(folder), "--out", str(tmp_path / "file" / "out"), "--items", *ITEMS]) == 1
    said = capsys.readouterr().err
    assert "could not write" in said and "Not a directory" in said and "Traceback" not in said, said

    writes: list[Path] = []
    real = store.atomic_write

    def full(path: Path, text: str) -> None:
        if len(writes) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        writes.append(path)
        real(path, text)

    monkeypatch.setattr(store, "atomic_write", full)
    out = tmp_path / "out"
    assert main(["grade-class", str(folder), "--out", str(out), "--items", *ITEMS]) == 1
    said = capsys.readouterr().err
    assert "No space left on device" in said and "run the same command again" in said and "Traceback" not in said
    assert len(list((out / "results").glob("*.json"))) == 2  # whole, and kept
    monkeypatch.setattr(store, "atomic_write", real)
    assert main(["grade-class", str(folder), "--out", str(out), "--items", *ITEMS]) == 0
    assert "1 graded, 2 skipped" in capsys.readouterr().out


def test_stored_results_are_checked_not_believed(tmp_path: Path) -> None:
    folder = klass(tmp_path / "class")
    out = tmp_path / "out"
    first = run(folder, out)
    assert first.graded == 3
    results = out / "results"
    honest = (out / "grades.csv").read_text()

    forged = json.loads((results / "s3.json").read_text())  # s3 gives itself full marks
    forged["items"][0].update(score=2, status="passed")
    forged["score"] = 2
    (results / "s3.json").write_text(json.dumps(forged))
    s1 = (results / "s1.json").read_text()
    (results / "s2.json").write_text(s1.replace('"student": "s1"', '"student": "s2"'))  # a classmate's, renamed
    again = run(folder, out)
    assert (again.graded, again.skipped) == (2, 1) and dict(again.regraded) == {"tampered": 2}, again.line()
    assert (out / "grades.csv").read_text() == honest

    elsewhere = tmp_path / "forged.json"
    elsewhere.write_text(json.dumps(forged))
    (results / "s3.json").unlink()
    (results / "s3.json").symlink_to(elsewhere)  # a link to a forged copy outside the out folder
    broken = json.loads((results / "s1.json").read_text())
    broken["items"] = None
    (results / "s1.json").write_text(json.dumps(broken))
    total = json.loads((results / "s2.json").read_text())
    total["score"] += 5
    (results / "s2.json").write_text(json.dumps(total))
    third = run(folder, out)
    assert dict(third.regraded) == {"tampered": 1, "unreadable": 2}, third.line()
    assert (out / "grades.csv").read_text() == honest
    assert not (results / "s3.json").is_symlink()
    assert sorted(w.split(" ")[0] for w in third.warnings) == ["s1", "s2", "s3"]


def test_the_results_key_lives_outside_the_out_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_RESULTS_KEY", str(tmp_path / "keys" / "results.key"))
    key = store.results_key()
    assert key is not None and len(key) == 32
    assert (tmp_path / "keys" / "results.key").stat().st_mode & 0o777 == 0o600
    assert store.results_key() == key  # made once


class LostPool:
    """A pool whose every task is lost as a scheduler's death loses it."""

    def results(self, tasks: list[Any], settings: engine.Settings) -> Any:
        for task in tasks:
            yield task[0], None, "FutureCancelledError: scheduler-connection-lost"

    def close(self) -> None:
        pass


def test_infrastructure_is_not_the_student(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    """A lost scheduler (every task cancelled) stores nothing: the command says so in one line and exits 1, the
    rows say no result is stored, and the next run grades every student."""
    from grader.__main__ import main

    folder = klass(tmp_path / "class")
    out = tmp_path / "out"
    monkeypatch.setattr(engine, "LocalPool", lambda workers: LostPool())
    assert main(["grade-class", str(folder), "--out", str(out), "--items", *ITEMS]) == 1
    said = capsys.readouterr()
    assert "3 student(s) not graded through no fault of theirs" in said.err and "scheduler-connection-lost" in said.err
    assert not list((out / "results").glob("*.json"))
    rows = (out / "grades.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["s1", "s2", "s3"] and all(r.endswith(",missing") for r in rows)
    monkeypatch.undo()
    summary = run(folder, out)
    assert (summary.graded, summary.failed) == (3, 0)
