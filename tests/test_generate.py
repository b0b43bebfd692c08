"""exercises/ is generated from solutions/ and stays in step with it; the stubs teach and raise."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

import pytest

from grader.authoring import notebooks
from grader.authoring.generate import PARTS, MarkerError, exercise_sources, strip_solutions
from grader.contract import Item
from grader.grading.items import ITEMS, MAX_SCORE, RECORDS

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_FUNCTIONS = sorted({record.public_cases_of for record in RECORDS.values()})  # the timed item: its step


def test_the_records_total_the_contracts_100_points() -> None:
    """CONTRACT.md grades out of 100: an item added means points moved, never a larger total."""
    assert MAX_SCORE == 100
    assert {item.module for item in ITEMS} == set(PARTS)


def test_a_record_whose_points_the_solution_does_not_state_stops_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The points a student reads in a docstring and a notebook title are the records'; a change to one
    without the other is refused by `python -m grader generate`."""
    changed = tuple(Item(i.id, 5) if i.id == "mle.binomial_mle" else i for i in ITEMS)
    monkeypatch.setattr(notebooks, "ITEMS", changed)
    with pytest.raises(notebooks.TemplateError, match=r"binomial_mle.*\[mle.binomial_mle, 5 points"):
        notebooks.build("mle")


def test_the_contract_page_is_what_the_records_and_the_reference_say() -> None:
    from grader.authoring import contract_doc

    assert contract_doc.PAGE.read_text() == contract_doc.render(), "CONTRACT.md is out of date: run generate"
    text = contract_doc.render()
    for record in RECORDS.values():
        assert f"[{record.points}]" in text and record.item.split(".")[1] in text


def test_committed_exercises_are_what_generate_writes() -> None:
    for name, text in exercise_sources().items():
        committed = (ROOT / "exercises" / name).read_text()
        assert committed == text, f"exercises/{name} is out of date: run `python -m grader generate`"


def test_the_zygote_imports_what_the_exercises_import() -> None:
    """Every module an exercise imports beyond the standard library is imported once by the zygote that forks the
    workers (grader/runtime/worker.py: torch, and STUB_IMPORTS), not again by every student's worker."""
    from grader.runtime.worker import STUB_IMPORTS

    imported = set()
    for path in sorted((ROOT / "exercises").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
                imported.add(str(node.module))
    beyond = {name for name in imported if name.split(".")[0] not in sys.stdlib_module_names}
    assert beyond, "no import found: the test reads nothing"
    assert beyond <= {"torch", *STUB_IMPORTS}, sorted(beyond - {"torch", *STUB_IMPORTS})


@pytest.mark.parametrize("item_id", CONTRACT_FUNCTIONS)
def test_every_stub_keeps_its_signature_and_docstring_and_raises(item_id: str) -> None:
    part, name = item_id.split(".")
    solution = getattr(importlib.import_module(f"solutions.{part}"), name)
    stub = getattr(importlib.import_module(f"exercises.{part}"), name)
    assert inspect.signature(stub) == inspect.signature(solution)
    assert stub.__doc__ == solution.__doc__ and item_id in stub.__doc__
    if inspect.isclass(stub):
        for method in ("encode", "decode", "forward"):
            assert f'raise NotImplementedError("{part}.{name}.{method}: not implemented yet")' in inspect.getsource(
                stub
            )
    else:
        source = inspect.getsource(stub)
        assert f'raise NotImplementedError("{item_id}: not implemented yet")' in source
        assert "### BEGIN SOLUTION" not in source


def test_no_solution_line_reaches_the_exercises() -> None:
    for part in PARTS:
        solution = (ROOT / "solutions" / f"{part}.py").read_text()
        exercise = (ROOT / "exercises" / f"{part}.py").read_text()
        blocks = solution.split("### BEGIN SOLUTION")[1:]
        for block in blocks:
            for line in block.split("### END SOLUTION")[0].splitlines():
                if line.strip():
                    assert line not in exercise.splitlines(), f"{part}: solution line leaked: {line.strip()}"


def test_given_scaffolding_works_in_the_exercises() -> None:
    import torch

    from exercises import gan, vae

    assert vae.VAE().fc_mu.out_features == 20
    assert gan.Generator()(torch.zeros(2, 100)).shape == (2, 784)
    assert gan.Discriminator()(torch.zeros(2, 784)).shape == (2, 1)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "inside a function"),
        ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "never closed"),
        ("def f():\n    return 1\n    ### END SOLUTION\n", "without its BEGIN"),
        (
            "def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n",
            "inside an open",
        ),
    ],
)
def test_malformed_markers_are_refused(source: str, message: str) -> None:
    with pytest.raises(MarkerError, match=message):
        strip_solutions(source, "part")


def test_hidden_tests_are_dropped_and_stubs_parse() -> None:
    source = (
        "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n"
        "### BEGIN HIDDEN TESTS\nassert f(1) == 1\n### END HIDDEN TESTS\n"
    )
    out = strip_solutions(source, "part")
    ast.parse(out)
    assert "assert" not in out and 'raise NotImplementedError("part.f: not implemented yet")' in out
