"""Inputs as wide as the contract, and readable: what the grading run really draws, item by item.

Each check lists the kinds of input its contract allows (``Check.input_classes``: 1-D, 2-D and 3-D
where leading dimensions broadcast, float32 and float64, the named edges). Grading the solutions
in this process records every input the derandomized run sends, which is exactly what a student's
code meets: each listed class must be among them, so a hard-coded ``dim=1`` or a float64-only path
loses its points. Every number feedback could show is readable: on a grid of a few digits, never
subnormal, never a 17-digit fraction.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from typing import Any

import pytest

from grader.checks import float_tensors
from grader.grading.items import CHECKS
from grader.grading.run import run_check
from grader.grading.strategies import derandomized_draws
from grader.kernel import InKernel

# Training steps are graded in float64 from given weights; p_sample_loop's samples are float32 by contract.
ONE_DTYPE = {"vae.vae_train_step", "gan.gan_train_step", "ddpm.ddpm_train_step", "ddpm.p_sample_loop"}
# The contract: "every other module takes and returns torch.Tensors ... and broadcasts leading dimensions".
BROADCASTING = {
    "divergences.entropy": "p",
    "divergences.cross_entropy": "p",
    "divergences.kl_divergence": "p",
    "divergences.js_divergence": "p",
    "divergences.kl_to_standard_normal": "mu",
    "vae.reparameterize": "mu",
}
DDPM_ANY_RANK = [
    "ddpm.q_sample",
    "ddpm.q_posterior_mean_variance",
    "ddpm.predict_x0_from_eps",
    "ddpm.p_sample_step",
    "ddpm.ddpm_loss",
]


class Recording(InKernel):
    """InKernel that keeps every request's inputs."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        super().__init__(namespace)
        self.sent: list[dict[str, Any]] = []

    def run(self, module: str, filename: str, op: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        self.sent.append(op["inputs"])
        return super().run(module, filename, op, timeout)

    def frozen(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


_DRAWN: dict[str, tuple[str, list[dict[str, Any]]]] = {}


def drawn(item: str) -> list[dict[str, Any]]:
    """The inputs grading the solution of ``item`` sends (cached: one grading run per item)."""
    if item not in _DRAWN:
        part = item.split(".")[0]
        runner = Recording(vars(importlib.import_module(f"solutions.{part}")))
        status, feedback = run_check(CHECKS[item], runner, (part, part))
        _DRAWN[item] = (f"{status}: {feedback}", runner.sent)
    verdict, sent = _DRAWN[item]
    assert verdict.startswith("passed"), verdict
    return sent


@pytest.mark.parametrize("item", sorted(CHECKS))
def test_grading_draws_every_class_of_input_the_check_lists(item: str) -> None:
    sent = drawn(item)
    missing = [c.description for c in CHECKS[item].input_classes if not any(c.holds(inputs) for inputs in sent)]
    assert not missing, f"{item}: the grading run never draws {missing} ({len(sent)} inputs)"


def test_every_check_lists_what_its_contract_allows() -> None:
    assert [item for item, check in CHECKS.items() if not check.input_classes] == []


def test_every_check_that_takes_float_tensors_lists_both_dtypes() -> None:
    takes = [item for item in sorted(CHECKS) if item not in ONE_DTYPE and any(float_tensors(i) for i in drawn(item))]
    assert len(takes) >= 20
    for item in takes:
        listed = {c.description for c in CHECKS[item].input_classes}
        assert {"float32", "float64"} <= listed, f"{item} lists {sorted(listed)}"


@pytest.mark.parametrize("item", sorted(BROADCASTING) + DDPM_ANY_RANK)
def test_leading_dimensions_are_drawn_at_every_rank(item: str) -> None:
    listed = {c.description for c in CHECKS[item].input_classes}
    ranks = (1, 2, 3) if item in BROADCASTING else (2, 3, 4)
    name = BROADCASTING.get(item, "x")
    assert {f"{name} of rank {r}" for r in ranks} <= listed, f"{item} lists {sorted(listed)}"


NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
MAX_DIGITS = 7  # significant digits of a shown number: the grid's four, a distribution's six after normalising


def significant(text: str) -> int:
    mantissa = text.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mantissa.rstrip("0")) if "." in text.split("e")[0] else len(mantissa.rstrip("0") or "0")


@pytest.mark.parametrize("item", sorted(CHECKS))
def test_every_input_feedback_can_show_is_readable(item: str) -> None:
    check = CHECKS[item]
    for case in list(check.examples) + derandomized_draws(check.cases, 40, 7):
        for number in NUMBER.findall(case.shown):
            assert significant(number) <= MAX_DIGITS, f"{item}: {number} in {case.shown!r}"
            value = abs(float(number))
            assert value == 0 or value >= 1e-12, f"{item}: {number} in {case.shown!r}"


def test_significant_digits() -> None:
    assert [significant(t) for t in ["0.125", "-2.417", "3e-05", "1000", "0.333333", "2.2250738585072014e-308"]] == [
        3,
        4,
        1,
        1,
        6,
        17,
    ]
