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


def _imports_of(path: Path, modules: set[str]) -> set[str]:
    """The project's modules that ``path`` imports, at the top or inside a function alike (a deferred import is
    still an edge: hiding one in a function is how a circle is usually kept)."""
    import ast

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {m for a in node.names if (m := known(a.name))}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {m for a in node.names if (m := known(f"{node.module}.{a.name}") or known(node.module))}
    return found


def test_the_grader_has_no_import_circle() -> None:
    """Records describe, the runner grades them, outputs read reports: no module of grader/ reaches itself again
    through the modules it imports."""
    paths = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (ROOT / "grader").rglob("*.py")}  # fmt: skip
    graph = {name: _imports_of(path, set(paths)) - {name} for name, path in paths.items()}
    circles = []
    for start in graph:  # a depth-first walk from each module: small enough to be plain
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            name, way = stack.pop()
            for nxt in graph[name]:
                if nxt == start:
                    circles.append(" -> ".join([*way, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*way, nxt]))
    assert not circles, "\n".join(sorted(circles)[:10])


def test_every_path_the_guides_name_exists() -> None:
    """A file or folder of the project named in README.md, CONTRIBUTING.md or docs/ (in backticks or parentheses)
    is there: a guide that points at a moved module sends a newcomer nowhere."""
    named = re.compile(r"(?<![\w/.-])((?:grader|reference|solutions|exercises|tests|benchmarks)/[\w/.-]*[\w/])")
    missing = []
    guides = ["README.md", "CONTRIBUTING.md", *(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md"))]
    for guide in guides:
        for path in named.findall((ROOT / guide).read_text()):
            if not path.endswith("_") and not (ROOT / path).exists():  # NN_<part>.py: a pattern, cut at "<"
                missing.append(f"{guide}: {path}")
    assert not missing, missing


GROUPED_MODULE = """
import os
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def built():
    with (Path(__file__).parent / "setups").open("a") as record:
        record.write(os.environ.get("PYTEST_XDIST_WORKER", "none") + "\\n")


@pytest.mark.parametrize("k", range(12))
def test_uses_it(built, k):
    time.sleep(0.05)


@pytest.mark.parametrize("k", range(12))
def test_alone(k):
    time.sleep(0.05)
"""


def test_the_tests_sharing_a_modules_fixture_run_on_one_process(tmp_path: Path) -> None:
    """The README's test command (``-n auto --dist loadgroup``, tests/conftest.py's groups) keeps the tests that
    use their module's own fixture on one process, which builds it once: with pytest 9.2 and pytest-xdist 3.8 the
    groups were silently ignored (pytest-xdist#1386) and the discrimination corpus was graded twice a run."""
    import shutil
    import subprocess
    import sys

    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_names.py").write_text(GROUPED_MODULE)  # a name of the fast tier, as conftest.py requires
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    setups = (tmp_path / "setups").read_text().split()
    assert len(setups) == 1, f"the module's fixture was built on {setups}: its tests were not kept together"
