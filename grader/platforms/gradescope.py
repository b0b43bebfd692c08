"""Grading on Gradescope: what ``run_autograder`` runs in the container of one submission.

    python -m grader.platforms.gradescope [--root /autograder]

Gradescope unpacks the autograder zip (``python -m grader release gradescope OUT.zip``) into
``/autograder/source``, runs its ``setup.sh`` once when it builds the image, and for each
submission puts what the student uploaded in ``/autograder/submission`` and runs
``run_autograder``, which runs this module. It finds the submission (the five modules, the
notebooks, either inside one folder, or a zip of any of these), grades it exactly as
``python -m grader grade`` does, and writes ``/autograder/results/results.json`` in Gradescope's
format: one test per item (name, number, score, max_score, status, output, visibility), the
total, the run's time, an output for the whole submission, and in ``extra_data`` the wall that held
(``bubblewrap`` where the container lets it run, else ``process``). Where neither can be built, nothing
is graded: results.json says so and the command exits 1. ``source/gradescope.json`` (written
by the release) says whether the items' feedback is ``visible`` at once or only
``after_published``. The root is ``/autograder`` unless ``--root`` or ``GRADER_GRADESCOPE_ROOT``
says otherwise (the tests lay out a folder like it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grader.intake import uploads
from grader.intake.submission import find_parts
from grader.intake.untrusted import clean_text

DEFAULT_ROOT = Path("/autograder")
VISIBILITIES = ("visible", "after_published", "after_due_date", "hidden")
CONFIG = "gradescope.json"  # in source/: {"feedback_visibility": ...}


def settings_of(source: Path) -> dict[str, Any]:
    try:
        data = json.loads((source / CONFIG).read_text())
    except (OSError, ValueError):
        data = {}
    visibility = data.get("feedback_visibility", "visible")
    return {"feedback_visibility": visibility if visibility in VISIBILITIES else "visible"}


def nothing_to_grade(upload: Path, notes: list[str], visibility: str = "visible") -> dict[str, Any]:
    """results.json for an upload with no module or notebook in it: every item at 0, and what to upload."""
    output = uploads.nothing_to_grade(upload)
    return {"score": 0, "output": " ".join([output, *notes]), "tests": zero_tests("[missing] Not in the submission.",
                                                                              visibility)}  # fmt: skip


def zero_tests(output: str, visibility: str) -> list[dict[str, Any]]:
    """Every item as a test at 0 points, each with ``output``."""
    from grader.grading.items import ITEMS

    return [
        {"name": item.id, "number": str(n), "score": 0, "max_score": item.points, "status": "failed",
         "output": output, "visibility": visibility}
        for n, item in enumerate(ITEMS, start=1)
    ]  # fmt: skip


def no_wall(why: str, visibility: str = "visible") -> dict[str, Any]:
    """results.json where no wall fit for a student's code can be built in this container: nothing is graded."""
    output = (
        "This submission was not graded: the autograder could not wall in a student's code here. Your "
        f"instructor has been told; nothing you did caused it. ({clean_text(why, 400)})"
    )
    tests = zero_tests("[not graded] The autograder could not run here.", visibility)
    return {"score": 0, "output": output, "tests": tests, "extra_data": {"wall": None, "graded": False}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.platforms.gradescope", description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("GRADER_GRADESCOPE_ROOT", DEFAULT_ROOT)))
    args = parser.parse_args(argv)
    from grader import import_before_grading

    import_before_grading("grader.grading.items", "grader.grading.run")
    from grader.grading.run import grade
    from grader.outputs import report
    from grader.pictures import page
    from grader.sandbox import SandboxUnavailable

    started = time.monotonic()
    root: Path = args.root
    settings = settings_of(root / "source")
    upload = root / "submission"
    target = root / "results" / "results.json"
    with tempfile.TemporaryDirectory(prefix="grader-gradescope-") as scratch:
        folder, notes = uploads.locate(upload, Path(scratch)) if upload.is_dir() else (Path(scratch), [])
        if find_parts(folder)[0]:
            try:  # bubblewrap where the container lets it run, else the process wall: never none, it is a student's
                result = grade(folder, isolation="required", pictures=True)
            except SandboxUnavailable as err:
                data = no_wall(str(err), settings["feedback_visibility"])
                report.write(target, data)
                print(f"grader: {err}", file=sys.stderr)
                return 1
            result.notes[:0] = notes
            data = report.as_gradescope(result, settings["feedback_visibility"])
            data["output"] = page.fragment(result, data["output"])  # the feedback page's pictures, inline
            data["output_format"] = "html"
        else:  # what the intake copied (no link, no name that is not UTF-8), not the upload itself
            copy = Path(scratch) / "copy"
            data = nothing_to_grade(copy if copy.is_dir() else Path(scratch), notes, settings["feedback_visibility"])
    data["execution_time"] = round(time.monotonic() - started, 1)
    report.write(target, data)
    print(f"wrote {target}: {data['score']} points")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
