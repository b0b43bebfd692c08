"""The grader discriminates: every mutant loses points on its item, every correct alternate keeps them,
every catalogued mistake is named, alone, when its mutant is graded, and no other mutant is given a name.

The whole corpus (grader/authoring/corpus.py) is graded once, by the code of ``python -m grader audit``
(grader/authoring/audit.py): each patch its own module in the production sandbox, one worker per module,
each graded by its item's record. One test per patch and per catalogue entry reads that grading.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.authoring import audit
from grader.authoring.corpus import ALTERNATES, MUTANTS, Patch, StalePatch, patched
from grader.grading.items import RECORDS

PATCHES = audit.corpus()
CATALOGUE = [(item, mistake.name) for item, record in RECORDS.items() for mistake in record.mistakes]


@pytest.fixture(scope="module")
def verdicts(corpus_drawn: list[audit.Verdict]) -> dict[int, audit.Verdict]:
    """The whole corpus graded once a run, through the audit's own code (tests/conftest.py)."""
    return dict(enumerate(corpus_drawn))


def test_every_item_has_mutants_and_every_patch_still_applies() -> None:
    per_item = {item: sum(p.item == item for p in MUTANTS) for item in RECORDS}
    assert min(per_item.values()) >= 2, {i: n for i, n in per_item.items() if n < 2}
    assert {p.item for p in [*MUTANTS, *ALTERNATES]} <= set(RECORDS)


@pytest.mark.parametrize("index", range(len(PATCHES)), ids=[f"{k}:{p.item}:{p.name}" for p, k in PATCHES])
def test_every_patch_gets_the_verdict_it_deserves(verdicts: dict[int, audit.Verdict], index: int) -> None:
    verdict = verdicts[index]
    assert verdict.problem is None, (
        f"{verdict.patch.item} / {verdict.patch.name}: {verdict.problem}\n{verdict.feedback}"
    )


@pytest.mark.parametrize(("item", "name"), CATALOGUE, ids=[f"{i}:{n}" for i, n in CATALOGUE])
def test_every_catalogued_mistake_has_one_mutant_and_is_named_alone_on_it(
    verdicts: dict[int, audit.Verdict], item: str, name: str
) -> None:
    found = [i for i, (p, kind) in enumerate(PATCHES) if kind == "mutant" and (p.item, p.name) == (item, name)]
    assert len(found) == 1, f"{item} / {name}: {len(found)} mutants implement it (one must)"
    verdict = verdicts[found[0]]
    assert verdict.status in ("failed", "error"), verdict.feedback
    assert verdict.named == [name], f"{item} / {name}: named {verdict.named}\n{verdict.feedback}"


def test_the_audit_reports_every_item_and_fails_one_that_does_not_discriminate(
    verdicts: dict[int, audit.Verdict],
) -> None:
    rows = audit.by_item(list(verdicts.values()))
    wrong = [
        (r.line(), [(v.patch.name, v.status, v.feedback) for v in r.verdicts if v.problem]) for r in rows if not r.ok
    ]
    assert [r.item for r in rows] == list(RECORDS) and not wrong, wrong
    # a check that let a mutant through is reported as failing
    first = next(v for v in verdicts.values() if v.kind == "mutant")
    passed = audit.Verdict(first.patch, "mutant", "passed", "All checks passed.")
    row = audit.ItemAudit(first.patch.item, (passed,))
    assert not row.ok and row.line().startswith("FAIL") and "0/1 wrong lost points" in row.line()


def test_a_stale_patch_is_refused_with_its_name(tmp_path: Path) -> None:
    folder = tmp_path
    (folder / "mle.py").write_text("def binomial_mle(successes, trials):\n    return 0.5\n")
    with pytest.raises(StalePatch, match="mean of ratios"):
        patched(Patch("mle.binomial_mle", "mean of ratios", "k.sum() / n.sum()", "np.mean(k / n)"), folder)
