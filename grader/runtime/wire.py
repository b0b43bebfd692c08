"""The format between the grader and its workers: JSON with tagged arrays, and nothing that can execute.

Values are None, bools, ints, floats (nan and ±inf tagged, since JSON has neither),
strings, lists, string-keyed dicts, NumPy arrays and torch tensors. Arrays travel as
``{"__array__": {"kind": "numpy"|"torch", "dtype", "shape", "device", "data": base64}}``
of their raw little-endian bytes. Anything else a student's function returns is
refused with a ``WireError`` that says what it was: no pickle, no object
reconstruction, no ``__array__``/``__eq__`` of a student's class is ever called on
the grader's side. Decoding checks sizes against the declared shape.
"""

from __future__ import annotations

import base64
import json
import math
import re
import sys
from typing import Any

import numpy as np

# torch is imported by whoever has tensors: the wire never imports it to encode (a process that has not
# imported torch holds no tensor), and imports it to decode a tensor only where tensors are asked for.

DTYPES = {
    "bool",
    "uint8",
    "int8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
}
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # one reply; a student's 8 GB tensor is refused, not transmitted
MAX_DEPTH = 32  # nesting of lists and dicts in one message; the deepest real reply (a dict of tuples) is ~6
MAX_INT = 2**63  # magnitude of an int; the widest dtype on the wire is int64
MAX_INT_DIGITS = 19  # decimal digits of MAX_INT: longer ints are refused before Python converts them
MAX_NDIM = 32  # NumPy's own limit is 64; no graded value has more than 5 dimensions


class WireError(ValueError):
    """A value that cannot cross the wire (the wrong kind of object, or a malformed message)."""


def describe(value: object) -> str:
    """A short, safe description of an object's type, for feedback (never calls its methods)."""
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__


class Plain:
    """Inputs already in the wire's plain form (the public checks' stored inputs), forwarded by the grader as they
    are, so that it needs no torch to send tensors. Only a request is encoded with them (``forwarded``); a worker's
    reply that holds one is refused like any other object."""

    __slots__ = ("data",)

    def __init__(self, data: Any) -> None:
        self.data = data


def encode(value: Any, *, forwarded: bool = False) -> Any:
    """value as JSON-ready plain data, or WireError naming what could not be sent."""
    cls = type(value)
    if forwarded and cls is Plain:
        return value.data
    if value is None or cls is bool or cls is str:
        return value
    if cls is int:
        if abs(value) > MAX_INT:
            raise WireError(f"an int with {len(str(abs(value)))} digits (at most {MAX_INT_DIGITS} can be sent)")
        return value
    if cls is float:
        if math.isfinite(value):
            return value
        return {"__float__": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if cls in (list, tuple):
        items = [encode(v, forwarded=forwarded) for v in value]
        return {"__tuple__": items} if cls is tuple else items
    if cls is dict:
        if not all(type(k) is str for k in value):
            raise WireError("a dict whose keys are not all strings")
        return {"__dict__": {k: encode(v, forwarded=forwarded) for k, v in value.items()}}
    if isinstance(value, np.generic) and cls.__module__ == "numpy":
        return encode(np.asarray(value))
    if cls is np.ndarray:
        return _encode_array(value, "numpy", "cpu")
    torch = sys.modules.get("torch")
    if torch is not None and cls in (torch.Tensor, torch.nn.Parameter):
        tensor = value.detach()
        device = tensor.device.type
        return _encode_array(tensor.cpu().contiguous().numpy(), "torch", device)
    raise WireError(f"a value of type {describe(value)}")


def _encode_array(array: np.ndarray, kind: str, device: str) -> dict[str, Any]:
    dtype = array.dtype.name
    if dtype not in DTYPES:
        raise WireError(f"an array of dtype {dtype}")
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return {
        "__array__": {
            "kind": kind,
            "dtype": dtype,
            "shape": list(array.shape),
            "device": device,
            "data": base64.b64encode(data).decode("ascii"),
        }
    }


def decode(data: Any, *, tensors: bool = True) -> Any:
    """Plain data back to values.

    With ``tensors`` (the worker decoding its inputs) arrays come back as what they were,
    NumPy arrays or CPU torch tensors; without (the grader decoding a reply) every array
    comes back as an ``Array`` that records whether it was NumPy or torch and its device.
    """
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(v, tensors=tensors) for v in data]
    if type(data) is dict and len(data) == 1:
        ((tag, body),) = data.items()
        if tag == "__float__" and body in ("nan", "inf", "-inf"):
            return float(body)
        if tag == "__tuple__" and type(body) is list:
            return tuple(decode(v, tensors=tensors) for v in body)
        if tag == "__dict__" and type(body) is dict:
            return {str(k): decode(v, tensors=tensors) for k, v in body.items()}
        if tag == "__array__" and type(body) is dict:
            return decode_array(body, tensors=tensors)
    raise WireError(f"malformed message part: {str(data)[:80]}")


class Array:
    """A decoded array with where it came from: NumPy or torch, and the torch device."""

    __slots__ = ("array", "device", "kind")

    def __init__(self, array: np.ndarray, kind: str, device: str) -> None:
        self.array, self.kind, self.device = array, kind, device

    def __repr__(self) -> str:
        return f"Array({self.kind}, {self.array.dtype}, shape={self.array.shape}, device={self.device})"


def decode_array(body: dict[str, Any], *, tensors: bool = True) -> Any:
    try:
        kind, dtype, shape, device, payload = (body[k] for k in ("kind", "dtype", "shape", "device", "data"))
    except KeyError as err:
        raise WireError(f"array without {err}") from err
    if kind not in ("numpy", "torch") or dtype not in DTYPES or type(shape) is not list:
        raise WireError("array header is malformed")
    if len(shape) > MAX_NDIM or not all(type(n) is int and 0 <= n < MAX_INT for n in shape):
        raise WireError("array header is malformed")
    if type(device) is not str or len(device) > 32 or type(payload) is not str:
        raise WireError("array header is malformed")
    try:
        raw = base64.b64decode(payload.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as err:
        raise WireError("array data is not base64") from err
    np_dtype = np.dtype(dtype).newbyteorder("<")
    count = math.prod(shape)
    if count * np_dtype.itemsize > MAX_MESSAGE_BYTES or len(raw) != count * np_dtype.itemsize:
        raise WireError(f"array of shape {shape} and dtype {dtype} carries {len(raw)} bytes")
    array = np.frombuffer(raw, dtype=np_dtype).reshape(shape).astype(np.dtype(dtype), copy=True)
    if not tensors:
        return Array(array, kind, device)
    if kind == "torch":
        try:
            import torch
        except ImportError:  # pragma: no cover  (the worker always has torch)
            return array
        return torch.from_numpy(array)
    return array


def dumps(value: Any, *, forwarded: bool = False) -> bytes:
    """One message: ``forwarded`` for a request of the grader's, which may hold ``Plain`` inputs."""
    return json.dumps(encode(value, forwarded=forwarded), allow_nan=False, separators=(",", ":")).encode() + b"\n"


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS or abs(value := int(text)) > MAX_INT:
        raise WireError(f"an int of {len(text.lstrip('-'))} digits")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999: infinities travel tagged, never as overflowing literals
        raise WireError(f"a float literal that overflows ({text[:40]})")
    return value


def _refuse_constant(name: str) -> None:
    raise WireError(f"a bare {name} (non-finite floats travel tagged)")


_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_refuse_constant)
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string literal, escapes included
_OPEN = np.zeros(256, dtype=np.int8)
_OPEN[[ord("["), ord("{")]] = 1
_OPEN[[ord("]"), ord("}")]] = -1


def depth(line: bytes) -> int:
    """How deeply the JSON text nests lists and dicts, counted without parsing it (and so without recursion)."""
    skeleton = np.frombuffer(_STRING.sub(b"", line), dtype=np.uint8)
    deepest = level = 0
    for start in range(0, len(skeleton), 1 << 22):  # in chunks, so that the running sum stays small
        levels = level + np.cumsum(_OPEN[skeleton[start : start + (1 << 22)]], dtype=np.int32)
        deepest, level = max(deepest, int(levels.max())), int(levels[-1])
    return deepest


def loads(line: bytes, *, tensors: bool = True) -> Any:
    """One message, parsed with bounded size, nesting and number magnitude: a WireError, never a crash."""
    return decode(parse(line), tensors=tensors)


def parse(line: bytes) -> Any:
    """One message's plain data, before ``decode``: bounded as ``loads`` says."""
    if len(line) > MAX_MESSAGE_BYTES:
        raise WireError(f"a message of {len(line)} bytes (the limit is {MAX_MESSAGE_BYTES})")
    if (nesting := depth(line)) > MAX_DEPTH:
        raise WireError(f"a message nested {nesting} levels deep (at most {MAX_DEPTH})")
    try:
        data = _DECODER.decode(line.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise WireError(f"not JSON: {str(err)[:200]}") from err
    except ValueError as err:  # int digits over Python's own limit, and the refusals above
        raise WireError(str(err)[:200]) from err
    return data
