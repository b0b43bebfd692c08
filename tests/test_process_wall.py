"""The process wall: where bubblewrap cannot run (a Docker container, a Kubernetes pod), what holds instead.

Three layers of tests:

- its parts, on any Linux machine where the tests run as root: worker uids that no two submissions share,
  cleared of every process and file after each; Landlock confining a worker to what it may read and write;
- the same attacks as tests/test_hostile.py, run in a container as Docker makes one (tests/container.py: no
  namespaces, no CAP_SYS_ADMIN, read-only cgroups, no bwrap or unshare on PATH): the whole hostile suite, and
  the class attacks below, must hold there as they hold under bubblewrap
  (``test_the_hostile_suites_hold_in_a_container_without_namespaces``);
- the class attacks themselves, which run only behind the process wall (inside that container): a student who
  leaves a ``setsid`` double-forked process behind to kill, trace and read the next students' workers, or who
  goes after the template a class's zygotes are forked from (grader/sandbox/template.py), whose zygotes must be
  confined as ones started on their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from grader.runtime.tree_removal import remove_tree
from grader.sandbox import landlock, uids, wall

ROOT = Path(__file__).resolve().parents[1]
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="the process wall needs a root grader")
OWN_UID = pytest.mark.skipif(
    not wall("off").own_uid, reason="no worker uid can run this Python installation here (in tests/container.py it can)"
)
INSIDE = os.environ.get("GRADER_TEST_WALL")  # set by the container test for the run inside the container
BEHIND_THE_PROCESS_WALL = pytest.mark.skipif(
    wall("auto").kind != "process", reason="runs behind the process wall (in tests/container.py)"
)
MLE_BODY = (
    "    k, n = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))\n    return float(k.sum() / n.sum())"
)
ITEMS = ("mle.binomial_mle", "mle.bernoulli_mle", "divergences.entropy")


def as_uid(uid: int, code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", code], user=uid, group=uid, extra_groups=[], cwd="/")


@ROOT_ONLY
def test_no_two_submissions_share_a_uid(tmp_path: Path) -> None:
    """A slot is held with a lock: a second holder, in this process or another, gets another uid."""
    first = uids.acquire()
    second = uids.acquire()
    assert first is not None and second is not None
    try:
        other = subprocess.run(
            [sys.executable, "-c", "from grader.sandbox import uids; s = uids.acquire(); print(s.uid); s.release()"],
            capture_output=True, text=True, check=True, cwd=ROOT,
        )  # fmt: skip
        assert len({first.uid, second.uid, int(other.stdout)}) == 3
    finally:
        first.release()
        second.release()
    again = uids.acquire()
    assert again is not None and again.uid == first.uid  # released: the first free slot again
    again.release()


@ROOT_ONLY
def test_an_account_of_somebody_else_is_never_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    monkeypatch.setenv("GRADER_WORKER_UIDS", "60200-60202")
    accounts = {60200: "alice", 60201: "grader-worker1"}

    def getpwuid(uid: int) -> pwd.struct_passwd:
        if uid not in accounts:
            raise KeyError(uid)
        return pwd.struct_passwd((accounts[uid], "x", uid, uid, "", "/", "/bin/sh"))

    monkeypatch.setattr(pwd, "getpwuid", getpwuid)
    assert [uid for uid in uids.candidates() if uids.usable(uid)] == [60201, 60202]
    monkeypatch.setenv("GRADER_WORKER_UIDS", "0-10")
    with pytest.raises(ValueError, match="above 0"):
        uids.candidates()


LEAVER = """
import ctypes, os, signal, time
for path in ("/tmp/left-behind", "/dev/shm/left-behind"):
    open(path, "w").write("x")
os.makedirs("/tmp/left-locked/deeper")
os.chmod("/tmp/left-locked/deeper", 0)
os.chmod("/tmp/left-locked", 0)
ctypes.CDLL(None).shmget(0, 4096, 0o1000 | 0o600)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(300)
    os._exit(0)
os.wait()
"""


@OWN_UID
def test_releasing_a_slot_ends_every_process_and_removes_every_file_of_its_uid() -> None:
    slot = uids.acquire()
    assert slot is not None
    try:
        as_uid(slot.uid, LEAVER).wait(timeout=30)
        deadline = time.monotonic() + 10
        while len(uids.processes_of(slot.uid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(uids.processes_of(slot.uid)) == 2  # the sleeper and the stopped one, in a session of their own
        assert any(line.split()[7] == str(slot.uid) for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:])
    finally:
        slot.release()
    assert uids.processes_of(slot.uid) == []
    for path in ("/tmp/left-behind", "/dev/shm/left-behind", "/tmp/left-locked"):
        assert not os.path.lexists(path), path
    assert not any(line.split()[7] == str(slot.uid) for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:])


@ROOT_ONLY
def test_links_and_deep_trees_among_a_uids_files_neither_stop_nor_mislead_their_removal(tmp_path: Path) -> None:
    """A student behind the process wall may leave in /tmp a locked folder that holds links to folders of the
    machine. Removing the uid's files after the submission (as root) must follow none of them, and not stop at
    them: Python's ``chmod(..., follow_symlinks=False)`` raised NotImplementedError on such a link, which ended
    the slot's release, and the next acquire of that uid, for every student after."""
    shared = tmp_path / "shared"  # as /tmp: anyone may write
    shared.mkdir()
    shared.chmod(0o1777)
    target = tmp_path / "instructor"
    target.mkdir(mode=0o755)
    uid = 59999  # nothing runs as it: the files are made for it
    evil = shared / "evil"
    (evil / "inner").mkdir(parents=True)
    for link in (evil / "link", evil / "inner" / "link"):
        link.symlink_to(target)
        os.lchown(link, uid, uid)
    for folder in (evil / "inner", evil):
        os.chown(folder, uid, uid)
        folder.chmod(0)
    # ... and trees thousands of folders deep: its own, and another worker uid's open to all with one of its files
    # at the bottom (shutil.rmtree and os.walk recurse once a level: RecursionError), beside a folder of the
    # machine's open to all (as /tmp/.X11-unix) with one of its files
    other = uids.candidates()[0]
    deep, open_to_all, machines = shared / "deep", shared / "open", shared / ".X11-unix"
    for top, owner in ((deep, uid), (open_to_all, other)):
        top.mkdir()
        fd = os.open(top, os.O_RDONLY)
        for _ in range(2500):
            os.fchown(fd, owner, owner)
            os.fchmod(fd, 0o777)
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.fchown(fd, owner, owner)
        os.fchmod(fd, 0o777)
        os.close(os.open("planted", os.O_CREAT | os.O_WRONLY, dir_fd=fd))
        os.chown("planted", uid, uid, dir_fd=fd)
        os.close(fd)
    machines.mkdir()
    machines.chmod(0o1777)
    (machines / "planted").touch()
    os.chown(machines / "planted", uid, uid)
    try:
        assert uids.remove_files(uid, (str(shared),)) == []
        assert not os.path.lexists(evil) and not os.path.lexists(deep) and os.listdir(machines) == []
        assert uids.remove_files(other, (str(shared),)) == []  # the other uid's goes whole, what was planted in it too
        assert sorted(os.listdir(shared)) == [".X11-unix"]
    finally:
        remove_tree(str(open_to_all))  # not left to pytest's clean-up, which recurses too
    assert target.is_dir() and (target.stat().st_mode & 0o7777) == 0o755


CONFINED = """
import json, os, signal, socket, sys
readable, writable, secret, parent = sys.argv[1:5]
seen = {}
def attempt(name, action):
    try:
        action()
        seen[name] = True
    except OSError:
        seen[name] = False
attempt("reads its submission", lambda: open(os.path.join(readable, "mle.py")).read())
attempt("writes its scratch", lambda: open(os.path.join(writable, "x"), "w").write("x"))
attempt("reads the project", lambda: open(secret).read())
attempt("writes /tmp", lambda: open("/tmp/confined-" + str(os.getpid()), "w").write("x"))
attempt("writes its submission", lambda: open(os.path.join(readable, "y"), "w").write("x"))
attempt("signals the grader", lambda: os.kill(int(parent), 0))
attempt("connects over TCP", lambda: socket.create_connection(("127.0.0.1", 9), timeout=1))
attempt("imports torch", lambda: __import__("torch"))
open(os.path.join(writable, "seen.json"), "w").write(json.dumps(seen))
"""


@pytest.mark.skipif(landlock.abi() < 1, reason="the kernel has no Landlock")
def test_landlock_confines_a_worker_to_its_own_files(tmp_path: Path) -> None:
    """Under the process wall's steps a worker reads its submission and the installation, writes its scratch
    folder only, cannot read the project whatever the files' modes say, and (ABI 4, 6) neither connects over TCP
    nor signals a process outside its domain."""
    from grader.sandbox import isolation, seccomp
    from grader.sandbox.confine import Confinement

    readable, writable = tmp_path / "submission", tmp_path / "home"
    readable.mkdir()
    writable.mkdir()
    (readable / "mle.py").write_text("x = 1\n")
    rules = isolation.ruleset([str(readable)], [str(writable)])
    assert rules is not None
    try:
        code = [sys.executable, "-I", "-c", CONFINED, str(readable), str(writable),
                str(ROOT / "reference" / "mle.py"), str(os.getpid())]  # fmt: skip
        confinement = Confinement(None, rules, seccomp.program())
        subprocess.run(code, preexec_fn=confinement.apply, check=True, timeout=120, cwd="/")
    finally:
        rules.close()
    seen = json.loads((writable / "seen.json").read_text())
    expected = {"reads its submission": True, "writes its scratch": True, "reads the project": False,
                "writes /tmp": False, "writes its submission": False, "imports torch": True}  # fmt: skip
    if landlock.abi() >= 6:
        expected["signals the grader"] = False
    if landlock.abi() >= 4:
        expected["connects over TCP"] = False
    assert {k: seen[k] for k in expected} == expected


# ------------------------------------------------------------------ in a container, as Docker makes one

HOSTILE_SUITES = (
    "tests/test_hostile.py",
    "tests/test_hostile_class.py",
    "tests/test_process_wall.py",
    "tests/test_prairielearn.py",  # PrairieLearn runs its grading image in Docker: this is where it will run
    "tests/test_replay.py::test_a_worker_can_neither_read_nor_write_a_record",  # kept cases: workers are other uids
    # kill -9 of a class run: here it is each uid's slot that must end every process the submission started
    "tests/test_faults.py::test_kill_9_at_any_moment_leaves_nothing_and_the_next_run_completes",
)


@ROOT_ONLY
@pytest.mark.timeout(1800)  # four suites in one test: about 7 min of one core on the 2-core machine
@pytest.mark.skipif(INSIDE is not None, reason="this is the run inside the container")
@pytest.mark.skipif(landlock.abi() < 1, reason="the kernel has no Landlock: the project would be readable")
def test_the_hostile_suites_hold_in_a_container_without_namespaces(tmp_path: Path) -> None:
    """The hostile suites, run again where bubblewrap cannot build its sandbox: every test passes behind the
    process wall, and none that the process wall is for is skipped."""
    env = {**os.environ, "GRADER_TEST_WALL": "process", "OMP_NUM_THREADS": "1"}
    env.pop("TMPDIR", None)  # the workers' scratch folders go to /tmp, which every uid can reach
    env.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "tests.container", "--work", str(tmp_path / "container"), "--",
         sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "--basetemp", str(tmp_path / "inner"),
         *HOSTILE_SUITES],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=1700,
    )  # fmt: skip
    tail = done.stdout[-6000:] + done.stderr[-3000:]
    assert done.returncode == 0, tail
    skipped = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert not [line for line in skipped if "process wall" in line or "needs a wall" in line], skipped
    assert " passed" in done.stdout.splitlines()[-1], tail


def test_the_wall_is_the_one_this_run_is_for() -> None:
    """Inside the container the grader must have taken the process wall, not fallen through to none."""
    if INSIDE is None:
        pytest.skip("outside the container: whatever this machine allows")
    held = wall("auto")
    assert held.kind == INSIDE, held
    assert held.own_uid and held.landlock >= 1, held


SPY = """
import ctypes, os, signal, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        found = []
        deadline = time.time() + 120
        while time.time() < deadline:
            for name in os.listdir("/proc"):
                if not name.isdigit() or int(name) == os.getpid():
                    continue
                pid = int(name)
                for attempt in (lambda: os.kill(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGSTOP),
                                lambda: open(f"/proc/{pid}/environ", "rb").read(),
                                lambda: open(f"/proc/{pid}/mem", "rb").read(1)):
                    try:
                        attempt()
                    except (OSError, ValueError):
                        pass
                if libc.ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
                    libc.ptrace(17, pid, None, None)  # PTRACE_DETACH
            for top in ("/tmp", "/dev/shm"):
                try:
                    for name in os.listdir(top):
                        try:
                            os.unlink(os.path.join(top, name))
                        except OSError:
                            pass
                except OSError:
                    pass
            time.sleep(0.05)
    os._exit(0)
"""


@BEHIND_THE_PROCESS_WALL
@pytest.mark.parametrize("workers", [1, 2])
def test_a_process_left_behind_cannot_touch_the_next_students(tmp_path: Path, workers: int) -> None:
    """A student leaves a setsid double-forked process that, for two minutes, kills and stops every process it
    sees, reads their environment and memory, traces them, and deletes what it can in /tmp and /dev/shm. The
    students graded after it (one at a time, and two at a time) get exactly what they get alone, and no process
    or file of any worker uid is left when the class is done. Without a uid of its own per submission the next
    student scored 0 of 3."""
    from grader.batch import engine
    from grader.batch.classroom import grade_class

    source = {part: (ROOT / "solutions" / f"{part}.py").read_text() for part in ("mle", "divergences")}
    spy = source["mle"].replace("from __future__ import annotations\n", "from __future__ import annotations\n" + SPY)
    assert spy != source["mle"]
    folder = tmp_path / "class"
    for student, mle in (("a_spy", spy), ("b_victim", source["mle"]), ("c_victim", source["mle"]),
                         ("d_victim", source["mle"])):  # fmt: skip
        (folder / student).mkdir(parents=True)
        (folder / student / "mle.py").write_text(mle)
        (folder / student / "divergences.py").write_text(source["divergences"])
    # the spy stops and kills its own workers too, whose calls then run into the limit: the hostile suite's 3 s
    # (a victim's call takes milliseconds), not the default's 10, which kept the class waiting 20 s on the spy
    settings = engine.Settings(ITEMS, timeout_s=3.0, isolation="required")
    summary = grade_class(folder, tmp_path / "out", lambda: engine.LocalPool(workers), settings)
    assert (summary.graded, summary.failed) == (4, 0), summary.line()
    for student in ("b_victim", "c_victim", "d_victim"):
        result = json.loads((tmp_path / "out" / "results" / f"{student}.json").read_text())
        assert result["wall"] == "process"
        assert [(i["id"], i["status"]) for i in result["items"]] == [(i, "passed") for i in ITEMS], result["items"]
    assert not left_running(), "a worker uid no grader holds still runs a process"
    owned = [p for top in ("/tmp", "/dev/shm") for p in Path(top).iterdir() if p.lstat().st_uid in uids.candidates()]
    assert not [p for p in owned if not another_graders_scratch(p)], owned


def left_running() -> dict[int, list[int]]:
    """The processes of each worker uid that no grader holds: a slot another grader holds (CI's other test
    process, a wall probe) runs that grader's workers; a free one must run nothing. Each slot is held here, with
    its lock, while its processes are counted, so that none is handed out meanwhile."""
    folder = uids.lock_folder()
    assert folder is not None
    left = {}
    for uid in filter(uids.usable, uids.candidates()):
        fd = uids.hold(folder, uid)
        if fd is None:
            continue
        try:
            if pids := uids.processes_of(uid):
                left[uid] = pids
        finally:
            os.close(fd)
    return left


def another_graders_scratch(path: Path) -> bool:
    """A scratch folder of another grader process still at work (a wall probe's folder belongs to its slot's uid
    while it probes): CI's other test process, not a leftover of this class (CI once found one mid-probe)."""
    from grader.sandbox import scratch

    named = scratch.NAME.match(path.name)
    return named is not None and int(named.group(2)) != os.getpid() and Path(f"/proc/{named.group(2)}").exists()


ESCAPED_BURNERS = """\
    import os, time
    if "_escaped" not in globals():  # burners that leave the worker's tree: setsid, then their parent exits
        globals()["_escaped"] = True
        if os.fork() == 0:
            os.setsid()
            for _ in range(3):
                if os.fork() == 0:
                    end = time.time() + 120
                    while time.time() < end:
                        sum(range(10_000))
                    os._exit(0)
            os._exit(0)
        os.wait()
    with torch.no_grad():
        for _ in range(16):
            model(x_0, t)
"""


@BEHIND_THE_PROCESS_WALL
def test_a_timed_step_with_burners_outside_its_tree_does_not_run_alone(tmp_path: Path) -> None:
    """Processes that double-fork away from the worker are no longer its descendants: behind the process wall
    (no PID namespace, here no cgroup) they are found by uid, so the step-runs-alone rule sees them, and the
    freezer stops them with the worker while the reference is timed; none outlives the grading."""
    from grader.grading import timing
    from grader.grading.run import grade
    from tests.test_wall import LIMITS, TIMED, ddpm_with_step

    folder = ddpm_with_step(tmp_path, ESCAPED_BURNERS + TIMED)
    report = grade(folder, ["ddpm.ddpm_train_step.speed"], LIMITS, "required")
    result = report.items[0]
    assert result.status == "failed" and result.feedback == timing.ALONE, result.feedback
    assert not left_running(), "a worker uid no grader holds still runs a process"


@BEHIND_THE_PROCESS_WALL
def test_without_landlock_a_project_the_worker_can_read_is_no_wall(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a kernel without Landlock the process wall holds only where the worker cannot read the project: here
    the clone is readable by all, so the probe, which tries as a worker would, calls the wall none and says why."""
    from grader.sandbox import isolation

    monkeypatch.setattr(landlock, "abi", lambda: 0)
    isolation.wall.cache_clear()
    try:
        held = isolation.wall("auto")
    finally:
        isolation.wall.cache_clear()
    assert held.kind == "none" and not held.holds and held.own_uid and held.landlock == 0, held
    assert any("a worker can read the project's files" in p for p in held.problems), held.problems
    assert any("no Landlock" in p for p in held.problems), held.problems


@ROOT_ONLY
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux's setpriv to drop capabilities")
@pytest.mark.parametrize(
    ("dropped", "named"),
    [
        ("dac_override", "CAP_DAC_OVERRIDE"),  # root could not empty a worker uid's 0700 HOME for the next student
        ("setuid,setgid", "CAP_SETGID, CAP_SETUID"),
        ("all", "CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_KILL, CAP_SETGID, CAP_SETUID"),  # a pod's drop: [ALL]
    ],
)
def test_root_without_the_capabilities_it_needs_is_no_process_wall(dropped: str, named: str) -> None:
    """A container may leave root without capabilities the process wall needs: the probe calls the wall none and
    names them, instead of a wall that failed every student (no CAP_DAC_OVERRIDE: tests/test_faults.py grades a
    class so) or a traceback (no CAP_CHOWN); the probe's folder is removed."""
    code = "from grader.sandbox import wall; w = wall('off'); print(w.kind, w.own_uid); print(*w.problems, sep='\\n')"
    drop = ",".join(f"-{cap}" for cap in dropped.split(","))
    probe = subprocess.Popen([
        "setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", sys.executable, "-c", code],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    out, err = probe.communicate(timeout=120)
    assert probe.returncode == 0, err
    kind, *problems = out.splitlines()
    assert kind == "none False", out
    drops = "it" if "," not in named else "them"
    assert f"the grader runs as root without {named} (a container that drops {drops}): workers cannot run as a " \
           "uid of their own" in problems, problems  # fmt: skip
    assert not any("no worker uid" in p or "not root" in p for p in problems), problems
    assert not list(Path(tempfile.gettempdir()).glob(f"grader-probe-{probe.pid}-*"))  # setpriv execs: one pid


@BEHIND_THE_PROCESS_WALL
def test_a_submissions_copy_is_its_own_workers_alone(tmp_path: Path) -> None:
    """Scratch folders live in /tmp: the copy of a submission and the modules made from its notebooks belong to
    root and the slot's group, mode 0750, so that where Landlock is missing another slot's workers (another
    student graded at the same time) cannot read them; the scratch HOME is the slot uid's alone."""
    from grader.sandbox import Sandbox

    (tmp_path / "mle.py").write_text("x = 1\n")
    with Sandbox(tmp_path, isolation="required") as sandbox:
        assert sandbox.slot is not None
        for folder in (sandbox.private, sandbox.generated_dir):
            info = folder.stat()
            assert (info.st_uid, info.st_gid, info.st_mode & 0o777) == (0, sandbox.slot.uid, 0o750), folder
        info = sandbox.home.stat()
        assert (info.st_uid, info.st_mode & 0o777) == (sandbox.slot.uid, 0o700)


def _forked_and_alone(template: Any, isolation: str) -> list[tuple[dict[str, object], int | None]]:
    """What the kernel says of a zygote forked from ``template`` and of one started on its own (``_confined_as``),
    in that order, each with its slot's uid (None without one)."""
    from grader.sandbox import Sandbox

    seen = []
    for forked in (template, None):
        with Sandbox(None, isolation=isolation, template=forked) as sandbox:  # type: ignore[arg-type]
            sandbox.start(trains=False)
            worker = sandbox._fork()  # waits for the template's imports, the first time
            try:
                assert sandbox.zygote is not None
                python = sandbox.zygote.process.python()
                assert python is not None
                assert (python.ppid() == template.process.pid) == (forked is not None)
                seen.append((_confined_as(python.pid), sandbox.slot.uid if sandbox.slot else None))
            finally:
                worker.end()
    return seen


def _confined_as(pid: int) -> dict[str, object]:
    """What the kernel says of a process's confinement: its ids, capabilities, no-new-privileges, seccomp, session,
    rlimits, open descriptors (by kind), working folder and environment's names."""
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    fds = sorted(os.readlink(f"/proc/{pid}/fd/{fd}").split(":")[0] for fd in os.listdir(f"/proc/{pid}/fd"))
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    keys = ("Uid", "Gid", "Groups", "CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp")
    return {
        **{key: status[key].split() for key in keys},
        "session leader": os.getsid(pid) == pid,
        "limits": Path(f"/proc/{pid}/limits").read_text().splitlines(),
        "fds": fds,
        "cwd is its copy": os.readlink(f"/proc/{pid}/cwd").endswith("/submission"),
        "environment": sorted(v.split(b"=")[0] for v in environ if v),
    }


@BEHIND_THE_PROCESS_WALL
def test_a_zygote_forked_from_the_template_is_confined_as_a_zygote_started_alone() -> None:
    """A class's zygote forked from the template (grader/sandbox/template.py) takes on itself every step that a
    zygote started on its own gets between fork and exec: the same ids, no capabilities, no new privileges, the
    seccomp filter, a session of its own, the same rlimits, nothing open but /dev/null and its control socket, its
    copy as working folder and a worker's environment (stdin /dev/null, where a started one has a pipe it never
    reads), and Landlock: its worker can read the template's runtime, not write it, and not read the project."""
    from grader.sandbox import Sandbox
    from grader.sandbox.template import Template

    with Template(wall("auto"), Sandbox(None).limits, warm=False) as template:
        seen = _forked_and_alone(template, "required")
        for confined, uid in seen:  # each its slot's uid: the two slots may differ (another grader holds one)
            assert uid is not None and confined["Uid"] == confined["Gid"] == [str(uid)] * 4, confined
        attack = (
            "import os\nfound = []\n"
            f"for path in ({str(ROOT / 'solutions' / 'mle.py')!r}, {str(template.runtime / 'worker.py')!r}):\n"
            "    for mode in ('r', 'a'):\n"
            "        try:\n            open(path, mode).close()\n            found.append((path, mode))\n"
            "        except OSError:\n            pass\n"
            "def binomial_mle(successes, trials):\n    raise RuntimeError(repr(found))\n"
        )
        with Sandbox(None, isolation="required", template=template) as sandbox:
            (sandbox.private / "mle.py").write_text(attack)
            sandbox.start(trains=False)
            reply = sandbox.run("mle", "mle.py", {"op": "run", "driver": "call",
                                                  "inputs": {"function": "binomial_mle", "args": [1, 2]}})  # fmt: skip
    template_runtime = str(template.runtime / "worker.py")
    assert reply["error"]["message"] == repr([(template_runtime, "r")]), reply
    (forked, _), (alone, _) = seen
    assert alone["fds"] == ["/dev/null"] * 3 + ["pipe", "socket"], alone["fds"]  # stdin: spawn's pipe
    assert {**forked, "fds": None, "Uid": None, "Gid": None} == {**alone, "fds": None, "Uid": None, "Gid": None}
    assert forked["NoNewPrivs"] == ["1"] and forked["Seccomp"] == ["2"] and set(forked["CapEff"][0]) == {"0"}
    assert forked["fds"] == ["/dev/null", "/dev/null", "/dev/null", "socket"], forked["fds"]


def attacker_then_honest(tmp_path: Path, attacker: str, isolation: str) -> dict[str, Any]:
    """A class of two graded by one grading process: ``attacker``'s mle.py, then the solution's; each student's
    stored result, after asserting that both were graded."""
    from grader.batch import engine
    from grader.batch.classroom import grade_class

    folder = tmp_path / "class"
    for student, mle in (("a_attacker", attacker), ("b_honest", (ROOT / "solutions" / "mle.py").read_text())):
        (folder / student).mkdir(parents=True)
        (folder / student / "mle.py").write_text(mle)
    settings = engine.Settings(("mle.binomial_mle",), timeout_s=10.0, isolation=isolation)  # type: ignore[arg-type]
    summary = grade_class(folder, tmp_path / "out", lambda: engine.LocalPool(1), settings)
    assert (summary.graded, summary.failed) == (2, 0), summary.line()
    return {p.stem: json.loads(p.read_text()) for p in (tmp_path / "out" / "results").glob("*.json")}


NONE_WALL = pytest.mark.skipif(
    wall("off").kind != "none", reason="runs where --no-sandbox leaves no wall (outside tests/container.py, as CI)"
)


@NONE_WALL
def test_behind_none_a_zygote_forked_from_the_template_is_started_as_one_started_alone() -> None:
    """Behind none (``--no-sandbox`` without bubblewrap or a worker uid) a class's zygotes are forked from a
    template too: each takes on itself the same session, rlimits, no-new-privileges, seccomp filter, working folder
    and environment as one started alone, and has nothing open but /dev/null and its control socket."""
    from grader.sandbox import Sandbox
    from grader.sandbox.template import Template

    with Template(wall("off"), Sandbox(None).limits, warm=False) as template:
        (forked, _), (alone, _) = _forked_and_alone(template, "off")
    assert {**forked, "fds": None} == {**alone, "fds": None}
    assert forked["NoNewPrivs"] == ["1"] and forked["Seccomp"] == alone["Seccomp"]
    assert forked["fds"] == ["/dev/null", "/dev/null", "/dev/null", "socket"], forked["fds"]


@pytest.mark.parametrize("signal_name", ["SIGSTOP", "SIGKILL"])
def test_a_template_that_was_stopped_or_killed_is_replaced_before_the_next_student(signal_name: str) -> None:
    """Behind none a submission's workers run as the template's uid and can stop or kill it: the grading process
    checks it before each student's room and starts another, rather than wait a start-up timeout on it."""
    import signal

    from grader.batch import engine

    if not engine.template_usable(wall("off")):
        pytest.skip("no template on this machine (a GPU machine)")
    rooms = engine.Rooms()
    settings = engine.Settings(("mle.binomial_mle",), isolation="off")
    try:
        rooms.prepare(settings)
        first = rooms.template
        assert first is not None and first.process is not None and first.sound()
        os.kill(first.process.pid, getattr(signal, signal_name))
        deadline = time.monotonic() + 30  # as after a student's grading: the signal has taken effect (on a busy
        while first.sound() and time.monotonic() < deadline:  # machine /proc shows it a moment later)
            time.sleep(0.01)
        rooms._close_room()
        rooms.prepare(settings)
        assert rooms.template is not None and rooms.template is not first and rooms.template.sound()
        assert first.process is None  # closed: ended, even stopped
        assert rooms.room is not None
        worker = rooms.room._fork()  # from the new template
        try:
            zygote = rooms.room.zygote.process.python()  # type: ignore[union-attr]
            assert zygote is not None and zygote.ppid() == rooms.template.process.pid  # type: ignore[union-attr]
        finally:
            worker.end()
    finally:
        rooms.close()


TEMPLATE_SIGNALLER = """
import os, signal
template = int(open(f"/proc/{os.getppid()}/stat").read().rsplit(")", 1)[1].split()[1])  # its zygote's parent
done = []
if b"--template" in open(f"/proc/{template}/cmdline", "rb").read():
    try:
        os.kill(template, signal.SIGNAL)
        done.append("SIGNAL")
    except OSError:
        pass


def binomial_mle(successes, trials):
    raise RuntimeError(f"signalled the template: {done}")
"""


@pytest.mark.parametrize("signal_name", ["SIGSTOP", "SIGKILL"])
def test_a_student_who_signals_the_template_costs_nobody_else(tmp_path: Path, signal_name: str) -> None:
    """With ``--no-sandbox`` (behind none here, the process wall in tests/container.py) a student's code tries to
    stop or kill the template its zygote was forked from (Landlock's signal scope stops it where the kernel has
    one): the next student gets full marks."""
    results = attacker_then_honest(tmp_path, TEMPLATE_SIGNALLER.replace("SIGNAL", signal_name), "off")
    # behind none only a kernel without Landlock's signal scope (ABI 6) lets a worker signal outside its domain
    scoped = wall("off").kind != "none" or wall("off").landlock >= 6
    reached = f"signalled the template: {[] if scoped else [signal_name]}"
    assert reached in results["a_attacker"]["items"][0]["feedback"], results["a_attacker"]["items"][0]
    assert [(i["status"], i["score"]) for i in results["b_honest"]["items"]] == [("passed", 2)]


TEMPLATE_ATTACK = """
import ctypes, os, signal
own = int(open(f"/proc/{os.getppid()}/stat").read().rsplit(")", 1)[1].split()[1])  # its zygote's parent
tried, reached = [], []
for name in os.listdir("/proc"):  # its own template and any other grader's on this machine
    try:  # its zygotes and their workers, this one among them, run its command line too, as the slot's uid
        if not name.isdigit() or b"--template" not in open(f"/proc/{name}/cmdline", "rb").read():
            continue
        if os.stat(f"/proc/{name}").st_uid == os.getuid():
            continue
    except OSError:
        continue
    pid = int(name)
    tried.append(pid)
    for what, attempt in (("stop", lambda: os.kill(pid, signal.SIGSTOP)),
                          ("kill", lambda: os.kill(pid, signal.SIGKILL)),
                          ("environ", lambda: open(f"/proc/{pid}/environ", "rb").read()),
                          ("mem", lambda: open(f"/proc/{pid}/mem", "rb").read(1)),
                          ("fds", lambda: os.listdir(f"/proc/{pid}/fd")),
                          ("socket", lambda: open(f"/proc/{pid}/fd/3", "rb"))):
        try:
            attempt()
            reached.append(what)
        except (OSError, ValueError):
            pass
    if ctypes.CDLL(None, use_errno=True).ptrace(16, pid, None, None) == 0:  # PTRACE_ATTACH
        reached.append("ptrace")


def binomial_mle(successes, trials):
    raise RuntimeError(f"tried its own template: {own in tried}, reached {reached}")
"""


@BEHIND_THE_PROCESS_WALL
def test_no_submission_can_reach_the_template_its_zygote_was_forked_from(tmp_path: Path) -> None:
    """The template runs as the grader's uid: a student's code finds it (its command line is public) and can
    neither stop, kill nor trace it, nor read its environment, memory or descriptors (its control socket); the
    student graded after, whose zygote is forked from the same template, gets full marks."""
    results = attacker_then_honest(tmp_path, TEMPLATE_ATTACK, "required")
    attacker = results["a_attacker"]["items"][0]
    assert "tried its own template: True, reached []" in attacker["feedback"], attacker["feedback"]
    assert [(i["status"], i["score"]) for i in results["b_honest"]["items"]] == [("passed", 2)]
    assert results["b_honest"]["wall"] == "process"
