"""The public checks name catalogued mistakes as the grader does: a mistake is named only when its stored outputs
agree with the student's answers on every public case, and no other mistake's do.

Each mutant of the corpus that implements a catalogued mistake (grader/authoring/corpus.py) is run through
its item's public checks in the notebook's way (grader/kernel.py, in this process): the feedback names that
mistake or, where a few fixed cases cannot single it out, nothing; never another one. The correct but
different implementations pass and are named nothing.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import pytest

from grader import public
from grader.authoring.corpus import ALTERNATES, MUTANTS, Patch, patched
from grader.grading import compare as cmp
from grader.grading.items import CHECKS
from grader.kernel import InKernel

ROOT = Path(__file__).resolve().parents[1]
# Catalogued mistakes that the public cases cannot single out (grader/regenerate.py chooses them to): named by
# the grader only. A new mistake that lands here deserves a look at its item's strategy or pinned examples.
NOT_NAMED_PUBLICLY: set[str] = set()


def load(patch: Patch, folder: Path) -> types.ModuleType:
    path = folder / f"{patch.part}_{abs(hash((patch.item, patch.name)))}.py"
    path.write_text(patched(patch, ROOT / "solutions"))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module  # dataclasses and torch.nn look their module up
    spec.loader.exec_module(module)
    return module


def public_result(patch: Patch, folder: Path) -> public.PublicResult:
    cases_of = public.stored_items()[patch.item][1]
    cases = [c for c in public.load() if c["item"] == cases_of]
    return public.check_item(InKernel(vars(load(patch, folder))), cases_of, cases, mistakes=stored(cases_of))


def stored(item: str) -> dict[str, str]:
    return public.stored_mistakes()[item]


CATALOGUED = [p for p in MUTANTS if any(m.name == p.name for m in getattr(CHECKS.get(p.item), "mistakes", ()))]


def test_the_stored_mistakes_are_the_records() -> None:
    for item, check in CHECKS.items():
        assert stored(item) == {m.name: m.explanation for m in check.mistakes}
        for case in (c for c in public.load() if c["item"] == item):
            assert sorted([*case["mistakes"], *case["raise"]]) == sorted(m.name for m in check.mistakes), item


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the mutants divide 0 by 0 as students' code would
def test_public_checks_name_a_mutants_mistake_or_nothing(tmp_path: Path) -> None:
    named, silent = [], []
    for patch in CATALOGUED:
        result = public_result(patch, tmp_path)
        said = [name for name, sentence in stored(patch.item).items() if sentence in result.feedback]
        assert said in ([], [patch.name]), f"{patch.item} / {patch.name}: the public checks named {said}"
        assert (cmp.NAMES_A_MISTAKE in result.feedback) == bool(said)
        (named if said else silent).append(f"{patch.item}/{patch.name}")
        if said:
            assert result.passed < result.total  # named only on a failure
    print(f"{len(named)}/{len(CATALOGUED)} catalogued mistakes named by the public checks; not: {silent}")
    assert set(silent) == NOT_NAMED_PUBLICLY


@pytest.mark.parametrize("patch", ALTERNATES, ids=lambda p: f"{p.item}/{p.name}")
def test_correct_but_different_code_passes_the_public_checks(patch: Patch, tmp_path: Path) -> None:
    result = public_result(patch, tmp_path)
    assert result.passed == result.total, result.feedback


def test_a_mistake_is_not_named_when_an_answer_is_missing_or_two_fit() -> None:
    (case,) = [c for c in public.load() if c["item"] == "mle.gaussian_mle"][:1]
    name = next(iter(case["mistakes"]))
    wrong = public.wire.decode(case["mistakes"][name], tensors=False)
    fits = public.CaseRun("differs", wrong)
    assert public.explaining_mistakes([case], [fits], {name: "x"}) == [name]
    missing = public.CaseRun("Not implemented yet.", public.UNKNOWN)
    assert public.explaining_mistakes([case], [missing], {name: "x"}) == []
    twin = dict(case, mistakes={**case["mistakes"], "twin": case["mistakes"][name]})
    both = public.explaining_mistakes([twin], [fits], {name: "x", "twin": "y"})
    assert both == [name, "twin"]  # check_item names nothing then: two mistakes fit
