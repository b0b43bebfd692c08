"""The wire format is the trust boundary: what crosses it round-trips exactly, and nothing else crosses."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from grader.runtime import wire

DTYPES = sorted(wire.DTYPES)
arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(np.dtype(dtype), hnp.array_shapes(min_dims=0, max_dims=4, max_side=4))
)
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | arrays
    | arrays.map(torch.from_numpy)
)
values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray | torch.Tensor):
        x = a.numpy() if isinstance(a, torch.Tensor) else a
        y = b.numpy() if isinstance(b, torch.Tensor) else b
        return type(a) is type(b) and x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()  # type: ignore[union-attr]
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(values)
def test_values_round_trip_exactly(value: object) -> None:
    assert same(value, wire.loads(wire.dumps(value)))


@given(values)
def test_every_prefix_of_a_frame_is_refused_or_a_value_never_a_crash(value: object) -> None:
    frame = wire.dumps(value).rstrip(b"\n")
    for cut in sorted({1, len(frame) // 3, len(frame) // 2, len(frame) - 1}):
        if 0 < cut < len(frame):
            try:
                wire.loads(frame[:cut])
            except wire.WireError:
                pass


@pytest.mark.parametrize(
    "line",
    [
        b'{"__tuple__": 5}',
        b'{"__dict__": [1]}',
        b'{"__float__": "nope"}',
        b'{"__object__": "os.system"}',
        b'{"a": 1, "b": 2}',
        b'{"__array__": {"kind": "pickle", "dtype": "float64", "shape": [], "device": "cpu", "data": ""}}',
        b'{"__array__": {"kind": "numpy", "dtype": "object", "shape": [], "device": "cpu", "data": ""}}',
        b'{"__array__": {"kind": "numpy", "dtype": "float64", "shape": [-1], "device": "cpu", "data": ""}}',
        b'{"__array__": {"kind": "numpy", "dtype": "float64", "shape": [2], "device": "cpu", "data": "AAAA"}}',
        b'{"__array__": {"kind": "numpy", "dtype": "float64", "shape": [1], "device": "cpu"}}',
        b"\xff\xfe",
        b"",
    ],
)
def test_malformed_messages_are_refused(line: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.loads(line)


def test_what_cannot_cross_is_refused_by_name() -> None:
    with pytest.raises(wire.WireError, match="keys are not all strings"):
        wire.dumps({1: 2})
    with pytest.raises(wire.WireError, match="set"):
        wire.dumps({1, 2})
    with pytest.raises(wire.WireError, match="complex128"):
        wire.dumps(np.zeros(2, dtype=np.complex128))
    with pytest.raises(wire.WireError, match="limit"):
        wire.loads(b" " * (wire.MAX_MESSAGE_BYTES + 1))
