"""The grader discriminates: every mutant loses points on its item, every correct alternate keeps them.

All mutants of the corpus are written into one folder under distinct file names and graded by one
sandbox, each on its own item (tests/corpus.py). Solutions score 100 and the stubs 0 elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.run import SPEED_ITEM, load_checks, run_check
from grader.sandbox import Sandbox
from grader.timing import time_speed
from tests.corpus import ALTERNATES, MUTANTS, Patch

ROOT = Path(__file__).resolve().parents[1]
CHECKS = load_checks()


def patched(patch: Patch) -> str:
    source = (ROOT / "solutions" / f"{patch.part}.py").read_text()
    assert source.count(patch.old) == 1, (
        f"{patch.item} / {patch.name}: the patch's old text occurs {source.count(patch.old)} times"
    )
    return source.replace(patch.old, patch.new)


def write_corpus(folder: Path, patches: list[Patch], prefix: str) -> list[tuple[Patch, str]]:
    named = []
    for index, patch in enumerate(patches):
        name = f"{patch.part}_{prefix}{index:03d}"
        (folder / f"{name}.py").write_text(patched(patch))
        named.append((patch, name))
    return named


def grade_one(sandbox: Sandbox, patch: Patch, name: str) -> tuple[str, str]:
    if patch.item == SPEED_ITEM:
        result = time_speed(sandbox, (name, f"{name}.py"))
        return result.status, result.feedback
    return run_check(CHECKS[patch.item], sandbox, (name, f"{name}.py"))


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
