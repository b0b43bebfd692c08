"""The channel between the grader and a worker: one request a line, one reply a line, read with suspicion.

Each request carries a sequence number that its reply must echo, so a line a submission writes to
the reply pipe itself cannot pass for a later answer. A reply is read within its time limit, in
bounded chunks, while the worker's memory is watched (without a cgroup) and its death noticed;
it must parse (grader/runtime/wire.py), have the form of an answer or an error, and every string
in it is cleaned (grader/intake/untrusted.py). Anything else ends the worker with ``WorkerDied``.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable
from typing import Any, ClassVar

from grader.intake.untrusted import clean
from grader.runtime import wire
from grader.sandbox.processes import Process, how_it_ended

MEMORY_POLL_S = 0.05


class WorkerDied(RuntimeError):
    """The worker did not answer: ``kind`` is "timeout", "memory" or "crash"."""

    LIMITS: ClassVar[dict[str, str]] = {
        "timeout": "time",
        "memory": "memory",
    }  # kind → the limit of the sandbox the worker ended at

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def limit(self) -> str | None:
        return self.LIMITS.get(self.kind)


def request(
    worker: Process,
    request: dict[str, Any],
    timeout: float,
    end: Callable[[], None],
    memory_mb: int,
    code: bool = False,
) -> dict[str, Any]:
    """One request to ``worker`` and its reply, read with suspicion; ``end`` ends the worker when it fails;
    ``code``: the answer is a module's source (the converter's), kept whole for a worker to run."""
    assert worker.requests is not None
    worker.sequence += 1
    try:
        worker.requests.write(wire.dumps({**request, "seq": worker.sequence}, forwarded=True))
        worker.requests.flush()
    except (BrokenPipeError, OSError):
        end()
        raise WorkerDied("crash", "the worker process had exited") from None
    deadline = time.monotonic() + timeout
    while True:
        line = read_line(worker, deadline, timeout, end, memory_mb)
        try:
            reply = wire.loads(line, tensors=False)
            sequence = reply.pop("seq", None) if isinstance(reply, dict) else None
            if type(sequence) is int and sequence < worker.sequence:
                continue  # the late answer to an earlier request, after a line the submission wrote itself
            if sequence != worker.sequence:
                raise wire.WireError("a reply to a request that was never sent")
            return checked_reply(reply, code)
        except wire.WireError as err:  # a submission that writes to the worker's channel can send anything
            end()
            raise WorkerDied(
                "crash", f"it sent the grader a reply that cannot be read ({clean(str(err), 200)})"
            ) from None


def read_line(worker: Process, deadline: float, timeout: float, end: Callable[[], None], memory_mb: int) -> bytes:
    """The next line from the worker, watching the time, its memory and its death."""
    end_of_line = worker.buffer.find(b"\n")
    while end_of_line < 0:
        left = deadline - time.monotonic()
        if left <= 0:
            end()
            raise WorkerDied("timeout", f"no answer within {timeout:g} s")
        ready, _, _ = select.select([worker.reply_fd], [], [], min(left, MEMORY_POLL_S))
        if not ready:
            if worker.cgroup is None and worker.memory_mb() > memory_mb:
                end()
                raise WorkerDied("memory", f"used more than {memory_mb} MB of memory")
            continue
        chunk = os.read(worker.reply_fd, 1 << 20)
        if not chunk:
            status = worker.exit_code(5.0)
            oom = worker.cgroup is not None and worker.cgroup.oom_kills() > 0
            end()
            if oom:
                raise WorkerDied("memory", f"used more than {memory_mb} MB of memory")
            raise WorkerDied("crash", f"the worker process {how_it_ended(status)}")
        newline = chunk.find(b"\n")  # only the new bytes are searched: a 64 MB line costs linear time
        if newline >= 0:
            end_of_line = len(worker.buffer) + newline
        worker.buffer += chunk  # a bytearray grows in place
        if len(worker.buffer) > wire.MAX_MESSAGE_BYTES:
            end()
            raise WorkerDied("crash", "its reply was larger than the grader accepts")
    line = bytes(worker.buffer[:end_of_line])
    del worker.buffer[: end_of_line + 1]
    return line


ERROR_FIELDS = ("kind", "type", "message", "where")


def checked_reply(reply: Any, code: bool = False) -> dict[str, Any]:
    """A reply of the form the grader expects, every string in it cleaned; WireError for anything else.

    ``{"ok": value}`` (with ``"notes"``: a list of strings, after an import) or ``{"error": {"kind",
    "type", "message", "where"}}`` with strings (``where`` may be None). With ``code`` the answer must
    be a string, the source of a module, which is kept whole: it is never shown, only run by a worker."""
    if not isinstance(reply, dict) or len({"ok", "error"} & set(reply)) != 1:
        raise wire.WireError("a reply that is neither an answer nor an error")
    if "error" in reply:
        error = reply["error"]
        if not isinstance(error, dict) or not all(isinstance(error.get(k), str) for k in ERROR_FIELDS[:3]):
            raise wire.WireError("an error report of the wrong form")
        if error.get("where") is not None and not isinstance(error["where"], str):
            raise wire.WireError("an error report of the wrong form")
        return {"error": clean({k: error.get(k) for k in ERROR_FIELDS})}
    if code:
        if not isinstance(reply["ok"], str):
            raise wire.WireError("a module that is not text")
        return {"ok": reply["ok"]}
    notes = reply.get("notes")
    if notes is not None and not (isinstance(notes, list) and all(isinstance(n, str) for n in notes)):
        raise wire.WireError("notes of the wrong form")
    return clean({k: v for k, v in reply.items() if k in ("ok", "notes")})
