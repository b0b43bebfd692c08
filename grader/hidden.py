"""The hidden tests of the notebooks' autograder cells: the full grader of one item, in the student's kernel.

    ### BEGIN HIDDEN TESTS
    from grader.hidden import hidden_check

    hidden_check("mle.binomial_mle", globals())
    ### END HIDDEN TESTS

nbgrader runs these cells when it autogrades and strips them from the released notebooks. They need
reference/ and the check records, which only the instructor has; the student's side (grader/kernel.py)
imports nothing of this module. What in-kernel grading cannot prevent: docs/security.md, and grader/kernel.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from grader.grading.items import RECORDS
from grader.grading.run import dependency_note, grade_record
from grader.kernel import CheckFailed, InKernel


def hidden_check(item_id: str, namespace: Mapping[str, Any]) -> None:
    """Run the full grader of one item on the notebook's functions; raise CheckFailed unless it passes."""
    if item_id not in RECORDS:
        raise KeyError(f"no graded item is called {item_id!r}")
    record = RECORDS[item_id]
    part = item_id.split(".")[0]
    outcome = grade_record(record, InKernel(namespace), (part, part))
    status, feedback = outcome.status, outcome.feedback
    note = dependency_note(record, None) if status in ("failed", "error") else ""
    feedback += f"\n{note}" if note else ""
    if status != "passed":
        raise CheckFailed(f"{item_id}: {status}. {feedback}")
    print(f"{item_id}: passed the full grader.")
