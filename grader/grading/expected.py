"""The reference's side of a case: its module, and its outputs in the form a worker's reply takes.

The grader never trusts a student's code for an expected value: ``expected_output`` runs the check's
driver on the reference module in this process, on the case's float64 inputs, and keeps the dtypes
the student's inputs require (a float32 case expects float32 back).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from grader.checks import Case, Check
from grader.grading import compare as cmp
from grader.grading.items import BY_ID
from grader.runtime import drivers, wire


def to_wire(value: Any) -> Any:
    """A reference output in the same form as a worker's reply."""
    return wire.loads(wire.dumps(value), tensors=False)


def reference_module(part: str) -> ModuleType:
    return importlib.import_module(f"reference.{part}")


def expected_output(check: Check, case: Case) -> Any:
    part = BY_ID[check.item].module
    values = to_wire(drivers.run_driver(check.driver, reference_module(part), case.for_reference()))
    if case.reference_inputs is None:
        return values
    meta = to_wire(drivers.run_driver(check.driver, reference_module(part), case.inputs))
    return cmp.with_required_dtypes(values, meta)
