"""Outside bubblewrap, a class's zygotes forked from one process that imported torch once.

Behind bubblewrap a class's grading process keeps one sandbox, and its zygote, from student to student
(grader/batch/engine.py, ``Rooms``). Behind the process wall it cannot: each submission's workers run as a uid
of its own, taken and cleared per submission (grader/sandbox/uids.py), and a process cannot change its uid
twice. So each submission's zygote was a new Python that imported torch, the exercises' imports and
``torch._dynamo`` (the warm-up step) again: a class of 12 graded by two processes in tests/container.py took
4.4 s a submission on the 2-core machine, and 2.65 s forked from a template.

A ``Template`` does that once for the grading process: a process of the grader's own uid, started as a zygote
is (its session, cgroup and rlimits, dying with the grader), that imports and warms up and then only forks
(grader/runtime/worker.py, ``template``). For each submission its child takes on itself what ``spawn`` does to
a new zygote between fork and exec (``become_zygote``: a session of its own, no descriptor of the template's
but its own control socket, the rlimits, the sandbox's folder and environment, then the process wall's five
steps: the slot's uid, the parent's death signal, no new privileges, Landlock, seccomp), and only then serves as
that submission's zygote; the grader moves it into a cgroup of its own before asking it for a worker, as it
does for each worker a zygote forks. The template never runs a line of a submission, and no submission can
reach it: its control socket is the grader's alone; it runs as another uid than any worker (no signal, no
/proc/PID/mem, no descriptor of it can be had), outside every worker's Landlock domain. What a child inherits
of it is what a new zygote would import itself (the runtime, torch, numpy, scipy.special) and the steps the
grader sent it for earlier submissions' zygotes (uids and scratch paths, all gone by then).

Behind none (``--no-sandbox`` without bubblewrap or a worker uid: a laptop, a cluster's nodes) the same saving
holds, each zygote taking the same steps but the uid. There a submission's workers share the template's uid: it
is not dumpable, Landlock's signal scope (ABI 6) keeps workers from signalling it where the kernel has one, and
the grading process checks it before each student (``sound``) and starts another if it is gone or stopped.
``benchmarks.class_throughput --size 12 --workers 2 --no-sandbox`` on the 2-core machine: 5.7 to 6.5 s a
submission with a zygote started per student, 4.0 to 4.1 s forked from a template.

Not where each worker must be a new Python (a GPU machine: worker.py, ``zygote``), nor for one ``grade``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import sys
import tempfile
from pathlib import Path

from grader.sandbox import scratch as scratch_folders
from grader.sandbox.cgroups import Cgroup
from grader.sandbox.confine import Confinement
from grader.sandbox.isolation import Wall
from grader.sandbox.processes import MAX_PIDS, Limits, Process, Zygote, environment, rlimits, spawn

RUNTIME = Path(__file__).resolve().parents[1] / "runtime"  # what a worker sees of the grader, copied whole


def copy_runtime(scratch: Path) -> Path:
    """grader/runtime/ copied into ``scratch`` (0711) as ``runtime/``, readable by every uid (a worker's own)."""
    scratch.chmod(0o711)
    runtime = scratch / "runtime"
    runtime.mkdir(mode=0o755)
    for source in sorted(RUNTIME.glob("*.py")):
        shutil.copyfile(source, runtime / source.name)
        (runtime / source.name).chmod(0o644)
    return runtime


class Template:
    """The process every zygote of a class's grading process is forked from, outside bubblewrap."""

    def __init__(self, wall: Wall, limits: Limits, warm: bool) -> None:
        self.wall, self.limits, self.warm = wall, limits, warm
        self.scratch: Path | None = None
        self.process: Process | None = None
        self.control: socket.socket | None = None
        self.answered = False  # it forked once: its imports are done
        self.broken = False  # a fork failed (gone, stopped, or sabotaged behind none): the grader starts another

    def __enter__(self) -> Template:
        """Start it, without waiting for its imports."""
        self.scratch = Path(tempfile.mkdtemp(prefix=scratch_folders.prefix("template")))
        try:
            self.runtime = copy_runtime(self.scratch)
            home = self.scratch / "home"
            home.mkdir(mode=0o700)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            command = [sys.executable, "-I", "-B", str(self.runtime / "worker.py"), "--template", str(theirs.fileno())]
            try:
                self.process = spawn(
                    self.wall, self.limits, [*command, *(("--warm-up",) if self.warm else ())], (), theirs.detach(),
                    -1, self.scratch, str(home),
                )  # fmt: skip
            except BaseException:
                ours.close()
                raise
            self.control = ours
        except BaseException:
            self.close()
            raise
        return self

    def fork(self, confinement: Confinement, cwd: Path, home: str) -> Zygote:
        """A submission's zygote, confined by ``confinement`` (the slot's uid, its ruleset, seccomp), in ``cwd``
        with a worker's environment for ``home``, in a cgroup of its own; OSError when the template fails (and
        ``broken`` from then on)."""
        try:
            return self._fork(confinement, cwd, home)
        except OSError:
            self.broken = True
            raise

    def _fork(self, confinement: Confinement, cwd: Path, home: str) -> Zygote:
        if self.control is None:
            raise OSError("the template is closed")
        steps = {
            "uid": confinement.uid,
            "seccomp": confinement.seccomp.hex() if confinement.seccomp else "",
            "rlimits": rlimits(self.limits, own_uid=confinement.uid is not None),
            "cwd": str(cwd),
            "env": environment(home),
        }
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            fds = [theirs.fileno(), *((confinement.ruleset.fd,) if confinement.ruleset is not None else ())]
            self.control.settimeout(self.limits.startup_timeout_s)
            socket.send_fds(self.control, [b"Z" + json.dumps(steps).encode()], fds)
            answer = self.control.recv(64)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        if not answer.endswith(b"\n") or not answer.strip().isdigit():
            ours.close()
            raise OSError("the template did not answer")
        self.answered = True
        pid = int(answer)
        cgroup = Cgroup.create(self.limits.memory_mb * 2**20, MAX_PIDS)
        zygote = Zygote(Process(pid, None, -1, cgroup), ours, self.limits, warm=self.warm)
        if cgroup is not None:
            try:
                cgroup.enter(pid)
            except OSError:  # it exited: a step it could not take
                zygote.end()
                raise
        return zygote

    def sound(self) -> bool:
        """Whether a zygote can still be forked from it: no fork failed, and it is neither gone nor stopped (behind
        none a submission's workers run as its uid and may have signalled it)."""
        if self.broken or self.process is None:
            return False
        try:
            state = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("T", "t", "Z", "X")

    def close(self) -> None:
        if self.control is not None:
            with contextlib.suppress(OSError):
                self.control.close()
            self.control = None
        if self.process is not None:
            self.process.end()
            self.process = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def usable(wall: Wall) -> bool:
    """Whether zygotes can be forked from a template here: outside bubblewrap (behind the process wall, or behind
    none: ``--no-sandbox`` on a machine without bubblewrap or root, a cluster's nodes), where each worker may be
    forked (no GPU)."""
    from grader.sandbox.isolation import cuda_available

    return not wall.sandboxed and not cuda_available()
