"""The autograder a course uploads to Gradescope: ``python -m grader release gradescope OUT.zip``.

The zip holds, at its root (Gradescope's layout):

- ``setup.sh``: run once, as root, when Gradescope builds the image (Ubuntu): the image's Python
  where it is 3.11 or later, else apt's python3.11; bubblewrap where apt has it; a virtual
  environment in /autograder/venv, the CPU build of torch, then this project from the zip; the
  process wall's users (``grader-worker0`` ...); the venv readable by all, the source and the
  installed grader and reference by root alone, so that a worker that runs without bubblewrap (as
  one of those users) can run Python and cannot read them; then every item's cases kept in
  ``kept-cases/`` (``python -m grader keep-cases``: the reference graded as a submission), so
  that each submission's passing items replay them;
- ``run_autograder``: run for each submission; grades /autograder/submission with
  ``python -m grader.platforms.gradescope`` into /autograder/results/results.json;
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
from grader.sandbox.uids import FIRST_UID

WORKER_SLOTS = 8  # users made for the process wall: submissions graded at once in one container, and more

SETUP = """#!/usr/bin/env bash
# Run once, as root, when the grading image is built: Gradescope's (Ubuntu 22.04 or 24.04) or PrairieLearn's.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# The root is /autograder on Gradescope; PrairieLearn's image sets GRADER_ROOT (grader/authoring/prairielearn.py).
root="${GRADER_ROOT:-${GRADER_GRADESCOPE_ROOT:-/autograder}}"
apt-get update -qq
# The image's python3 where it is 3.11 or later (24.04: 3.12); else apt's python3.11 (22.04 has it, 24.04 not).
if python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    python=python3
    version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    apt-get install -y -qq "python$version-venv"
else
    apt-get install -y -qq python3.11 python3.11-venv
    python=python3.11
fi
# bubblewrap where the container lets it run; where it cannot, the grader takes the process wall.
apt-get install -y -qq bubblewrap || echo "bubblewrap could not be installed: the process wall will hold"
"$python" -m venv "$root/venv"
"$root/venv/bin/pip" install -q --upgrade pip
# The CPU build of torch (Gradescope's graders have no GPU): a fraction of the CUDA build's size.
"$root/venv/bin/pip" install -q --index-url https://download.pytorch.org/whl/cpu 'torch>=2.4,<2.14'
"$root/venv/bin/pip" install -q "$root/source"
# The process wall's users: each submission's workers run as one of them, never as root.
for slot in $(seq 0 $((WORKER_SLOTS - 1))); do
    if ! id -u "grader-worker$slot" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \\
            --uid $((FIRST_UID + slot)) --user-group "grader-worker$slot"
    fi
done
# Workers must run the installation: everyone may read the venv and reach it. Only root reads the grader,
# the reference and the source, which a worker outside bubblewrap must never see.
chmod o+x "$root"
chmod -R a+rX "$root/venv"
site=$("$root/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
chmod -R go-rwx "$root/source" "$site/grader" "$site/reference"
# Each submission is graded in a fresh container of this image: every item's cases are kept now, once, by grading
# the reference laid out as a submission, so that a submission's passing items replay them instead of drawing and
# computing them again (the same grades and words). The folder is root's alone; run_autograder names it.
GRADER_CACHE_DIR="$root/kept-cases" "$root/venv/bin/python" -P -m grader keep-cases ||
    echo "the cases were not kept: each submission draws them (the same grades, more slowly)"
if [ -e "$root/run_autograder" ]; then chmod +x "$root/run_autograder"; fi
""".replace("FIRST_UID", str(FIRST_UID)).replace("WORKER_SLOTS", str(WORKER_SLOTS))

RUN = """#!/usr/bin/env bash
# Gradescope runs this for each submission: /autograder/submission in, /autograder/results/results.json out.
set -euo pipefail
root="${GRADER_GRADESCOPE_ROOT:-/autograder}"
python="${GRADER_PYTHON:-$root/venv/bin/python}"
export GRADER_CACHE_DIR="${GRADER_CACHE_DIR:-$root/kept-cases}"  # kept by setup.sh
cd "$root"
exec "$python" -P -m grader.platforms.gradescope --root "$root"
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
    from grader.platforms.gradescope import CONFIG, VISIBILITIES

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
