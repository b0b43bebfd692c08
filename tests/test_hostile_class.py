"""One student can never break or bend a class's grading: names, zips, ids and text are data.

A class holds what careless students, other operating systems and attackers hand in: a file and a
folder whose names are not UTF-8, a damaged zip (a corrupt deflate, LZMA and bzip2 member, a folder
entry after a file of its name, a 300-character name), markup as names, ids built from another id's
result key, ``bob.zip`` beside ``bob.ZIP``, ``Bob`` beside ``bob``, and spreadsheet formulas as ids.
The class is graded with and without bubblewrap; the honest classmate (the victim) must get exactly
what they get when graded alone (the control), and every entry must have exactly one row and one file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from grader.batch import engine
from grader.batch.classroom import grade_class
from grader.batch.entries import Entry, discover
from grader.sandbox import wall

# Its students meet the replay of kept cases first, as a class after any passing submission does.
pytestmark = pytest.mark.usefixtures("kept_cases")
ROOT = Path(__file__).resolve().parents[1]
ITEMS = ("mle.binomial_mle",)
FORMULAS = ("=2+5", "+3+4", "-1+8", "@SUM(1,1)", '=HYPERLINK("http://x","y")')
NOT_UTF8 = os.fsdecode(b"r\xe9sum\xe9.txt")


def solution(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "mle.py").write_text((ROOT / "solutions" / "mle.py").read_text())
    return folder


def damaged_zip() -> bytes:
    """A zip whose mle.py is whole and whose other members are damaged each in their own way."""
    buffer = io.BytesIO()
    noise = os.urandom(3000) * 3
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mle.py", (ROOT / "solutions" / "mle.py").read_text(), zipfile.ZIP_DEFLATED)
        for name, kind in (("deflate.py", zipfile.ZIP_DEFLATED), ("lzma.py", zipfile.ZIP_LZMA),
                           ("bzip2.py", zipfile.ZIP_BZIP2)):  # fmt: skip
            archive.writestr(name, noise, kind)
        archive.writestr("mle.py/", b"")  # a folder entry after a file of that name
        archive.writestr("d" * 300 + "/x.py", b"x = 1")  # a name longer than the file system takes
    data = bytearray(buffer.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        for name in ("deflate.py", "lzma.py", "bzip2.py"):
            info = archive.getinfo(name)
            start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
            for k in range(start + 2, start + 40):  # past the header, inside the compressed stream
                data[k] ^= 0xA5
    return bytes(data)


def zipped_solution(target: Path) -> None:
    with zipfile.ZipFile(target, "w") as archive:
        archive.write(ROOT / "solutions" / "mle.py", "mle.py")


def build(folder: Path) -> dict[str, str]:
    """The class; student id → what kind of entry it is."""
    kinds = {}
    victim = solution(folder / "victim")
    (victim / NOT_UTF8).write_text("my CV")  # a file whose name is not UTF-8, beside an honest mle.py
    kinds["victim"] = "honest"
    solution(folder / os.fsdecode(b"j\xf6rg"))
    kinds[os.fsdecode(b"j\xf6rg")] = "honest"
    markup = solution(folder / "[")
    (markup / "]").symlink_to("/etc/passwd")  # the intake note reads "[/] is a symbolic link"
    kinds["["] = "honest"
    (folder / "damaged.zip").write_bytes(damaged_zip())
    kinds["damaged"] = "honest"
    solution(folder / "ana@uni.edu")
    kinds["ana@uni.edu"] = "honest"
    forged = Entry("ana@uni.edu", Path("x")).key  # an id that is exactly another id's result key
    (solution(folder / forged) / "mle.py").write_text("def binomial_mle(successes, trials):\n    return 0.0\n")
    kinds[forged] = "wrong"
    zipped_solution(folder / "bob.zip")
    zipped_solution(folder / "bob.ZIP")
    kinds["bob.zip"] = kinds["bob.ZIP"] = "honest"
    solution(folder / "Carl")
    solution(folder / "carl")
    kinds["Carl"] = kinds["carl"] = "honest"
    for formula in FORMULAS:
        solution(folder / formula.replace("/", "_"))
        kinds[formula.replace("/", "_")] = "honest"
    return kinds


ISOLATIONS = ["auto", "off"]


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_names_zips_and_ids_of_a_class_are_data(tmp_path: Path, isolation: str) -> None:
    if isolation == "auto" and not wall("auto").holds:
        pytest.skip("needs a wall: bubblewrap, or the process wall")
    if isolation == "off" and os.environ.get("GRADER_TEST_WALL"):  # tests/test_process_wall.py's container run
        pytest.skip("graded with no wall at all, names and ids read the same in a container: run outside it only")
    settings = engine.Settings(ITEMS, timeout_s=10.0, isolation=isolation)
    control = tmp_path / "control"
    solution(control / "victim")
    grade_class(control, tmp_path / "control_out", lambda: engine.LocalPool(1), settings)
    alone = json.loads((tmp_path / "control_out" / "results" / "victim.json").read_text())

    folder = tmp_path / "class"
    folder.mkdir()
    kinds = build(folder)
    out = tmp_path / "out"
    summary = grade_class(folder, out, lambda: engine.LocalPool(1), settings)
    entries = discover(folder)
    assert sorted(e.student for e in entries) == sorted(kinds)
    assert (summary.graded, summary.failed, summary.unreadable) == (len(kinds), 0, 0), summary.line()
    assert any("'Carl', 'carl'" in w for w in summary.warnings), summary.warnings

    # one file per entry, each its own student's, and one row per entry
    files = sorted((out / "results").glob("*.json"))
    assert len(files) == len(entries) == len({e.key for e in entries})
    stored: dict[str, dict[str, Any]] = {}
    for path in files:
        result = json.loads(path.read_text(encoding="ascii"))
        stored[result["student"]] = result
    assert sorted(stored) == sorted(kinds)
    for student, kind in kinds.items():
        statuses = [i["status"] for i in stored[student]["items"]]
        assert statuses == (["passed"] if kind == "honest" else ["failed"]), (student, stored[student]["items"])
    assert stored[Entry("ana@uni.edu", Path("x")).key]["classified"] == {
        "mle.binomial_mle": {"mistakes": [], "limit": None}
    }
    victim = stored["victim"]
    assert [(i["id"], i["score"], i["feedback"]) for i in victim["items"]] == [
        (i["id"], i["score"], i["feedback"]) for i in alone["items"]
    ]
    assert any("r\\xe9sum\\xe9.txt has a name that is not UTF-8" in n for n in victim["notes"]), victim["notes"]
    damaged = " ".join(stored["damaged"]["notes"])
    for member in ("deflate.py", "lzma.py", "bzip2.py", "mle.py/", "ddddd"):
        assert member in damaged, damaged
    every_note = json.dumps([r["notes"] for r in stored.values()])
    assert "grader-entry" not in every_note and str(tmp_path) not in every_note  # no scratch path

    # grades.csv: one row per entry, every id shown one-to-one, no formula
    text = (out / "grades.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "student" and len(rows) == len(entries) + 1
    shown = [r[0] for r in rows[1:]]
    assert len(set(shown)) == len(shown)
    assert "j\\xf6rg" in shown and "[" in shown
    for formula in FORMULAS:
        assert "'" + formula.replace("/", "_") in shown, shown
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "j\\xf6rg" in report


def test_ids_built_from_keys_never_share_a_result_file() -> None:
    """Keys are one-to-one: an id that is another id's key, a key of a key, case and Unicode variants."""
    ids = ["ana@uni.edu", "Ana@uni.edu", "bob", "Bob", "BOB", "José", "Jose\u0301", "..", "a/b", ".x", "a b",
           os.fsdecode(b"j\xf6rg"), "j\\xf6rg", "[", "[/]", "x" * 300]  # fmt: skip
    for _ in range(2):
        ids += [Entry(i, Path(i)).key for i in ids]
    ids = list(dict.fromkeys(ids))
    keys = [Entry(i, Path(i)).key for i in ids]
    assert len(set(keys)) == len(ids)
    assert len({k.casefold() for k in keys}) == len(ids)  # distinct on a disk that ignores case too
    for key in keys:
        assert "/" not in key and not key.startswith(".") and key.isascii() and len(key) < 200


def test_a_resumed_run_trusts_only_what_it_would_have_produced(tmp_path: Path) -> None:
    """A result graded without the sandbox is never reused by a sandboxed run; one that does not parse is graded
    again, and the summary says how many were and why."""
    if not wall("auto").holds:
        pytest.skip("needs a wall: bubblewrap, or the process wall")
    folder = tmp_path / "class"
    for name in ("s1", "s2"):
        solution(folder / name)
    out = tmp_path / "out"
    plain = engine.Settings(ITEMS, isolation="off")
    first = grade_class(folder, out, lambda: engine.LocalPool(1), plain)
    assert first.graded == 2
    assert grade_class(folder, out, lambda: engine.LocalPool(1), plain).skipped == 2
    (out / "results" / "s2.json").write_text("{not json")
    walled = grade_class(folder, out, lambda: engine.LocalPool(1), engine.Settings(ITEMS, isolation="required"))
    assert (walled.graded, walled.skipped) == (2, 0)
    assert dict(walled.regraded) == {"settings": 1, "unreadable": 1}, walled.regraded
    assert "graded again: 1 settings, 1 unreadable" in walled.line(), walled.line()
    assert walled.warnings == ["s2 was graded again: its stored result did not parse or lacked a field"]
    for name in ("s1", "s2"):
        result = json.loads((out / "results" / f"{name}.json").read_text())
        assert result["wall"] == wall("auto").kind and result["settings"]["isolation"] == "required"


def test_preflight_takes_each_student_alone(tmp_path: Path) -> None:
    """A broken notebook whose rename target is taken (a folder) is that notebook's line; the next student's
    broken notebook is still renamed."""
    from grader.nbgrader import course

    for student in ("a", "b"):
        folder = tmp_path / "submitted" / student / "generative_models"
        folder.mkdir(parents=True)
        (folder / "01_mle.ipynb").write_text("not a notebook")
    (tmp_path / "submitted" / "a" / "generative_models" / "01_mle.ipynb.unreadable").mkdir()
    moved = course.preflight(tmp_path)
    renamed = [p for p, _ in moved if p.name.endswith(course.UNREADABLE_SUFFIX) and p.is_file()]
    assert len(moved) == 2 and len(renamed) == 2, moved
    assert not list(tmp_path.glob("submitted/*/generative_models/01_mle.ipynb"))


def test_regrade_output_shows_ids_as_text_and_its_csv_is_safe(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from grader.nbgrader import course

    results = [course.Regraded(student, {"mle.binomial_mle": 2.0}, {"mle.binomial_mle": 0})
               for student in ("[", "[/]", "[bold]x", os.fsdecode(b"j\xf6rg"), *FORMULAS)]  # fmt: skip
    results.append(course.Regraded("[red]", {}, {}, problem="could not be graded: [/] broke"))
    course.print_regrade(results)
    printed = capsys.readouterr().out
    assert "[/]" in printed and "[bold]x" in printed
    rows = list(csv.reader(io.StringIO(course.write_csv(tmp_path / "grades.csv", results).read_text("utf-8"))))
    assert len(rows) == len(results) + 1
    assert not [cell for row in rows for cell in row if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert ["'" + f for f in FORMULAS] == [r[0] for r in rows[5:10]]


def test_a_note_that_looks_like_markup_is_printed_as_it_is() -> None:
    from rich.console import Console

    from grader.grading.run import ItemResult, Report
    from grader.outputs.report import print_text

    console = Console(file=io.StringIO(), width=200)
    report = Report([ItemResult("mle.binomial_mle", 2, 2, "passed", "All checks passed.")], True,
                    notes=["[/] is a symbolic link, so the grader left it out. [bold red]x[/]"])  # fmt: skip
    print_text(report, console)
    assert "[/] is a symbolic link" in console.file.getvalue()  # type: ignore[attr-defined]


def test_gradescope_takes_names_that_are_not_utf8_and_damaged_zips(tmp_path: Path) -> None:
    from grader.intake.uploads import locate
    from grader.platforms.gradescope import nothing_to_grade

    upload = tmp_path / "submission"
    upload.mkdir()
    (upload / NOT_UTF8).write_text("my CV")
    for scratch in ("scratch", "scratch2"):
        (tmp_path / scratch).mkdir()
    folder, notes = locate(upload, tmp_path / "scratch")
    data = nothing_to_grade(tmp_path / "scratch" / "copy", notes)
    json.dumps(data).encode("utf-8")  # writable as results.json
    assert "r\\xe9sum\\xe9.txt" in data["output"]
    (upload / NOT_UTF8).unlink()
    (upload / "submission.zip").write_bytes(damaged_zip())
    folder, notes = locate(upload, tmp_path / "scratch2")
    assert (folder / "mle.py").is_file()
    assert any("deflate.py could not be read" in n for n in notes), notes


def test_install_paths_include_the_home_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    """IPython writes a path under $HOME as ~/...: the feedback must hide that form of the installation too."""
    from grader.kernel import install_paths

    course = str(ROOT)
    monkeypatch.setenv("HOME", str(Path(course).parent))
    named = install_paths()
    assert named["~/" + Path(course).name] == "<course>"


def test_the_class_report_reads_fields_not_feedback() -> None:
    """Feedback is partly the student's text (an exception's message): a message that says "of memory" or quotes a
    catalogued mistake's explanation puts nobody under a limit or a mistake; the recorded fields do."""
    from grader.batch.page import build
    from grader.grading.items import RECORDS

    record = RECORDS["mle.gaussian_mle"]
    mistake = record.mistakes[0]
    forged = f"raised RuntimeError: out of memory; no answer within 3 s; {mistake.explanation}"

    def result(student: str, classified: dict[str, Any]) -> dict[str, Any]:
        item = {"id": "mle.gaussian_mle", "score": 0, "max_score": 3, "status": "failed", "feedback": forged}
        return {"student": student, "status": "graded", "score": 0, "max_score": 3, "items": [item],
                "classified": {"mle.gaussian_mle": classified}}  # fmt: skip

    page = build([
        result("liar", {"mistakes": [], "limit": None}),
        result("hog", {"mistakes": [], "limit": "memory"}),
        result("named", {"mistakes": [mistake.name, "not-a-catalogued-name"], "limit": None}),
        result("old", {}),
    ])  # fmt: skip
    assert page["limited"] == [("hog", ["mle.gaussian_mle"])]
    assert [(m[0], m[1], m[3]) for m in page["mistakes"]] == [("mle.gaussian_mle", mistake.name, ["named"])]
