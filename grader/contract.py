"""The contract's constants: the parts, their notebooks, the statuses of a graded item.

This module imports nothing: the grader, the sandbox's runtime, the student's bundle and the
authoring tools all read the same names from here. The graded items themselves, with their
points, are the check records in grader/checks/ (``grader.grading.items`` derives the list from them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PARTS = ("mle", "divergences", "vae", "gan", "ddpm")  # one module each, in the course's order
NOTEBOOK_NAMES = {part: f"{number:02d}_{part}" for number, part in enumerate(PARTS, start=1)}
TRAINING_PARTS = ("vae", "gan", "ddpm")  # the parts with an item that trains a model (tests/test_replay.py checks)
STATUSES = ("passed", "failed", "error", "timeout", "missing")

# A part's notebook as nbgrader collects it (01_mle.ipynb) or as a student may name it (mle.ipynb).
NOTEBOOK_NAME = re.compile(rf"^(?:\d+[_-])?(?P<part>{'|'.join(PARTS)})\.ipynb$")


def may_train(items: Iterable[str] | None, parts: Iterable[str] = PARTS) -> bool:
    """Whether grading ``items`` (None: all) of ``parts`` may train a model, known before torch is imported (the
    item records import it): a sandbox's zygote then warms up first. ``grading.items.any_trains`` says exactly."""
    wanted = {i.split(".")[0] for i in items} if items else set(PARTS)
    return bool(wanted & set(parts) & set(TRAINING_PARTS))


@dataclass(frozen=True)
class Item:
    """A graded item: ``<part>.<function>`` (the timed one: ``ddpm.ddpm_train_step.speed``) and its points."""

    id: str
    points: int

    @property
    def module(self) -> str:
        return self.id.split(".")[0]

    @property
    def function(self) -> str:
        return self.id.split(".")[1]
