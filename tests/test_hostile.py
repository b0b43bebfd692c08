"""Broken and hostile submissions: each costs its author the item it attacks and nothing else.

Every case patches solutions/ (the target function's body, or the module's top), grades the target
item, an innocent item of the same module and one of another module, and asserts the exact statuses,
that the innocent items keep full marks, and whatever else the case is about (instructor files intact,
no process left behind, the report unchanged). Run with bubblewrap where it is installed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from grader.grading.run import grade
from grader.intake.archive import pack
from grader.outputs.report import as_json, write
from grader.sandbox import Limits, bubblewrap, wall
from grader.sandbox.workers import NO_WALL_NOTE

ROOT = Path(__file__).resolve().parents[1]
LIMITS = Limits(call_timeout_s=3.0, memory_mb=1500)
# The attacks meet the replay of kept cases, and the full run it hands a wrong answer to, as a class's students do.
pytestmark = pytest.mark.usefixtures("kept_cases")

SANDBOXED = bubblewrap() is not None
WALL = wall("auto")  # the wall this run grades behind: bubblewrap, or the process wall where bwrap cannot run

MLE_BODY = (
    "    k, n = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))\n    return float(k.sum() / n.sum())"
)
ENTROPY_BODY = "    return -torch.xlogy(p, p).sum(dim=-1)"
TARGET = {"mle": ("mle.binomial_mle", "mle.bernoulli_mle", "divergences.entropy", MLE_BODY),
          "divergences": ("divergences.entropy", "divergences.cross_entropy", "mle.poisson_mle", ENTROPY_BODY)}  # fmt: skip
INSTRUCTOR_FILES = [
    ROOT / "reference" / "mle.py",
    ROOT / "solutions" / "mle.py",
    ROOT / "grader" / "grading" / "run.py",
]
SITE = Path(sysconfig.get_paths()["purelib"])  # the Python installation a worker must see but never change
PLANTED = (SITE / "zz_grader_hostile.pth", Path("/usr/lib/zz_grader_hostile"), Path("/etc/zz_grader_hostile"))
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]")


@dataclass(frozen=True)
class Hostile:
    name: str
    part: str
    body: str | None = None  # replaces the target function's body
    prefix: str | None = None  # goes at the top of the module
    target_status: tuple[str, ...] = ("failed", "error")
    whole_module: bool = False  # the attack breaks every item of the module (import-time)
    feedback: str = ""  # a phrase the target's feedback must contain
    feedback_lacks: str = "\x00"  # a phrase it must not contain
    walled_only: bool = False  # only a wall for other people's code (bubblewrap, the process wall) stops this one
    process_feedback: str | None = None  # the phrase instead of ``feedback`` behind the process wall
    call_timeout_s: float = LIMITS.call_timeout_s  # more for a case whose honest work takes a while on a busy machine


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CASES = [
    # ---------------------------------------------------------------- broken
    Hostile(
        "syntax error",
        "mle",
        prefix="def broken(:\n",
        whole_module=True,
        target_status=("error",),
        feedback="SyntaxError",
    ),
    Hostile(
        "import error",
        "mle",
        prefix="import no_such_module_here\n",
        whole_module=True,
        target_status=("error",),
        feedback="ModuleNotFoundError",
    ),
    Hostile(
        "sys.exit at import",
        "mle",
        prefix="import sys\nsys.exit(3)\n",
        whole_module=True,
        target_status=("error",),
        feedback="SystemExit",
    ),
    Hostile(
        "os._exit at import",
        "mle",
        prefix="import os\nos._exit(3)\n",
        whole_module=True,
        target_status=("error",),
        feedback="exited",
    ),
    Hostile("raises", "mle", body="    return 1 / 0", target_status=("error",), feedback="ZeroDivisionError"),
    Hostile("wrong type", "mle", body="    return '0.7'", target_status=("failed",), feedback="should be a number"),
    Hostile("nan", "mle", body="    return float('nan')", target_status=("failed",), feedback="nan"),
    Hostile(
        "inf",
        "divergences",
        body="    return torch.full(p.shape[:-1], float('inf'), dtype=p.dtype)",
        target_status=("failed",),
    ),
    Hostile(
        "wrong shape", "divergences", body="    return -torch.xlogy(p, p)", target_status=("failed",), feedback="shape"
    ),
    Hostile(
        "wrong dtype",
        "divergences",
        body="    return -torch.xlogy(p, p).sum(dim=-1).float()",
        target_status=("failed",),
        feedback="dtype",
    ),
    Hostile(
        "numpy instead of torch",
        "divergences",
        body="    return (-torch.xlogy(p, p).sum(dim=-1)).numpy()",
        target_status=("failed",),
        feedback="torch.Tensor",
    ),
    Hostile(
        "meta device",
        "divergences",
        body="    return torch.empty(p.shape[:-1], dtype=p.dtype, device='meta')",
        target_status=("failed", "error"),
    ),
    # ---------------------------------------------------------------- resources
    Hostile(
        "infinite loop",
        "mle",
        body="    while True:\n        pass",
        target_status=("timeout",),
        feedback="no answer within",
    ),
    Hostile("very slow", "mle", body="    import time\n    time.sleep(30)\n    return 0.5", target_status=("timeout",)),
    Hostile(
        "wrong once, then hangs when asked again (the diagnosis's extra inputs)",
        "divergences",
        prefix="CALLS = [0]\n",
        body="    CALLS[0] += 1\n    if CALLS[0] > 1:\n        while True:\n            pass\n"
        "    return -torch.xlogy(p, p).sum(dim=-1) / math.log(2)",
        target_status=("failed",),
        feedback="largest difference",
        feedback_lacks="known mistake",  # one failing input and no second answer: too little to name one
    ),
    Hostile(
        "memory hog",
        "mle",
        body="    import numpy\n    hog = numpy.ones(2**30)\n    return float(hog.sum())",
        target_status=("error",),
        feedback="emory",
    ),
    Hostile("os._exit", "mle", body="    import os\n    os._exit(7)", target_status=("error",), feedback="exited"),
    Hostile(
        "segfault",
        "mle",
        body="    import ctypes\n    ctypes.string_at(0)",
        target_status=("error",),
        feedback="signal",
    ),
    Hostile(
        "100 MB printed",
        "mle",
        body="    import sys\n    sys.stdout.write('x' * 50_000_000)\n"
        "    sys.stderr.write('y' * 50_000_000)\n" + MLE_BODY,
        target_status=("passed",),
    ),
    Hostile(
        "a tree of folders 3000 deep in its home (the grader's removal recursed once a level)",
        "mle",
        body="    import os\n    home = os.path.expanduser('~')\n    if not os.path.exists(os.path.join(home, 'd')):\n"
        "        fd = os.open(home, os.O_RDONLY)\n        for _ in range(3000):\n            os.mkdir('d', dir_fd=fd)\n"
        "            inner = os.open('d', os.O_RDONLY, dir_fd=fd)\n            os.close(fd)\n            fd = inner\n"
        "        os.close(fd)\n" + MLE_BODY,
        target_status=("passed",),
    ),
    Hostile(
        "fork that outlives",
        "mle",
        body="    import os, time\n    if os.fork() == 0:\n        if os.fork() == 0:\n"
        "            os.setsid()\n            time.sleep(300)\n        os._exit(0)\n" + MLE_BODY,
        target_status=("passed",),
    ),
    # ---------------------------------------------------------------- cheating
    Hostile(
        "imports reference",
        "mle",
        body="    import reference.mle as r\n    return r.binomial_mle(successes, trials)",
        walled_only=True,
    ),
    Hostile(
        "imports solutions",
        "mle",
        body="    import solutions.mle as s\n    return s.binomial_mle(successes, trials)",
        walled_only=True,
    ),
    Hostile(
        "reads the solution file",
        "mle",
        walled_only=True,
        body=f"    src = open({str(ROOT / 'solutions' / 'mle.py')!r}).read()\n    namespace = {{}}\n"
        "    exec(src, namespace)\n    return namespace['binomial_mle'](successes, trials)",
    ),
    Hostile(
        "patches allclose and isclose",
        "mle",
        prefix="import math, numpy, torch\nnumpy.allclose = lambda *a, **k: True\nnumpy.isclose = lambda *a, **k: True\n"
        "torch.allclose = lambda *a, **k: True\nmath.isclose = lambda *a, **k: True\n",
        body="    return 0.123",
        target_status=("failed",),
    ),
    Hostile(
        "patches the grader's modules",
        "mle",
        prefix="import drivers, wire\ndrivers.run_driver = lambda name, module, inputs: 0.5\n"
        "wire.dumps = lambda value: b'{\"ok\": 0.5}\\n'\n",
        body="    return 0.123",
        target_status=("failed", "error"),
        whole_module=True,
    ),
    Hostile(
        "object that lies in comparisons",
        "mle",
        body="    class Liar(float):\n        def __eq__(self, other):\n            return True\n"
        "        def __ne__(self, other):\n            return False\n    return Liar(0.0)",
        target_status=("failed",),
        feedback="cannot read",
    ),
    Hostile(
        "__array__ object",
        "mle",
        body="    import numpy\n    class A:\n        def __array__(self, dtype=None, copy=None):\n"
        "            return numpy.array(0.5)\n    return A()",
        target_status=("failed",),
    ),
    Hostile(
        "__torch_function__ subclass",
        "divergences",
        body="    class Sneaky(torch.Tensor):\n        @classmethod\n"
        "        def __torch_function__(cls, func, types, args=(), kwargs=None):\n            return True\n"
        "    return torch.zeros(p.shape[:-1], dtype=p.dtype).as_subclass(Sneaky)",
        target_status=("failed",),
    ),
    Hostile(
        "inspects the caller's frames",
        "mle",
        body="    import sys\n    frame, seen = sys._getframe(), []\n    while frame is not None:\n"
        "        seen += [v for k, v in frame.f_locals.items() if k in ('expected', 'reference', 'case')]\n"
        "        frame = frame.f_back\n    return float(seen[0]) if seen else -1.0",
        target_status=("failed", "error"),
    ),
    Hostile(
        "mutates its inputs",
        "mle",
        body="    import numpy\n    for a in (successes, trials):\n        if isinstance(a, numpy.ndarray):\n"
        "            a.fill(1)\n    return 1.0",
        target_status=("failed",),
    ),
    Hostile(
        "overwrites instructor files",
        "mle",
        walled_only=True,
        target_status=("passed",),
        body="    import pathlib\n"
        + "".join(
            f"    try:\n        pathlib.Path({str(p)!r}).write_text('')\n    except OSError:\n        pass\n"
            for p in INSTRUCTOR_FILES
        )
        + MLE_BODY,
    ),
    # ---------------------------------------------------------------- the wall: privilege
    Hostile(
        "remounts the Python installation writable and plants a .pth",
        "mle",
        walled_only=True,
        target_status=("failed",),
        body="    import ctypes, os, subprocess\n    escaped = False\n"
        f"    for target in ({str(SITE)!r}, '/usr', '/etc'):\n"
        "        subprocess.run(['mount', '-o', 'remount,bind,rw', target], capture_output=True)\n"
        "        ctypes.CDLL(None).mount(None, target.encode(), None, 32 | 4096, None)  # MS_REMOUNT | MS_BIND\n"
        "    for path in " + repr(tuple(str(p) for p in PLANTED)) + ":\n"
        "        try:\n            open(path, 'w').write('import os')\n            escaped = True\n"
        "        except OSError:\n            pass\n"
        "    if not escaped:\n        return 0.123\n" + MLE_BODY,
    ),
    # ---------------------------------------------------------------- the wall: the reply channel
    Hostile(
        "writes deeply nested JSON to the reply channel",
        "mle",
        body="    import os, sys\n    os.write(int(sys.argv[1]), b'[' * 200_000 + b'\\n')\n    return 0.123",
        target_status=("error",),
        feedback="cannot be read",
    ),
    Hostile(
        "writes deeply nested JSON to the reply channel at import",
        "mle",
        prefix="import os as _os, sys as _sys\n_os.write(int(_sys.argv[1]), b'{\"a\":' * 100_000 + b'\\n')\n",
        target_status=("error",),
        whole_module=True,
        feedback="cannot be read",
    ),
    Hostile(
        "writes 70 MB without a newline to the reply channel",
        "mle",
        body="    import os, sys\n    for _ in range(70):\n        os.write(int(sys.argv[1]), b'x' * 2**20)\n    return 0.123",
        target_status=("error",),
        feedback="larger than the grader accepts",
    ),
    Hostile(
        "writes a 5000-digit int to the reply channel",
        "mle",
        body="    import os, sys\n    os.write(int(sys.argv[1]), b'{\"__dict__\": {\"ok\": ' + b'9' * 5000 + b'}}\\n')\n"
        "    return 0.123",
        target_status=("error",),
        feedback="cannot be read",
    ),
    Hostile(
        "writes an array whose header lies",
        "mle",
        body='    import os, sys\n    frame = \'{"__dict__": {"ok": {"__array__": {"kind": "numpy", "dtype": '
        '"float64", "shape": [1000000000000, 1000000000000], "device": "cpu", "data": ""}}}}\\n\'\n'
        "    os.write(int(sys.argv[1]), frame.encode())\n    return 0.123",
        target_status=("error",),
        feedback="cannot be read",
    ),
    Hostile(
        "forges an error report full of escape sequences",
        "mle",
        body="    import json, os, sys\n    error = {'kind': 'raised', 'type': '\\x1b[2J\\x1b[31m' * 50_000, "
        "'message': '\\x1b]0;owned\\x07' + 'x' * 5_000_000, 'where': '\\u202e' * 10_000}\n"
        "    os.write(int(sys.argv[1]), json.dumps({'__dict__': {'error': {'__dict__': error}}}).encode() + b'\\n')\n"
        "    return 0.123",
        target_status=("error",),
    ),
    Hostile(
        "raises with a huge escape-laden message and type name",
        "mle",
        body="    raise type('E' * 100_000, (Exception,), {})('\\x1b[31m\\r' * 1_000_000)",
        target_status=("error",),
    ),
    # ---------------------------------------------------------------- the wall: limits
    Hostile(
        "memfd hog (1.64 GiB in 7 files, not in RSS)",
        "mle",
        body="    import os\n    chunk = b'x' * 2**24\n    for _ in range(7):\n        fd = os.memfd_create('hog')\n"
        "        for _ in range(15):\n            os.write(fd, chunk)\n    return 0.123",
        target_status=("error", "failed", "timeout"),
    ),
    Hostile(
        "tmpfs hog in /dev/shm and /tmp",
        "mle",
        walled_only=True,
        body="    chunk = b'x' * 2**24\n    for path in ('/dev/shm/hog', '/tmp/hog'):\n        with open(path, 'wb') as f:\n"
        "            for _ in range(56):\n                f.write(chunk)\n    return 0.123",
        target_status=("error",),
        feedback="No space left",
        process_feedback="Permission denied",  # Landlock: a worker writes its own scratch folder only
    ),
    Hostile(
        "fills the disk",
        "mle",
        walled_only=True,
        body="    import os\n    chunk = b'x' * 2**24\n    for path in ('fill', os.path.expanduser('~/fill')):\n"
        "        try:\n            with open(path, 'wb') as f:\n                for _ in range(50):\n"
        "                    f.write(chunk)\n        except OSError:\n            pass\n    return 0.123",
        target_status=("failed",),
    ),
    Hostile(
        "bounded fork bomb (600 sleepers)",
        "mle",
        body="    import os, time\n    for _ in range(600):\n        try:\n            pid = os.fork()\n"
        "        except OSError:\n            break\n        if pid == 0:\n            time.sleep(20)\n            os._exit(0)\n"
        "    return 0.123",
        target_status=("failed", "error", "timeout"),
    ),
    Hostile(
        "honest forks that share 600 MB",
        "mle",
        prefix="FORKED = []\n",  # on the first call only: once shows what the wall makes of it
        body="    import os, time, numpy\n    if not FORKED:\n        FORKED.append(True)\n"
        "        shared = numpy.ones(75_000_000)\n        children = []\n        for _ in range(3):\n"
        "            pid = os.fork()\n            if pid == 0:\n                time.sleep(0.3)\n"
        "                os._exit(int(shared[0]) - 1)\n            children.append(pid)\n"
        "        for pid in children:\n            os.waitpid(pid, 0)\n" + MLE_BODY,
        target_status=("passed",),
        call_timeout_s=20.0,
    ),
    Hostile(
        "double fork, setsid and exec of another program",
        "mle",
        body="    import os\n    if os.fork() == 0:\n        if os.fork() == 0:\n            os.setsid()\n"
        "            os.execv('/bin/sleep', ['sleep', '300'])\n        os._exit(0)\n" + MLE_BODY,
        target_status=("passed",),
    ),
]


def build(case: Hostile, folder: Path) -> None:
    _, _, other, body = TARGET[case.part]
    source = (ROOT / "solutions" / f"{case.part}.py").read_text()
    new_body = case.body or body
    assert source.count(body) == 1
    source = source.replace(body, new_body)
    if case.prefix:
        source = source.replace(
            "from __future__ import annotations\n", "from __future__ import annotations\n\n" + case.prefix, 1
        )
    (folder / f"{case.part}.py").write_text(source)
    other_part = other.split(".")[0]
    (folder / f"{other_part}.py").write_text((ROOT / "solutions" / f"{other_part}.py").read_text())


def leftover_workers(since: float) -> list[psutil.Process]:
    """Processes that grading left alive: any live descendant of this test process started since ``since`` (the
    grader is a child subreaper, so orphans come back to it), and any worker, or a program a case execs (``sleep 300``),
    that escaped to init since ``since``. Processes of other graders on the machine are not counted."""
    found = []
    for proc in psutil.process_iter(["cmdline", "ppid", "create_time"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if "runtime/worker.py" not in cmdline and cmdline != "sleep 300":
            continue
        if proc.info.get("ppid") in (0, 1) and (proc.info.get("create_time") or 0) >= since:
            found.append(proc)
    for proc in psutil.Process().children(recursive=True):
        try:  # started before grading (multiprocessing's resource tracker of an earlier test): not grading's
            if proc.status() != psutil.STATUS_ZOMBIE and proc.create_time() >= since - 1:
                found.append(proc)
        except psutil.Error:  # gone, or a zombie: dead either way
            continue
    return found


def assert_costs_only_its_item(case: Hostile, by_id: dict[str, dict[str, Any]]) -> None:
    """The case's verdicts: its target item as the case says, the innocent items with full marks."""
    target, innocent, other, _ = TARGET[case.part]
    hit = by_id[target]
    assert hit["status"] in case.target_status, (case.name, hit["feedback"])
    if case.target_status != ("passed",):
        assert hit["score"] == 0
    feedback = case.process_feedback if WALL.kind == "process" and case.process_feedback is not None else case.feedback
    assert feedback in hit["feedback"], (case.name, hit["feedback"])
    assert case.feedback_lacks not in hit["feedback"], (case.name, hit["feedback"])
    assert "Internal grader error" not in hit["feedback"]
    if case.whole_module:
        assert by_id[innocent]["status"] == hit["status"]
    else:
        assert by_id[innocent]["status"] == "passed" and by_id[innocent]["score"] == by_id[innocent]["max_score"]
    assert by_id[other]["status"] == "passed", f"{case.name}: an innocent module lost points: {by_id[other]}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_submission_costs_only_its_item(case: Hostile, tmp_path: Path) -> None:
    if case.walled_only and not WALL.holds:
        pytest.skip("needs a wall: without one a student can read the project's files")
    target, innocent, other, _ = TARGET[case.part]
    folder = tmp_path / "submission"
    folder.mkdir()
    report_path = tmp_path / "report.json"
    build(case, folder)
    before = {p: sha(p) for p in INSTRUCTOR_FILES}
    since = time.time()
    started = time.monotonic()
    limits = Limits(call_timeout_s=case.call_timeout_s, memory_mb=LIMITS.memory_mb)
    result = grade(folder, [target, innocent, other], limits)
    elapsed = time.monotonic() - started
    write(report_path, as_json(result))
    assert_costs_only_its_item(case, {r.id: r.as_dict() for r in result.items})
    assert {p: sha(p) for p in INSTRUCTOR_FILES} == before, "an instructor file changed"
    assert not [p for p in PLANTED if p.exists()], "a file was planted in the Python installation or a system folder"
    assert not leftover_workers(since), "a process started by the submission outlived grading"
    assert len(report_path.read_bytes()) < 20_000, "the report grew with the submission's output"
    assert not CONTROL.search(report_path.read_text()), "control characters from the submission reached the report"
    assert elapsed < 90, f"grading took {elapsed:.0f} s"


def test_a_late_writer_cannot_forge_the_report(tmp_path: Path) -> None:
    """A child that waits for grading to end and then writes the report is gone before it can."""
    folder = tmp_path / "submission"
    folder.mkdir()
    report_path = tmp_path / "report.json"
    forge = ("    import os, time\n    if os.fork() == 0:\n        time.sleep(2)\n        try:\n"
             f"            open({str(report_path)!r}, 'w').write('{{\"score\": 100}}')\n        finally:\n"
             "            os._exit(0)\n    return 0.123")  # fmt: skip
    build(Hostile("forger", "mle", body=forge), folder)
    since = time.time()
    result = grade(folder, ["mle.binomial_mle"], LIMITS)
    write(report_path, as_json(result))
    written = report_path.read_bytes()
    time.sleep(3)
    assert report_path.read_bytes() == written
    assert json.loads(written)["score"] == 0
    assert not leftover_workers(since)


def test_the_report_says_whether_a_sandbox_was_used(tmp_path: Path) -> None:
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "mle.py").write_text((ROOT / "solutions" / "mle.py").read_text())
    unsandboxed = grade(folder, ["mle.bernoulli_mle"], LIMITS, isolation="off")
    assert not unsandboxed.sandboxed and unsandboxed.wall in ("process", "none")
    assert any(note.startswith(("Wall: process", NO_WALL_NOTE)) for note in unsandboxed.notes), unsandboxed.notes
    assert as_json(unsandboxed)["wall"] == unsandboxed.wall
    if SANDBOXED:
        walled = grade(folder, ["mle.bernoulli_mle"], LIMITS)
        assert walled.sandboxed and walled.wall == as_json(walled)["wall"] == "bubblewrap"


@pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap")
def test_sandbox_mounts_the_empty_tmp_before_the_python_installation(tmp_path: Path) -> None:
    """A clone (and its venv) under /tmp must stay visible inside the sandbox: bwrap mounts in order."""
    from grader.sandbox import Sandbox

    (tmp_path / "sub").mkdir()
    with Sandbox(tmp_path / "sub") as sandbox:
        command, _ = sandbox._command("worker.py", 3)
    tmpfs = command.index("--tmpfs")
    assert command[tmpfs + 1] == "/tmp"
    binds = [i for i, arg in enumerate(command) if arg in ("--ro-bind", "--bind")]
    assert binds and tmpfs < min(binds)


def test_an_installed_reference_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If reference/ sits inside the Python installation (a non-editable install) the sandbox must show it:
    the report says so instead of trusting it."""
    from grader.sandbox import Sandbox, isolation

    monkeypatch.setattr(isolation, "python_dirs", lambda: [str(ROOT)])
    (tmp_path / "sub").mkdir()
    with Sandbox(tmp_path / "sub", isolation="off") as sandbox:
        warnings = sandbox.exposures()
    assert any(w.startswith("reference/ is installed inside the Python installation") for w in warnings)


@pytest.mark.skipif(not SANDBOXED, reason="needs bubblewrap")
def test_the_projects_packages_inside_the_python_installation_are_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel install puts reference/ in site-packages, which the sandbox must show: bubblewrap hides it.
    Here the clone itself stands in for the installation, so every package of the project lies inside it;
    the submission answers right only when it can see neither reference/ nor solutions/."""
    from grader.sandbox import isolation

    real = isolation.python_dirs()
    monkeypatch.setattr(isolation, "python_dirs", lambda: [*real, str(ROOT)])
    (tmp_path / "mle.py").write_text(
        "import os\n\nimport numpy as np\n\n\ndef binomial_mle(successes, trials):\n"
        f"    if os.listdir({str(ROOT / 'reference')!r}) or os.listdir({str(ROOT / 'solutions')!r}):\n"
        "        return -1.0\n"
        "    k, n = np.broadcast_arrays(np.asarray(successes), np.asarray(trials))\n"
        "    return float(k.sum() / n.sum())\n"
    )
    hidden = grade(tmp_path, ["mle.binomial_mle"]).items[0]
    assert hidden.status == "passed", hidden.feedback
    monkeypatch.setattr(isolation, "installed_project_packages", lambda: ())  # the same, unmasked: it can see
    seen = grade(tmp_path, ["mle.binomial_mle"]).items[0]
    assert seen.status == "failed", seen.feedback


def test_the_hostile_corpus_through_the_class_batch(tmp_path: Path) -> None:
    """Every case as one student of a class, then an honest student, graded by one grading process: with
    bubblewrap, in the one sandbox it keeps from student to student (grader/batch/engine.py, ``Rooms``), so
    every case is followed by another in a sandbox it has been in. Each case costs its own item only, the
    honest student keeps full marks, and nothing outlives the batch. One process, so that two memory hogs
    never run at once; the case that needs more time for honest work (``call_timeout_s``) is left to the
    test above."""
    from grader.batch import engine
    from grader.batch.classroom import grade_class

    cases = [c for c in CASES if c.call_timeout_s == LIMITS.call_timeout_s and (WALL.holds or not c.walled_only)]
    folder = tmp_path / "class"
    students = {}
    for k, case in enumerate(cases):
        student = folder / f"case{k:02d}"
        student.mkdir(parents=True)
        build(case, student)
        students[student.name] = case
    honest = folder / "zz_honest"  # graded last
    honest.mkdir()
    for part in TARGET:
        (honest / f"{part}.py").write_text((ROOT / "solutions" / f"{part}.py").read_text())
    items = tuple(sorted({i for target in TARGET.values() for i in target[:3]}))
    before = {p: sha(p) for p in INSTRUCTOR_FILES}
    since = time.time()
    summary = grade_class(
        folder, tmp_path / "out", lambda: engine.LocalPool(1),
        engine.Settings(items, timeout_s=LIMITS.call_timeout_s, memory_mb=LIMITS.memory_mb, isolation="auto"),
    )  # fmt: skip
    assert (summary.graded, summary.failed) == (len(cases) + 1, 0)
    results = {}
    for path in (tmp_path / "out" / "results").glob("*.json"):
        data = json.loads(path.read_text())
        results[data["student"]] = {i["id"]: i for i in data["items"]}
    for name, case in students.items():
        assert_costs_only_its_item(case, results[name])
    assert all(i["status"] == "passed" for i in results["zz_honest"].values()), results["zz_honest"]
    assert {p: sha(p) for p in INSTRUCTOR_FILES} == before, "an instructor file changed"
    assert not [p for p in PLANTED if p.exists()], "a file was planted in the Python installation or a system folder"
    assert not leftover_workers(since), "a process started by a submission outlived the batch"
    report = (tmp_path / "out" / "report.html").read_text()
    assert not CONTROL.search(report), "control characters from a submission reached the class report"


ATTACKER = """
def _leave_traces():
    import ctypes, os
    for path in ("/tmp/leak", "/dev/shm/leak"):
        with open(path, "w") as f:
            f.write("from the last student")
    os.makedirs("/tmp/locked/deeper", exist_ok=True)
    open("/tmp/locked/deeper/x", "w").close()
    os.chmod("/tmp/locked/deeper", 0)
    os.chmod("/tmp/locked", 0)
    os.mkdir("/tmp/deep")  # 3000 folders deep: shutil.rmtree recursed once a level, and the zygote was replaced
    fd = os.open("/tmp/deep", os.O_RDONLY)
    for _ in range(3000):
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget(0, 4096, 0o1000 | 0o666)  # IPC_PRIVATE, IPC_CREAT: a segment that outlives its process
    libc.semget(0, 1, 0o1000 | 0o666)
    libc.msgget(0, 0o1000 | 0o666)
    libc.mq_open(b"/leak", os.O_CREAT | os.O_RDWR, 0o666, None)  # a POSIX message queue
    os.mkfifo("/tmp/fifo")
    import socket
    socket.socket(socket.AF_UNIX).bind("/tmp/sock")
    site = "/tmp/.local/lib/python%d.%d/site-packages" % __import__("sys").version_info[:2]
    os.makedirs(site, exist_ok=True)
    for name, text in (("zz.pth", "import os; os.environ['LEAKED'] = '1'"), ("usercustomize.py", "LEAKED = 1")):
        with open(f"{site}/{name}", "w") as f:
            f.write(text)
    os.makedirs("/tmp/numpy", exist_ok=True)
    with open("/tmp/numpy/__init__.py", "w") as f:
        f.write("LEAKED = 1")
    if os.fork() == 0:
        if os.fork() == 0:
            os.setsid()
            os.execv("/bin/sleep", ["sleep", "300"])
        os._exit(0)


_leave_traces()
"""
VICTIM_CHECK = """    import os
    import ctypes, sys
    traces = [p for p in ("/tmp/leak", "/dev/shm/leak", "/tmp/locked", "/tmp/deep", "/tmp/fifo", "/tmp/sock",
                          "/tmp/.local", "/tmp/numpy") if os.path.lexists(p)]
    traces += [k for k in ("shm", "sem", "msg") if len(open(f"/proc/sysvipc/{k}").read().splitlines()) > 1]
    if ctypes.CDLL(None).mq_open(b"/leak", os.O_RDONLY) >= 0:
        traces.append("a POSIX message queue of the last student")
    if "LEAKED" in os.environ or "usercustomize" in sys.modules or hasattr(sys.modules.get("numpy"), "LEAKED"):
        traces.append("code of the last student")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep"):
                traces.append("a process of the last student")
        except OSError:
            pass
    if traces:
        return -1.0
"""


@pytest.mark.skipif(
    not SANDBOXED, reason="a grading process keeps its sandbox for the next student only behind bubblewrap"
)
def test_a_class_sandbox_keeps_nothing_from_one_student_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One grading process grades students in turn in the sandbox it keeps (its zygote imported once). Students
    who leave files in /tmp and /dev/shm (one in a folder locked with mode 000), a FIFO and a socket, System V
    IPC objects, a POSIX message queue (none can be made: RLIMIT_MSGQUEUE is 0), a tree of folders 3000 deep, a user-site .pth and
    usercustomize, a module that would shadow numpy and a process running behind them, or who kill the zygote,
    must leave nothing the next student can see: each next student's binomial_mle returns a wrong answer if it
    finds any trace. The zygote is kept through all of it (wiping removes every trace), but for the one killed:
    before the locked folder was unlocked ahead of its listing, every attacker cost a fresh zygote."""
    from grader.batch import engine
    from grader.intake.archive import pack
    from grader.sandbox import workers

    source = (ROOT / "solutions" / "mle.py").read_text()
    attacker = source.replace(
        "from __future__ import annotations\n", "from __future__ import annotations\n" + ATTACKER, 1
    )
    killer = source.replace(
        MLE_BODY, "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n" + MLE_BODY, 1
    )
    victim = source.replace(MLE_BODY, VICTIM_CHECK + MLE_BODY, 1)
    assert attacker != source and killer != source and victim != source
    order = [("a1", attacker), ("a2", victim), ("b1", killer), ("b2", victim), ("c1", attacker), ("c2", victim)]
    spawned: list[str] = []
    spawn, current = workers.Sandbox._spawn_zygote, [""]
    monkeypatch.setattr(workers.Sandbox, "_spawn_zygote", lambda self: spawned.append(current[0]) or spawn(self))
    settings = engine.Settings(("mle.binomial_mle", "mle.bernoulli_mle"), timeout_s=LIMITS.call_timeout_s,
                               isolation="auto")  # fmt: skip
    since = time.time()
    rooms = engine.Rooms()
    try:
        for name, text in order:
            (tmp_path / name).mkdir()
            (tmp_path / name / "mle.py").write_text(text)
            current[0] = name
            result = engine.grade_payload(name, pack(tmp_path / name), "-", [], settings, rooms.get(settings))
            if text is killer:  # it killed its own zygote under its own worker: what it costs it is its own affair
                continue
            statuses = {i["id"]: i["status"] for i in result["items"]}
            assert statuses == {"mle.binomial_mle": "passed", "mle.bernoulli_mle": "passed"}, (name, result["items"])
    finally:
        rooms.close()
    # the first, and one after the killer (without the unlock: a2, c2 too): in b1 itself where its zygote's death
    # ended its worker before its last answer, else for b2 (when the namespace ends is the kernel's affair)
    assert spawned in (["a1", "b1"], ["a1", "b2"]), spawned
    assert not leftover_workers(since), "a process started by a student outlived the batch"


MQ_ATTACKER = """    import ctypes, os
    ctypes.CDLL(None).mq_open(b"/leak", os.O_CREAT | os.O_RDWR, 0o666, None)
"""
MQ_VICTIM = """    import ctypes, os
    if ctypes.CDLL(None).mq_open(b"/leak", os.O_RDONLY) >= 0:
        return -1.0
"""


@pytest.mark.skipif(
    not SANDBOXED, reason="a grading process keeps its sandbox for the next student only behind bubblewrap"
)
def test_a_posix_message_queue_cannot_carry_a_message_to_the_next_student(tmp_path: Path) -> None:
    """A POSIX message queue lives in the sandbox's IPC namespace, which a kept sandbox keeps, and the zygote
    cannot list such queues to remove them: none can be made (RLIMIT_MSGQUEUE 0). Without that limit the student
    after one who made a queue found it (binomial_mle: -1.0)."""
    from grader.batch import engine
    from grader.batch.classroom import grade_class

    source = (ROOT / "solutions" / "mle.py").read_text()
    order = [("a1", source.replace(MLE_BODY, MQ_ATTACKER + MLE_BODY, 1)),
             ("a2", source.replace(MLE_BODY, MQ_VICTIM + MLE_BODY, 1))]  # fmt: skip
    for name, text in order:
        assert text != source
        (tmp_path / "class" / name).mkdir(parents=True)
        (tmp_path / "class" / name / "mle.py").write_text(text)
    grade_class(
        tmp_path / "class", tmp_path / "out", lambda: engine.LocalPool(1),
        engine.Settings(("mle.binomial_mle",), timeout_s=LIMITS.call_timeout_s, isolation="auto"),
    )  # fmt: skip
    for name, _ in order:
        result = json.loads((tmp_path / "out" / "results" / f"{name}.json").read_text())
        assert [i["status"] for i in result["items"]] == ["passed"], (name, result["items"])


SKELETON_ATTACKS = {  # at import, on the folders bubblewrap made in /tmp to mount the installation there
    "plants": "open(os.path.join(AT, 'planted'), 'w').close()\nos.makedirs(os.path.join(AT, 'deeper', 'still'))",
    "locks": "os.chmod(AT, 0)",
    "moves": "os.rename(AT, '/tmp/moved')\nos.mkdir(AT)",
}


@pytest.mark.skipif(
    not SANDBOXED, reason="a grading process keeps its sandbox for the next student only behind bubblewrap"
)
def test_an_installation_under_tmp_keeps_the_class_sandbox_and_the_folders_made_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Python installation that lives under /tmp (a clone's .venv) is mounted there, in the sandbox's own /tmp:
    bubblewrap makes the folders on the way to it. Wiping between two students keeps exactly those, so the
    grading process keeps its zygote; a student who plants files among them or locks one leaves the next the
    sandbox as it was built, and one who moves them away costs a fresh zygote."""
    import tempfile

    from grader.batch import engine
    from grader.sandbox import isolation, workers

    outer = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        install = outer / "venv"
        install.mkdir()
        real_dirs, spawn = isolation.python_dirs, workers.Sandbox._spawn_zygote
        monkeypatch.setattr(isolation, "python_dirs", lambda: [*real_dirs(), str(install)])
        spawned: list[str] = []

        def counted(self: workers.Sandbox) -> Any:
            spawned.append(current[0])
            return spawn(self)

        current = [""]
        monkeypatch.setattr(workers.Sandbox, "_spawn_zygote", counted)
        source = (ROOT / "solutions" / "mle.py").read_text()
        header = f"import os, stat\nAT = {str(outer)!r}\n"
        spy = source.replace(
            MLE_BODY,
            "    if os.listdir(AT) != ['venv'] or stat.S_IMODE(os.stat(AT).st_mode) & 0o700 != 0o700:\n"
            "        return -1.0\n" + MLE_BODY,
            1,
        ).replace("from __future__ import annotations\n", "from __future__ import annotations\n" + header, 1)
        order = [("first", spy)]
        for name, attack in SKELETON_ATTACKS.items():
            attacker = source.replace(
                "from __future__ import annotations\n",
                "from __future__ import annotations\n" + header + attack + "\n",
                1,
            )
            order += [(name, attacker), (f"after {name}", spy)]
        settings = engine.Settings(("mle.binomial_mle",), timeout_s=LIMITS.call_timeout_s, isolation="auto")
        rooms = engine.Rooms()
        statuses = {}
        try:
            for k, (name, text) in enumerate(order):
                folder = tmp_path / f"s{k}"
                folder.mkdir()
                (folder / "mle.py").write_text(text)
                current[0] = name
                room = rooms.get(settings)
                assert room is not None and room.zygote is not None and not room.zygote.warm  # nothing here trains
                result = engine.grade_payload(name, pack(folder), "-", [], settings, room)
                statuses[name] = result["items"][0]["status"]
        finally:
            rooms.close()
        for name in ("first", *(f"after {attack}" for attack in SKELETON_ATTACKS)):
            assert statuses[name] == "passed", (name, statuses)
        assert spawned == ["first", "after moves"], spawned  # the grading process's first, and after the move
    finally:
        shutil.rmtree(outer, ignore_errors=True)
