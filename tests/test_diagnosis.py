"""A mistake is named only when it alone explains every answer seen; the diagnosis fails closed.

These run the real checks in this process (grader.kernel.InKernel calls the functions directly):
the submissions are a few lines of trusted code, and what is tested is the grader's reasoning.
Every catalogue entry against its mutant, through the sandbox, is tests/test_discrimination.py.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

from grader.checks import RAISES, Mistake, what_it_returns
from grader.grading import compare as cmp
from grader.grading import diagnosis
from grader.grading.expected import expected_output, to_wire
from grader.grading.items import CHECKS
from grader.grading.run import GRADER_FAULT, run_check
from grader.grading.strategies import derandomized_draws
from grader.kernel import InKernel


def grade(item: str, namespace: dict[str, Any], check: Any = None) -> tuple[str, str]:
    part = item.split(".")[0]
    return run_check(check or CHECKS[item], InKernel(namespace), (part, part))


def named(item: str, feedback: str) -> list[str]:
    return [m.name for m in CHECKS[item].mistakes if m.explanation in feedback]


def test_the_standard_deviation_is_not_called_the_unbiased_variance() -> None:
    """On x = [0, 1] both give 0.5; the other inputs seen tell them apart."""

    def gaussian_mle(x: Any) -> tuple[float, float]:
        return float(x.mean()), float(x.std())

    status, feedback = grade("mle.gaussian_mle", {"gaussian_mle": gaussian_mle})
    assert status == "failed"
    assert named("mle.gaussian_mle", feedback) == ["std"], feedback


def test_a_posterior_padded_on_the_wrong_side_is_not_called_the_beta_variance() -> None:
    """At t = 0 the shifted ᾱ_{t-1} gives the variance β_0, exactly the "β_t variance" mistake."""

    def q_posterior_mean_variance(x_0: Any, x_t: Any, t: Any, betas: Any) -> Any:
        betas = betas.double()
        alpha_bars = torch.cumprod(1 - betas, 0)
        prev = torch.nn.functional.pad(alpha_bars[:-1], (0, 1), value=1.0)
        shape = (-1, *([1] * (x_t.dim() - 1)))

        def g(v: Any) -> Any:
            return v[t].reshape(shape).to(x_t.dtype)

        mean = (
            g(betas * prev.sqrt() / (1 - alpha_bars)) * x_0
            + g((1 - prev) * (1 - betas).sqrt() / (1 - alpha_bars)) * x_t
        )
        return mean, g(betas * (1 - prev) / (1 - alpha_bars))

    status, feedback = grade("ddpm.q_posterior_mean_variance", {"q_posterior_mean_variance": q_posterior_mean_variance})
    assert status == "failed"
    assert named("ddpm.q_posterior_mean_variance", feedback) == ["shifted"], feedback


def test_a_hard_coded_dim_is_named_whether_it_raised_or_returned_the_wrong_shape() -> None:
    def kl_to_standard_normal(mu: Any, logvar: Any) -> Any:
        return -0.5 * (1 + logvar - mu**2 - torch.exp(logvar)).sum(dim=1)

    status, feedback = grade("divergences.kl_to_standard_normal", {"kl_to_standard_normal": kl_to_standard_normal})
    assert status in ("failed", "error")
    assert named("divergences.kl_to_standard_normal", feedback) == ["dim 1"], feedback


def test_two_mistakes_no_input_tells_apart_are_named_together() -> None:
    check = CHECKS["divergences.entropy"]
    bits = next(m for m in check.mistakes if m.name == "log base 2")
    twin = Mistake("bits again", "the same mistake, catalogued twice.", bits.wrong)
    check = dataclasses.replace(check, mistakes=(bits, twin))

    def entropy(p: Any) -> Any:
        return -torch.xlogy(p, p).sum(dim=-1) / math.log(2)

    status, feedback = grade("divergences.entropy", {"entropy": entropy}, check)
    assert status == "failed"
    assert "one of 2 known mistakes" in feedback and bits.explanation in feedback and twin.explanation in feedback


def test_two_mistakes_at_once_are_explained_by_neither() -> None:
    def entropy(p: Any) -> Any:  # base 2 *and* the wrong sign: no single entry explains it
        return torch.xlogy(p, p).sum(dim=-1) / math.log(2)

    status, feedback = grade("divergences.entropy", {"entropy": entropy})
    assert status == "failed"
    assert "known mistake" not in feedback, feedback


def test_a_mistake_that_matches_only_the_shown_input_is_not_named() -> None:
    """A wrong answer that equals a catalogued one on one input but not on the others it was given."""

    def entropy(p: Any) -> Any:
        h = -torch.xlogy(p, p).sum(dim=-1)
        return torch.where(h > 0.5, h / math.log(2), h + 1.0)  # base 2 above 0.5 only

    status, feedback = grade("divergences.entropy", {"entropy": entropy})
    assert status == "failed"
    assert "known mistake" not in feedback, feedback


def test_a_mistake_that_raises_inside_the_grader_is_a_fault_of_the_grader() -> None:
    check = dataclasses.replace(
        CHECKS["divergences.entropy"], mistakes=(Mistake("broken", "never shown.", lambda i: 1 / 0),)
    )

    def entropy(p: Any) -> Any:
        return -torch.xlogy(p, p).sum(dim=-1) / math.log(2)

    status, feedback = grade("divergences.entropy", {"entropy": entropy}, check)
    assert status == "error"
    assert feedback.startswith(GRADER_FAULT), feedback


def test_the_missing_zero_grad_entries_compute() -> None:
    """They used to raise inside the grader (and were silently skipped): each now gives a step's outputs."""
    for item in ("vae.vae_train_step", "gan.gan_train_step", "ddpm.ddpm_train_step"):
        check = CHECKS[item]
        case = derandomized_draws(check.cases, 1, 0)[0]
        for mistake in check.mistakes:
            if "zero_grad" in mistake.name:
                assert isinstance(mistake.wrong(case.for_reference()), dict), (item, mistake.name)


def test_evidence_is_the_passing_calls_the_first_failure_and_the_shown_one() -> None:
    case = CHECKS["divergences.entropy"].examples[0]
    seen = [diagnosis.Observation(case, i, passed) for i, passed in enumerate([True, True, False, False, False])]
    assert [o.received for o in diagnosis.evidence(seen)] == [0, 1, 2, 4]
    assert diagnosis.evidence(seen[:2]) == []


def test_one_failing_input_is_corroborated_on_more_and_a_probe_that_cannot_answer_names_nothing() -> None:
    check = CHECKS["divergences.entropy"]
    bits = next(m for m in check.mistakes if m.name == "log base 2")
    case = check.examples[0]
    shown = diagnosis.Observation(case, to_wire(bits.wrong(case.for_reference())), False)
    probed: list[Any] = []

    def like_bits(c: Any) -> diagnosis.Observation:
        probed.append(c)
        return diagnosis.Observation(c, to_wire(bits.wrong(c.for_reference())), False)

    def expected(c: Any) -> Any:
        return expected_output(check, c)

    assert diagnosis.explain(check, [shown], like_bits, expected, to_wire) == [bits]
    assert 1 <= len(probed) <= diagnosis.SEPARATING_INPUTS
    assert diagnosis.explain(check, [shown], lambda c: None, expected, to_wire) == []


def test_no_catalogued_mistake_is_the_right_answer() -> None:
    """The catalogue itself: every entry differs from the reference (in value or in dtype) on a drawn input."""
    for item, check in CHECKS.items():
        cases = list(check.examples) + derandomized_draws(check.cases, 12, 1)
        for mistake in check.mistakes:
            outputs = [(case, what_it_returns(mistake, case.for_reference())) for case in cases]
            assert any(
                wrong is RAISES or cmp.compare(expected_output(check, case), to_wire(wrong), case.tol) is not None
                for case, wrong in outputs
            ), f"{item} / {mistake.name} equals the reference on every drawn input"
