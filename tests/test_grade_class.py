"""python -m grader grade-class: layouts, unreadable entries, resuming after kill -9, a pool process that dies,
Dask with a worker killed mid-batch, the same results with 1 and 2 workers, the timed item's verdict under load,
and the hostile corpus through the batch path."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import psutil
import pytest

from grader.authoring.corpus import MUTANTS, patched
from grader.batch import engine
from grader.batch.classroom import grade_class
from grader.batch.entries import Entry, discover
from grader.sandbox import bubblewrap

ROOT = Path(__file__).resolve().parents[1]
QUICK = ("mle.binomial_mle", "divergences.entropy")  # two modules, two workers, a few seconds a student
PARTS = ("mle", "divergences", "vae", "gan", "ddpm")
ISOLATION = "required" if bubblewrap() else "off"
NO_SANDBOX = () if bubblewrap() else ("--no-sandbox",)


def solutions_into(folder: Path, parts: tuple[str, ...] = PARTS) -> Path:
    folder.mkdir(parents=True)
    for part in parts:
        shutil.copyfile(ROOT / "solutions" / f"{part}.py", folder / f"{part}.py")
    return folder


def stubs_into(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for part in PARTS:
        shutil.copyfile(ROOT / "exercises" / f"{part}.py", folder / f"{part}.py")
    return folder


def zip_of(folder: Path, target: Path, inside: str = "") -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"{inside}{path.name}")


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grader", "grade-class", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def grades(out: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((out / "grades.csv").read_text())))


def results(out: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for path in (out / "results").glob("*.json"):
        data = json.loads(path.read_text())
        data["notes"] = [n for n in data["notes"] if "ms/step" not in n]  # the timed item's measured times
        data.pop("signature")  # the keyed digest of the whole file, measured times included
        found[data["student"]] = data
    return found


# ------------------------------------------------------------------------------------------ layouts


@pytest.fixture(scope="module")
def mixed_class(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One class of every kind of entry, graded once through the command line."""
    base = tmp_path_factory.mktemp("mixed")
    folder = base / "class"
    folder.mkdir()
    solutions_into(folder / "alice")
    stubs_into(folder / "bob")
    zip_of(solutions_into(base / "carol"), folder / "carol.zip")
    zip_of(solutions_into(base / "dan"), folder / "dan.zip", inside="dan/")  # a zip of the folder
    solutions_into(folder / "Ana María López", ("mle",))
    (folder / "notes.txt").write_text("not a submission")
    (folder / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")
    (folder / "empty").mkdir()
    (folder / ".DS_Store").write_text("hidden: not a student")
    with zipfile.ZipFile(folder / "mallory.zip", "w") as archive:  # names that point outside, and a link
        archive.writestr("../../escaped.py", "x = 1\n")
        archive.writestr("/abs.py", "x = 1\n")
        link = zipfile.ZipInfo("mle.py")
        link.external_attr = 0o120777 << 16
        archive.writestr(link, "/etc/shadow")
        archive.write(ROOT / "solutions" / "divergences.py", "divergences.py")
    solutions_into(folder / "zed")
    zip_of(folder / "zed", folder / "zed.zip")  # the same student twice: two rows, neither graded twice
    out = base / "out"
    result = cli(str(folder), "--out", str(out), "--items", *QUICK, "--workers", "2", *NO_SANDBOX)
    return out, result


def test_every_entry_gets_its_row(mixed_class: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, result = mixed_class
    assert result.returncode == 0, result.stderr
    rows = {r["student"]: r for r in grades(out)}
    expected = {
        "alice": ("4", "graded"), "bob": ("0", "graded"), "carol": ("4", "graded"), "dan": ("4", "graded"),
        "Ana María López": ("2", "graded"), "notes.txt": ("0", "unreadable"), "broken": ("0", "unreadable"),
        "empty": ("0", "empty"), "mallory": ("2", "graded"), "zed": ("4", "graded"), "zed.zip": ("4", "graded"),
    }  # fmt: skip
    assert {s: (r["total"], r["status"]) for s, r in rows.items()} == expected
    assert rows["alice"]["mle.binomial_mle"] == "2" and rows["alice"]["vae.VAE"] == ""  # not graded: --items
    assert "11 students: 8 graded, 0 skipped" in result.stdout
    assert not (out.parent / "escaped.py").exists() and not Path("/abs.py").exists()


def test_unreadable_entries_say_why(mixed_class: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = mixed_class
    stored = results(out)
    assert "not a zip file" in stored["broken"]["message"]
    assert "a file, not a folder" in stored["notes.txt"]["message"]
    assert "nothing to grade" in stored["empty"]["message"]
    notes = " ".join(stored["mallory"]["notes"])
    assert "points outside the submission" in notes and "a link or a special file" in notes
    for data in stored.values():
        assert data["grader_version"] and "settings" in data
        assert data["status"] in ("graded", "empty", "unreadable") and isinstance(data["score"], int)


def test_report_page_is_escaped_and_complete(mixed_class: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = mixed_class
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2  # the histogram and the pass rates
    for section in ("scores", "items", "mistakes", "troubled", "limits", "unread", "students"):
        assert f'id="{section}"' in page
    assert "Ana María López" in page and "not a zip file" in page
    assert "<script" not in page


def test_pages_are_written_per_student_with_their_pictures(tmp_path: Path) -> None:
    """--pages: each graded student's feedback page beside their result, and a re-run keeps both."""
    folder = tmp_path / "class"
    solutions_into(folder / "alice", ("ddpm", "gan"))
    stubs_into(folder / "bob")
    out = tmp_path / "out"
    result = cli(str(folder), "--out", str(out), "--items", "gan.optimal_discriminator", "--pages", *NO_SANDBOX)
    assert result.returncode == 0, result.stderr
    alice, bob = (out / "pages" / "alice.html").read_text(), (out / "pages" / "bob.html").read_text()
    assert alice.count("Yours matches the reference&#39;s.") == 4  # ddpm's three pictures and gan's one
    assert bob.count("is not implemented yet, so this picture shows the reference alone.") == 5
    assert bob.count('<img alt="') == 5  # the reference's side is drawn all the same
    assert json.loads((out / "results" / "alice.json").read_text())["settings"]["pages"] is True
    again = cli(str(folder), "--out", str(out), "--items", "gan.optimal_discriminator", "--pages", *NO_SANDBOX)
    assert "0 graded, 2 skipped" in again.stdout and (out / "pages" / "alice.html").read_text() == alice


def test_names_are_safe_file_names() -> None:
    keys = {Entry(name, Path(name)).key for name in ("alice", "Ana María", "ana maría", "..", "a/b", ".x", "a b")}
    assert len(keys) == 7
    for key in keys:
        assert "/" not in key and not key.startswith(".") and key.isascii()


def test_nbgrader_layout_is_recognised(tmp_path: Path) -> None:
    for student in ("s1", "s2"):
        solutions_into(tmp_path / "submitted" / student / "hw", ("mle",))
    assert [(e.student, e.path.name) for e in discover(tmp_path, "hw")] == [("s1", "hw"), ("s2", "hw")]


def test_bad_arguments_fail_at_once(tmp_path: Path) -> None:
    cases = [
        ((str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")), "is not a folder"),
        ((str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "0"), "--workers must be at least 1"),
        ((str(tmp_path), "--out", str(tmp_path / "o"), "--items", "mle.nothing"), "unknown item"),
        ((str(tmp_path), "--out", str(tmp_path / "o"), "--dask", "tcp://127.0.0.1:9"), "no Dask scheduler answered"),
    ]
    for args, message in cases:
        started = time.monotonic()
        result = cli(*args, timeout=60)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert time.monotonic() - started < 30
        assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------------------------ nothing lost


def wrong(k: int) -> bool:
    """Whether the k-th student of a small class answers binomial_mle wrongly (so that grades differ)."""
    return k % 3 == 1


def small_class(folder: Path, n: int) -> Path:
    for k in range(n):
        solutions_into(folder / f"s{k:02d}", ("mle", "divergences"))
        if wrong(k):
            module = folder / f"s{k:02d}" / "mle.py"
            module.write_text(module.read_text().replace("return float(k.sum() / n.sum())", "return 0.5"))
    return folder


def small_class_grades(n: int) -> list[dict[str, str]]:
    """grades.csv's rows for ``small_class(n)`` graded on QUICK, written out: every item column, in order."""
    from grader.grading.items import ITEMS

    rows = []
    for k in range(n):
        scores = {"mle.binomial_mle": "0" if wrong(k) else "2", "divergences.entropy": "2"}
        total = str(sum(map(int, scores.values())))
        rows.append({"student": f"s{k:02d}", "total": total, **{i.id: scores.get(i.id, "") for i in ITEMS},
                     "status": "graded"})  # fmt: skip
    return rows


def test_resumes_after_kill_9_with_every_student_once(tmp_path: Path) -> None:
    folder = small_class(tmp_path / "class", 8)
    resumed = tmp_path / "resumed"
    batch = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade-class", str(folder), "--out", str(resumed), "--items", *QUICK,
         *NO_SANDBOX], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while len(list((resumed / "results").glob("*.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(batch.pid, signal.SIGKILL)  # the whole batch: the command, its pool, their sandboxes
    batch.wait()
    done = len(list((resumed / "results").glob("*.json")))
    assert 3 <= done < 8, "the batch was not killed part-way"
    for path in (resumed / "results").glob("*.json"):
        json.loads(path.read_text())  # whole, never torn
    again = cli(str(folder), "--out", str(resumed), "--items", *QUICK, *NO_SANDBOX)
    assert again.returncode == 0, again.stderr
    assert f"{8 - done} graded, {done} skipped" in again.stdout
    assert grades(resumed) == small_class_grades(8)  # as a run never killed writes it
    assert not list((resumed / "results").glob(".*.tmp"))


def _oom_kill(process: psutil.Process) -> Any:
    """Put ``process`` alone in a new memory cgroup of 1 MiB, first in line for the kernel's OOM killer: the next
    MiB that it or the workers it starts from now on allocate (only that is charged to the group, the workers'
    groups being made inside it) wakes the OOM killer, which kills it. The group, to remove after. (With 16 MiB it
    took a worker's import of scipy to reach the limit, and the test failed once the zygote imported scipy.)"""
    from grader.sandbox import cgroups

    group = cgroups.Cgroup.create(2**20, 64)
    if group is None:
        pytest.skip("no cgroup can be made here")
    Path(f"/proc/{process.pid}/oom_score_adj").write_text("1000")
    group.enter(process.pid)
    return group


def _remove_with_the_groups_made_inside(group: Any) -> None:
    """Remove the test's group after the worker groups its pool process made inside it (a grading process makes
    them below its own group; this one, killed, could not remove them). Deepest first."""
    from grader.sandbox import cgroups

    inner = {name for folder in group.folders.values() for name in (p.name for p in folder.rglob("genmath-grader-*"))}
    for name in sorted(inner, reverse=True):
        found = {c: next(folder.rglob(name)) for c, folder in group.folders.items() if any(folder.rglob(name))}
        cgroups.Cgroup(group.version, found).remove()
    group.remove()
    assert not any(folder.exists() for folder in group.folders.values()), "the test's cgroup was left behind"


@pytest.mark.parametrize("death", ["kill -9", "the OOM killer"])
def test_a_pool_process_that_dies_costs_a_retry_only(tmp_path: Path, death: str) -> None:
    folder = small_class(tmp_path / "class", 4)
    killed: list[int] = []
    groups: list[Any] = []

    def kill_one_pool_process() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for child in psutil.Process().children():
                try:
                    pool = "grader.batch.engine" in " ".join(child.cmdline())
                    grading = any("worker.py" in " ".join(c.cmdline()) for c in child.children(recursive=True))
                except psutil.Error:  # gone meanwhile
                    continue
                if pool and grading:  # a pool process in the middle of grading
                    if death == "kill -9":
                        child.kill()
                    else:
                        groups.append(_oom_kill(child))
                    killed.append(child.pid)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_pool_process)
    killer.start()
    try:
        summary = grade_class(
            folder, tmp_path / "out", lambda: engine.LocalPool(2), engine.Settings(QUICK, isolation=ISOLATION)
        )
        killer.join()
        assert killed, "no pool process was found to kill"
        assert not psutil.pid_exists(killed[0]) or psutil.Process(killed[0]).status() == psutil.STATUS_ZOMBIE
        if groups:
            assert groups[0].oom_kills() == 1, "the kernel's OOM killer did not end it"
        from grader.sandbox import cgroups

        cgroups.sweep()  # what the next class run does: the dead pool process's worker groups go (a class run
        found = cgroups.parents()  # of another test beside this one may have swept them first)
        left = [p.name for folder in (found[1].values() if found else ()) for p in folder.glob(f"*-{killed[0]}-*")]
        assert not left, left
    finally:
        killer.join()
        for group in groups:
            _remove_with_the_groups_made_inside(group)
    assert (summary.graded, summary.failed) == (4, 0)
    assert grades(tmp_path / "out") == small_class_grades(4)


def test_dask_cluster_with_a_worker_killed_mid_batch(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    folder = small_class(tmp_path / "class", 6)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        pids = list(client.run(os.getpid).values())
        arrived: list[str] = []

        def on_result(student: str, result: dict[str, Any]) -> None:
            arrived.append(student)
            if len(arrived) == 2:  # mid-batch: a worker, with its grading process, dies
                os.kill(pids[0], signal.SIGKILL)

        summary = grade_class(
            folder, tmp_path / "dask", lambda: engine.DaskPool(cluster.scheduler_address),
            engine.Settings(QUICK, isolation=ISOLATION), on_result=on_result,
        )  # fmt: skip
    assert sorted(arrived) == sorted(f"s{k:02d}" for k in range(6)), "a student was lost or counted twice"
    assert (summary.graded, summary.failed) == (6, 0)
    assert grades(tmp_path / "dask") == small_class_grades(6)


def test_a_result_lost_with_its_worker_is_computed_again_whatever_client_is_current() -> None:
    """The race of the test above, made certain: a task finishes on a worker that dies before its result is
    fetched. The scheduler computes it again elsewhere, and the pool waits for that on its own client's loop,
    even where another client was entered first (here, the test's own)."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        distributed.Client(cluster) as current,
    ):
        pool = engine.DaskPool(cluster.scheduler_address)
        try:
            first = sorted(current.scheduler_info()["workers"])[0]
            task = pool.client.submit(time.sleep, 0.5, workers=[first], allow_other_workers=True, pure=False)
            finished = next(pool.completed([task]))  # waited for while it ran
            os.kill(current.run(os.getpid, workers=[first])[first], signal.SIGKILL)
            assert finished.result(timeout=60) is None
        finally:
            pool.close()


# ------------------------------------------------------------------------------------------ fair under load


def loop_step_into(folder: Path) -> Path:
    """ddpm.py whose training step loops over the batch in Python (the corpus' per-sample loop)."""
    (mutant,) = [m for m in MUTANTS if m.item == "ddpm.ddpm_train_step.speed" and m.name == "per-sample loop"]
    folder.mkdir(parents=True)
    (folder / "ddpm.py").write_text(patched(mutant, ROOT / "solutions"))
    return folder


SLEEPS_THEN_BURNS = (
    "import time\n\n\ndef binomial_mle(k, n):\n    time.sleep(0.4)\n    while True:\n        pass\n\n\n"
    "gaussian_mle = binomial_mle\n"
)


def test_timed_verdicts_hold_with_two_workers_on_two_cores(tmp_path: Path) -> None:
    """A fast step and a per-sample loop, graded one after the other, then at once by two workers, where a
    timed step waits for the other worker's items and they for it (grader/grading/turns.py): the same verdicts and
    the same results. A third student's calls sleep (the machine looks quiet, so a timed step need not wait for
    them) and then compute to their time limit beside whatever is timed: the verdicts hold all the same."""
    folder = tmp_path / "class"
    solutions_into(folder / "fast", ("mle", "ddpm"))
    loop_step_into(folder / "loop")
    shutil.copyfile(ROOT / "solutions" / "mle.py", folder / "loop" / "mle.py")
    (folder / "burner").mkdir()
    (folder / "burner" / "mle.py").write_text(SLEEPS_THEN_BURNS)
    items = ("mle.binomial_mle", "mle.gaussian_mle", "ddpm.ddpm_train_step.speed")
    settings = engine.Settings(items, timeout_s=3.0, isolation=ISOLATION)
    by_workers = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        grade_class(folder, out, lambda w=workers: engine.LocalPool(w), settings)
        rows = {r["student"]: (r["mle.binomial_mle"], r["ddpm.ddpm_train_step.speed"]) for r in grades(out)}
        assert rows == {"fast": ("2", "2"), "loop": ("2", "0"), "burner": ("0", "0")}, rows
        by_workers[workers] = results(out)
    assert by_workers[1] == by_workers[2], "1 and 2 workers gave different results"


FIRST_STUDENT = """
import multiprocessing.connection, socket, subprocess, sys
from pathlib import Path
from grader.batch import engine
from grader.intake.archive import pack

ours, theirs = socket.socketpair()
spy = (
    "import sys\\nfrom grader.sandbox import workers\\nspawn = workers.Sandbox._spawn_zygote\\n"
    "def spawned(self):\\n    print('torch' in sys.modules, flush=True)\\n    return spawn(self)\\n"
    "workers.Sandbox._spawn_zygote = spawned\\nfrom grader.batch.engine import serve\\nserve(int(sys.argv[1]))\\n"
)
process = subprocess.Popen([sys.executable, "-c", spy, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                           stdout=subprocess.PIPE, text=True)
theirs.close()
connection = multiprocessing.connection.Connection(ours.detach())
assert connection.recv() == ("ready", None)
settings = engine.Settings(("mle.binomial_mle",), isolation=sys.argv[2])
connection.send(("s1", pack(Path(sys.argv[1])), "-", [], settings))
kind, result = connection.recv()
connection.close()
process.wait(timeout=60)
print(kind, result["items"][0]["status"], process.stdout.read().split())
"""


def _zygote_command(sandbox: Any) -> str:
    return " ".join(" ".join(p.cmdline()) for p in sandbox.zygote.process.family())


@pytest.mark.skipif(not bubblewrap(), reason="a sandbox is kept from student to student only behind bubblewrap")
def test_only_a_kept_sandboxs_zygote_imports_what_the_exercises_import() -> None:
    """The zygote of a class's kept sandbox imports the exercises' own imports (scipy.special) once for every
    student (worker.py, --preload); the zygote of one grade does not, which would only lengthen its start."""
    from grader.sandbox import Sandbox

    rooms = engine.Rooms()
    try:
        rooms.prepare(engine.Settings(("mle.binomial_mle",), isolation="required"))
        assert rooms.room is not None and rooms.room.zygote is not None
        assert "--preload" in _zygote_command(rooms.room), _zygote_command(rooms.room)
    finally:
        rooms.close()
    with Sandbox(None, isolation="required") as single:
        single.start(trains=False)
        assert "--zygote" in _zygote_command(single) and "--preload" not in _zygote_command(single)


@pytest.mark.skipif(not bubblewrap(), reason="a sandbox is kept from student to student only behind bubblewrap")
def test_a_pool_process_starts_its_first_students_workers_before_it_imports_torch(tmp_path: Path) -> None:
    """A pool process says it is ready at once, and its first student's sandbox starts the zygote (which imports
    torch) before the process imports torch itself: the two imports overlap, as in ``python -m grader grade``.
    (It imported and warmed up first, about 2 s on two cores before any student's workers started.)"""
    solutions_into(tmp_path / "s1", ("mle",))
    done = subprocess.run([sys.executable, "-c", FIRST_STUDENT, str(tmp_path / "s1"), ISOLATION], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    kind, status, spawned = done.stdout.split(maxsplit=2)
    assert (kind, status) == ("done", "passed"), done.stdout
    assert spawned.startswith("['False'"), spawned  # every zygote spawned before torch: the first one matters
