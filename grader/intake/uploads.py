"""What a student uploaded to a platform (Gradescope, PrairieLearn), as a folder to grade.

Platforms keep an upload as the student made it: loose files, one folder, or a zip of either. ``locate``
takes it in through the intake's caps (grader/intake/) and finds the folder that holds the parts;
``nothing_to_grade`` is the sentence for an upload without one.
"""

from __future__ import annotations

from pathlib import Path

from grader.intake import MAX_TOTAL_BYTES, Refused, open_regular, take_in
from grader.intake.archive import Unreadable, unpack
from grader.intake.submission import find_parts, unwrap
from grader.intake.untrusted import clean_text

WHAT_TO_UPLOAD = (
    "upload mle.py, divergences.py, vae.py, gan.py and ddpm.py, or the notebooks 01_mle.ipynb ... 05_ddpm.ipynb "
    "(loose, in one folder, or in a zip)"
)


def locate(upload: Path, scratch: Path) -> tuple[Path, list[str]]:
    """The folder to grade, taken in from what the student uploaded, and notes on what was left out.

    A platform keeps what was uploaded as it was: loose files, a folder, or a zip. The upload is taken
    in (grader/intake/); when that holds no part to grade but exactly one zip, the zip is unpacked
    through the same caps; when it holds a single folder, that folder is graded."""
    copy = scratch / "copy"
    intake = take_in(upload, copy)
    notes = list(intake.problems)
    folder = unwrap(copy)
    if find_parts(folder)[0]:
        return folder, notes
    zips = [p for p in copy.rglob("*") if p.is_file() and p.name.lower().endswith(".zip")]
    if len(zips) == 1:
        try:
            fd, _ = open_regular(zips[0])
        except Refused as refused:
            return folder, [*notes, f"{zips[0].name} {refused}."]
        with open(fd, "rb", closefd=True) as handle:
            data = handle.read(MAX_TOTAL_BYTES + 1)
        try:
            unpacked = unpack(data, scratch / "unzipped")
        except Unreadable as err:
            return folder, [*notes, f"{zips[0].name} could not be read: {err}."]
        return unwrap(scratch / "unzipped"), [*notes, *unpacked.problems]
    return folder, notes


def nothing_to_grade(copy: Path) -> str:
    """The sentence for an upload whose intake copy ``copy`` holds no part: what to upload, and what was found."""
    found = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())[:10]
    shown = ", ".join(clean_text(name, 80) for name in found) if found else "nothing"
    return f"Nothing to grade: {WHAT_TO_UPLOAD}. Found: {shown}."
