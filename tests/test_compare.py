"""The comparison is the other half of the trust boundary: a table of what matches and what does not, and why."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from grader.grading import compare as cmp
from grader.runtime.wire import Array


def torch_array(values: Any, dtype: str = "float64", device: str = "cpu") -> Array:
    return Array(np.asarray(values, dtype=dtype), "torch", device)


def numpy_array(values: Any, dtype: str = "float64") -> Array:
    return Array(np.asarray(values, dtype=dtype), "numpy", "cpu")


CASES = [
    # (expected, received, tolerance, None when it matches else the kind of mismatch)
    (0.5, 0.5, cmp.FLOAT64, None),
    (0.5, 0.5 + 1e-12, cmp.FLOAT64, None),
    (0.5, 0.5 + 1e-6, cmp.FLOAT64, "value"),
    (0.5, 0.5 + 1e-6, cmp.FLOAT32, None),
    (0.5, 1, cmp.FLOAT64, "value"),
    (1.0, 1, cmp.FLOAT64, None),  # an int is a number
    (1.0, True, cmp.FLOAT64, "type"),  # a bool is not
    (1.0, "1.0", cmp.FLOAT64, "type"),
    (1.0, None, cmp.FLOAT64, "type"),
    (1.0, numpy_array(1.0), cmp.FLOAT64, None),  # a 0-d array is a number
    (torch_array([1.0, 2.0]), torch_array([1.0, 2.0]), cmp.FLOAT64, None),
    (torch_array([1.0, 2.0]), numpy_array([1.0, 2.0]), cmp.FLOAT64, "type"),
    (torch_array([1.0, 2.0]), torch_array([1.0, 2.0], "float32"), cmp.FLOAT64, "dtype"),
    (torch_array([1.0, 2.0]), torch_array([1.0, 2.0], device="cuda"), cmp.FLOAT64, "device"),
    (torch_array([1.0, 2.0]), torch_array([[1.0, 2.0]]), cmp.FLOAT64, "shape"),
    (torch_array([1.0, 2.0]), torch_array([1.0]), cmp.FLOAT64, "shape"),
    (torch_array([1.0, 2.0]), torch_array([True, False], "bool"), cmp.FLOAT64, "dtype"),
    (numpy_array([1.0, 2.0]), numpy_array([1, 2], "int64"), cmp.FLOAT64, None),
    ((1.0, 2.0), (1.0, 2.0), cmp.FLOAT64, None),
    ((1.0, 2.0), [1.0, 2.0], cmp.FLOAT64, None),
    ((1.0, 2.0), (1.0,), cmp.FLOAT64, "type"),
    ((1.0, 2.0), (1.0, 2.5), cmp.FLOAT64, "value"),
    ({"a": 1.0, "b": (2.0,)}, {"a": 1.0, "b": (2.0,)}, cmp.FLOAT64, None),
    ({"a": 1.0, "b": (2.0,)}, {"a": 1.0, "b": (2.0,), "extra": "x"}, cmp.FLOAT64, None),
    ({"a": 1.0, "b": (2.0,)}, {"a": 1.0}, cmp.FLOAT64, "keys"),
    ({"a": 1.0, "b": (2.0,)}, {"a": 1.0, "b": (3.0,)}, cmp.FLOAT64, "value"),
    ({"a": 1.0}, [1.0], cmp.FLOAT64, "type"),
    (np.inf, 1e308, cmp.FLOAT64, "value"),
    (1.0, np.inf, cmp.FLOAT64, "value"),
    (1.0, np.nan, cmp.FLOAT64, "nan"),
    # non-finite values are matched exactly, element by element
    (np.inf, np.inf, cmp.FLOAT64, None),
    (-np.inf, -np.inf, cmp.FLOAT64, None),
    (np.inf, -np.inf, cmp.FLOAT64, "value"),
    (-np.inf, np.inf, cmp.FLOAT64, "value"),
    (np.nan, np.nan, cmp.FLOAT64, None),
    (np.nan, 0.0, cmp.FLOAT64, "nan"),
    (np.nan, np.inf, cmp.FLOAT64, "nan"),
    (np.inf, np.nan, cmp.FLOAT64, "nan"),
    (torch_array([1.0, np.inf, np.nan]), torch_array([1.0, np.inf, np.nan]), cmp.FLOAT64, None),
    (torch_array([1.0, np.inf, np.nan]), torch_array([1.0, np.nan, np.inf]), cmp.FLOAT64, "nan"),
    (torch_array([1.0, np.inf]), torch_array([np.inf, np.inf]), cmp.FLOAT64, "value"),
    (torch_array([1.0, -np.inf]), torch_array([1.0, np.inf]), cmp.FLOAT64, "value"),
    # nested results: the first wrong leaf, wherever it is
    (
        {"result": {"d_loss": 1.0}, "params": {"w": torch_array([1.0, 2.0])}},
        {"result": {"d_loss": 1.0}, "params": {"w": torch_array([1.0, 2.0], "float32")}},
        cmp.FLOAT64,
        "dtype",
    ),
    (
        {"encode": (torch_array([1.0]), torch_array([2.0])), "decode": torch_array([[0.5]])},
        {"encode": (torch_array([1.0]), torch_array([2.0])), "decode": torch_array([0.5])},
        cmp.FLOAT64,
        "shape",
    ),
    ((torch_array([1.0]), (2.0, {"x": 3.0})), (torch_array([1.0]), (2.0, {"x": 3.5})), cmp.FLOAT64, "value"),
    ((torch_array([1.0]), (2.0, {"x": 3.0})), (torch_array([1.0]), (2.0, {})), cmp.FLOAT64, "keys"),
    ({"value": 1.0, "grad": torch_array([1.0])}, {"value": 1.0, "grad": None}, cmp.FLOAT64, "type"),
    # shapes: no broadcasting, not even of a 1-element array against a 0-d one
    (torch_array(1.0), torch_array([1.0]), cmp.FLOAT64, "shape"),
    (torch_array([[1.0], [2.0]]), torch_array([1.0, 2.0]), cmp.FLOAT64, "shape"),
    (torch_array([]), torch_array([]), cmp.FLOAT64, None),
]

# How the diagnosis matches a catalogued mistake (computed in float64) with an answer: numbers only.
VALUES_ONLY = [
    (torch_array([1.0, 2.0]), torch_array([1.0, 2.0], "float32"), None),
    (torch_array([1.0, 2.0]), torch_array([1.0, 2.0], device="cuda"), None),
    (torch_array([1.0, 2.0]), torch_array([1.0, 2.5], "float32"), "value"),
    (torch_array([1.0, 2.0]), numpy_array([1.0, 2.0]), "type"),
    (torch_array([1.0, 2.0]), torch_array([[1.0, 2.0]], "float32"), "shape"),
    (torch_array([np.inf]), torch_array([np.inf], "float32"), None),
]


@pytest.mark.parametrize(("expected", "received", "tol", "kind"), CASES)
def test_the_comparison_table(expected: Any, received: Any, tol: tuple[float, float], kind: str | None) -> None:
    found = cmp.compare(expected, received, tol)
    assert (found.what if found else None) == kind, found


@pytest.mark.parametrize(("expected", "received", "kind"), VALUES_ONLY)
def test_the_comparison_without_dtypes(expected: Any, received: Any, kind: str | None) -> None:
    found = cmp.compare(expected, received, cmp.FLOAT32, dtypes=False)
    assert (found.what if found else None) == kind, found


def test_a_mismatch_names_where_and_both_values() -> None:
    found = cmp.compare({"d_loss": (1.0, 2.0)}, {"d_loss": (1.0, 2.5)}, cmp.FLOAT64)
    assert found is not None
    assert "the result['d_loss'][1]" in found.message and "2.5" in found.message and "expected 2.0" in found.message


def test_expected_dtype_is_the_inputs_not_the_float64_reference() -> None:
    values = torch_array([1.0, 2.0])
    meta = torch_array([0.0, 0.0], "float32")
    expected = cmp.with_required_dtypes(values, meta)
    assert cmp.compare(expected, torch_array([1.0, 2.0], "float32"), cmp.FLOAT32) is None
    found = cmp.compare(expected, torch_array([1.0, 2.0], "float64"), cmp.FLOAT32)
    assert found is not None and found.what == "dtype"
