"""The records of the graded items: one declarative record per item, from which everything else is derived.

A ``Check`` is one compared item: its id and points, the driver that calls the student's
function, a Hypothesis strategy of ``Case``s, pinned edge cases, the catalogue of ``Mistake``s
whose outputs the runner compares a wrong answer with (grader/grading/diagnosis.py names one only when
it alone explains every answer seen), ``Property``s that a right answer satisfies whatever the
reference says, and the ``InputClass``es the contract allows, each of which the grading run must
draw (tests/test_input_classes.py holds every check to its own list). A ``TimedCheck`` is the
other kind: an item graded by timing another item's function against the reference's
(grader/grading/timing.py). Records describe; the runner grades them (``grader.grading.run.grade_record``), and nothing
here imports it, so the records sit below everything that grades.

A ``Case`` is one graded call: the driver's inputs for the student (``inputs``), the same inputs
promoted to float64 for the reference's values, the tolerance that the inputs' dtype earns, and
the line that shows the input in feedback. ``call`` and ``torch_call`` build cases of the
"call" driver from named arguments and derive that line from them.

The records live in ``grader/checks/<part>.py`` (a list ``CHECKS`` each); ``records()`` gathers
them in the contract's order, and ``grader.grading.items`` derives the item list and the total from them.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from grader.contract import PARTS
from grader.grading.compare import FLOAT32, FLOAT64
from grader.runtime import drivers

Tolerance = tuple[float, float]


class _Raises:
    """What a ``Mistake`` returns where code with that mistake raises (a hard-coded dim=1 on a 1-D input)."""

    def __repr__(self) -> str:
        return "RAISES"


RAISES: Any = _Raises()


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
    """A classic wrong answer: ``wrong(inputs)`` computes what that mistake returns (from the reference), or
    RAISES where code with the mistake raises. It must be defined on every input the check draws: any other
    exception is a fault of the grader, and the item says so."""

    name: str
    explanation: str  # what the student probably did, in a sentence for them
    wrong: Callable[[dict[str, Any]], Any]


def what_it_returns(mistake: Mistake, inputs: dict[str, Any]) -> Any:
    """``mistake.wrong(inputs)``, with NumPy's warnings about its own wrong math (0/0, ddof) silenced: they
    model the code a student wrote, and say nothing about the grader."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return mistake.wrong(inputs)


@dataclass(frozen=True)
class Property:
    """Something every right answer satisfies, checked on the received value alone."""

    description: str
    holds: Callable[[Any, Case], bool]


@dataclass(frozen=True)
class InputClass:
    """A kind of input the contract allows ("1-D p", "float32"), which the grading run must draw."""

    description: str
    holds: Callable[[dict[str, Any]], bool]  # on a case's inputs, as the student's code receives them


@dataclass(frozen=True)
class Outcome:
    """What grading one item gave: its status, the feedback for the student, and a note for the report."""

    status: str
    feedback: str
    note: str = ""
    mistakes: tuple[str, ...] = ()  # the catalogued mistakes the feedback names, by name
    limit: str | None = None  # "time" or "memory": the worker ended at a limit of the sandbox


def _valid_item(item: str, points: int) -> None:
    part = item.split(".")[0]
    if part not in PARTS or item.count(".") < 1:
        raise ValueError(f"{item!r}: an item is named <part>.<function>, with a part among {PARTS}")
    if not (isinstance(points, int) and points > 0):
        raise ValueError(f"{item}: points must be a positive whole number, not {points!r}")


@dataclass(frozen=True)
class Check:
    """A compared item: the student's function against the reference's on drawn and pinned cases."""

    item: str
    points: int
    driver: str  # a name in grader.drivers.DRIVERS
    cases: st.SearchStrategy[Case]
    examples: tuple[Case, ...] = ()
    mistakes: tuple[Mistake, ...] = ()
    properties: tuple[Property, ...] = ()
    max_examples: int = 25
    shrink: bool = True  # off for items whose calls are slow (training steps)
    timeout_s: float | None = None
    depends_on: tuple[str, ...] = ()  # the part's functions this item calls (measured: tests/test_dependencies.py)
    input_classes: tuple[InputClass, ...] = ()  # what the contract allows, each drawn when grading

    def __post_init__(self) -> None:
        _valid_item(self.item, self.points)
        if self.driver not in drivers.DRIVERS:
            raise ValueError(f"{self.item}: unknown driver {self.driver!r}; the drivers are {sorted(drivers.DRIVERS)}")
        names = [m.name for m in self.mistakes]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.item}: two catalogued mistakes share a name ({names})")

    @property
    def trains(self) -> bool:
        """Whether its driver builds an optimizer (the workers that grade it are warmed up for that)."""
        return self.driver in drivers.TRAINING

    @property
    def public_cases_of(self) -> str:
        """The item whose public cases check this one: its own."""
        return self.item


@dataclass(frozen=True)
class TimedCheck:
    """An item graded by time: ``step``'s function against the reference's (grader/grading/timing.py)."""

    item: str
    points: int
    step: str  # the item whose function is timed (its own check grades what it returns)
    depends_on: tuple[str, ...] = ()
    mistakes: tuple[Mistake, ...] = ()  # a time names no mistake
    input_classes: tuple[InputClass, ...] = ()  # fixed inputs: grader/grading/timing.py

    def __post_init__(self) -> None:
        _valid_item(self.item, self.points)
        if self.step.split(".")[0] != self.item.split(".")[0]:
            raise ValueError(f"{self.item}: the timed function {self.step} must be of the same part")

    trains = True  # the timed step trains

    @property
    def public_cases_of(self) -> str:
        """The item whose public cases check this one: the timed step's (a time has no public cases)."""
        return self.step


Record = Check | TimedCheck


def records() -> dict[str, Record]:
    """Every graded item's record, in the contract's order (the parts', then each file's)."""
    found: dict[str, Record] = {}
    for part in PARTS:
        for record in importlib.import_module(f"grader.checks.{part}").CHECKS:
            if record.item in found or record.item.split(".")[0] != part:
                raise ValueError(f"{record.item}: defined twice, or in grader/checks/{part}.py by mistake")
            found[record.item] = record
    for record in found.values():
        part = record.item.split(".")[0]
        unknown = [f for f in record.depends_on if f"{part}.{f}" not in found]
        if unknown:
            raise ValueError(f"{record.item}: depends on {unknown}, which are not graded functions of {part}")
    return found


# ----------------------------------------------------------------------------- building cases


def as_tensor(array: np.ndarray | np.floating | float, dtype: torch.dtype) -> torch.Tensor:
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


def positional(function: Callable[..., Any], args: dict[str, Any], injected: tuple[str, ...] = ()) -> list[Any]:
    """``args``, given by name, as the positional arguments of ``function``: they must be its first parameters,
    in order (checked when the case is built, so a pinned example cannot name an argument wrongly), apart from
    the ``injected`` ones that the driver passes itself (the grader's model)."""
    params = [p for p in inspect.signature(function).parameters if p not in injected]
    if list(args) != params[: len(args)]:
        raise ValueError(f"{function.__name__}: arguments {list(args)} are not its first parameters {params}")
    return list(args.values())


def shown(args: dict[str, Any], labels: dict[str, str] | None = None) -> str:
    """The input as feedback shows it, ``name=value`` for each argument; ``labels`` name a value instead of
    printing it (a schedule: "betas=cosine(1000)")."""
    labels = labels or {}
    return ", ".join(f"{name}={labels[name] if name in labels else fmt(value)}" for name, value in args.items())


def call(
    function: Callable[..., Any], args: dict[str, Any], labels: dict[str, str] | None = None, tol: Tolerance = FLOAT64
) -> Case:
    """A case of the "call" driver: ``function`` (the reference's, for its name and parameters) on ``args``,
    by name, passed as they are (NumPy in, for mle.py)."""
    return Case({"function": function.__name__, "args": positional(function, args)}, shown(args, labels), tol)


def torch_call(
    function: Callable[..., Any],
    args: dict[str, Any],
    dtype: torch.dtype,
    tol64: tuple[float, float] = FLOAT64,
    tol32: tuple[float, float] = FLOAT32,
    exact: bool = True,
    labels: dict[str, str] | None = None,
    injected: tuple[str, ...] = (),
) -> Case:
    """A "call" case of a torch function, its arguments by name. Each float NumPy array in ``args`` becomes a tensor in
    ``dtype`` for the student; any other argument (an int, a float, timesteps, a schedule) goes to both
    unchanged. The reference gets the student's float32 tensors upcast exactly (``exact``): the right
    answer for the very numbers the student's code received, which matters where the math is steep
    (log(1 - x) at x = 1 - 1e-6). Distributions must sum to 1, which float32-rounded ones do not, so
    their checks pass ``exact=False``: the reference takes the float64 values the float32 ones were
    rounded from, and entropy, cross-entropy, KL and JS move by ~1e-7 relative at most for that."""

    def convert(a: Any, to: torch.dtype) -> Any:  # a 0-d result of NumPy arithmetic is a np.float64 scalar
        return as_tensor(a, to) if isinstance(a, np.ndarray | np.floating) and a.dtype.kind == "f" else a

    arrays = positional(function, args, injected)
    name, text = function.__name__, shown(args, labels)
    student = [convert(a, dtype) for a in arrays]
    if dtype == torch.float64:
        return Case({"function": name, "args": student}, text, tol64)
    reference = promote(student) if exact else [convert(a, torch.float64) for a in arrays]
    return Case({"function": name, "args": student}, f"{text} (float32)", tol32, {"function": name, "args": reference})


def without_zero_grad(driver: str, module: Any, inputs: dict[str, Any]) -> Any:
    """What the driver ``driver`` returns when optimizer.zero_grad() does nothing: the "missing zero_grad"
    mistake, computed with the reference ``module``."""

    class StaleSGD(torch.optim.SGD):
        def zero_grad(self, set_to_none: bool = True) -> None:
            return None

    original = torch.optim.SGD
    torch.optim.SGD = StaleSGD  # type: ignore[misc]
    try:
        return drivers.run_driver(driver, module, inputs)
    finally:
        torch.optim.SGD = original  # type: ignore[misc]


def seeded_state(make: Callable[[], torch.nn.Module], seed: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The state dict of the model ``make()`` builds after torch.manual_seed(seed), in ``dtype``."""
    torch.manual_seed(seed)
    return {k: v.to(dtype) for k, v in make().state_dict().items()}


def _number(value: np.floating[Any]) -> str:
    """A float as a student would type it: 7 significant digits at most, and a whole float still a float."""
    text = f"{value:.7g}"
    return text if any(c in text for c in ".ein") else f"{text}.0"


def _integer(value: np.integer[Any]) -> str:
    return str(int(value))  # unpadded


def fmt(array: Any) -> str:
    """An input for feedback: short, exact enough to reproduce."""
    if isinstance(array, torch.Tensor):
        array = array.detach().to(torch.float64).numpy() if array.is_floating_point() else array.numpy()
    if isinstance(array, np.ndarray):
        text = np.array2string(
            array, threshold=16, edgeitems=4, separator=", ", formatter={"float_kind": _number, "int": _integer}
        )
        return " ".join(text.split())  # rows of a 2-D array on one line
    if isinstance(array, np.generic):  # a NumPy scalar shows as the Python number it holds
        return repr(array.item())
    return repr(array)


dtypes = st.sampled_from([torch.float64, torch.float64, torch.float32])  # float64 twice as often


# ----------------------------------------------------------------------------- input classes


def float_tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value] if value.is_floating_point() else []
    if isinstance(value, dict):
        return [t for v in value.values() for t in float_tensors(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in float_tensors(v)]
    return []


def of_dtype(dtype: torch.dtype) -> InputClass:
    """Cases whose data (the first floating-point tensor of the inputs: x, p, the weights) is ``dtype``."""
    name = str(dtype).removeprefix("torch.")
    return InputClass(name, lambda i: bool(float_tensors(i)) and float_tensors(i)[0].dtype == dtype)


BOTH_DTYPES = (of_dtype(torch.float32), of_dtype(torch.float64))


def _arg(inputs: dict[str, Any], where: int | str) -> Any:
    return inputs["args"][where] if isinstance(where, int) else inputs.get(where)


def ranked(where: int | str, name: str, *ranks: int) -> tuple[InputClass, ...]:
    """One class per rank: the argument at ``where`` (an index into "args", or an input's key) has it."""

    def has(rank: int) -> Callable[[dict[str, Any]], bool]:
        return lambda i: isinstance(_arg(i, where), torch.Tensor | np.ndarray) and _arg(i, where).ndim == rank

    return tuple(InputClass(f"{name} of rank {rank}", has(rank)) for rank in ranks)


def where_arg(where: int | str, description: str, holds: Callable[[Any], bool]) -> InputClass:
    """The class of cases whose argument at ``where`` satisfies ``holds``."""
    return InputClass(description, lambda i: bool(holds(_arg(i, where))))
