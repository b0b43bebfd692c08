"""Tolerant comparison of a student's output with the reference's, and the words of the feedback.

Both sides arrive as wire data (``wire.Array`` for arrays), so nothing a student
returned is ever called: only its type name, shape, dtype and numbers are read.

Tolerances. A correct float64 implementation that uses another but equivalent
formula (log(σ₂/σ₁) vs log σ₂ - log σ₁, xlogy vs a mask, a loop vs a sum) agrees with
the reference to ~1e-13 relative; a correct float32 one to ~1e-6 on a single
operation and ~1e-5 after sums of a few hundred terms. Every wrong formula in the
catalogue misses by more than 1e-3 relative on the graded inputs. Hence:
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.runtime.wire import Array

FLOAT64 = (1e-7, 1e-9)  # (rtol, atol): float64 answers; 1e-7 leaves room for summation order and cancellation
FLOAT32 = (1e-4, 1e-5)  # float32 answers: eps 1.2e-7 times a few hundred accumulated terms, with margin
SCHEDULE = (2e-4, 2e-5)  # DDPM with a float32 schedule: ᾱ_t over 1000 products is off by ~6e-5 relative
AMPLIFIED = (2e-4, 1e-3)  # divided by √ᾱ_t ≈ 6e-3 at t = T-1 (x̂_0, the reverse mean): float32 error grows ~160x
EMBEDDING = (0.0, 2e-4)  # sin/cos of float32 arguments t·ω with t up to 1e3 carry ~6e-5 absolute


@dataclass(frozen=True)
class Mismatch:
    """Why a received value is wrong, in words for a student."""

    what: str  # "value", "shape", "type", ... and where in the output ("[1]", "['d_loss']")
    message: str


def short(value: Any, limit: int = 160) -> str:
    """A compact, deterministic rendering of plain data or an Array, for feedback."""
    if isinstance(value, Array):
        arr = value.array
        body = np.array2string(arr, precision=6, threshold=12, edgeitems=3, separator=", ").replace("\n", "")
        prefix = "tensor" if value.kind == "torch" else "array"
        text = f"{prefix}({body}, dtype={arr.dtype}, shape={tuple(arr.shape)})"
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {short(v, limit)}" for k, v in value.items()) + "}"
    elif isinstance(value, tuple | list):
        inner = ", ".join(short(v, limit) for v in value)
        text = f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


def _numbers(value: Any) -> np.ndarray | None:
    """float64 array of a number or Array, or None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return np.asarray(float(value))
    if isinstance(value, Array) and value.array.dtype.kind in "fiu":
        return value.array.astype(np.float64)
    return None


def compare(
    expected: Any, received: Any, tol: tuple[float, float], path: str = "", dtypes: bool = True
) -> Mismatch | None:
    """None when ``received`` matches ``expected`` within (rtol, atol), else the first Mismatch.

    With ``dtypes=False`` a torch leaf's dtype and device are not compared, only its numbers: how a
    catalogued mistake, computed in float64, is matched with a float32 answer."""
    where = f"the result{path}"
    if isinstance(expected, dict):
        if not isinstance(received, dict):
            return Mismatch("type", f"{where} should be a dict with keys {sorted(expected)}, got {type_name(received)}")
        missing = sorted(set(expected) - set(received))
        if missing:
            return Mismatch("keys", f"{where} is missing the key(s) {missing}")
        for key in expected:
            found = compare(expected[key], received[key], tol, f"{path}[{key!r}]", dtypes)
            if found:
                return found
        return None
    if isinstance(expected, tuple | list):
        if not isinstance(received, tuple | list) or len(received) != len(expected):
            return Mismatch("type", f"{where} should be a tuple of {len(expected)} values, got {type_name(received)}")
        for i, (e, r) in enumerate(zip(expected, received, strict=True)):
            found = compare(e, r, tol, f"{path}[{i}]", dtypes)
            if found:
                return found
        return None
    return _compare_leaf(expected, received, tol, where, dtypes)


def type_name(value: Any) -> str:
    if isinstance(value, Array):
        return f"a {'torch tensor' if value.kind == 'torch' else 'NumPy array'} of shape {tuple(value.array.shape)}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} values"
    return "None" if value is None else f"a {type(value).__name__}"


def _compare_leaf(
    expected: Any, received: Any, tol: tuple[float, float], where: str, dtypes: bool = True
) -> Mismatch | None:
    if isinstance(expected, Array) and expected.kind == "torch":
        if not (isinstance(received, Array) and received.kind == "torch"):
            return Mismatch("type", f"{where} should be a torch.Tensor, got {type_name(received)}")
        if dtypes and received.device != expected.device:
            return Mismatch("device", f"{where} is on {received.device}, expected {expected.device} like the input")
        required = getattr(expected, "required_dtype", expected.array.dtype)
        if dtypes and received.array.dtype != required:
            return Mismatch(
                "dtype", f"{where} has dtype {received.array.dtype}, expected {required} (keep the input's dtype)"
            )
    e, r = _numbers(expected), _numbers(received)
    if e is None:
        raise TypeError(f"the reference produced a non-numeric leaf at {where}")
    if r is None:
        return Mismatch("type", f"{where} should be a number or an array of numbers, got {type_name(received)}")
    if e.shape != r.shape:
        return Mismatch("shape", f"{where} has shape {tuple(r.shape)}, expected {tuple(e.shape)}")
    rtol, atol = tol
    e_nan, r_nan = np.isnan(e), np.isnan(r)
    if (r_nan & ~e_nan).any():
        return Mismatch("nan", f"{where} contains nan, expected {short(expected)}")
    if (e_nan & ~r_nan).any():  # a non-finite expected value is matched exactly: nan only by nan
        return Mismatch(
            "nan", f"{where} is {short(received)}, expected {short(expected)} (nan where the math is undefined)"
        )
    same_inf = np.isinf(e) == np.isinf(r)
    if not same_inf.all() or (np.sign(e[np.isinf(e)]) != np.sign(r[np.isinf(e)])).any():
        return Mismatch(
            "value", f"{where} is {short(received)}, expected {short(expected)} (check where it is infinite)"
        )
    finite = np.isfinite(e)
    diff = np.abs(r[finite] - e[finite])
    bound = atol + rtol * np.abs(e[finite])
    if (diff > bound).any():
        worst = int(np.argmax(diff - bound))
        return Mismatch(
            "value",
            f"{where} is {short(received)}, expected {short(expected)} "
            f"(largest difference {diff.flat[worst]:.3g}; allowed {bound.flat[worst]:.3g})",
        )
    return None


def describe_error(error: dict[str, Any]) -> str:
    """'raised T: message (file.py, line N: code)' for an error a worker reported."""
    where = f" ({error['where']})" if error.get("where") else ""
    return f"raised {error.get('type', 'an exception')}: {error.get('message', '')}{where}"


def not_implemented(error: dict[str, Any]) -> bool:
    """The student's own code raised NotImplementedError: the stub is not filled in yet. One raised by the
    worker's machinery (sending a meta-device tensor, say) is an error of the submission, not a gap."""
    return error.get("type") == "NotImplementedError" and error.get("kind") == "raised"


NAMES_A_MISTAKE = "known mistake"  # in every line that names one (grader/authoring/audit.py looks for it)


def mistake_line(explanations: list[str]) -> str | None:
    """The feedback line naming the catalogued mistake(s) that explain a failure, or None. The grader and the
    public checks word it alike."""
    if not explanations:
        return None
    if len(explanations) == 1:
        return f"This matches a {NAMES_A_MISTAKE}: {explanations[0]}"
    listed = " Or: ".join(explanations)
    return f"This matches one of {len(explanations)} {NAMES_A_MISTAKE}s that no graded input tells apart: {listed}"


class Expected(Array):
    """A reference array whose values are float64 but whose dtype must be that of the student's inputs."""

    __slots__ = ("required_dtype",)

    def __init__(self, array: np.ndarray, kind: str, device: str, required_dtype: np.dtype) -> None:
        super().__init__(array, kind, device)
        self.required_dtype = required_dtype


def with_required_dtypes(values: Any, meta: Any) -> Any:
    """``values`` (from float64 inputs) with each torch leaf's dtype taken from ``meta`` (the real inputs)."""
    if isinstance(values, dict) and isinstance(meta, dict):
        return {k: with_required_dtypes(v, meta.get(k)) for k, v in values.items()}
    if isinstance(values, tuple | list) and isinstance(meta, tuple | list) and len(values) == len(meta):
        return type(values)(with_required_dtypes(v, m) for v, m in zip(values, meta, strict=True))
    if isinstance(values, Array) and isinstance(meta, Array) and values.kind == "torch":
        return Expected(values.array, values.kind, values.device, meta.array.dtype)
    return values
