"""The command line dispatches each verb to its own function: no verb falls through to another."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from grader import __main__ as cli

# Enough arguments for the parser to accept each verb (nothing is run).
VERBS = {
    "grade": ["grade", "solutions"],
    "check": ["check"],
    "submit": ["submit"],
    "reference": ["reference", "verify"],
    "release": ["release", "out"],
    "grade-class": ["grade-class", "class", "--out", "out"],
    "generate": ["generate"],
    "audit": ["audit", "mle.binomial_mle"],
    "keep-cases": ["keep-cases"],
    "nbgrader init": ["nbgrader", "init", "course"],
    "nbgrader preflight": ["nbgrader", "preflight", "course"],
    "nbgrader regrade": ["nbgrader", "regrade", "course"],
}


def parse(argv: list[str]) -> tuple[object, argparse.ArgumentParser]:
    """The function ``main(argv)`` would run, and the parser, without running anything."""
    seen: dict[str, object] = {}
    original = argparse.ArgumentParser.parse_args

    def parse_args(self: argparse.ArgumentParser, *a: object, **k: object) -> argparse.Namespace:
        args = original(self, *a, **k)  # type: ignore[arg-type]
        seen["run"], seen["parser"] = args.run, self
        args.run = lambda args: 0
        return args

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", parse_args)
        assert cli.main(argv) == 0
    return seen["run"], seen["parser"]  # type: ignore[return-value]


def verbs_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_has_its_own_function(verb: str) -> None:
    run, _ = parse(VERBS[verb])
    expected = {
        "grade": cli._grade,
        "check": cli.student.check,
        "submit": cli.student.submit,
        "reference": cli._reference,
        "release": cli._release,
        "generate": cli._generate,
        "audit": cli._audit,
        "keep-cases": cli._keep_cases,
        "grade-class": cli._grade_class,
    }.get(verb, cli._nbgrader)
    assert run is expected


def test_every_verb_the_parser_offers_is_tested() -> None:
    _, parser = parse(VERBS["generate"])
    offered = {
        f"{verb} {sub}" if sub else verb for verb, p in verbs_of(parser).items() for sub in (verbs_of(p) or {"": None})
    }
    assert offered == set(VERBS)


def test_no_verb_is_refused_with_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2


def test_audit_without_items_audits_every_item(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from grader.authoring import audit
    from grader.grading.items import RECORDS

    asked: list[object] = []

    def grade_corpus(patches: list[object], *args: object, **kwargs: object) -> list[object]:
        asked.append(len(patches))
        return []

    monkeypatch.setattr(audit, "grade_corpus", grade_corpus)
    assert cli.main(["audit"]) == 1  # nothing graded: no item can be shown to discriminate
    assert asked == [len(audit.corpus())]
    assert f"0/{len(RECORDS)} items discriminate" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["grade", "nowhere"], "is not a folder"),
        (["grade-class", "nowhere", "--out", "out"], "is not a folder"),
        (["grade-class", ".", "--out", "out", "--workers", "0"], "--workers must be at least 1"),
        (["grade-class", ".", "--out", "out", "--timeout", "0"], "--timeout must be positive"),
    ],
)
def test_arguments_wrong_on_their_face_are_refused_before_torch_is_imported(
    argv: list[str], said: str, tmp_path: Path
) -> None:
    """A mistyped folder or count is said at once (the item list, which needs torch, is not needed for it)."""
    code = "import sys\nfrom grader.__main__ import main\nrc = main(sys.argv[1:])\nprint(rc, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["2", "False"], done.stdout + done.stderr
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


PLATFORM_ENTRY = """
import sys, grader
from grader.platforms import {platform} as entry
assert "torch" not in sys.modules, "the entry point imported torch before the collector was held off"
def imported(*modules):
    print(*modules)
    raise SystemExit(0)
grader.import_before_grading = imported
entry.main(["--root", sys.argv[1]])
raise SystemExit("import_before_grading was never called")
"""


@pytest.mark.parametrize("platform", ["gradescope", "prairielearn"])
def test_a_platforms_entry_point_imports_the_grading_code_with_the_collector_held_off(
    platform: str, tmp_path: Path
) -> None:
    """Gradescope's and PrairieLearn's run (one process a submission) imports torch and the grading code through
    ``grader.import_before_grading`` as ``grade`` does (``gradescope`` on the solutions: 8.0 to 8.3 s against 8.9 to
    9.3 s), and nothing heavy before it."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", PLATFORM_ENTRY.format(platform=platform), str(tmp_path)],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["grader.grading.items", "grader.grading.run"], done.stdout


IMPORT_BEFORE_GRADING = """
import gc, sys
import grader
grader.import_before_grading("decimal", "fractions")
frozen = gc.get_freeze_count()
assert gc.isenabled() and frozen > 0 and "fractions" in sys.modules, (gc.isenabled(), frozen)
leftovers = [[k] for k in range(1000)]  # a student's, say: collected as ever
grader.import_before_grading("decimal")  # imported already: nothing more is frozen
assert gc.get_freeze_count() == frozen, (gc.get_freeze_count(), frozen)
"""


def test_a_grading_processs_imports_leave_the_collector_on_and_what_they_made_frozen() -> None:
    """``grader.import_before_grading`` (the grade command's, a class's grading processes', the batch's item list)
    holds the collector off only while it imports, freezes once, and does nothing for modules already imported,
    which would freeze a student's leftovers for good."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", IMPORT_BEFORE_GRADING], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
