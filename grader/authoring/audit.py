"""Does each check discriminate? Grade its corpus of wrong and correct-but-different implementations.

    python -m grader audit [ITEM ...]

Every patch of grader/authoring/corpus.py applied to its solution file becomes a module of its own in one
folder, graded by the production sandbox (a fresh worker per module, as a submission's parts are)
with the item's own record, exactly as ``grade`` would. The verdicts an instructor needs:

- a **mutant** (a plausible wrong implementation) must lose the item's points, on its own fault:
  failed, error or timeout, never through an internal grader error;
- an **alternate** (a correct implementation written differently) must keep full marks;
- a mutant named like a catalogued mistake of its item must be named, and named alone, in the
  feedback; any other mutant must not be given a name.

tests/test_discrimination.py asserts the same verdicts through the same code.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.authoring.corpus import ALTERNATES, MUTANTS, Patch, patched
from grader.authoring.generate import ROOT
from grader.grading.compare import NAMES_A_MISTAKE
from grader.grading.items import RECORDS
from grader.grading.run import GRADER_FAULT, grade_record
from grader.sandbox import Isolation, Limits, Sandbox

CAUGHT = ("failed", "error", "timeout")


@dataclass(frozen=True)
class Verdict:
    """One patch graded: what it was, what the grader said, and whether that is what it should say."""

    patch: Patch
    kind: str  # "mutant" or "alternate"
    status: str
    feedback: str

    @property
    def named(self) -> list[str]:
        """The catalogued mistakes of the item that the feedback names."""
        return [m.name for m in RECORDS[self.patch.item].mistakes if m.explanation in self.feedback]

    @property
    def catalogued(self) -> bool:
        return any(m.name == self.patch.name for m in RECORDS[self.patch.item].mistakes)

    @property
    def problem(self) -> str | None:
        """Why this verdict is wrong, or None when the check did its job on this patch."""
        if self.feedback.startswith(GRADER_FAULT):
            return "the grader itself failed on it"
        if self.kind == "alternate":
            return None if self.status == "passed" else f"a correct implementation lost its points ({self.status})"
        if self.status not in CAUGHT:
            return f"a wrong implementation kept its points ({self.status})"
        if self.catalogued and self.named != [self.patch.name]:
            return f"its catalogued mistake was not named alone (named: {self.named or 'nothing'})"
        if not self.catalogued and NAMES_A_MISTAKE in self.feedback:
            return f"a mistake outside the catalogue was given a name ({', '.join(self.named) or 'another'})"
        return None


@dataclass(frozen=True)
class ItemAudit:
    item: str
    verdicts: tuple[Verdict, ...]

    def count(self, kind: str) -> tuple[int, int]:
        """(how many of ``kind`` did what they should, how many there are)."""
        mine = [v for v in self.verdicts if v.kind == kind]
        return sum(v.problem is None for v in mine), len(mine)

    @property
    def uncatalogued(self) -> list[str]:
        """Catalogued mistakes of the item that no mutant implements (each must have exactly one)."""
        names = [v.patch.name for v in self.verdicts if v.kind == "mutant"]
        return [m.name for m in RECORDS[self.item].mistakes if names.count(m.name) != 1]

    @property
    def ok(self) -> bool:
        wrong, right = self.count("mutant"), self.count("alternate")
        return wrong[0] == wrong[1] > 0 and right[0] == right[1] and not self.uncatalogued

    def line(self) -> str:
        (caught, mutants), (kept, alternates) = self.count("mutant"), self.count("alternate")
        named = sum(1 for v in self.verdicts if v.kind == "mutant" and v.catalogued and v.problem is None)
        return (
            f"{'ok  ' if self.ok else 'FAIL'} {self.item}: {caught}/{mutants} wrong lost points, "
            f"{kept}/{alternates} correct kept full marks, {named}/{len(RECORDS[self.item].mistakes)} "
            "catalogued mistakes named alone"
        )


def corpus(items: Iterable[str] | None = None) -> list[tuple[Patch, str]]:
    """The corpus's patches (of ``items``, or all), each with its kind."""
    wanted = set(items) if items is not None else None
    every = [(p, "mutant") for p in MUTANTS] + [(p, "alternate") for p in ALTERNATES]
    return [(p, kind) for p, kind in every if wanted is None or p.item in wanted]


def grade_corpus(
    patches: list[tuple[Patch, str]],
    limits: Limits | None = None,
    isolation: Isolation = "auto",
    solutions: Path = ROOT / "solutions",
    on_verdict: Callable[[Verdict], None] | None = None,
    workers: int = 1,
) -> list[Verdict]:
    """Grade each patch as its own module (``<part>_p<index>.py``) in one production sandbox; with ``workers``
    above 1, the patches are dealt out to that many processes, each with a sandbox of its own (the verdicts
    come back in the corpus's order; ``on_verdict`` hears each process's verdicts when it is done)."""
    if workers > 1 and len(patches) > 1:
        return _in_parallel(patches, limits, isolation, solutions, on_verdict, workers)
    verdicts: list[Verdict] = []
    with tempfile.TemporaryDirectory(prefix="grader-audit-") as scratch:
        folder = Path(scratch)
        names = []
        for index, (patch, _) in enumerate(patches):
            name = f"{patch.part}_p{index:03d}"
            (folder / f"{name}.py").write_text(patched(patch, solutions))
            names.append(name)
        with Sandbox(folder, limits, isolation) as sandbox:
            for (patch, kind), name in zip(patches, names, strict=True):
                outcome = grade_record(RECORDS[patch.item], sandbox, (name, f"{name}.py"), label=f"{patch.part}.py")
                verdict = Verdict(patch, kind, outcome.status, outcome.feedback)
                verdicts.append(verdict)
                if on_verdict:
                    on_verdict(verdict)
    return verdicts


def _in_parallel(
    patches: list[tuple[Patch, str]],
    limits: Limits | None,
    isolation: Isolation,
    solutions: Path,
    on_verdict: Callable[[Verdict], None] | None,
    workers: int,
) -> list[Verdict]:
    """``grade_corpus`` in ``workers`` spawned processes, each taking every ``workers``-th patch (the slow timed
    and training items spread over all of them)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    shares = [patches[k::workers] for k in range(workers)]
    verdicts: list[list[Verdict]] = [[] for _ in shares]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {
            pool.submit(grade_corpus, share, limits, isolation, solutions): k for k, share in enumerate(shares) if share
        }
        for future in as_completed(futures):
            verdicts[futures[future]] = future.result()
            for verdict in verdicts[futures[future]] if on_verdict else ():
                on_verdict(verdict)  # type: ignore[misc]
    ordered: list[Verdict] = [None] * len(patches)  # type: ignore[list-item]
    for k, share in enumerate(verdicts):
        ordered[k::workers] = share
    return ordered


def by_item(verdicts: list[Verdict], items: Iterable[str] | None = None) -> list[ItemAudit]:
    """The verdicts of each item, in the contract's order (an item without patches has an empty audit)."""
    wanted = list(items) if items is not None else list(RECORDS)
    return [ItemAudit(item, tuple(v for v in verdicts if v.patch.item == item)) for item in wanted]
