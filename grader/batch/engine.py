"""Grading a class: payloads out to graders (local processes or Dask workers), results back as they come.

``grade_payload`` is the one task: it runs wherever a grader runs (a process of the local pool,
a Dask worker on another machine), unpacks one student's payload into a scratch folder, grades
it in its own sandbox exactly as ``python -m grader grade`` does, and returns plain JSON. Only the
process that started the batch writes results (grader/batch/store.py), one student at a time, as
they arrive.

The local pool (``LocalPool``) is N processes started once, each of which imports torch, the
reference and the checks once and then grades one submission after another: the class pays those
imports N times, not once per student. Each process dies with the batch (``PR_SET_PDEATHSIG``), and
with it every sandbox it started. A pool process that dies while grading (killed, out of memory)
costs nothing but time: it is replaced and the student is graded again; after a second death the student is
reported as not graded (nothing stored: the next run grades them), and the batch goes on.

With ``--dask ADDRESS`` (``DaskPool``) each payload travels as bytes to a Dask worker; Dask runs a
task again elsewhere when its worker dies. Either way a result is written once per student, keyed by
the student, so a task run twice is still counted once.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from grader import __version__
from grader.intake.untrusted import clean_text
from grader.sandbox import Limits, Sandbox
from grader.sandbox import scratch as scratch_folders
from grader.sandbox.isolation import wall
from grader.sandbox.template import Template
from grader.sandbox.template import usable as template_usable

Result = dict[str, Any]
Task = tuple[str, bytes, str, list[str]]  # student, payload, digest, notes


@dataclass(frozen=True)
class Settings:
    """What a grade depends on beyond the submission: stored with each result, a change regrades."""

    items: tuple[str, ...] | None = None
    timeout_s: float = 10.0
    memory_mb: int = 4096
    isolation: str = "required"
    pages: bool = False  # each student's feedback page with pictures (grader/pictures/), written to pages/

    @property
    def limits(self) -> Limits:
        return Limits(call_timeout_s=self.timeout_s, memory_mb=self.memory_mb)

    def as_dict(self) -> dict[str, Any]:
        """Everything that can change a verdict, stored with each result: the wall asked for, the limits, the
        items, and the checksum of the reference and the checks that the expected values come from."""
        return {
            "items": list(self.items) if self.items is not None else None,
            "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb,
            "isolation": self.isolation,
            "pages": self.pages,
            "reference": reference_checksum(),
        }


@functools.cache
def reference_checksum() -> str:
    """SHA-256 of the sources that decide a verdict: reference/ (the expected values) and grader/checks/ (the
    cases, tolerances and mistakes). A result graded by other ones is graded again."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for folder in ("reference", "grader/checks"):
        for path in sorted((root / folder).glob("*.py")):
            h.update(f"{folder}/{path.name}:{path.stat().st_size}:".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def grade_payload(
    student: str, payload: bytes, digest: str, notes: list[str], settings: Settings, room: Sandbox | None = None
) -> Result:
    """Grade one student's payload (grader/intake/archive.py) in a sandbox of its own (``room``: one that this grading
    process keeps from one student to the next, made this student's by ``Sandbox.take``); plain JSON."""
    from grader import import_before_grading

    import_before_grading("grader.grading.run")  # the first student's: after the room's zygote has started
    from grader.grading.run import grade
    from grader.intake.archive import unpack

    with tempfile.TemporaryDirectory(prefix=scratch_folders.prefix("payload")) as scratch:
        folder = Path(scratch) / "submission"
        intake = unpack(payload, folder)
        if room is not None:
            room.take(folder)
        report = grade(folder, settings.items, settings.limits, settings.isolation, sandbox=room,  # type: ignore[arg-type]
                       pictures=settings.pages)  # fmt: skip
    page = {}
    if settings.pages:
        from grader.pictures.page import render

        page["page"] = render(report, report.pictures, student)  # the coordinator writes it to pages/, not results/
    return {
        **page,
        **report.as_dict(),
        "student": student,
        "status": "grader-fault" if report.faults else "graded",
        "digest": digest,
        "settings": settings.as_dict(),
        "grader_version": __version__,
        "notes": [*notes, *intake.problems, *report.notes],
        "sandboxed": report.sandboxed,
        "wall": report.wall,
        "classified": report.classified(),  # what the class report sorts by (never the feedback's words)
    }


class Pool(Protocol):
    """Where the tasks run: results (or a failure) of each student, in the order they finish."""

    def results(self, tasks: list[Task], settings: Settings) -> Iterator[tuple[str, Result | None, str]]: ...

    def release(self) -> None:
        """Say that no more tasks will come (the graders may begin to end); ``close`` still ends the pool."""

    def close(self) -> None: ...


# --------------------------------------------------------------------------------------- local


def serve(fd: int) -> None:
    """A pool process (``python -c 'serve(FD)'``, FD one end of a socket pair): grade what arrives until the batch
    closes its end. It says it is ready at once: its first student's sandbox starts its workers (which import
    torch) before this process imports torch itself, as ``python -m grader grade`` does. Told to end (SIGTERM,
    SIGINT), it exits with 128 + the signal's number once its clean-up is done."""
    try:
        _serve(fd)
    except Ending as ending:
        raise SystemExit(ending.code) from None


def _serve(fd: int) -> None:
    from grader.sandbox.processes import become_subreaper, die_with_parent

    connection = multiprocessing.connection.Connection(fd)

    # The batch killed (kill -9): SIGTERM here, which ends this process through its cleanup, so that the sandbox it
    # keeps is ended by it: a worker the timed item had frozen is thawed and killed (a SIGKILL to this process
    # would leave it frozen for good), its cgroups and scratch folders removed.
    # Ctrl-C reaches the whole process group: the same, quietly (the batch says the one sentence).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    sys.unraisablehook = _unless_ending
    die_with_parent(signal.SIGTERM)
    become_subreaper()
    try:
        connection.send(("ready", None))
    except OSError:  # the batch finished (or was stopped) while this process started: nothing to say
        return
    rooms = Rooms()
    try:
        while not _ENDING:
            try:
                task = connection.recv()
            except (EOFError, OSError):  # the batch is done, or gone
                return
            student, payload, digest, notes, settings = task
            try:
                answer: tuple[str, Any] = ("done", grade_payload(student, payload, digest, notes, settings,
                                                                 rooms.get(settings)))  # fmt: skip
            except Exception as exc:  # the grader's own fault on this student: recorded, the pool goes on
                rooms.close()
                answer = ("fault", f"{type(exc).__name__}: {exc}")
            if _ENDING:  # told to end while grading, where the exit was swallowed (a gc callback's): no answer
                return
            try:
                connection.send(answer)
            except OSError:  # the batch is gone
                return
            try:
                rooms.prepare(settings)  # the next student's zygote imports torch while this result travels
            except Exception:  # no sandbox to keep here: the next student's grade says why, as their own fault row
                rooms.close()
    finally:
        # Ending on its own (the batch closed its end: done, or killed), this process is told so twice: the socket's
        # end comes first, then the parent's death signal, which would cut this clean-up short (a room's cgroups were
        # left so once in CI, under load): nothing stops it now, and what it made is removed whatever the room does.
        _deaf_to_endings()
        try:
            rooms.close()
        finally:
            _remove_own_places()


def _remove_own_places() -> None:
    """Whatever of this process's making is still there as it ends: a cgroup or scratch folder it was making when
    a signal ended it, before a sandbox held it (the sandboxes themselves are closed by then)."""
    from grader.sandbox import cgroups, scratch

    try:
        cgroups.remove_own()
    finally:
        scratch.remove_own()


_ENDING = False  # a pool process told to end (SIGTERM, SIGINT) grades nothing more and answers nothing


class Ending(KeyboardInterrupt):
    """A pool process told to end: raised by its signal handler, through every ``finally`` (the sandboxes close),
    and made its exit code by ``serve``. A KeyboardInterrupt, because Hypothesis lets that one through at once:
    SystemExit it takes for a failure of the test and shrinks, calling the student's workers again and again, and
    a grading process killed inside an item's run went on for 2 to 7 s (a class behind the process wall)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _exit_cleanly(signum: int, frame: Any) -> None:
    global _ENDING
    _ENDING = True
    _deaf_to_endings()  # once: a second signal (its group's, then its parent's death) would cut the clean-up short
    raise Ending(128 + signum)


def _deaf_to_endings() -> None:
    """SIGTERM and SIGINT ignored from now on, and an ending raised again (``_end_again``'s SIGALRM): this process
    is ending, and any of them would cut its clean-up short."""
    for heard in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(heard, signal.SIG_IGN)


def _unless_ending(unraisable: Any) -> None:
    """Python's report of an exception it had to drop (raised in a gc callback or a finaliser), except the
    ``Ending`` that ``_exit_cleanly`` raised there, which is raised again a millisecond later (``_end_again``),
    out of the callback: dropped, it let the grading go on to the student's end (Hypothesis's gc callback took
    a SIGTERM in a class killed behind the process wall)."""
    if _ENDING and isinstance(unraisable.exc_value, Ending):
        signal.signal(signal.SIGALRM, functools.partial(_end_again, unraisable.exc_value.code))
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        return
    sys.__unraisablehook__(unraisable)


def _end_again(code: int, signum: int, frame: Any) -> None:
    """The ending a gc callback or finaliser dropped, raised again (once; dropped again, ``_unless_ending`` re-arms)."""
    signal.signal(signal.SIGALRM, signal.SIG_IGN)
    raise Ending(code)


class Rooms:
    """The sandbox a grading process keeps for the students it grades, one after another: where bubblewrap
    builds it (``Sandbox.reusable``), and for ``ROOM_USES`` students at most. Elsewhere a sandbox serves one
    student (behind the process wall its uid is cleared after it), its zygote forked from the template this process
    keeps (grader/sandbox/template.py), which imported torch once for all of them; on a GPU machine, where each
    worker is a new Python, a sandbox per student."""

    ROOM_USES = 50

    def __init__(self) -> None:
        self.room: Sandbox | None = None
        self.settings: Settings | None = None
        self.uses = 0
        self.template: Template | None = None

    def get(self, settings: Settings) -> Sandbox | None:
        self.prepare(settings)
        if self.room is not None:
            self.uses += 1
        return self.room

    def prepare(self, settings: Settings) -> None:
        """A room for ``settings``, its zygote started, unless the one kept suits them."""
        if self.room is not None:
            uses = self.ROOM_USES if self.room.reusable else 1
            if self.settings != settings or self.uses >= uses:
                self._close_room()
        if self.room is None:
            from grader.contract import may_train

            trains = may_train(settings.items)
            template = self._template(settings, trains)
            room = Sandbox(None, settings.limits, settings.isolation, kept=True, template=template).__enter__()  # type: ignore[arg-type]
            if not room.reusable and template is None:
                room.close()
                return
            room.start(trains=trains)  # before torch is imported here; grade() says exactly
            self.room, self.settings, self.uses = room, settings, 0

    def _template(self, settings: Settings, trains: bool) -> Template | None:
        """Outside bubblewrap, the template to fork this room's zygotes from: the one kept, unless a fork from it
        failed, or it was started with other limits or does not warm up for training that ``settings`` ask for."""
        if not template_usable(wall(settings.isolation)):
            return None
        kept = self.template
        if kept is not None and (not kept.sound() or kept.limits != settings.limits or (trains and not kept.warm)):
            kept.close()
            self.template = None
        if self.template is None:
            self.template = Template(wall(settings.isolation), settings.limits, warm=trains).__enter__()
        return self.template

    def _close_room(self) -> None:
        if self.room is not None:
            self.room.close()
        self.room = None

    def close(self) -> None:
        try:
            self._close_room()
        finally:
            if self.template is not None:
                self.template.close()
                self.template = None


@dataclass
class _Slot:
    process: subprocess.Popen[bytes]
    connection: multiprocessing.connection.Connection
    task: Task | None = None
    said_ready: bool = False  # it takes students from then on (it says so at once: ``serve``)


class LocalPool:
    """``workers`` grading processes on this machine, started once for the whole class."""

    ATTEMPTS = 2  # a student whose grading process dies twice is recorded as failed

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.slots: list[_Slot] = []

    def _start(self) -> _Slot:
        """A fresh interpreter (no threads or locks inherited; allowed inside a Dask worker's daemonic process),
        talking over one end of a socket pair; it closes when the process dies, which is how death is seen."""
        ours, theirs = socket.socketpair()
        code = f"from grader.batch.engine import serve; serve({theirs.fileno()})"
        here = str(Path(__file__).resolve().parents[2])  # where this grader is imported from, not the cwd (-P)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])}
        try:
            process = subprocess.Popen([sys.executable, "-P", "-c", code], pass_fds=(theirs.fileno(),), env=env)
        finally:
            theirs.close()
        return _Slot(process, multiprocessing.connection.Connection(ours.detach()))

    def results(self, tasks: list[Task], settings: Settings) -> Iterator[tuple[str, Result | None, str]]:
        """Each student's result as it arrives; run it to its end (a reply left unread would be the next call's)."""
        pending = list(reversed(tasks))
        attempts: dict[str, int] = {}
        ready: list[_Slot] = [slot for slot in self.slots if slot.task is None and slot.said_ready]
        while len(self.slots) < min(self.workers, len(tasks)):
            self.slots.append(self._start())
        busy = 0
        while True:
            while ready and pending:
                slot = ready.pop()
                if slot not in self.slots:
                    continue
                slot.task = pending.pop()
                slot.connection.send((*slot.task, settings))
                busy += 1
            if not pending and not busy:
                return
            waitable = {slot.connection: slot for slot in self.slots}
            for handle in multiprocessing.connection.wait(list(waitable)):
                slot = waitable[handle]  # type: ignore[index]  # wait() returns the objects it was given
                try:
                    message = slot.connection.recv()
                except (EOFError, OSError):
                    message = None
                if message is None:  # the process died: replace it, and grade its student again (or give up)
                    self.slots.remove(slot)
                    slot.connection.close()
                    slot.process.kill()
                    slot.process.wait()
                    if slot.task is not None:
                        busy -= 1
                        student = slot.task[0]
                        attempts[student] = attempts.get(student, 0) + 1
                        if attempts[student] < self.ATTEMPTS:
                            pending.append(slot.task)
                        else:
                            yield student, None, f"the grading process died {self.ATTEMPTS} times on it"
                    if pending:
                        self.slots.append(self._start())
                    continue
                kind, value = message
                slot.said_ready = True
                if kind in ("done", "fault"):
                    busy -= 1
                    assert slot.task is not None
                    student, slot.task = slot.task[0], None
                    yield (student, value, "") if kind == "done" else (student, None, f"grader fault: {value}")
                ready.append(slot)

    def grade_one(self, task: Task, settings: Settings) -> tuple[Result | None, str]:
        """One student's result (or None and why), the generator run to its end so that no reply is left behind."""
        outcome: tuple[Result | None, str] = (None, "no result")
        for _, result, problem in self.results([task], settings):
            outcome = (result, problem)
        return outcome

    def release(self) -> None:
        """No more students: each grading process, seeing its end of the socket closed, ends its sandboxes and
        exits, while the batch writes its outputs; ``close`` waits for them."""
        for slot in self.slots:
            slot.connection.close()

    def close(self) -> None:
        self.release()
        for slot in self.slots:
            try:
                slot.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                slot.process.kill()
                slot.process.wait()
        self.slots = []


# --------------------------------------------------------------------------------------- Dask


class DaskPool:
    """Grading on a dask.distributed cluster: each payload travels as bytes to a worker, which grades it."""

    def __init__(self, address: str, connect_timeout_s: float = 10.0) -> None:
        from distributed import Client

        self.client = Client(address, timeout=connect_timeout_s)

    def check(self, isolation: str) -> list[str]:
        """Why the cluster's workers cannot grade, one line each (none: they can): each must import this project
        at this grader's version and, where ``isolation`` requires one, build the sandbox. Asked before any task
        is sent, so that an environment that cannot grade is never recorded as every student's failure."""
        try:
            answers = self.client.run(worker_can_grade, isolation)
        except Exception as err:  # a worker that cannot even unpickle the question: the project is not there
            return [f"the Dask workers cannot run the grader ({type(err).__name__}: {clean_text(str(err), 200)}); "
                    "install this project, at this version, in the workers' environment"]  # fmt: skip
        if not answers:
            return ["the Dask scheduler has no worker"]
        problems = []
        for worker, (version, problem) in sorted(answers.items()):
            if version != __version__:
                problems.append(f"worker {worker} has grader {version}, this is {__version__}")
            elif problem:
                problems.append(f"worker {worker} cannot grade: {problem}")
        return problems

    def results(self, tasks: list[Task], settings: Settings) -> Iterator[tuple[str, Result | None, str]]:
        futures = {
            self.client.submit(
                grade_on_worker, student, payload, digest, notes, settings,
                key=f"grade-{digest[:16]}-{hashlib.sha256(student.encode()).hexdigest()[:16]}", pure=False,
            ): student
            for student, payload, digest, notes in tasks
        }  # fmt: skip
        for future in self.completed(futures):
            student = futures[future]
            try:
                yield student, future.result(), ""
            except Exception as exc:  # KilledWorker (died too often), or the task raised
                yield student, None, f"{type(exc).__name__}: {exc}"
            finally:
                future.release()

    def completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """``futures`` as they finish, waited for on this pool's own client's event loop. Left to itself,
        ``as_completed`` waits on the loop of the process's current client, which is another one wherever a
        client was entered before (an instructor's notebook, a test's own): a result lost with its worker is
        then awaited again on the other loop, and ``result()`` raises "bound to a different event loop"
        instead of the recomputed result."""
        from distributed import as_completed

        return iter(as_completed(futures, loop=self.client.loop))

    def release(self) -> None:
        pass  # the workers are the cluster's, and stay

    def close(self) -> None:
        self.client.close()


_WORKER_POOL: LocalPool | None = None
_WORKER_LOCK = threading.Lock()


def worker_can_grade(isolation: str) -> tuple[str, str]:
    """On a Dask worker: (its grader's version, why it cannot grade or "")."""
    from grader.sandbox import SandboxUnavailable

    try:
        Sandbox(None, Limits(), isolation).__enter__().close()  # type: ignore[arg-type]
    except SandboxUnavailable as err:
        return __version__, str(err)
    except Exception as err:
        return __version__, f"{type(err).__name__}: {err}"
    return __version__, ""


def grade_on_worker(student: str, payload: bytes, digest: str, notes: list[str], settings: Settings) -> Result:
    """The Dask task: grade on this worker's own grading process (a LocalPool of one, started on the first task
    and kept), so that grading runs in a process of its own, as it does locally, never among Dask's threads."""
    global _WORKER_POOL
    with _WORKER_LOCK:
        if _WORKER_POOL is None:
            _WORKER_POOL = LocalPool(1)
        result, problem = _WORKER_POOL.grade_one((student, payload, digest, notes), settings)
    if result is None:
        raise RuntimeError(f"grading {student} failed: {problem}")
    return result
