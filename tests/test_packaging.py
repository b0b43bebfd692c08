"""Installing the project never makes the answer key importable: the wheel holds the grader and the reference,
not solutions/ nor exercises/, and nothing in it is a solution."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = (".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis")  # not the project's


def test_the_wheel_holds_the_grader_and_the_reference_and_no_answer_key(tmp_path: Path) -> None:
    # built from a copy: setuptools builds in the source's build/, whose stale files would reach the next wheel
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LOCAL))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"grader", "reference"}, tops
    # what grading needs at run time travels: the sandbox's runtime and the stored public results
    assert {"grader/runtime/worker.py", "grader/sandbox/isolation.py", "grader/public/expected.json"} <= set(names)
    with zipfile.ZipFile(wheel) as archive:
        for name in names:
            if name.endswith(".py"):
                assert "### BEGIN SOLUTION" not in archive.read(name).decode(), name
