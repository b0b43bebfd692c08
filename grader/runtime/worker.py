"""The worker: the only process that runs a student's code.

    python worker.py RESPONSE_FD

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

import drivers  # noqa: E402  (beside this file in the worker's runtime folder)
import wire  # noqa: E402

MAX_MESSAGE_CHARS = 600  # of an exception's text in feedback
MAX_NOTES = 5  # notebook cells that raised, reported with a part's failing items
CELL_ERRORS = "__grader_cell_errors__"  # as grader/submission.py names it


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


def main() -> None:
    reply_fd = int(sys.argv[1])
    reply = os.fdopen(reply_fd, "wb", buffering=0)
    requests = sys.stdin.buffer
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
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


if __name__ == "__main__":
    main()
