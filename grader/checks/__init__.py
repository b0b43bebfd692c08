"""One declarative check per graded item: how to make inputs, how to compare, which mistakes to name.

A ``Case`` is one graded call: the driver's inputs for the student (``inputs``), the
same inputs promoted to float64 for the reference's values, the tolerance that the
inputs' dtype earns, and a line that shows the input in feedback. A ``Check`` is
data: the item, the driver, a Hypothesis strategy of cases, pinned edge cases, the
catalogue of ``Mistake``s whose outputs the runner compares a wrong answer with,
and ``Property``s that a right answer satisfies whatever the reference says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from grader.compare import FLOAT32, FLOAT64


@dataclass(frozen=True)
class Case:
    inputs: dict[str, Any]
    shown: str  # the input, as feedback shows it
    tol: tuple[float, float] = FLOAT64
    reference_inputs: dict[str, Any] | None = None  # float64 copies, when inputs hold float32

    def for_reference(self) -> dict[str, Any]:
        return self.inputs if self.reference_inputs is None else self.reference_inputs


@dataclass(frozen=True)
class Mistake:
    """A classic wrong answer: ``wrong(inputs)`` computes what that mistake returns (from the reference)."""

    name: str
    explanation: str  # what the student probably did, in a sentence for them
    wrong: Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Property:
    """Something every right answer satisfies, checked on the received value alone."""

    description: str
    holds: Callable[[Any, Case], bool]


@dataclass(frozen=True)
class Check:
    item: str
    driver: str
    cases: st.SearchStrategy[Case]
    examples: tuple[Case, ...] = ()
    mistakes: tuple[Mistake, ...] = ()
    properties: tuple[Property, ...] = ()
    max_examples: int = 25
    shrink: bool = True  # off for items whose calls are slow (training steps)
    timeout_s: float | None = None
    depends_on: tuple[str, ...] = ()  # the submission's own functions this item calls, named in feedback


# ----------------------------------------------------------------------------- building cases


def as_tensor(array: np.ndarray | float, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float64)).to(dtype)


def promote(value: Any) -> Any:
    """float32/float16 tensors → float64 copies, through lists, tuples and dicts."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.float64)
    if isinstance(value, dict):
        return {k: promote(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(promote(v) for v in value)
    return value


def torch_call(
    function: str,
    arrays: list[Any],
    dtype: torch.dtype,
    shown: str,
    tol64: tuple[float, float] = FLOAT64,
    tol32: tuple[float, float] = FLOAT32,
) -> Case:
    """A "call" case of a torch function. Each float NumPy array in ``arrays`` becomes a tensor in
    ``dtype`` for the student and a float64 tensor for the reference (the values the float32 ones were
    rounded from); any other argument (an int, a float, timesteps, a schedule) goes to both unchanged."""

    def convert(a: Any, to: torch.dtype) -> Any:
        return as_tensor(a, to) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a

    student = [convert(a, dtype) for a in arrays]
    if dtype == torch.float64:
        return Case({"function": function, "args": student}, shown, tol64)
    reference = [convert(a, torch.float64) for a in arrays]
    return Case(
        {"function": function, "args": student}, f"{shown} (float32)", tol32, {"function": function, "args": reference}
    )


def without_zero_grad(driver: Callable[[Any, dict[str, Any]], Any], module: Any, inputs: dict[str, Any]) -> Any:
    """What ``driver`` returns when optimizer.zero_grad() does nothing: the "missing zero_grad" mistake."""

    class StaleSGD(torch.optim.SGD):
        def zero_grad(self, set_to_none: bool = True) -> None:
            return None

    original = torch.optim.SGD
    torch.optim.SGD = StaleSGD  # type: ignore[misc]
    try:
        return driver(module, inputs)
    finally:
        torch.optim.SGD = original  # type: ignore[misc]


def seeded_state(make: Callable[[], torch.nn.Module], seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The state dict of the model ``make()`` builds after torch.manual_seed(seed), in ``dtype``."""
    torch.manual_seed(seed)
    return {k: v.to(dtype) for k, v in make().state_dict().items()}


def fmt(array: Any) -> str:
    """An input for feedback: short, exact enough to reproduce."""
    if isinstance(array, torch.Tensor):
        array = array.detach().to(torch.float64).numpy() if array.is_floating_point() else array.numpy()
    if isinstance(array, np.ndarray):
        return np.array2string(array, precision=6, threshold=16, edgeitems=4, separator=", ").replace("\n", "")
    return repr(array)


dtypes = st.sampled_from([torch.float64, torch.float64, torch.float32])  # float64 twice as often
