"""A submission's workers: its private copy, one worker per module (each forked fresh from the submission's
zygote, which imports torch once), a converter for its notebooks, and the requests that run its functions.

Entering a ``Sandbox`` probes the wall (grader/sandbox/isolation.py), copies grader/runtime/ and takes
the submission in (grader/intake/); nothing is created before that. A worker that hangs,
crashes, exits, sends what cannot be read or grows past its memory limit is ended with everything
it started, the request is answered with ``WorkerDied``, and the next request gets a fresh worker.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from grader.intake import Intake, take_in
from grader.runtime.tree_removal import remove_tree
from grader.sandbox import channel, uids
from grader.sandbox import scratch as scratch_folders
from grader.sandbox.channel import WorkerDied
from grader.sandbox.confine import Confinement
from grader.sandbox.isolation import (
    Isolation,
    SandboxUnavailable,
    bwrap_command,
    cuda_available,
    installed_project_packages,
    ruleset,
    wall,
)
from grader.sandbox.landlock import Ruleset
from grader.sandbox.processes import Limits, Process, Zygote, become_subreaper, spawn
from grader.sandbox.template import Template, copy_runtime, usable

NO_WALL_NOTE = "Ran without a wall for other people's code"  # the note that says why, in red on the terminal


class Runner(Protocol):
    """What the checks need from whatever runs a student's functions: a Sandbox, or grader.kernel.InKernel."""

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]: ...

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]: ...

    def frozen(self) -> contextlib.AbstractContextManager[None]: ...

    def helpers(self) -> int: ...

    def baseline(self, files: Mapping[str, Path], module: ModuleType) -> Runner: ...


class Sandbox:
    """Workers for one submission; use as a context manager: entering takes the submission in."""

    def __init__(
        self,
        submission: Path | None,
        limits: Limits | None = None,
        isolation: Isolation = "auto",
        kept: bool = False,
        template: Template | None = None,
    ) -> None:
        self.submission = Path(submission) if submission is not None else None  # None: ``take`` one later
        self.limits = limits or Limits()
        self.isolation = isolation
        self.scratch: Path | None = None
        self.intake = Intake()
        self.process: Process | None = None
        self.zygote: Zygote | None = None
        self.trains = True  # whether workers may train: the zygote then takes an optimizer step first (``start``)
        # Kept for student after student (a class's grading process): its zygote imports what the exercises import
        # (worker.py, STUB_IMPORTS) once for all of them. For one student it would only lengthen the start, each of
        # its worker forks copying the larger process (``grade solutions``: 0.1 s slower).
        self.kept = kept
        self.fresh = False  # each forked worker starts a new Python (a GPU machine: see worker.py, ``zygote``)
        self.loaded: dict[str, str] = {}  # module name → path inside the worker's world
        self.broken: dict[str, dict[str, Any]] = {}  # module name → the error its import caused
        self.notes: dict[str, list[str]] = {}  # module name → what its import reported (notebook cells that raised)
        self.generated: set[str] = set()  # file names of modules made from notebooks
        self.owner: str | None = None  # the module the current worker serves
        self.slot: uids.Slot | None = None  # outside bubblewrap, for a root grader: the uid its workers run as
        self.rules: Ruleset | None = None  # outside bubblewrap, where the kernel has Landlock: what they may touch
        self.companion: Sandbox | None = None  # where the reference's timed step runs (``baseline``)
        self.template = template  # behind the process wall, a class's: what its zygote is forked from

    # -------------------------------------------------------------- lifecycle

    def __enter__(self) -> Sandbox:
        self.wall = wall(self.isolation)
        if self.isolation == "required" and not self.wall.holds:
            raise SandboxUnavailable(
                "no wall fit for other people's code can be built on this machine ("
                + "; ".join(self.wall.problems)
                + "): install bubblewrap, or pass --no-sandbox to grade without one"
            )
        become_subreaper()
        self.fresh = cuda_available()
        self.scratch = Path(tempfile.mkdtemp(prefix=scratch_folders.prefix("sandbox")))
        try:
            self.runtime = copy_runtime(self.scratch)  # 0711: a worker running as another uid must reach its files
            self.private = self.scratch / "submission"
            self.private.mkdir(mode=0o755)
            self.generated_dir = self.scratch / "generated"
            self.generated_dir.mkdir(mode=0o755)
            self.home = self.scratch / "home"  # the writable folder of a worker without bubblewrap
            self.home.mkdir(mode=0o700)
            if self.wall.own_uid:
                self.slot = uids.acquire()
                if self.slot is None:
                    raise SandboxUnavailable("every worker uid of this machine is in use (grader/sandbox/uids.py)")
                os.chown(self.home, self.slot.uid, self.slot.uid)
                for folder in (self.private, self.generated_dir):  # its own group only: not another slot's workers,
                    os.chown(folder, 0, self.slot.uid)  # which, without Landlock, could read /tmp's scratch folders
                    folder.chmod(0o750)
            if not self.wall.sandboxed and self.wall.landlock:
                runtimes = [str(self.runtime), *((str(self.template.runtime),) if self.template is not None else ())]
                self.rules = ruleset([*runtimes, str(self.private), str(self.generated_dir)], [str(self.home)])
            if self.submission is not None:
                self.intake = take_in(self.submission, self.private, into_existing=True)
        except BaseException:
            self.close()
            raise
        return self

    def _confinement(self) -> Confinement | None:
        """The process wall's steps for a new worker (None behind bubblewrap, which takes its own)."""
        if self.wall.sandboxed:
            return None
        return Confinement(self.slot.uid if self.slot else None, self.rules, self.wall.seccomp)

    @property
    def reusable(self) -> bool:
        """Whether ``take`` can give this sandbox to another submission: only behind bubblewrap, where all a
        worker can write is the sandbox's own tmpfs mounts and IPC namespace, which the zygote empties."""
        return self.wall.sandboxed

    def take(self, submission: Path) -> None:
        """Make this sandbox (its zygote kept, already importing or imported) the next submission's: every
        process of the last one ended, everything it could write emptied, its files replaced by the new
        submission's. If the sandbox cannot be shown clean, its zygote is ended and the next fork starts a
        fresh one. Folders are emptied in place: bubblewrap bound them, not their names."""
        assert self.scratch is not None and (self.reusable or self.zygote is None or not self.zygote.used)
        self._kill()
        # A zygote that forked nothing yet ran nothing of a submission (it may still be starting: its bwrap
        # would pass for a process left behind): nothing to clear.
        if self.zygote is not None and self.zygote.used and not self.zygote.clear(self.limits.startup_timeout_s):
            self.zygote.end()
            self.zygote = None
        for folder in (self.private, self.generated_dir, self.home):
            for entry in folder.iterdir():
                if not remove_tree(str(entry)):
                    raise OSError(f"{entry} could not be removed")
        self.loaded, self.broken, self.notes, self.generated, self.owner = {}, {}, {}, set(), None
        self.submission = Path(submission)
        self.intake = take_in(self.submission, self.private, into_existing=True)

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.companion is not None:
            self.companion.close()
            self.companion = None
        self._kill()
        if self.zygote is not None:
            self.zygote.end()
            self.zygote = None
        try:
            if self.slot is not None:  # every process and file of its uid gone before another submission has it
                self.slot.release()
                self.slot = None
        finally:
            if self.rules is not None:
                self.rules.close()
                self.rules = None
            if self.scratch is not None:
                remove_tree(str(self.scratch))  # however deep a worker made its HOME
                self.scratch = None

    def baseline(self, files: Mapping[str, Path], module: ModuleType) -> Sandbox:
        """Where the grader's own code runs to be timed against this sandbox's (the reference's training step):
        a sandbox of its own beside this one, entered with the same wall and limits, holding ``files`` (name
        inside it → the grader's file) and nothing of any submission. Its workers are placed as this one's are,
        each in a session and control group of its own, so that the kernel schedules both sides alike.
        Made on the first call; kept while this sandbox is (from student to student), closed with it."""
        if self.companion is None:
            companion = Sandbox(None, self.limits, self.isolation, template=self.template).__enter__()
            try:
                for name, source in files.items():
                    target = companion.private / name
                    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
                    target.chmod(0o644)
            except BaseException:
                companion.close()
                raise
            self.companion = companion
        return self.companion

    @property
    def sandboxed(self) -> bool:
        return self.wall.sandboxed

    def wall_notes(self) -> list[str]:
        """What the report should say about the wall, when it is not bubblewrap's."""
        if self.wall.sandboxed:
            return [f"Sandbox: {problem}." for problem in self.wall.problems]
        why = "; ".join(self.wall.problems or ("--no-sandbox",))
        if self.wall.kind == "process":
            return [f"Wall: {self.wall.describe()}: each submission's workers ran as a uid of their own ({why})."]
        return [f"{NO_WALL_NOTE}: {self.wall.describe()} ({why})."]

    def exposures(self) -> list[str]:
        """Instructor code that students' code can read: the project's packages installed inside the Python
        installation, which bubblewrap hides (grader/sandbox/isolation.py) and nothing else can."""
        if self.wall.sandboxed:  # Landlock lets a worker read the whole installation: only bubblewrap hides them
            return []
        return [
            f"{os.path.basename(folder)}/ is installed inside the Python installation ({folder}), which workers "
            "without bubblewrap can read; install bubblewrap, or install the grader with `pip install -e .`."
            for folder in installed_project_packages()
        ]

    def _inside(self, folder: str, filename: str) -> str:
        """A path of the worker's world: /submission/<file> or /generated/<file> (their real paths without bwrap)."""
        if self.wall.sandboxed:
            return f"/{folder}/{filename}"
        return str((self.private if folder == "submission" else self.generated_dir) / filename)

    def submission_path(self, filename: str) -> str:
        return self._inside("generated" if filename in self.generated else "submission", filename)

    # -------------------------------------------------------------- processes

    def _command(self, script: str, *arguments: str) -> tuple[list[str], tuple[int, ...]]:
        inside = f"/opt/grader-runtime/{script}" if self.wall.sandboxed else str(self.runtime / script)
        python = [sys.executable, "-I", "-B", inside, *arguments]
        if self.wall.sandboxed:
            return bwrap_command(self.wall, self.runtime, self.private, self.generated_dir, python)
        return python, ()

    def _spawn(self, script: str) -> Process:
        """A new converter process and the read end of its reply pipe; it imports on its own time."""
        read_fd, write_fd = os.pipe()
        command, fds = self._command(script, str(write_fd))
        return spawn(
            self.wall, self.limits, command, fds, write_fd, read_fd, self.private, self._home(), self._confinement()
        )

    def _home(self) -> str:
        return "/tmp" if self.wall.sandboxed else str(self.home)

    def _forks_from_template(self) -> bool:
        return (
            self.template is not None and usable(self.wall) and not self.fresh
            and (self.template.warm or not self.trains)
        )  # fmt: skip

    def _spawn_zygote(self) -> Zygote:
        """The submission's zygote: a worker that imports once and forks the worker of each module (forked, ready,
        from a class's template outside bubblewrap)."""
        if self._forks_from_template():
            assert self.template is not None
            try:
                return self.template.fork(self._confinement(), self.private, self._home())  # type: ignore[arg-type]
            except OSError:  # gone or sabotaged: this sandbox's zygote is started as without one
                self.template = None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            flags = (
                (("--warm-up",) if self.trains else ())
                + (("--exec",) if self.fresh else ())
                + (("--preload",) if self.kept else ())
            )
            command, fds = self._command("worker.py", "--zygote", str(theirs.fileno()), *flags)
            process = spawn(
                self.wall, self.limits, command, fds, theirs.detach(), -1, self.private, self._home(),
                self._confinement(),
            )  # fmt: skip
        except BaseException:
            ours.close()
            theirs.close()
            raise
        return Zygote(process, ours, self.limits, warm=self.trains)

    def start(self, trains: bool = True) -> None:
        """Start the zygote now, without waiting for it to import: the grader can prepare meanwhile. ``trains``:
        whether the items to grade include one that trains (a ``drivers.TRAINING`` driver, the timed step), for
        which the zygote first takes an optimizer step of its own (``drivers.warm_up``, about 1 s) so that no
        worker's first graded call pays it; a kept zygote that did not is replaced by one that does."""
        self.trains = trains
        if self.zygote is not None and trains and not self.zygote.warm:
            self.zygote.end()
            self.zygote = None
        if self.zygote is None and not (self._forks_from_template() and not self.template.answered):  # type: ignore[union-attr]
            self.zygote = self._spawn_zygote()  # (a template still importing: its first worker waits for it)

    def _fork(self) -> Process:
        """A fresh worker from the zygote, started (or started again, once, if it is gone) as needed."""
        for attempt in range(2):
            if self.zygote is None:
                self.zygote = self._spawn_zygote()
            try:
                return self.zygote.fork()
            except OSError as err:  # the zygote did not answer: it is gone, stopped or sabotaged
                self.zygote.end()
                self.zygote = None
                if attempt:
                    raise WorkerDied("crash", f"no worker could be started ({err})") from None
        raise AssertionError("unreachable")

    def _start(self) -> None:
        self.process = self._fork()
        self.loaded = {}
        self._request({"op": "ping"}, self.limits.startup_timeout_s)

    def stop(self) -> None:
        """End the current worker, with everything it started."""
        self._kill()

    def _kill(self) -> None:
        process, self.process = self.process, None
        self.owner = None
        if process is not None:
            process.end()

    def helpers(self) -> int:
        """Live processes the current worker started (see Process.helpers). Behind the process wall, every live
        process of the slot's uid but the worker and the zygote: one that double-forked away from the worker's
        tree (there is no PID namespace to keep it there) is still the submission's."""
        if self.process is None:
            return 0
        if self.slot is not None:
            own = {self.process.pid, *((self.zygote.process.pid,) if self.zygote else ())}
            return sum(1 for pid in uids.processes_of(self.slot.uid) if pid not in own)
        return self.process.helpers()

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Every process of this sandbox stopped (cgroup freezer, else SIGSTOP), for the timed item; behind the
        process wall also every other process of the slot's uid (SIGSTOP, twice over, to catch a fork)."""
        processes = [p for p in (self.process, self.zygote.process if self.zygote else None) if p is not None]
        for p in processes:
            p.freeze(True)
        stopped: list[int] = []
        if self.slot is not None:
            families = {proc.pid for p in processes for proc in p.family()}
            for _ in range(2):
                for pid in uids.processes_of(self.slot.uid):
                    if pid not in families and pid not in stopped:
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGSTOP)
                            stopped.append(pid)
        try:
            yield
        finally:
            for pid in stopped:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGCONT)
            for p in processes:
                p.freeze(False)

    # -------------------------------------------------------------- requests

    def _request(
        self, request: dict[str, Any], timeout: float, process: Process | None = None, code: bool = False
    ) -> dict[str, Any]:
        """One request to ``process`` (the current worker by default) and its reply (grader/sandbox/channel.py)."""
        worker = process or self.process
        assert worker is not None
        end = self._kill if process is None else worker.end
        return channel.request(worker, request, timeout, end, self.limits.memory_mb, code)

    def convert_notebooks(self, notebooks: dict[str, str]) -> dict[str, str]:
        """Make each notebook (part → file name in the copy) into ``<part>.py`` in the generated folder, in a
        sandboxed converter with a time limit per notebook; part → why it could not be read, for the others."""
        problems: dict[str, str] = {}
        converter: Process | None = None
        timeout = max(self.limits.call_timeout_s, 10.0)
        try:
            for part, label in notebooks.items():
                if converter is None:
                    converter = self._spawn("convert.py")
                    self._request({"op": "ping"}, self.limits.startup_timeout_s, converter)
                request = {"op": "convert", "path": self._inside("submission", label), "part": part}
                try:
                    reply = self._request(request, timeout, converter, code=True)
                except WorkerDied as died:
                    converter = None
                    why = f"reading it took longer than {timeout:g} s" if died.kind == "timeout" else str(died)
                    problems[part] = f"{label} could not be graded: {why}."
                    continue
                if "error" in reply:  # checked_reply(code=True): otherwise "ok" holds the module's text
                    message = reply["error"]["message"]
                    problems[part] = f"{label} could not be graded: {message}. Re-save it from Jupyter."
                    continue
                target = self.generated_dir / f"{part}.py"
                target.write_text(reply["ok"])
                target.chmod(0o644)
                self.generated.add(f"{part}.py")
        except WorkerDied as died:
            for part, label in notebooks.items():
                problems.setdefault(part, f"{label} could not be graded: the notebook reader did not start ({died}).")
        finally:
            if converter is not None:
                converter.end()
        return problems

    def ensure_loaded(self, name: str, filename: str) -> dict[str, Any]:
        """Start a worker if needed and import the submission's module; the reply of the import.

        A module whose import killed the worker is remembered, so that its other items are
        reported at once instead of each starting a worker that the import kills again.
        """
        if name in self.broken:
            return self.broken[name]
        if self.process is not None and self.owner not in (None, name):
            self._kill()
        if self.process is None:
            self._start()
            self.owner = name
        if name in self.loaded:
            return {"ok": True}
        request = {
            "op": "load",
            "name": name,
            "path": self.submission_path(filename),
            "search": [self._inside("submission", ""), self._inside("generated", "")],
        }
        try:
            reply = self._request(request, self.limits.call_timeout_s)
        except WorkerDied as died:
            self.broken[name] = {
                "error": {"kind": "died", "type": died.kind, "message": f"while importing it {died}", "where": None}
            }
            return self.broken[name]
        if "ok" in reply:
            self.loaded[name] = filename
            notes = reply.get("notes")
            if isinstance(notes, list):
                self.notes[name] = [str(n) for n in notes[:5]]
        return reply

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Send one request for ``module`` (imported from ``filename`` first); its reply or WorkerDied."""
        loaded = self.ensure_loaded(module, filename)
        if "error" in loaded:
            return loaded
        return self._request({**op, "module": module}, timeout or self.limits.call_timeout_s)
