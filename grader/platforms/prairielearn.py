"""Grading on PrairieLearn: the external grader's entry point for one submission.

    python -m grader.platforms.prairielearn [--root /grade]

PrairieLearn starts the course's grading image (``python -m grader release prairielearn OUT`` writes
its Dockerfile and the question) with the job laid out under ``/grade``: the files the student
uploaded in ``student/``, the question's data in ``data/data.json`` (whose ``submitted_answers._files``
holds the same files, base64-encoded, where a question submits them that way). This module takes the
upload in (grader/intake/uploads.py: loose files, one folder or a zip, through the intake's caps), grades it
exactly as ``python -m grader grade`` does, with the same wall (bubblewrap where the container lets it
run, else the process wall, never none), and writes ``/grade/results/results.json`` in PrairieLearn's
format: ``score`` in [0, 1], ``gradable``, a ``message``, one test per item (``name``, ``description``,
``points``, ``max_points``, ``message``, ``output``) and the feedback page's pictures as ``images``
(data URLs), within PrairieLearn's 1 MB.

An upload with nothing to grade is not gradable (``format_errors`` says what to upload; PrairieLearn
then costs the student no attempt), and so is a container where no wall can be built (the student is
told it was not their doing; the command exits 1 for the course staff's logs). The root is ``/grade``
unless ``--root`` or ``GRADER_PRAIRIELEARN_ROOT`` says otherwise (the tests lay out a folder like it).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from grader.intake import MAX_FILE_BYTES, MAX_TOTAL_BYTES, uploads
from grader.intake.submission import find_parts
from grader.intake.untrusted import clean_text

DEFAULT_ROOT = Path("/grade")
MAX_RESULTS_BYTES = 1_000_000  # PrairieLearn's limit on results.json
MAX_DATA_BYTES = 2 * MAX_TOTAL_BYTES  # data.json: the files, base64 (4/3 of their size), and PrairieLearn's fields
MAX_FILES = 40  # named files a question's upload holds: ten names, with room for a student's extras


def files_of_data(data_json: Path, into: Path) -> list[str]:
    """Write the files of ``submitted_answers._files`` in ``data_json`` into ``into``; notes on what was left
    out. Everything in data.json came with the submission: a name is a plain file name or it is left out, and
    the sizes are the intake's."""
    notes: list[str] = []
    try:
        with data_json.open("rb") as handle:
            raw = handle.read(MAX_DATA_BYTES + 1)
        if len(raw) > MAX_DATA_BYTES:
            return [f"data.json is over {MAX_DATA_BYTES // 2**20} MB, so its files were left out."]
        files = json.loads(raw)["submitted_answers"]["_files"]
    except (OSError, ValueError, KeyError, TypeError):
        return notes
    if not isinstance(files, list):
        return notes
    into.mkdir(parents=True, exist_ok=True)
    total = 0
    for entry in files[:MAX_FILES]:
        name = entry.get("name") if isinstance(entry, dict) else None
        contents = entry.get("contents") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not isinstance(contents, str):
            continue
        shown = clean_text(name, 80)
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name or name.startswith("."):
            notes.append(f"{shown} is not a plain file name, so the grader left it out.")
            continue
        if len(contents) > MAX_FILE_BYTES * 4 // 3 + 4:
            notes.append(f"{shown} is over {MAX_FILE_BYTES // 2**20} MB, so the grader left it out.")
            continue
        try:
            data = base64.b64decode(contents, validate=True)
        except (binascii.Error, ValueError):
            notes.append(f"{shown} could not be decoded, so the grader left it out.")
            continue
        if total + len(data) > MAX_TOTAL_BYTES:
            notes.append(f"{shown} would take the submission past {MAX_TOTAL_BYTES // 2**20} MB in all; left out.")
            continue
        total += len(data)
        try:
            (into / name).write_bytes(data)
        except OSError as err:
            notes.append(f"{shown} could not be written ({err.strerror}), so the grader left it out.")
    if len(files) > MAX_FILES:
        notes.append(f"Only the first {MAX_FILES} uploaded files were taken.")
    return notes


def as_results(report: Any, notes: list[str]) -> dict[str, Any]:
    """PrairieLearn's results.json for a run.Report: the score as a share, a test per item, the pictures."""
    from grader.pictures.page import shown

    tests = [
        {
            "name": r.id,
            "description": f"{r.max_score} point{'s' if r.max_score != 1 else ''}",
            "points": r.score,
            "max_points": r.max_score,
            "message": r.status,
            "output": r.feedback,
        }
        for r in report.items
    ]
    message = f"Total: {report.score}/{report.max_score}. Wall: {report.wall}."
    if report.wall == "none":
        message += " Graded without a wall for other people's code."
    results: dict[str, Any] = {
        "gradable": True,
        "score": report.score / report.max_score if report.max_score else 0.0,
        "message": message,
        "output": "\n".join(notes),
        "tests": tests,
        "images": [],
    }
    left_out = 0
    for picture in [shown(p) for p in report.pictures]:
        if picture.png is None:
            continue
        image = {"label": f"{picture.title}: {picture.verdict}", "url": f"data:image/png;base64,{picture.png}"}
        results["images"].append(image)
        if len(encoded(results)) > MAX_RESULTS_BYTES - 2_000:  # room for the sentence below
            results["images"].pop()
            left_out += 1
    if left_out:
        results["output"] = "\n".join(filter(None, [results["output"], f"{left_out} picture(s) left out: "
                                                    "PrairieLearn takes results of 1 MB at most."]))  # fmt: skip
    return results


def not_gradable(errors: list[str], message: str) -> dict[str, Any]:
    return {"gradable": False, "score": 0.0, "message": message, "format_errors": errors, "tests": []}


def encoded(results: dict[str, Any]) -> bytes:
    """results.json's bytes: UTF-8, a byte of a name that is not UTF-8 (only ever in a string) as its escape."""
    return json.dumps(results, indent=1, ensure_ascii=False).encode("utf-8", errors="backslashreplace") + b"\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader.platforms.prairielearn", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("GRADER_PRAIRIELEARN_ROOT", DEFAULT_ROOT)))
    args = parser.parse_args(argv)
    from grader import import_before_grading

    import_before_grading("grader.grading.items", "grader.grading.run")
    from grader.grading.run import grade
    from grader.sandbox import SandboxUnavailable

    root: Path = args.root
    target = root / "results" / "results.json"
    target.parent.mkdir(parents=True, exist_ok=True)  # PrairieLearn does not make results/; made root's alone
    os.chmod(target.parent, 0o700)  # before any student code runs: a worker outside bubblewrap cannot write there
    code = 0
    with tempfile.TemporaryDirectory(prefix="grader-prairielearn-") as scratch:
        upload = root / "student"
        notes: list[str] = []
        if not (upload.is_dir() and any(upload.iterdir())):  # a question that sends its files in data.json only
            upload = Path(scratch) / "from-data"
            notes = files_of_data(root / "data" / "data.json", upload)
        folder, found = uploads.locate(upload, Path(scratch)) if upload.is_dir() else (Path(scratch), [])
        notes += found
        if not find_parts(folder)[0]:
            copy = Path(scratch) / "copy"
            said = uploads.nothing_to_grade(copy if copy.is_dir() else Path(scratch))
            results = not_gradable([said, *notes], said)
        else:
            try:  # bubblewrap where the container lets it run, else the process wall: never none
                report = grade(folder, isolation="required", pictures=True)
            except SandboxUnavailable as err:
                results = not_gradable(
                    ["The autograder could not wall in a student's code here; nothing you did caused it."],
                    f"Not graded: the autograder could not run here ({clean_text(str(err), 400)}).",
                )
                print(f"grader: {err}", file=sys.stderr)
                code = 1
            else:
                results = as_results(report, [*notes, *report.notes])
    target.unlink(missing_ok=True)  # whatever stands there, a link included, is replaced, never followed
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with open(fd, "wb") as handle:
        handle.write(encoded(results))
    shown = f"{results['score']:.4f}" if results["gradable"] else "not gradable"
    print(f"wrote {target}: {shown}")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
