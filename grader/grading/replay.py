"""The cases an item's check runs on a right answer, kept, so that they need not be drawn and computed again.

An item's check is a derandomized Hypothesis run with a fixed seed (grader/grading/run.py). While
the answers are right, what it runs depends on nothing the student's code does: the same explicit
examples, then the same drawn cases, in the same order, every time. So when an item passes, the
grader keeps that sequence, each case with the reference's expected value, and grades the next
submission's item by replaying it: the same requests to the worker, compared with the kept values,
without Hypothesis's engine or the reference. Where the replay meets a wrong answer it stops, and
the item is graded by the full Hypothesis run as it always was: the same verdict, the same shrunk
case and the same words (tests/test_replay.py compares them over the corpus). Where the worker
dies or the function is not written yet (a Stop), the replay's outcome is the full run's: every
case before passed, and the full run stops at that case too.

A record is kept only for the check registered for its item (not a test's variant of it), and only
when every case survives the file's format unchanged. It is keyed by everything it depends on: the
grader's version and the checksum of its sources and of reference/ (strategies, checks, reference,
drivers and comparison are all in them), the item's seed, and the versions of Hypothesis, NumPy,
torch and Python and the machine's architecture; a record whose key differs is never read, and
the next pass writes it anew. Records live in the grader's cache folder (``folder``), which only the
grader's user can enter: bubblewrap does not show it to a worker, and behind the process wall
workers run as other uids. Each is one JSON file of the wire format, read with its bounds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis
import numpy as np
import torch

import grader
from grader.checks import Case
from grader.contract import PARTS
from grader.grading.compare import Expected
from grader.runtime import wire
from grader.sandbox.scratch import own_folder

ROOTS = ("grader", "reference")  # the sources a record depends on, under the project's root
MAX_RECORD_BYTES = wire.MAX_MESSAGE_BYTES  # a record larger than one message of the wire is not kept


@dataclass(frozen=True)
class Step:
    """One case of a record and the reference's expected value for it (in a worker reply's form)."""

    case: Case
    expected: Any


def enabled() -> bool:
    """Replay is on unless ``GRADER_CACHE_DIR=off``."""
    return os.environ.get("GRADER_CACHE_DIR", "").strip() != "off"


def folder() -> Path | None:
    """The folder of records: ``$GRADER_CACHE_DIR``, else ``$XDG_CACHE_HOME/genmath-grader/replay`` (by default
    ``~/.cache/...``); created 0700, and refused (None: records are kept in this process only) if it is not a
    folder of this user that only this user can enter."""
    chosen = os.environ.get("GRADER_CACHE_DIR", "").strip()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genmath-grader"
    return own_folder(Path(chosen) if chosen else base / "replay", parents=True)


@cache
def sources_digest() -> str:
    """sha256 of every .py file of grader/ and reference/ (paths and bytes), in a fixed order."""
    root = Path(grader.__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for top in ROOTS:
        for path in sorted((root / top).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def key(item: str, seed: int) -> dict[str, Any]:
    return {
        "item": item,
        "seed": seed,
        "grader": grader.__version__,
        "sources": sources_digest(),
        "hypothesis": hypothesis.__version__,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }


# ------------------------------------------------------------------------------------------ the file format


def _encode(value: Any) -> Any:
    """A case's inputs (arrays and tensors) or an expected value (``wire.Array``s, ``compare.Expected``s) as the
    wire's plain data, with one more tag: ``__expected__``, an array and the dtype the student's must have."""
    if isinstance(value, Expected):
        body = _encode(wire.Array(value.array, value.kind, value.device))["__array__"]
        return {"__expected__": {**body, "required_dtype": value.required_dtype.name}}
    if isinstance(value, wire.Array):
        return {"__array__": {**wire.encode(value.array)["__array__"], "kind": value.kind, "device": value.device}}
    if type(value) is dict:
        return {"__dict__": {k: _encode(v) for k, v in value.items()}}
    if type(value) is tuple:
        return {"__tuple__": [_encode(v) for v in value]}
    if type(value) is list:
        return [_encode(v) for v in value]
    return wire.encode(value)


def _decode_expected(data: Any) -> Any:
    """An expected value back from ``_encode``'s plain data."""
    if type(data) is dict and len(data) == 1:
        ((tag, body),) = data.items()
        if tag == "__expected__" and type(body) is dict:
            required = body.get("required_dtype")
            if required not in wire.DTYPES:
                raise wire.WireError("an expected array's dtype is malformed")
            array = wire.decode_array({k: v for k, v in body.items() if k != "required_dtype"}, tensors=False)
            return Expected(array.array, array.kind, array.device, np.dtype(required))
        if tag == "__dict__" and type(body) is dict:
            return {str(k): _decode_expected(v) for k, v in body.items()}
        if tag == "__tuple__" and type(body) is list:
            return tuple(_decode_expected(v) for v in body)
    if type(data) is list:
        return [_decode_expected(v) for v in data]
    return wire.decode(data, tensors=False)


def same(a: Any, b: Any) -> bool:
    """Whether ``b`` is ``a`` as the grader sees it: the same types all the way down, arrays of the same dtype,
    shape, bytes (and kind and device, for a ``wire.Array``)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Expected) and a.required_dtype != b.required_dtype:
        return False
    if isinstance(a, wire.Array):
        return (a.kind, a.device) == (b.kind, b.device) and same(a.array, b.array)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, torch.Tensor):
        meta = (a.dtype, a.device, a.requires_grad, tuple(a.shape))
        values = a.detach().cpu().numpy(), b.detach().cpu().numpy()
        return meta == (b.dtype, b.device, b.requires_grad, tuple(b.shape)) and same(*values)
    if isinstance(a, float):
        return a == b or (a != a and b != b)
    return bool(a == b)


def _step_data(step: Step) -> dict[str, Any]:
    case = step.case
    return {
        "inputs": _encode(case.inputs),
        "shown": case.shown,
        "tol": _encode(tuple(case.tol)),
        "reference_inputs": None if case.reference_inputs is None else _encode(case.reference_inputs),
        "expected": _encode(step.expected),
    }


def _step_from(data: Any) -> Step:
    if type(data) is not dict or set(data) != {"inputs", "shown", "tol", "reference_inputs", "expected"}:
        raise wire.WireError("a step of a record is malformed")
    inputs = wire.decode(data["inputs"])
    tol = wire.decode(data["tol"])
    reference_inputs = None if data["reference_inputs"] is None else wire.decode(data["reference_inputs"])
    if type(inputs) is not dict or type(data["shown"]) is not str or type(tol) is not tuple or len(tol) != 2:
        raise wire.WireError("a step of a record is malformed")
    if reference_inputs is not None and type(reference_inputs) is not dict:
        raise wire.WireError("a step of a record is malformed")
    case = Case(inputs, data["shown"], tol, reference_inputs)
    return Step(case, _decode_expected(data["expected"]))


# ------------------------------------------------------------------------------------------ reading, writing


_KEPT: dict[str, tuple[dict[str, Any], list[Step]]] = {}  # item → (key, steps): read once per process


def load(item: str, seed: int) -> list[Step] | None:
    """The record of ``item``, if one is kept under the current key; None otherwise (or if it cannot be read)."""
    if not enabled():
        return None
    wanted = key(item, seed)
    kept = _KEPT.get(item)
    if kept is not None and kept[0] == wanted:
        return kept[1]
    where = folder()
    if where is None:
        return None
    path = where / f"{item}.json"
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            return None
        data = wire.parse(raw)
        if type(data) is not dict or data.get("key") != wanted or type(data.get("steps")) is not list:
            return None
        steps = [_step_from(s) for s in data["steps"]]
    except (OSError, ValueError):  # wire.WireError is a ValueError
        return None
    _KEPT[item] = (wanted, steps)
    return steps


def keep(item: str, seed: int, steps: Iterable[Step]) -> bool:
    """Write the record of ``item``, unless a case does not survive the file's format unchanged (then nothing is
    kept, and the item is always drawn). Written whole or not at all; True if kept."""
    if not enabled():
        return False
    steps = list(steps)
    wanted = key(item, seed)
    data = {"key": wanted, "steps": [_step_data(s) for s in steps]}
    raw = json.dumps(data, allow_nan=False, separators=(",", ":")).encode()
    if len(raw) > MAX_RECORD_BYTES:
        return False
    back = [_step_from(s) for s in wire.parse(raw)["steps"]]
    for original, copy in zip(steps, back, strict=True):
        case, again = original.case, copy.case
        if not (
            same(case.inputs, again.inputs)
            and case.shown == again.shown
            and same(tuple(case.tol), again.tol)
            and same(case.reference_inputs, again.reference_inputs)
            and same(original.expected, copy.expected)
        ):
            return False
    _KEPT[item] = (wanted, back)
    where = folder()
    if where is None:
        return True
    try:
        with tempfile.NamedTemporaryFile(dir=where, prefix=f".{item}.", delete=False) as f:
            f.write(raw)
        os.replace(f.name, where / f"{item}.json")
    except OSError:
        with contextlib.suppress(OSError, NameError):
            os.unlink(f.name)
        return False
    return True


def on_disk(item: str, seed: int) -> bool:
    """Whether the record of ``item`` under the current key is in the folder, not only in this process."""
    _KEPT.pop(item, None)
    return load(item, seed) is not None


# ------------------------------------------------------------------------------------------ kept in advance


def reference_submission(into: Path) -> Path:
    """The reference laid out as a student's submission in the new folder ``into``: its five modules at the top, as
    a student's are, and the package they import from (reference/) beside them. Graded behind a wall it passes
    every item, and a passing run keeps the same cases, byte for byte, as the solutions' does (tests/test_replay.py):
    ``python -m grader keep-cases`` keeps them so, where an image is built once and each submission is graded in a
    fresh container of it (Gradescope, PrairieLearn), without shipping solutions/."""
    import reference

    package = Path(reference.__file__).resolve().parent
    (into / "reference").mkdir(parents=True)
    for part in PARTS:
        shutil.copyfile(package / f"{part}.py", into / f"{part}.py")
    for source in sorted(package.glob("*.py")):
        shutil.copyfile(source, into / "reference" / source.name)
    return into
