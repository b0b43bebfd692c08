"""The README's promises about its own commands. Lint and types (ruff, mypy, configured in pyproject.toml)
run in .ci/run, outside pytest."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> dict[str, str]:
    """The README's two commands and the fast tier's, each the single line after its marker comment."""
    text = (ROOT / "README.md").read_text()
    found = dict(
        re.findall(r"<!-- (main-command|test-command|fast-test-command) -->\s*```(?:bash|sh)?\n(.+?)\n```", text)
    )
    return found


def test_readme_gives_two_commands_and_the_fast_tier_and_ci_runs_the_test_one_and_lint() -> None:
    commands = readme_commands()
    assert set(commands) == {"main-command", "test-command", "fast-test-command"}
    assert "not integration" in commands["fast-test-command"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "test-command" in ci, ".ci/run must run the README's test command"
    for tool in ("ruff check", "ruff format --check", "mypy"):
        assert tool in ci, f".ci/run must run {tool}"
