"""The autograder a course uploads to Gradescope: ``python -m grader release gradescope OUT.zip``.

The zip holds, at its root (Gradescope's layout):

- ``setup.sh``: run once, as root, when Gradescope builds the image (Ubuntu): Python 3.11 and
  bubblewrap from apt, a virtual environment in /autograder/venv, the CPU build of torch, then this
  project from the zip; the source and the installed grader and reference are then made unreadable
  to other users, so that a worker that runs without bubblewrap (as an unprivileged user) cannot
  read them either;
- ``run_autograder``: run for each submission; grades /autograder/submission with
  ``python -m grader.gradescope`` into /autograder/results/results.json;
- ``gradescope.json``: whether the items' feedback is visible at once or after grades are published;
- the project as pip installs it: ``pyproject.toml``, ``README.md``, ``LICENSE``, ``grader/`` (not
  its authoring tools) and ``reference/``. Never ``solutions/`` nor ``exercises/``.
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path

from grader.authoring.release import ROOT

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq python3.11 python3.11-venv bubblewrap
python3.11 -m venv /autograder/venv
/autograder/venv/bin/pip install -q --upgrade pip
# The CPU build of torch (Gradescope's graders have no GPU): a fraction of the CUDA build's size.
/autograder/venv/bin/pip install -q --index-url https://download.pytorch.org/whl/cpu 'torch>=2.4,<2.14'
/autograder/venv/bin/pip install -q /autograder/source
# Only the grader (root) reads the grader, the reference and the checks; workers run as another user.
site=$(/autograder/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
chmod -R go-rwx /autograder/source "$site/grader" "$site/reference"
chmod +x /autograder/run_autograder
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission: /autograder/submission in, /autograder/results/results.json out.
set -euo pipefail
root="${GRADER_GRADESCOPE_ROOT:-/autograder}"
python="${GRADER_PYTHON:-$root/venv/bin/python}"
cd "$root"
exec "$python" -P -m grader.gradescope --root "$root"
"""

PROJECT = ("pyproject.toml", "README.md", "LICENSE")
PACKAGES = ("grader", "reference")
LEFT_OUT = ("authoring", "__pycache__")  # grader/authoring/ reads solutions/, which is not shipped


def files() -> list[tuple[Path, str]]:
    """(file, name in the zip) of the project that the autograder installs."""
    found = [(ROOT / name, name) for name in PROJECT]
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*")):
            relative = path.relative_to(ROOT)
            if path.is_file() and not any(part in LEFT_OUT for part in relative.parts) and path.suffix != ".pyc":
                found.append((path, relative.as_posix()))
    return found


def build(out: Path, feedback_visibility: str = "visible") -> list[str]:
    """Write the autograder zip to ``out``; the names it holds."""
    from grader.gradescope import CONFIG, VISIBILITIES

    if feedback_visibility not in VISIBILITIES:
        raise ValueError(f"feedback visibility must be one of {', '.join(VISIBILITIES)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = []
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP), ("run_autograder", RUN)):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o755) << 16
            archive.writestr(info, text)
            names.append(name)
        archive.writestr(CONFIG, json.dumps({"feedback_visibility": feedback_visibility}, indent=2) + "\n")
        names.append(CONFIG)
        for path, name in files():
            archive.write(path, name)
            names.append(name)
    return names
