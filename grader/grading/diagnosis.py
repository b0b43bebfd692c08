"""Which catalogued mistake explains a failed item: named only when it alone explains every answer seen.

A failing input, once shrunk, is often one on which several mistakes give the same number
(on x = [0, 1] the standard deviation and the unbiased variance are both 0.5). So a mistake
is named only when its output agrees with the student's on *every* graded call the run
observed: the passing inputs before the first failure (a mistake that would have failed
one of them is not what the student wrote), the first failure as Hypothesis found it, and
the shrunk one that feedback shows. When the evidence is thin (one failing input only) or
still fits two mistakes, a few more inputs are drawn, derandomized, chosen so that the
remaining candidates (or the one candidate and the right answer) give different outputs
there, and the student's code is run on them too. Whatever still fits is named; two that
no input could tell apart are named together, as one of them.

Agreement ignores dtype (a mistake is computed from the float64 reference inputs) unless
the failure being explained is itself the dtype (a float32 schedule). A mistake returns
``RAISES`` where code with it raises, and then agrees only with a student's code that
raised there too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grader.checks import RAISES, Case, Check, Mistake, what_it_returns
from grader.grading import compare as cmp
from grader.grading import strategies as gs

SEPARATING_INPUTS = 2  # extra student calls at most, when the evidence is thin or ambiguous
SEPARATION_DRAWS = 30  # inputs drawn at most to find those that separate the candidates
SEPARATION_SEED = 20_261_201  # the extra inputs' own derandomized stream, fixed so feedback is repeatable


@dataclass(frozen=True)
class Observation:
    """One graded call: the case and what the student's code returned (wire data), or RAISES if it raised."""

    case: Case
    received: Any
    passed: bool
    dtype_failure: bool = False  # the answer failed on its dtype alone: a mistake must match the dtype too


Probe = Callable[[Case], Observation | None]  # runs the student's code on one more case; None if it could not


class Outputs:
    """Each mistake's output on each case, computed once (wire data, or RAISES)."""

    def __init__(self, to_wire: Callable[[Any], Any]) -> None:
        self.to_wire = to_wire
        self.cache: dict[tuple[int, int], Any] = {}

    def of(self, mistake: Mistake, case: Case) -> Any:
        key = (id(mistake), id(case))
        if key not in self.cache:
            wrong = what_it_returns(mistake, case.for_reference())
            self.cache[key] = RAISES if wrong is RAISES else self.to_wire(wrong)
        return self.cache[key]


def agree(a: Any, b: Any, case: Case, dtypes: bool) -> bool:
    if a is RAISES or b is RAISES:
        return a is RAISES and b is RAISES
    return cmp.compare(a, b, case.tol, dtypes=dtypes) is None


def evidence(observations: list[Observation]) -> list[Observation]:
    """The passing calls up to the first failure, the first failure, and the last (shrunk) one."""
    failing = [i for i, o in enumerate(observations) if not o.passed]
    if not failing:
        return []
    first, last = failing[0], failing[-1]
    return observations[: first + 1] + ([observations[last]] if last != first else [])


def explain(
    check: Check,
    observations: list[Observation],
    probe: Probe,
    expected: Callable[[Case], Any],
    to_wire: Callable[[Any], Any],
) -> list[Mistake]:
    """``expected(case)`` is the reference's answer as wire data; ``to_wire`` turns a mistake's output into it.

    The catalogued mistakes that explain every observed answer of a failed item (usually none or one)."""
    seen = evidence(observations)
    if not seen or not check.mistakes:
        return []
    shown = seen[-1]
    strict = shown.dtype_failure
    outputs = Outputs(to_wire)
    first_shown = [shown, *seen[:-1]]  # the shown failure first: most mistakes are ruled out there at once
    candidates = [
        m for m in check.mistakes if all(agree(outputs.of(m, o.case), o.received, o.case, strict) for o in first_shown)
    ]
    failures = sum(1 for o in seen if not o.passed)
    if candidates and (len(candidates) > 1 or failures < 2):
        for case in _separating_cases(check, candidates, outputs, expected):
            more = probe(case)
            if more is None:  # the worker could not answer: too little evidence to name anything
                return []
            candidates = [m for m in candidates if agree(outputs.of(m, case), more.received, case, strict)]
            if not candidates:
                break
    return candidates


def _separating_cases(
    check: Check,
    candidates: list[Mistake],
    outputs: Outputs,
    expected: Callable[[Case], Any],
) -> list[Case]:
    """Up to SEPARATING_INPUTS drawn cases on which the candidates' outputs differ from each other, or (one
    candidate) from the right answer, so that the student's output there tells them apart."""
    chosen: list[Case] = []
    for case in gs.derandomized_draws(check.cases, SEPARATION_DRAWS, SEPARATION_SEED):
        answers = [outputs.of(m, case) for m in candidates]
        if len(candidates) == 1:
            answers.append(expected(case))
        if any(not agree(a, b, case, False) for i, a in enumerate(answers) for b in answers[i + 1 :]):
            chosen.append(case)
            if len(chosen) == SEPARATING_INPUTS:
                break
    return chosen


def feedback_line(mistakes: list[Mistake]) -> str | None:
    """The line that names what explains the failure, or None."""
    return cmp.mistake_line([m.explanation for m in mistakes])
