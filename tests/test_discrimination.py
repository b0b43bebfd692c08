"""The grader discriminates: every mutant loses points on its item, every correct alternate keeps them,
and every catalogued mistake is named, alone, when its mutant is graded.

All mutants of the corpus are written into one folder under distinct file names and graded by one
sandbox, each on its own item (tests/corpus.py). Solutions score 100 and the stubs 0 elsewhere. The
catalogue test is generated from the checks' catalogues: one test per entry, each grading the mutant
named like it (the same grading as the mutant's own test, done once).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.checks import Mistake
from grader.run import SPEED_ITEM, load_checks, run_check
from grader.sandbox import Sandbox
from grader.timing import time_speed
from tests.corpus import ALTERNATES, MUTANTS, Patch

ROOT = Path(__file__).resolve().parents[1]
CHECKS = load_checks()


def patched(patch: Patch) -> str:
    source = (ROOT / "solutions" / f"{patch.part}.py").read_text()
    for old, new in [(patch.old, patch.new), (patch.old2, patch.new2)][: 2 if patch.old2 else 1]:
        assert source.count(old) == 1, (
            f"{patch.item} / {patch.name}: the patch's old text occurs {source.count(old)} times"
        )
        source = source.replace(old, new)
    return source


def write_corpus(folder: Path, patches: list[Patch], prefix: str) -> list[tuple[Patch, str]]:
    named = []
    for index, patch in enumerate(patches):
        name = f"{patch.part}_{prefix}{index:03d}"
        (folder / f"{name}.py").write_text(patched(patch))
        named.append((patch, name))
    return named


GRADED: dict[str, tuple[str, str]] = {}


def grade_one(sandbox: Sandbox, patch: Patch, name: str) -> tuple[str, str]:
    if name not in GRADED:
        if patch.item == SPEED_ITEM:
            result = time_speed(sandbox, (name, f"{name}.py"))
            GRADED[name] = result.status, result.feedback
        else:
            GRADED[name] = run_check(CHECKS[patch.item], sandbox, (name, f"{name}.py"))
    return GRADED[name]


CATALOGUE = [(item, mistake) for item, check in CHECKS.items() for mistake in check.mistakes]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("corpus")
    names = {f"m{i}": n for i, (_, n) in enumerate(write_corpus(folder, MUTANTS, "m"))}
    names.update({f"a{i}": n for i, (_, n) in enumerate(write_corpus(folder, ALTERNATES, "a"))})
    with Sandbox(folder, worker_per_module=False) as sandbox:  # trusted patches: one worker serves them all
        yield sandbox, names


def test_the_corpus_is_large_and_covers_every_item() -> None:
    assert len(MUTANTS) >= 100
    per_item: dict[str, int] = {}
    for m in MUTANTS:
        per_item[m.item] = per_item.get(m.item, 0) + 1
    assert set(per_item) == set(CHECKS) | {SPEED_ITEM}
    assert min(per_item.values()) >= 2


@pytest.mark.parametrize("index", range(len(MUTANTS)), ids=[f"{m.item}:{m.name}" for m in MUTANTS])
def test_every_mutant_loses_its_points(corpus: tuple[Sandbox, dict[str, str]], index: int) -> None:
    sandbox, names = corpus
    patch = MUTANTS[index]
    status, feedback = grade_one(sandbox, patch, names[f"m{index}"])
    assert status in ("failed", "error", "timeout"), f"{patch.item} / {patch.name} was not caught: {status}: {feedback}"
    assert "Internal grader error" not in feedback, feedback


@pytest.mark.parametrize("index", range(len(ALTERNATES)), ids=[f"{a.item}:{a.name}" for a in ALTERNATES])
def test_every_correct_alternate_keeps_full_marks(corpus: tuple[Sandbox, dict[str, str]], index: int) -> None:
    sandbox, names = corpus
    patch = ALTERNATES[index]
    status, feedback = grade_one(sandbox, patch, names[f"a{index}"])
    assert status == "passed", f"{patch.item} / {patch.name} was rejected: {feedback}"


@pytest.mark.parametrize(("item", "mistake"), CATALOGUE, ids=[f"{i}:{m.name}" for i, m in CATALOGUE])
def test_every_catalogued_mistake_is_named_alone_on_its_mutant(
    corpus: tuple[Sandbox, dict[str, str]], item: str, mistake: Mistake
) -> None:
    sandbox, names = corpus
    found = [i for i, m in enumerate(MUTANTS) if (m.item, m.name) == (item, mistake.name)]
    assert len(found) == 1, f"{item} / {mistake.name}: {len(found)} mutants implement it (one must)"
    status, feedback = grade_one(sandbox, MUTANTS[found[0]], names[f"m{found[0]}"])
    assert status in ("failed", "error"), feedback
    named = [m.name for m in CHECKS[item].mistakes if m.explanation in feedback]
    assert named == [mistake.name], f"{item} / {mistake.name}: named {named}\n{feedback}"


UNCATALOGUED = [
    i
    for i, m in enumerate(MUTANTS)
    if m.item != SPEED_ITEM and not any(x.name == m.name for x in CHECKS[m.item].mistakes)
]


@pytest.mark.parametrize("index", UNCATALOGUED, ids=[f"{MUTANTS[i].item}:{MUTANTS[i].name}" for i in UNCATALOGUED])
def test_a_mutant_outside_the_catalogue_is_not_given_a_wrong_name(
    corpus: tuple[Sandbox, dict[str, str]], index: int
) -> None:
    sandbox, names = corpus
    patch = MUTANTS[index]
    _, feedback = grade_one(sandbox, patch, names[f"m{index}"])
    assert "known mistake" not in feedback, f"{patch.item} / {patch.name}: {feedback}"
