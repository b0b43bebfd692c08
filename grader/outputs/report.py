"""The grade as a terminal table (rich), as the contract's JSON, and as Gradescope's results.json.

JSON (CONTRACT.md): {"score", "max_score", "items": [{"id", "score", "max_score", "status",
"feedback"}]}. Gradescope's autograder results: {"score", "output", "tests": [{"name",
"score", "max_score", "status", "output", "visibility"}]}, with status "passed" or
"failed" as Gradescope renders them; our finer status opens each test's output.
Both are written only after grading has finished, by the grader's own process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader import __version__
from grader.grading.run import Report
from grader.sandbox.workers import NO_WALL_NOTE

STYLE = {"passed": "green", "failed": "red", "error": "red", "timeout": "yellow", "missing": "dim"}


def print_text(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    if report.wall == "none":
        console.print("[bold red]NO WALL: the submission's code ran without bubblewrap or the process wall[/]",
                      highlight=False)  # fmt: skip
    table = Table(title="Generative models: autograder", show_lines=False)
    table.add_column("item")
    table.add_column("status")
    table.add_column("points", justify="right")
    for r in report.items:
        table.add_row(r.id, f"[{STYLE[r.status]}]{r.status}[/]", f"{r.score}/{r.max_score}")
    console.print(table)
    for r in report.items:
        if r.status != "passed":
            console.print(f"[bold]{r.id}[/] ({r.status}):", highlight=False)
            console.print(r.feedback, highlight=False, markup=False)
            console.print()
    for note in report.notes:  # a note can quote a submission's file names: text, never markup
        alarm = report.wall == "none" and note.startswith(NO_WALL_NOTE)
        console.print(Text(f"note: {note}", style="bold red" if alarm else "dim"))
    console.print(f"wall: {report.wall}", highlight=False)
    console.print(f"[bold]Total: {report.score}/{report.max_score}[/]")


def as_json(report: Report) -> dict[str, Any]:
    """The contract's JSON, and the version of the grader that wrote it."""
    return {**report.as_dict(), "grader_version": __version__, "wall": report.wall}


def as_gradescope(report: Report, visibility: str = "visible") -> dict[str, Any]:
    """Gradescope's results.json: one test per item, numbered in the contract's order; ``visibility`` says when
    students see each item's feedback (``visible``, or ``after_published`` to keep it until grades are out)."""
    tests = [
        {
            "name": r.id,
            "number": str(n),
            "score": r.score,
            "max_score": r.max_score,
            "status": "passed" if r.status == "passed" else "failed",
            "output": r.feedback if r.status == "passed" else f"[{r.status}] {r.feedback}",
            "visibility": visibility,
        }
        for n, r in enumerate(report.items, start=1)
    ]
    output = f"Total: {report.score}/{report.max_score}. Wall: {report.wall}."
    if report.wall == "none":
        output += " Graded without a wall for other people's code."
    extra = {"grader_version": __version__, "wall": report.wall}
    return {"score": report.score, "output": output, "tests": tests, "extra_data": extra}


def write(path: Path, data: dict[str, Any]) -> None:
    """JSON in UTF-8; a byte of a name that is not UTF-8 (only ever inside a string) as its JSON escape."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8", errors="backslashreplace")


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", errors="backslashreplace")
