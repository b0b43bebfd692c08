"""Lint, types and the README's promises, checked with the tools configured in pyproject.toml."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint_is_clean() -> None:
    result = run("ruff", "check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_applied() -> None:
    result = run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_reference_and_grader() -> None:
    result = run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def readme_commands() -> dict[str, str]:
    """The README's two commands, each the single line after its marker comment."""
    text = (ROOT / "README.md").read_text()
    found = dict(re.findall(r"<!-- (main-command|test-command) -->\s*```(?:bash|sh)?\n(.+?)\n```", text))
    return found


def test_readme_gives_exactly_two_commands_and_ci_runs_the_test_one() -> None:
    commands = readme_commands()
    assert set(commands) == {"main-command", "test-command"}
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci, ".ci/run must run the README's test command"
