"""A PrairieLearn question and its grading image: ``python -m grader release prairielearn OUT``.

OUT holds:

- ``questions/genmath/``: the question to copy into the course's ``questions/``: ``info.json``
  (external grading, the image, the entry point, a timeout within PrairieLearn's 600 s) and
  ``question.html`` (a file upload for the five modules or the five notebooks, and the grader's results);
- ``image/``: the build context of the grading image, ``docker build -t NAME image/`` then push NAME
  where PrairieLearn pulls from: a ``Dockerfile`` (Ubuntu 24.04) that runs the same ``setup.sh`` as
  Gradescope's autograder (the venv, the CPU build of torch, this project, the process wall's users,
  the source readable by root alone) and ``source/run_prairielearn``, the entry point, which grades
  ``/grade/student`` with ``python -m grader.platforms.prairielearn`` into ``/grade/results/results.json``;
- ``README.md``: those steps, for the course staff.

Nothing in OUT holds an answer: the question ships no ``tests/`` and the image ships no ``solutions/``.
"""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

from grader import __version__
from grader.authoring.gradescope_zip import SETUP, files
from grader.contract import NOTEBOOK_NAMES, PARTS

IMAGE_ROOT = "/genmath"  # where the image keeps the venv and the source (GRADER_ROOT of setup.sh)
QUESTION = "genmath"
QUESTION_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "genmath-autograder/prairielearn/" + QUESTION))  # stable
TIMEOUT_S = 600  # PrairieLearn's largest: a whole submission, the timed DDPM step included, takes ~30-60 s
DEFAULT_IMAGE = f"YOUR_DOCKER_HUB_NAME/genmath-grader:{__version__}"
UPLOADS = [f"{part}.py" for part in PARTS] + [f"{NOTEBOOK_NAMES[part]}.ipynb" for part in PARTS]

DOCKERFILE = f"""# The grading image of the genmath exercises for PrairieLearn's external grader.
#   docker build -t NAME . && docker push NAME      (NAME as in the question's info.json)
FROM ubuntu:24.04
ENV GRADER_ROOT={IMAGE_ROOT}
COPY source/ {IMAGE_ROOT}/source/
RUN bash {IMAGE_ROOT}/source/setup.sh && rm -rf /var/lib/apt/lists/*
"""

RUN = f"""#!/usr/bin/env bash
# PrairieLearn runs this, as root, for each submission: /grade/student in, /grade/results/results.json out.
set -euo pipefail
root="${{GRADER_ROOT:-{IMAGE_ROOT}}}"
python="${{GRADER_PYTHON:-$root/venv/bin/python}}"
export GRADER_CACHE_DIR="${{GRADER_CACHE_DIR:-$root/kept-cases}}"  # kept by setup.sh as the image was built
cd "$root"
exec "$python" -P -m grader.platforms.prairielearn --root "${{GRADER_PRAIRIELEARN_ROOT:-/grade}}"
"""

QUESTION_HTML = """<pl-question-panel>
  <p>
    Upload your work on the generative-models exercises: the modules {modules}, or the notebooks
    {notebooks}. Upload the parts you have done; each function is graded on its own, against the
    reference implementation, and the feedback says what was given, what was expected and what your
    code returned.
  </p>
</pl-question-panel>

<pl-file-upload optional-file-names="{names}"></pl-file-upload>

<pl-submission-panel>
  <pl-external-grader-results></pl-external-grader-results>
  <pl-file-preview></pl-file-preview>
</pl-submission-panel>
"""

README = f"""# The genmath exercises on PrairieLearn

1. Build the grading image and push it where PrairieLearn pulls from (Docker Hub):

       docker build -t NAME image/
       docker push NAME

2. Put NAME in `questions/{QUESTION}/info.json` (`externalGradingOptions.image`) and copy
   `questions/{QUESTION}/` into the course's `questions/`; add the question to an assessment.

The entry point runs as root in the container: each submission's code runs behind bubblewrap where
the container lets it, else as one of the image's `grader-worker` users (the process wall), never as
root. A submission with nothing to grade, or a container where no wall can be built, is marked not
gradable: PrairieLearn then awards nothing and costs the student no attempt.
"""


def info(image: str) -> dict[str, object]:
    return {
        "uuid": QUESTION_UUID,
        "title": "Generative models: MLE, KL divergences, VAE, GAN and DDPM",
        "topic": "Generative models",
        "tags": ["genmath", f"v{__version__}"],
        "type": "v3",
        "singleVariant": True,
        "gradingMethod": "External",
        "externalGradingOptions": {
            "enabled": True,
            "image": image,
            "entrypoint": f"{IMAGE_ROOT}/source/run_prairielearn",
            "timeout": TIMEOUT_S,
        },
    }


def build(out: Path, image: str = DEFAULT_IMAGE) -> list[Path]:
    """Write the question and the image's build context to ``out``; the files written."""
    out = Path(out)
    question = out / "questions" / QUESTION
    source = out / "image" / "source"
    html = QUESTION_HTML.format(
        modules=", ".join(f"<code>{n}</code>" for n in UPLOADS[:5]),
        notebooks=", ".join(f"<code>{n}</code>" for n in UPLOADS[5:]),
        names=", ".join(UPLOADS),
    )
    written: list[tuple[Path, str | bytes, int]] = [
        (out / "README.md", README, 0o644),
        (question / "info.json", json.dumps(info(image), indent=2) + "\n", 0o644),
        (question / "question.html", html, 0o644),
        (out / "image" / "Dockerfile", DOCKERFILE, 0o644),
        (source / "setup.sh", SETUP, 0o755),
        (source / "run_prairielearn", RUN, 0o755),
    ]
    written += [(source / name, path.read_bytes(), 0o644) for path, name in files()]
    for path, content, mode in written:
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
        path.chmod(mode | stat.S_IRUSR)
    return [path for path, _, _ in written]
