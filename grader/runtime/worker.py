"""The worker: the only process that runs a student's code.

    python worker.py RESPONSE_FD [--warm-up]
                                          one worker, answering on RESPONSE_FD (after an optimizer step
                                          of its own with --warm-up)
    python worker.py --zygote CONTROL_FD [--warm-up] [--exec] [--preload]
                                          a zygote that forks fresh workers on request (see ``zygote``),
                                          after an optimizer step of its own where workers will train;
                                          with --exec each forked worker starts Python afresh (for CUDA);
                                          with --preload it imports what the exercises import (a class's)
    python worker.py --template CONTROL_FD [--warm-up]
                                          behind the process wall, a class's: it imports and warms up
                                          once, then forks each submission's zygote (see ``template``)

It reads one JSON request a line from stdin and writes one JSON reply a line to
RESPONSE_FD (stdout and stderr go to /dev/null, so a student's prints cannot reach
the grader). Requests:

    {"op": "load", "name": "mle", "path": ".../mle.py", "search": [folders]}   import a submission module
    {"op": "run", "driver": "...", "module": "mle", "inputs": ...}  run a driver on it
    {"op": "speed_setup", "module": "ddpm", "inputs": ...}       build the timed step's state
    {"op": "speed_run", "steps": n}                              take n timed steps
    {"op": "speed_params"}                                       the timed model's parameters after them

Every request carries a sequence number "seq" that its reply echoes, so that a line a submission
writes to RESPONSE_FD itself cannot pass for the answer to a later request.
A reply is {"ok": value} or {"error": {"kind", "type", "message", "where"}} with
kind "import" (the module failed to import), "raised" (the student's code raised)
or "wire" (it returned something that cannot be sent). The worker imports only
wire.py and drivers.py beside it; the grader never trusts anything in a reply but
plain numbers.
"""

from __future__ import annotations

import gc
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

if __name__ == "__main__":  # a worker or zygote starting: the collector is held off until its imports are done
    gc.disable()  # (``imported``), as the grader's own processes do (grader.import_before_grading)
import drivers  # noqa: E402  (beside this file in the worker's runtime folder)
import tree_removal  # noqa: E402
import wire  # noqa: E402

MAX_MESSAGE_CHARS = 600  # of an exception's text in feedback
MAX_NOTES = 5  # notebook cells that raised, reported with a part's failing items
CELL_ERRORS = "__grader_cell_errors__"  # as grader/intake/submission.py names it


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[:MAX_MESSAGE_CHARS] + " ..."


def _safe_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:
        text = "<the exception's message could not be read>"
    return _clip(text)


def _where(exc: BaseException, roots: list[str]) -> str | None:
    """'file.py, line N: code' of the innermost frame inside the submission, if any."""
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if any(f.filename.startswith(r) for r in roots)]
        if not frames:
            return None
        frame = frames[-1]
        return f"{Path(frame.filename).name}, line {frame.lineno}: {(frame.line or '').strip()[:200]}"
    except BaseException:
        return None


def _error(kind: str, exc: BaseException, roots: list[str]) -> dict[str, Any]:
    return {
        "error": {"kind": kind, "type": type(exc).__name__, "message": _safe_text(exc), "where": _where(exc, roots)}
    }


class Worker:
    def __init__(self) -> None:
        self.modules: dict[str, ModuleType] = {}
        self.roots: list[str] = []
        self.calls = drivers.Calls()

    def load(self, name: str, path: str, search: list[str]) -> dict[str, Any]:
        for folder in [str(Path(path).resolve().parent), *search]:
            if folder not in sys.path:
                sys.path.insert(0, folder)  # sibling imports (vae.py importing divergences) resolve in the submission
                self.roots.append(folder)
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {Path(path).name}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            return _error("import", exc, self.roots)
        self.modules[name] = module
        notes = module.__dict__.get(CELL_ERRORS)
        if isinstance(notes, list) and notes:  # a module made from a notebook: cells that raised
            return {"ok": True, "notes": [_clip(str(n)) for n in notes[:MAX_NOTES]]}
        return {"ok": True}

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "load":
            search = request.get("search")
            return self.load(request["name"], request["path"], search if isinstance(search, list) else [])
        if op == "ping":
            return {"ok": "pong"}
        module = self.modules.get(request.get("module", ""))
        if op in ("run", "speed_setup") and module is None:
            return {
                "error": {
                    "kind": "import",
                    "type": "ModuleNotFoundError",
                    "message": "module not loaded",
                    "where": None,
                }
            }
        try:
            return {"ok": self.calls.perform(module, request)}
        except drivers.UnknownOp as exc:
            return {"error": {"kind": "protocol", "type": "ValueError", "message": str(exc), "where": None}}
        except BaseException as exc:
            return _error("raised", exc, self.roots)


def serve(reply_fd: int) -> None:
    """Answer requests from stdin on ``reply_fd`` until stdin closes: the life of one worker."""
    reply = os.fdopen(reply_fd, "wb", buffering=0)
    requests = sys.stdin.buffer
    worker = Worker()
    for line in requests:
        sequence = None
        try:
            request = wire.loads(line)
            sequence = request.pop("seq", None)
            answer = worker.handle(request)
            try:
                data = wire.dumps({**answer, "seq": sequence})
            except (wire.WireError, ValueError, TypeError, OverflowError) as exc:
                data = wire.dumps({**_error("wire", exc, worker.roots), "seq": sequence})
        except BaseException as exc:
            data = wire.dumps({**_error("protocol", exc, worker.roots), "seq": sequence})
        reply.write(data)


def _dumpable(flag: bool) -> None:
    """PR_SET_DUMPABLE: whether processes of the same uid may read and write this one's memory (Linux)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(4, int(flag), 0, 0, 0)


WRITABLE = ("/tmp", "/dev/shm")  # the sandbox's own tmpfs mounts: all that a worker under bubblewrap can write
SYSV = {"shm": "shmctl", "sem": "semctl", "msg": "msgctl"}  # System V IPC objects of the sandbox's IPC namespace
IPC_RMID = 0


def _remove(path: str) -> None:
    """Remove ``path`` however deep (tree_removal.py: ``shutil.rmtree`` recursed once a level, and a worker's tree
    thousands of folders deep cost the zygote), never following a link, folders a worker locked included."""
    if not tree_removal.remove_tree(path):
        raise OSError(f"{path} could not be removed")


def skeleton() -> dict[str, tuple[int, int, int, bool]]:
    """What bubblewrap built inside the writable folders to mount something there (a Python installation that
    lives under /tmp): each mount point (/proc/self/mountinfo) and every folder on the way to it, with its mode,
    owner, inode and whether it is the mount point. The zygote takes it before any submission runs; wiping
    keeps exactly that, as it was, and empties the rest."""
    import re

    found: dict[str, tuple[int, int, int, bool]] = {}
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:  # nothing known to keep: wiping then fails closed on whatever is mounted under /tmp
        return found
    for line in lines:
        fields = line.split()  # the fifth: where it is mounted (a space, tab, newline or backslash written \ooo)
        if len(fields) < 5:
            continue
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
        path = point
        while any(path.startswith(folder + "/") for folder in WRITABLE):
            try:
                info = os.lstat(path)
            except OSError:  # not to be seen: left out, so that wiping fails closed on it
                break
            mounted = path == point or found.get(path, (0, 0, 0, False))[3]  # nested mounts: in any order
            found[path] = (info.st_mode, info.st_uid, info.st_ino, mounted)
            path = os.path.dirname(path)
    return found


def _beyond(folder: str, kept: dict[str, tuple[int, int, int, bool]]) -> list[str]:
    """What ``folder`` holds beyond the skeleton ``kept``, looking inside its folders (not its mount points); a
    folder of it that cannot be listed counts as beyond."""
    found = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if path not in kept:
            found.append(path)
        elif not kept[path][3]:
            try:
                found += _beyond(path, kept)
            except OSError:
                found.append(path)
    return found


def wipe(kept: dict[str, tuple[int, int, int, bool]]) -> bool:
    """Empty what a submission's workers could write in the sandbox (its /tmp and /dev/shm) but the skeleton
    ``kept`` (taken when the sandbox began) and remove the System V IPC objects they made, so that the next
    submission finds the sandbox as it was; True when all of it is gone and the skeleton is as it was (nothing
    renamed, moved or locked). Only in the sandbox (under /opt/grader-runtime): never on the grader's machine."""
    import ctypes

    if not sys.argv[0].startswith("/opt/grader-runtime/"):
        return False
    for path, (mode, _, _, mounted) in sorted(kept.items()):  # a folder before those in it
        try:
            if not mounted and os.lstat(path).st_mode != mode:  # locked by a worker (bubblewrap's own are not theirs)
                os.chmod(path, mode & 0o7777)
        except OSError:
            pass
    for path in [path for folder in WRITABLE for path in _beyond(folder, kept) if path not in kept]:
        try:
            _remove(path)  # (a folder of the skeleton that cannot be listed is left to fail the check below)
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    for kind, control in SYSV.items():
        try:
            lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 1 and fields[1].isdigit():
                if kind == "sem":
                    libc.semctl(int(fields[1]), 0, IPC_RMID)
                else:
                    getattr(libc, control)(int(fields[1]), IPC_RMID, None)
    left = [path for folder in WRITABLE for path in _beyond(folder, kept)]
    ipc = [k for k in SYSV if len(Path(f"/proc/sysvipc/{k}").read_text().splitlines()) > 1]
    return not left and not ipc and skeleton() == kept


MAX_STATUSES = 64  # exit statuses of forked workers kept for the grader to ask about
STATUS_WAIT_S = 5.0
# What the exercises import beyond the standard library and torch (tests/test_generate.py keeps the list whole):
# a zygote kept for a class (--preload) imports it once, as it does torch, rather than every student's worker on
# loading the module (scipy's special functions took 0.16 s of each mle.py's load, a ninth of a student's time).
STUB_IMPORTS = ("numpy", "scipy.special", "torch.nn.functional")


def preload() -> None:
    """Import STUB_IMPORTS here (one that is not installed is left to the student's import to report)."""
    for name in STUB_IMPORTS:
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def imported() -> None:
    """The start's imports and warm-up are done: freeze what they made (some 250,000 objects with torch._dynamo,
    which every full collection would walk again, here and in each forked worker, whose pages it would copy) and
    let the collector run. Held off during them, it spared 0.3 to 0.6 s of each zygote's CPU on the 2-core
    machine. A submission's code only ever runs after this, its objects collected as ever."""
    gc.freeze()
    gc.enable()


def zygote(control_fd: int, warm: bool, fresh: bool = False, stubs: bool = False, ready: bool = False) -> None:
    """Fork fresh workers on request, from a process that has imported torch and the drivers but never runs a
    line of the submission: every module gets a worker of its own without paying the imports again.

    The control socket (SOCK_SEQPACKET) carries three requests from the grader, each answered with one line:
    ``F`` with two descriptors (the new worker's stdin and reply pipe) forks a worker and answers its pid
    here; ``S<pid>`` answers how that worker ended (its exit code, negative for a signal), waiting up to
    STATUS_WAIT_S, or ``none``; ``W``, between two submissions of a class (every worker gone), empties the
    sandbox's writable places (``wipe``) and answers ``ok`` or ``left``. The grader moves each new worker
    into a cgroup of its own before its first request, and ends it with everything it started.

    ``fresh`` (on a machine with a GPU): each forked worker replaces itself with a new Python at once
    (``execv``), which imports torch on its own time, as a worker started directly does. Nothing of this
    process's torch may reach a worker there: once torch has asked the CUDA driver anything (an optimizer
    step does), a forked process cannot use CUDA ("Cannot re-initialize CUDA in forked subprocess"), and
    after one backward pass it cannot run autograd. Only the fork, its cgroup and its session are the zygote's.

    ``ready``: forked from a class's template (``template``), which imported, preloaded and warmed up already."""
    import socket
    import time

    control = socket.socket(fileno=control_fd)
    statuses: dict[int, int] = {}
    kept = skeleton() if sys.argv[0].startswith("/opt/grader-runtime/") else {}
    if not ready:
        if stubs and not fresh:
            preload()
        if warm and not fresh:
            drivers.warm_up()  # the grader's own tiny model: what every worker would otherwise import on its first step
        imported()
    _dumpable(False)  # a worker, of the same uid, cannot open this process's /proc/PID/mem and write into it

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            statuses[pid] = os.waitstatus_to_exitcode(status)
            while len(statuses) > MAX_STATUSES:
                statuses.pop(next(iter(statuses)))

    while True:
        message, fds, _, _ = socket.recv_fds(control, 64, 2)
        if not message:
            return  # the grader closed the channel: grading is over
        reap()
        if message == b"F" and len(fds) == 2:
            pid = os.fork()
            if pid == 0:
                try:
                    control.close()
                    os.setsid()  # a process group of its own, which the grader kills whole
                    os.dup2(fds[0], 0)
                    os.close(fds[0])
                    if fresh:  # a new Python, which warms up on its own where workers train
                        os.set_inheritable(fds[1], True)
                        script = os.path.abspath(sys.argv[0])
                        warm_up = ["--warm-up"] if warm else []
                        os.execv(sys.executable, [sys.executable, "-I", "-B", script, str(fds[1]), *warm_up])
                    sys.argv[1:] = [str(fds[1])]  # a worker like one started alone: ``worker.py RESPONSE_FD``
                    _dumpable(True)
                    serve(fds[1])
                finally:
                    os._exit(0)
            control.sendall(b"%d\n" % pid)
        elif message.startswith(b"S") and message[1:].isdigit():
            wanted, deadline = int(message[1:]), time.monotonic() + STATUS_WAIT_S
            while wanted not in statuses and time.monotonic() < deadline:
                time.sleep(0.01)
                reap()
            control.sendall(b"%d\n" % statuses[wanted] if wanted in statuses else b"none\n")
        elif message == b"W":
            reap()
            control.sendall(b"ok\n" if wipe(kept) else b"left\n")
        else:
            control.sendall(b"?\n")
        for fd in fds:
            os.close(fd)


def template(control_fd: int, warm: bool) -> None:
    """Behind the process wall, in a class's grading process: make every submission's zygote by forking this
    process, which imported torch, the drivers and what the exercises import once (and warmed up, with ``warm``).
    It runs as the grader's own uid, never runs a line of a submission, and answers only the grader, on the
    control socket (SOCK_SEQPACKET): ``Z`` and a JSON object of the steps (grader/sandbox/template.py), with the
    new zygote's control socket and, where the kernel has Landlock, its ruleset, forks a child that takes the
    steps on itself (``become_zygote``) and then serves as that submission's zygote; the answer is its pid. It
    reaps the zygotes the grader ends."""
    import json
    import signal
    import socket

    control = socket.socket(fileno=control_fd)
    preload()
    if warm:
        drivers.warm_up()
    imported()
    _dumpable(False)  # behind none, workers run as this uid: none can open its /proc/PID/mem and write into it

    def reap(*_: object) -> None:
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    return
            except ChildProcessError:
                return

    signal.signal(signal.SIGCHLD, reap)
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 16, 2)
        if not message:
            return  # the grader closed the channel: grading is over
        if message.startswith(b"Z") and len(fds) in (1, 2):
            pid = os.fork()
            if pid == 0:
                try:
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    control.close()
                    become_zygote(json.loads(message[1:]), fds[0], fds[1] if len(fds) == 2 else None)
                    zygote(fds[0], warm, ready=True)
                finally:
                    os._exit(0)
            control.sendall(b"%d\n" % pid)
        else:
            control.sendall(b"?\n")
        for fd in fds:
            os.close(fd)


def become_zygote(steps: dict[str, Any], control_fd: int, ruleset_fd: int | None) -> None:
    """In a child of the template, before it serves a submission: what ``spawn`` (grader/sandbox/processes.py) does
    to a new zygote between fork and exec, done here: a session of its own; no descriptor of the template's but
    /dev/null for stdin, stdout and stderr, ``control_fd`` and the ruleset's; the rlimits; the sandbox's folder
    and environment; then the process wall's steps (confinement.py). A step that fails raises: the child exits."""
    import resource
    import signal

    import confinement  # beside this file

    os.setsid()
    for name in os.listdir("/proc/self/fd"):
        if int(name) > 2 and int(name) not in (control_fd, ruleset_fd):
            try:
                os.close(int(name))
            except OSError:  # the listing's own descriptor, closed already
                pass
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    for name, value in steps["rlimits"]:
        resource.setrlimit(getattr(resource, name), (value, value))
    os.chdir(steps["cwd"])
    os.environ.clear()
    os.environ.update(steps["env"])
    program = bytes.fromhex(steps["seccomp"]) if steps["seccomp"] else b""
    buffer, fprog = confinement.seccomp_filter(program) if program else (None, None)
    confinement.take_steps(steps["uid"], ruleset_fd, fprog, signal.SIGKILL)
    del buffer  # (alive until the filter is loaded: fprog points into it)
    if ruleset_fd is not None:
        os.close(ruleset_fd)


def main() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    if sys.argv[1] == "--template":
        template(int(sys.argv[2]), warm="--warm-up" in sys.argv[3:])
    elif sys.argv[1] == "--zygote":
        flags = sys.argv[3:]
        zygote(int(sys.argv[2]), warm="--warm-up" in flags, fresh="--exec" in flags, stubs="--preload" in flags)
    else:
        if sys.argv[2:] == ["--warm-up"]:
            drivers.warm_up()
        imported()
        serve(int(sys.argv[1]))


if __name__ == "__main__":
    main()
