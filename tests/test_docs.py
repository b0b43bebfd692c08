"""The documentation site: it builds in MkDocs' strict mode (a broken link, a missing page or snippet fails), and
every shell block of a guide is run here, or names the test that runs it, or says why it cannot be run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDES = sorted((ROOT / "docs").rglob("*.md"))
BLOCK = re.compile(r"(?:^|\n)([^\n]*)\n```(?:bash|sh|shell|console)\n(.*?)\n```", re.S)
RUN = "<!-- run -->"
TESTED = re.compile(r"<!-- tested by (tests/\w+\.py)::(\w+)")
NOT_RUN = re.compile(r"<!-- not run: \w.{10,} -->")


def shell_blocks() -> list[tuple[Path, str, str]]:
    """(guide, the line before the block, the block) for every shell block of the guides, in order."""
    return [(guide, before.strip(), body) for guide in GUIDES for before, body in BLOCK.findall(guide.read_text())]


def test_the_site_builds_in_strict_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    site = tmp_path / "site"
    for page in ("quickstart", "students", "security", "contract", "architecture", "instructors/prairielearn"):
        assert (site / page / "index.html").is_file(), page
    contract = (site / "contract" / "index.html").read_text()
    assert "binomial_mle(successes" in contract and "Total: 100" in contract  # CONTRACT.md itself, included
    assert "Adding an exercise" in (site / "architecture" / "index.html").read_text()  # CONTRIBUTING.md, included


def test_every_shell_block_is_run_or_names_its_test_or_says_why() -> None:
    blocks = shell_blocks()
    assert len(blocks) >= 8, blocks
    for guide, before, body in blocks:
        where = f"{guide.relative_to(ROOT)}: {body.splitlines()[0]}"
        if before == RUN or NOT_RUN.fullmatch(before):
            continue
        tested = TESTED.match(before)
        assert tested, f"{where}: say <!-- run -->, <!-- tested by tests/FILE.py::NAME --> or <!-- not run: why -->"
        source = (ROOT / tested[1]).read_text()
        assert f"def {tested[2]}(" in source, f"{where}: {tested[1]} has no test {tested[2]}"


@pytest.mark.parametrize("guide", sorted({g for g, before, _ in shell_blocks() if before == RUN}), ids=lambda g: g.stem)
def test_the_commands_a_guide_runs_work(guide: Path) -> None:
    """A guide's runnable blocks, in order, in one shell in the project's folder, with this environment's python
    first on PATH (as the guide's activated environment): each exits 0."""
    blocks = [body for g, before, body in shell_blocks() if g == guide and before == RUN]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "set -euo pipefail\n" + "\n".join(blocks)
    done = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    if guide.stem == "quickstart":  # what the page says the commands show
        assert "Total: 100/100" in done.stdout and "Total: 0/5" in done.stdout, done.stdout[-3000:]
        assert "This matches a known mistake: dividing by n - 1" in done.stdout
