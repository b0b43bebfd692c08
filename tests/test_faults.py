"""Class grading under the faults an instructor's machine has: two runs on one out folder, a disk that cannot be
written, and stored results that were edited, copied, replaced by links or broken. Nothing already written is lost,
every fault is one sentence, and a stored result is reused only when it checks out."""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from grader.batch import engine, store
from grader.batch.classroom import grade_class
from grader.batch.store import Busy, Store
from grader.sandbox import bubblewrap, wall
from grader.sandbox.cgroups import PREFIX

ROOT = Path(__file__).resolve().parents[1]
ITEMS = ("mle.binomial_mle",)
WRONG = "def binomial_mle(successes, trials):\n    return 0.0\n"


def klass(folder: Path, wrong: tuple[str, ...] = ("s3",)) -> Path:
    for name in ("s1", "s2", "s3"):
        (folder / name).mkdir(parents=True)
        source = WRONG if name in wrong else (ROOT / "solutions" / "mle.py").read_text()
        (folder / name / "mle.py").write_text(source)
    return folder


ISOLATION = "required" if bubblewrap() else "off"  # as a course grades: with the sandbox where there is one


def run(folder: Path, out: Path) -> Any:
    return grade_class(folder, out, lambda: engine.LocalPool(1), engine.Settings(ITEMS, isolation=ISOLATION))


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
             "--items", *ITEMS, "--no-sandbox"],  # on any wall: the lock is what is tested
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
    assert (
        main(["grade-class", str(folder), "--out", str(tmp_path / "file" / "out"), "--items", *ITEMS, "--no-sandbox"])
        == 1
    )
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
    assert main(["grade-class", str(folder), "--out", str(out), "--items", *ITEMS, "--no-sandbox"]) == 1
    said = capsys.readouterr().err
    assert "No space left on device" in said and "run the same command again" in said and "Traceback" not in said
    assert len(list((out / "results").glob("*.json"))) == 2  # whole, and kept
    monkeypatch.setattr(store, "atomic_write", real)
    assert main(["grade-class", str(folder), "--out", str(out), "--items", *ITEMS, "--no-sandbox"]) == 0
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

    old = json.loads((results / "s1.json").read_text())  # as 0.7.0 wrote it: no digest, its own version
    del old["signature"]
    old["grader_version"] = "0.7.0"
    (results / "s1.json").write_text(json.dumps(old))
    fourth = run(folder, out)
    assert dict(fourth.regraded) == {"settings": 1} and not fourth.warnings, fourth.line()


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

    def release(self) -> None:
        pass

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
    assert main(["grade-class", str(folder), "--out", str(out), "--items", *ITEMS, "--no-sandbox"]) == 1
    said = capsys.readouterr()
    assert "3 student(s) not graded through no fault of theirs" in said.err and "scheduler-connection-lost" in said.err
    assert not list((out / "results").glob("*.json"))
    rows = (out / "grades.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["s1", "s2", "s3"] and all(r.endswith(",missing") for r in rows)
    monkeypatch.undo()
    summary = run(folder, out)
    assert (summary.graded, summary.failed) == (3, 0)


def test_a_regrade_that_loses_its_students_exits_non_zero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    """nbgrader regrade on the class engine, every task lost: the students' rows say it was not their fault, the
    command ends in that line and exit 1 (it printed the rows and exited 0), and the next run grades them."""
    from grader.__main__ import main

    for name in ("alice", "bob"):
        (tmp_path / "submitted" / name / "generative_models").mkdir(parents=True)
        (tmp_path / "submitted" / name / "generative_models" / "mle.py").write_text(
            (ROOT / "solutions" / "mle.py").read_text()
        )
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")  # nbgrader runs alembic
    monkeypatch.setattr(engine, "LocalPool", lambda workers: LostPool())
    assert main(["nbgrader", "regrade", str(tmp_path), "--no-sandbox", "--json", str(tmp_path / "rows.json")]) == 1
    said = capsys.readouterr()
    assert "2 student(s) not graded through no fault of theirs (the first, alice)" in said.err, said.err
    assert "Traceback" not in said.err
    rows = json.loads((tmp_path / "rows.json").read_text())["submissions"]
    assert [(r["student"], r["lost"]) for r in rows] == [("alice", True), ("bob", True)]
    assert all(r["problem"].startswith("not graded through no fault of theirs (FutureCancelled") for r in rows)
    monkeypatch.undo()
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    assert main(["nbgrader", "regrade", str(tmp_path), "--no-sandbox"]) == 0
    assert "not graded through no fault" not in capsys.readouterr().out


def test_groups_left_by_a_killed_grader_are_thawed_killed_and_removed(tmp_path: Path) -> None:
    """kill -9 of a grader while the timed item had its worker frozen left the worker FROZEN for good; the next
    class run's sweep ends it and removes the group. A live grader's group is left alone."""
    from grader.sandbox import cgroups

    if cgroups.parents() is None:
        pytest.skip("no cgroup can be made here")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(gone.stdout)
    version, under = cgroups.parents()  # type: ignore[misc]
    orphan = cgroups.Cgroup(version, {c: folder / f"{cgroups.PREFIX}-{dead}-0" for c, folder in under.items()})
    live = cgroups.Cgroup.create(256 * 2**20, 16)  # this process's own
    assert live is not None
    sleepers = []
    try:
        for folder in orphan.folders.values():
            folder.mkdir()
        for group in (orphan, live):
            sleeper = subprocess.Popen(["sleep", "300"])
            group.enter(sleeper.pid)
            sleepers.append(sleeper)
        assert orphan.freeze(True)
        removed = cgroups.sweep()
        assert f"{cgroups.PREFIX}-{dead}-0" in removed, removed  # (with any other dead grader's, of other tests)
        assert sleepers[0].wait(timeout=10) == -signal.SIGKILL
        assert not any(folder.exists() for folder in orphan.folders.values())
        assert sleepers[1].poll() is None and live.pids() == [sleepers[1].pid]
        # As a grading process ends: its own groups, one no sandbox knew of included, and no other grader's.
        other = cgroups.Cgroup(version, {c: folder / f"{cgroups.PREFIX}-1-0" for c, folder in under.items()})
        for folder in other.folders.values():
            folder.mkdir()
        try:
            assert next(iter(live.folders.values())).name in cgroups.remove_own()
            assert sleepers[1].wait(timeout=10) == -signal.SIGKILL
            assert not any(folder.exists() for folder in live.folders.values())
            assert all(folder.is_dir() for folder in other.folders.values())
        finally:
            other.remove()
    finally:
        live.remove()
        orphan.remove()
        for sleeper in sleepers:
            sleeper.kill()
            sleeper.wait()


def test_scratch_folders_of_a_killed_grader_are_removed(tmp_path: Path) -> None:
    from grader.sandbox import scratch

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"grader-sandbox-{int(gone.stdout)}-abc"
    probe = tmp_path / f"grader-probe-{int(gone.stdout)}-abc"  # the wall's probe, killed while it looked
    probe.mkdir()
    (dead / "submission" / "locked" / "deeper").mkdir(parents=True)
    (dead / "submission" / "locked" / "deeper" / "x").write_text("a student's file")
    (dead / "submission" / "link").symlink_to(tmp_path / "keep")
    (tmp_path / "keep").write_text("not the grader's")
    for folder in (dead / "submission" / "locked" / "deeper", dead / "submission" / "locked"):
        folder.chmod(0)
    live = tmp_path / f"grader-payload-{os.getpid()}-def"
    live.mkdir()
    other = tmp_path / "grader-audit-xyz"
    other.mkdir()
    old, recent = tmp_path / "grader-k3x_9qzt", tmp_path / "grader-a1b2c3d4"  # named as before 0.8.0, no pid
    for folder in (old, recent):
        (folder / "submission").mkdir(parents=True)
    a_day_ago = time.time() - scratch.UNNAMED_STALE_S - 60
    os.utime(old, (a_day_ago, a_day_ago))
    assert sorted(scratch.sweep(tmp_path)) == sorted([dead.name, probe.name, old.name])
    assert not dead.exists() and not probe.exists()
    assert live.is_dir() and other.is_dir() and (tmp_path / "keep").is_file()
    assert not old.exists() and recent.is_dir()
    assert scratch.prefix("entry") == f"grader-entry-{os.getpid()}-"
    # As a grading process ends: its own folders, and nothing of a live grader's or of the time before 0.8.0.
    init = tmp_path / "grader-entry-1-ghi"
    init.mkdir()
    assert scratch.remove_own(tmp_path) == [live.name]
    assert not live.exists() and init.is_dir() and recent.is_dir() and other.is_dir()


def test_a_link_to_a_folder_in_a_dead_graders_folder_lends_the_sweep_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep opens up locked folders before removing them. A link to a folder among them (listed as a folder,
    and here as if it had been swapped in after the look: ``islink`` says no) is neither followed, which would
    give the link's target mode 700, nor a reason to stop (Python's ``chmod(..., follow_symlinks=False)`` raises
    NotImplementedError on a link)."""
    from grader.sandbox import scratch

    target = tmp_path / "instructor"
    target.mkdir(mode=0o755)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / "tmp" / f"grader-sandbox-{int(gone.stdout)}-abc"
    (dead / "locked").mkdir(parents=True)
    (dead / "locked" / "link").symlink_to(target)
    (dead / "locked").chmod(0)
    monkeypatch.setattr(os.path, "islink", lambda path: False)
    assert scratch.sweep(tmp_path / "tmp") == [dead.name]
    assert stat.S_IMODE(target.stat().st_mode) == 0o755 and target.is_dir()


def chain(folder: Path, depth: int, name: str = "d") -> None:
    """``folder``/d/d/.../d, ``depth`` folders deep (made through descriptors: the path outgrows PATH_MAX)."""
    fd = os.open(folder, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir(name, dir_fd=fd)
        inner = os.open(name, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)


def test_a_tree_thousands_of_folders_deep_left_by_a_killed_grader_is_swept(tmp_path: Path) -> None:
    """A worker that may write somewhere makes a tree 3000 folders deep in a blink. ``shutil.rmtree`` and
    ``os.walk`` recurse once a level: the sweep raised RecursionError, and every class run after stopped there,
    not only the student's. It goes, with its locked folders and without following its links."""
    from grader.sandbox import scratch

    target = tmp_path / "instructor"
    target.mkdir(mode=0o755)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / "tmp" / f"grader-sandbox-{int(gone.stdout)}-abc"
    (dead / "home" / "wide").mkdir(parents=True)
    chain(dead / "home", 3000)
    for k in range(300):
        (dead / "home" / "wide" / str(k)).mkdir()
        (dead / "home" / "wide" / str(k) / "link").symlink_to(target)
    (dead / "home" / "wide" / "7").chmod(0)
    assert scratch.sweep(tmp_path / "tmp") == [dead.name]
    assert not os.path.lexists(dead) and (target.stat().st_mode & 0o7777) == 0o755


# A process whose first thread ends while another runs on: /proc reads its leader as a zombie.
LEADER_ENDS_FIRST = """
import ctypes, threading, time
threading.Thread(target=time.sleep, args=(60,)).start()
print("ready", flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_killed_grader_not_yet_reaped_is_gone_one_whose_first_thread_ended_is_not(tmp_path: Path) -> None:
    """Right after kill -9 of a class run its grading processes are exiting, or zombies that nobody has reaped
    yet (the first process of many containers reaps nothing): a run started then removes their folders, rather
    than leaving them to the run after it. A process whose first thread ended while another runs reads as a
    zombie in /proc, and keeps its folders."""
    from grader.sandbox import scratch

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # never waited for until the end: a zombie
    leaderless = subprocess.Popen([sys.executable, "-c", LEADER_ENDS_FIRST], stdout=subprocess.PIPE)
    live = subprocess.Popen(["sleep", "60"])
    try:
        assert leaderless.stdout is not None and leaderless.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 30
        while {_state(zombie.pid), _state(leaderless.pid)} != {"Z"} and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _state(zombie.pid) == _state(leaderless.pid) == "Z"
        folders = {p.pid: tmp_path / f"grader-sandbox-{p.pid}-abc" for p in (zombie, leaderless, live)}
        for folder in folders.values():
            folder.mkdir()
        assert scratch.sweep(tmp_path) == [folders[zombie.pid].name]
        assert folders[leaderless.pid].is_dir() and folders[live.pid].is_dir()
    finally:
        for process in (zombie, leaderless, live):
            process.kill()
            process.wait()
    assert scratch.gone(leaderless.pid) and scratch.gone(live.pid)  # reaped: no process at all


def _frozen_group(under: dict[str, Path], owners: set[int]) -> bool:
    """Whether a worker group made by one of ``owners`` (the command's processes; other tests' graders may be
    freezing theirs meanwhile) is frozen."""
    for folder in under.values():
        for owner in owners:
            for group in folder.glob(f"{PREFIX}-{owner}-*"):
                for name, frozen in (("freezer.state", "FROZEN"), ("cgroup.freeze", "1")):
                    try:
                        if (group / name).read_text().strip() == frozen:
                            return True
                    except OSError:
                        continue
    return False


def _heard_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # as a terminal's command hears Ctrl-C (a test runner may ignore it)


GROUP_SIGNALS = {"SIGTERM to its process group": signal.SIGTERM, "Ctrl-C (SIGINT to its process group)": signal.SIGINT}


@pytest.mark.parametrize("how", ["kill -9 of the command", *GROUP_SIGNALS])
def test_ending_the_command_while_a_worker_is_frozen_leaves_nothing(tmp_path: Path, how: str) -> None:
    """kill -9 of grade-class, or SIGTERM or Ctrl-C to its process group, while the timed item has the submission's
    worker frozen (to time the reference): the grading process hears of it (SIGTERM, as its parent dies, or the
    group's signal), thaws and kills its sandbox and exits; within seconds no process the command started is left,
    frozen or not, and none of their cgroups or scratch folders. Ctrl-C is one sentence, not a traceback."""
    import psutil

    from grader.sandbox import cgroups

    found = cgroups.parents()
    if found is None:
        pytest.skip("no cgroup freezer here: a stopped worker (SIGSTOP) dies of SIGKILL as it is")
    _, under = found
    for name in ("s1", "s2", "s3"):  # three timed steps: more moments at which a worker is frozen
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "ddpm.py").write_text((ROOT / "solutions" / "ddpm.py").read_text())
    started: list[psutil.Process] = []
    for attempt in range(3):  # on a busy machine a poll can miss every frozen moment of a run: then another run
        command = subprocess.Popen(
            [sys.executable, "-m", "grader", "grade-class", str(tmp_path / "class"), "--out",
             str(tmp_path / f"out{attempt}"), "--items", "ddpm.ddpm_train_step.speed", "--workers", "1",
             "--no-sandbox"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=(tmp_path / "said").open("w"), start_new_session=True,
            preexec_fn=_heard_sigint,
        )  # fmt: skip
        try:
            caught = False
            while command.poll() is None and not caught:
                with contextlib.suppress(psutil.Error):
                    started = psutil.Process(command.pid).children(recursive=True)
                    caught = _frozen_group(under, {p.pid for p in started})
                time.sleep(0.002)
            if caught and how in GROUP_SIGNALS:
                os.killpg(command.pid, GROUP_SIGNALS[how])
                command.wait(timeout=60)
        finally:
            command.kill()
            command.wait()
        if caught:
            break
    else:
        pytest.fail("in three runs the timed item was never seen with a worker frozen")
    said = (tmp_path / "said").read_text()
    if how in GROUP_SIGNALS:
        assert "Traceback" not in said, said
    if GROUP_SIGNALS.get(how) == signal.SIGINT:
        assert command.returncode == 130 and "grader: interrupted; every result stored before" in said, said
    _nothing_left(started, under)


def _nothing_left(started: list[Any], under: dict[str, Path]) -> None:
    """Within 30 s of the command's end none of ``started`` (the processes it started, psutil's) runs, frozen or
    not, and none of their cgroups (under ``under``) or scratch folders is left."""
    import psutil

    assert started, "no process of the command was seen"
    deadline = time.monotonic() + 30

    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    while (alive := [p for p in started if running(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, [(p.pid, p.name()) for p in alive]
    pids = {p.pid for p in started}
    assert not [g for folder in under.values() for pid in pids for g in folder.glob(f"{PREFIX}-{pid}-*")]
    assert not [t for pid in pids for t in Path(tempfile.gettempdir()).glob(f"grader-*-{pid}-*")]


# Moments drawn at random once, seeded (the same every run), one in each third of a small class's first 6 s: start-up,
# the sandbox being built, the zygote importing torch, items graded, the two sides timed, a result being written.
_DRAW = random.Random(26)
KILL_MOMENTS_S = [round(_DRAW.uniform(start, start + 2.0), 2) for start in (0.0, 2.0, 4.0)]


@pytest.mark.parametrize("moment", KILL_MOMENTS_S)
def test_kill_9_at_any_moment_leaves_nothing_and_the_next_run_completes(tmp_path: Path, moment: float) -> None:
    """kill -9 of grade-class, graded as a course grades it (behind the wall there is: bubblewrap, or the process
    wall in tests/container.py's run), at a moment of its run: every process it started ends; the next run grades
    every student not stored, with the grades of a run never killed; none of the killed run's cgroups or scratch
    folders is left once its processes are gone."""
    import psutil

    from grader.sandbox import cgroups

    under = (cgroups.parents() or (None, {}))[1]
    for name, source in (("s1", ROOT / "solutions"), ("s2", ROOT / "exercises")):
        (tmp_path / "class" / name).mkdir(parents=True)
        for part in ("mle", "ddpm"):
            shutil.copy(source / f"{part}.py", tmp_path / "class" / name / f"{part}.py")
    out = tmp_path / "out"
    grade = [sys.executable, "-m", "grader", "grade-class", str(tmp_path / "class"), "--out", str(out), "--items",
             "mle.binomial_mle", "ddpm.ddpm_train_step.speed", "--workers", "1",
             *(() if wall("auto").holds else ("--no-sandbox",))]  # fmt: skip
    command = subprocess.Popen(grade, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + moment
        while command.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(psutil.Error):
                started.update((p.pid, p) for p in psutil.Process(command.pid).children(recursive=True))
            time.sleep(0.005)
        killed = command.poll() is None
    finally:
        command.kill()
        command.wait()
    if not killed:
        pytest.skip(f"the class was graded within {moment} s: nothing to kill at that moment")
    if started:  # at the earliest moments the command may not have started a process yet
        # At once: a grading process that a signal ends while it makes a cgroup or a scratch folder, before a
        # sandbox holds it, removes it as it ends (CI once saw a group left so, under load, at 4.41 s).
        _nothing_left(list(started.values()), under)
    again = subprocess.run(grade, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    rows = {r["student"]: r["total"] for r in csv.DictReader((out / "grades.csv").open())}
    assert rows == {"s1": "4", "s2": "0"}, rows


CLEANUP = """
import sys, time
from pathlib import Path
from grader.batch import engine
marks = Path(sys.argv[2])
def close(self):  # the room's sandbox closing: its zygote and workers ended, their cgroups removed
    (marks / "closing").touch()
    time.sleep(1.0)
    (marks / "closed").touch()
engine.Rooms.close = close
engine._remove_own_places = lambda: (marks / "removed").touch()
engine.serve(int(sys.argv[1]))
"""


def test_a_grading_process_whose_batch_is_gone_cleans_up_whole_though_its_parents_death_is_signalled(
    tmp_path: Path,
) -> None:
    """The batch killed: its grading process hears the socket's end first and begins to clean up, then the parent's
    death signal (SIGTERM), which must not cut the clean-up short (CI once found a room's cgroups left so)."""
    import multiprocessing.connection
    import signal
    import socket

    ours, theirs = socket.socketpair()
    process = subprocess.Popen([sys.executable, "-c", CLEANUP, str(theirs.fileno()), str(tmp_path)],
                               pass_fds=(theirs.fileno(),), cwd=ROOT)  # fmt: skip
    theirs.close()
    connection = multiprocessing.connection.Connection(ours.detach())
    try:
        assert connection.recv() == ("ready", None)  # its handlers are set
    finally:
        connection.close()  # the batch's end closed, as when it dies
    deadline = time.monotonic() + 60
    while not (tmp_path / "closing").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)  # its parent's death, as PR_SET_PDEATHSIG sends it
    process.wait(timeout=60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["closed", "closing", "removed"]


@contextlib.contextmanager
def endings_heard_as_a_pool_process_does(monkeypatch: pytest.MonkeyPatch, ending: bool) -> Any:
    """This process's SIGTERM, SIGINT and SIGALRM handlers and timer, restored after (engine._exit_cleanly and
    _unless_ending change them, as they do in a pool process)."""
    monkeypatch.setattr(engine, "_ENDING", ending)
    saved = {heard: signal.getsignal(heard) for heard in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for heard, handler in saved.items():
            signal.signal(heard, handler)


def test_an_ending_signalled_inside_an_items_hypothesis_run_is_not_taken_for_its_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pool process told to end (SIGTERM, as its batch dies) while an item's Hypothesis run calls the student's
    code: Hypothesis takes a SystemExit for a failure of the test and shrinks it, calling the workers again and
    again (a class killed behind the process wall went on for 2 to 7 s); the ending goes through at once."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    calls: list[int] = []

    @settings(database=None, max_examples=50, derandomize=True)
    @given(st.integers())
    def item(x: int) -> None:
        calls.append(x)
        if len(calls) == 3:
            engine._exit_cleanly(signal.SIGTERM, None)

    with endings_heard_as_a_pool_process_does(monkeypatch, ending=False), pytest.raises(engine.Ending) as ended:
        item()
    assert ended.value.code == 128 + signal.SIGTERM and len(calls) == 3, calls


def test_an_ending_that_a_gc_callback_dropped_is_raised_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Raised in a gc callback (Hypothesis has one), the ending is dropped by Python as unraisable: the pool
    process's hook raises it again a moment later, where it propagates."""
    from types import SimpleNamespace

    dropped = SimpleNamespace(exc_value=engine.Ending(143), exc_type=engine.Ending, object=None, err_msg=None)
    with endings_heard_as_a_pool_process_does(monkeypatch, ending=True), pytest.raises(engine.Ending) as ended:
        engine._unless_ending(dropped)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            sum(range(1000))
    assert ended.value.code == 143


def other_grader(isolation: str) -> tuple[str, str]:
    return "0.0.1", ""


class Unbuildable:
    def __init__(self, *args: Any) -> None:
        pass

    def __enter__(self) -> Any:
        from grader.sandbox import SandboxUnavailable

        raise SandboxUnavailable("no wall here (as on that worker)")


def test_a_cluster_that_cannot_grade_is_refused_before_any_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    """Workers with another grader version (or no sandbox where one is required) would have recorded every student
    as failed: the cluster is asked first, and refused in one line, with nothing sent and nothing stored."""
    distributed = pytest.importorskip("distributed")
    from grader.__main__ import main

    folder = klass(tmp_path / "class")
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        pool = engine.DaskPool(cluster.scheduler_address)
        try:
            assert pool.check("off") == []
            with monkeypatch.context() as here:  # a worker where no sandbox can be built (this one's in-process)
                here.setattr(engine, "Sandbox", Unbuildable)
                problems = pool.check("required")
            assert len(problems) == 1 and problems[0].endswith("cannot grade: no wall here (as on that worker)")
        finally:
            pool.close()
        monkeypatch.setattr(engine, "worker_can_grade", other_grader)
        code = main(["grade-class", str(folder), "--out", str(tmp_path / "out"), "--items", *ITEMS,
                     "--dask", cluster.scheduler_address, "--no-sandbox"])  # fmt: skip
    said = capsys.readouterr().err
    assert code == 2 and "cannot grade, nothing was sent" in said and "has grader 0.0.1" in said, said
    assert not (tmp_path / "out").exists()


def test_without_a_key_nothing_is_reused_and_the_run_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("GRADER_RESULTS_KEY", str(tmp_path / "file" / "results.key"))
    assert store.results_key() is None
    folder = klass(tmp_path / "class", wrong=())
    assert run(folder, tmp_path / "out").graded == 3
    again = run(folder, tmp_path / "out")
    assert (again.graded, again.skipped) == (3, 0) and any("no key" in w for w in again.warnings)


SCHEDULER = """
import asyncio, distributed

async def main():
    async with distributed.Scheduler(host="127.0.0.1", port=0, dashboard_address=None) as scheduler:
        print(scheduler.address, flush=True)
        await scheduler.finished()

asyncio.run(main())
"""


def test_a_real_scheduler_that_dies_mid_run_leaves_its_students_ungraded(tmp_path: Path) -> None:
    """A Dask scheduler (its own process, with a worker process) killed with -9 once the first result is stored:
    the command ends in one line and exit 1, the students in flight are not stored (not failed, not zero), and the
    next run grades exactly them."""
    pytest.importorskip("distributed")
    folder = tmp_path / "class"
    for k in range(5):
        (folder / f"s{k}").mkdir(parents=True)
        (folder / f"s{k}" / "mle.py").write_text((ROOT / "solutions" / "mle.py").read_text())
    out = tmp_path / "out"
    grade = [sys.executable, "-m", "grader", "grade-class", str(folder), "--out", str(out), "--items", *ITEMS,
             "--no-sandbox"]  # fmt: skip
    scheduler = subprocess.Popen([sys.executable, "-c", SCHEDULER], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    worker: subprocess.Popen[bytes] | None = None
    try:
        assert scheduler.stdout is not None
        address = scheduler.stdout.readline().strip()
        assert address.startswith("tcp://"), address
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        command = subprocess.Popen([*grade, "--dask", address], cwd=ROOT, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)  # fmt: skip
        deadline = time.monotonic() + 240
        while not list((out / "results").glob("s*.json")) and command.poll() is None:
            assert time.monotonic() < deadline, "no result was stored in 4 minutes"
            time.sleep(0.05)
        scheduler.kill()
        said, complaint = command.communicate(timeout=120)
    finally:
        for process in (scheduler, worker):
            if process is not None:
                process.kill()
                process.wait()
    stored = sorted(p.stem for p in (out / "results").glob("s*.json"))
    assert command.returncode == 1, (said, complaint)
    assert 1 <= len(stored) < 5, stored
    assert "Traceback" not in complaint and "not graded through no fault of theirs" in complaint, complaint
    assert "scheduler-connection-lost" in complaint or "lost" in complaint.lower(), complaint
    assert f"{5 - len(stored)} not graded (the grader's trouble, not theirs)" in said, said
    assert all(json.loads((out / "results" / f"{s}.json").read_text())["status"] == "graded" for s in stored)
    again = subprocess.run(grade, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{5 - len(stored)} graded, {len(stored)} skipped" in again.stdout, again.stdout


NOT_WRITABLE = {
    # root without the capabilities that let it write anywhere: the permission check a non-root instructor meets
    "unwritable (EACCES)": lambda folder: ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                                          "--inh-caps=-dac_override,-dac_read_search"],
    # a read-only bind mount of the results folder, in a mount namespace of the command's own
    "read-only (EROFS)": lambda folder: ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                         'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
                                         str(folder)],
}  # fmt: skip


@pytest.mark.parametrize("trouble", NOT_WRITABLE)
def test_an_out_folder_that_cannot_be_written_is_a_sentence(tmp_path: Path, trouble: str) -> None:
    """Two students graded; a third arrives while the results folder cannot be written: one line naming the
    folder, exit 1, the two results untouched; once it can be written, a re-run grades the third alone."""
    if os.geteuid() != 0:
        pytest.skip("made by dropping root's capabilities or mounting: needs root")
    folder = klass(tmp_path / "class", wrong=())
    shutil.rmtree(folder / "s3")
    out = tmp_path / "out"
    grade = [sys.executable, "-m", "grader", "grade-class", str(folder), "--out", str(out), "--items", *ITEMS,
             "--no-sandbox"]  # fmt: skip
    assert subprocess.run(grade, cwd=ROOT, capture_output=True, timeout=300).returncode == 0
    before = {p.name: p.read_bytes() for p in (out / "results").iterdir()}
    (folder / "s3").mkdir()
    (folder / "s3" / "mle.py").write_text((ROOT / "solutions" / "mle.py").read_text())
    results = out / "results"
    results.chmod(0o555)
    try:
        wrapped = [*NOT_WRITABLE[trouble](results), *grade]
        done = subprocess.run(wrapped, cwd=ROOT, capture_output=True, text=True, timeout=300)
    finally:
        results.chmod(0o755)
    if "Operation not permitted" in done.stderr and "grader" not in done.stderr:
        pytest.skip(f"{wrapped[0]} cannot run here: {done.stderr.strip()}")
    what = "Permission denied" if "EACCES" in trouble else "Read-only file system"
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == (
        f"grader: could not write {results} ({what}); every result written before is whole: free space or make "
        f"{out} writable (or give another --out), then run the same command again"
    ), done.stderr
    assert {p.name: p.read_bytes() for p in results.iterdir()} == before
    again = subprocess.run(grade, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "1 graded, 2 skipped" in again.stdout, again.stdout + again.stderr
