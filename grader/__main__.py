"""python -m grader VERB ...: the grader's command line.

grade SUBMISSION [--json FILE] [--gradescope FILE] [--html FILE]     grade a folder of modules or notebooks
grade-class SUBMISSIONS --out DIR [--workers N] [--dask ADDRESS]      grade a class: results/, grades.csv, report.html
check [PATH] | submit [PATH]                                          the public checks; a zip to hand in (students)
reference regenerate|verify [--keep-weights]                         the public checks' stored results
release OUT | gradescope OUT.zip | prairielearn OUT                   the student bundle, Gradescope's, PrairieLearn's
generate                                                              exercises/, notebooks, CONTRACT.md
nbgrader init|preflight|regrade COURSE_DIR                            an nbgrader course, and its isolated re-grade
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from grader import leave
from grader.intake.untrusted import clean_text, shown_name
from grader.student import cli as student

if TYPE_CHECKING:
    from grader.sandbox import Isolation, Limits, Sandbox

GRADER_FAULT_EXIT = 3  # grading finished, but the grader's own code failed on an item: an instructor must look


def _no_clone_here(verb: str) -> bool:
    """True (and why on stderr) where the verb cannot run: it reads solutions/, which only a clone has."""
    import importlib.util

    if importlib.util.find_spec("grader.authoring") is not None and (Path(__file__).parents[1] / "solutions").is_dir():
        return False
    print(f"grader: {verb} reads solutions/ and needs a clone of the course repository", file=sys.stderr)
    return True


def _no_sandbox_here(isolation: str) -> bool:
    """True (and the reason on stderr) when a sandbox is required and none can be built on this machine."""
    from grader.sandbox import wall

    if isolation != "required" or wall("required").holds:
        return False
    print(
        f"grader: no wall fit for other people's code can be built here ({'; '.join(wall('required').problems)}); "
        "install bubblewrap, or run the grader as root with a Python installation every user can read (the "
        "process wall), or grade without one (--no-sandbox)",
        file=sys.stderr,
    )
    return True


def _submissions_inside(folder: Path, look_at: int = 10_000) -> str | None:
    """Why ``folder`` is not one submission but holds some (a class, an nbgrader course, a wrapping folder),
    and what to run instead; None when it holds a part of its own or nothing that looks like a submission."""
    from grader.intake.submission import find_parts

    if find_parts(folder)[0]:
        return None
    if (folder / "submitted").is_dir() and not (folder / "submitted").is_symlink():
        return (f"{folder} is an nbgrader course, not one submission; grade the class with: "
                f"python -m grader grade-class {folder} --out DIR")  # fmt: skip
    entries = []
    for k, path in enumerate(sorted(folder.iterdir())):
        if k >= look_at:
            break
        if path.name.startswith(".") or path.is_symlink():
            continue
        if (path.is_dir() and find_parts(path)[0]) or (path.is_file() and path.suffix.lower() == ".zip"):
            entries.append(path.name)
    if len(entries) == 1 and (folder / entries[0]).is_dir():
        return f"{folder} holds no module or notebook itself, but {folder / entries[0]} does: grade that folder"
    if len(entries) > 1:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        return (f"{folder} looks like a folder of {len(entries)} submissions ({shown}), not one; grade them all "
                f"with: python -m grader grade-class {folder} --out DIR")  # fmt: skip
    return None


def _grade(args: argparse.Namespace) -> int:
    submission = Path(args.submission)
    if not submission.is_dir():  # said before torch is imported (the item list needs it): at once
        print(
            f"grader: {submission} is not a folder; give the folder that holds mle.py, divergences.py, ...",
            file=sys.stderr,
        )
        return 2
    from grader.sandbox import Limits, Sandbox

    elsewhere = _submissions_inside(submission)
    if elsewhere:
        print(f"grader: {elsewhere}", file=sys.stderr)
        return 2
    isolation: Isolation = "off" if args.no_sandbox else "required" if args.require_sandbox else "auto"
    if _no_sandbox_here(isolation):
        return 2
    limits = Limits(call_timeout_s=args.timeout, memory_mb=args.memory_mb)
    with Sandbox(submission, limits, isolation) as sandbox:
        sandbox.start(trains=_may_train(sandbox, args.items))  # its workers import torch while this process does
        return _grade_in(sandbox, submission, args, limits, isolation)


def _may_train(sandbox: Sandbox, items: list[str] | None) -> bool:
    """Whether grading may train a model (its zygote then warms up first), from the parts the submission holds,
    before the item records (and torch) are imported; grade() says exactly, and restarts a zygote too cold."""
    from grader.contract import may_train
    from grader.intake.submission import find_parts

    parts, _ = find_parts(sandbox.private)
    return may_train(items, parts)


def _grade_in(
    sandbox: Sandbox, submission: Path, args: argparse.Namespace, limits: Limits, isolation: Isolation
) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from grader import import_before_grading

    import_before_grading("grader.grading.items", "grader.grading.run")
    from grader.grading.items import ITEMS
    from grader.grading.run import grade
    from grader.outputs import report

    unknown = sorted(set(args.items or []) - {i.id for i in ITEMS})
    if unknown:
        print(f"grader: unknown item(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    total = len(args.items) if args.items else len(ITEMS)
    console = Console(stderr=True)
    with Progress(
        TextColumn("grading {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task(str(submission), total=total)
        result = grade(
            submission,
            args.items,
            limits,
            isolation,
            on_item=lambda r: progress.advance(task),
            sandbox=sandbox,
            pictures=args.html is not None,
        )
    report.print_text(result)
    if args.json:
        report.write(Path(args.json), report.as_json(result))
    if args.gradescope:
        report.write(Path(args.gradescope), report.as_gradescope(result))
    if args.html:
        from grader.pictures import page

        report.write_text(Path(args.html), page.render(result, result.pictures, submission.name))
    if result.faults:
        print(f"grader: the grader itself failed on {', '.join(result.faults)}; see the feedback", file=sys.stderr)
        return GRADER_FAULT_EXIT
    return 0


def _grade_class(args: argparse.Namespace) -> int:
    folder = Path(args.submissions)
    problem = None
    if not folder.is_dir():
        problem = f"{folder} is not a folder; give the folder with one entry per student (or an nbgrader course)"
    elif args.workers < 1:
        problem = f"--workers must be at least 1, not {args.workers}"
    elif args.timeout <= 0 or args.memory_mb < 64:
        problem = "--timeout must be positive and --memory-mb at least 64"
    if problem:  # said before torch is imported (the item list needs it): at once
        print(f"grader: {problem}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from grader.batch import engine
    from grader.batch.classroom import grade_class
    from grader.batch.store import Busy

    if args.items:  # the item list imports torch: only to check the items asked for (see store.unread)
        from grader.grading.items import ITEMS

        unknown = sorted(set(args.items) - {i.id for i in ITEMS})
        if unknown:
            print(f"grader: unknown item(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
    isolation = "off" if args.no_sandbox else "required"  # a batch of other people's code: never unsandboxed by default
    if args.dask is None and _no_sandbox_here(isolation):
        return 2
    settings = engine.Settings(
        tuple(args.items) if args.items else None, args.timeout, args.memory_mb, isolation, pages=args.pages
    )
    pool: engine.Pool | None = None
    if args.dask is not None:
        try:
            pool = engine.DaskPool(args.dask)
        except ImportError:
            print("grader: --dask needs dask.distributed: pip install 'genmath-autograder[dask]'", file=sys.stderr)
            return 2
        except (OSError, TimeoutError) as err:
            print(f"grader: no Dask scheduler answered at {args.dask} ({err})", file=sys.stderr)
            return 2
        # The client's own log of a scheduler it lost is a traceback on stderr; the run says it in one line. (Set
        # once dask.distributed is imported: its import sets this logger's level from its configuration.)
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)
        problems = pool.check(isolation)
        if problems:
            pool.close()
            print(f"grader: the cluster at {args.dask} cannot grade, nothing was sent: {'; '.join(problems)}",
                  file=sys.stderr)  # fmt: skip
            return 2
    console = Console(stderr=True)
    with Progress(
        TextColumn("grading the class"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.description}"), console=console, transient=True, disable=not console.is_terminal,
    ) as progress:  # fmt: skip
        task = progress.add_task("", total=None)
        try:
            summary = grade_class(
                folder,
                Path(args.out),
                (lambda: pool) if pool is not None else (lambda: engine.LocalPool(args.workers)),
                settings,
                force=args.force,
                assignment=args.assignment,
                on_start=lambda n: progress.update(task, total=n),
                on_result=lambda student, r: progress.update(task, advance=1, description=escape(shown_name(student))),
            )
        except Busy as busy:
            print(f"grader: {busy}", file=sys.stderr)
            return 2
        except OSError as err:  # the out folder: full, read-only, not writable, not a folder
            print(f"grader: {_disk_trouble(err, Path(args.out))}", file=sys.stderr)
            return 1
        finally:
            if pool is not None:
                pool.close()
    print(summary.line())
    for warning in summary.warnings:
        print(f"grader: note: {warning}", file=sys.stderr)
    for path in summary.outputs:
        print(f"wrote {path}")
    if summary.ungraded:
        student, why = summary.ungraded[0]
        _say_not_graded(len(summary.ungraded), student, why)
        return 1
    return 0


def _say_not_graded(count: int, first: str, why: str | None = None) -> None:
    """The one line for students a class run could not grade through the grader's trouble (grade-class, regrade)."""
    because = f": {clean_text(why, 200)}" if why is not None else ""
    print(f"grader: {count} student(s) not graded through no fault of theirs (the first, {shown_name(first)}"
          f"{because}); nothing was stored for them: run the same command again to grade them",
          file=sys.stderr)  # fmt: skip


def _disk_trouble(err: OSError, out: Path) -> str:
    """One sentence for a failure to write the class's results: which path, what, what to do."""
    path = Path(str(err.filename)) if err.filename else out
    if path.name.startswith(".") and path.name.endswith(".tmp"):  # a result on its way: name its folder
        path = path.parent
    where = shown_name(str(path))
    what = err.strerror or type(err).__name__
    return (f"could not write {where} ({what}); every result written before is whole: free space or make "
            f"{shown_name(str(out))} writable (or give another --out), then run the same command again")  # fmt: skip


def _nbgrader(args: argparse.Namespace) -> int:
    from grader.nbgrader import course

    if args.action == "init":
        if _no_clone_here("nbgrader init"):
            return 2
        try:
            written = course.init(Path(args.course_dir), args.assignment, args.course_id, args.due, args.late_percent)
        except (FileExistsError, ValueError) as err:
            print(f"grader: {err}", file=sys.stderr)
            return 2
        for path in written:
            print(f"wrote {path}")
        print(f"next, from {args.course_dir}: nbgrader generate_assignment {args.assignment}")
        return 0
    if args.action == "preflight":
        unguarded = course.lets_cells_be_skipped(Path(args.course_dir))
        if unguarded:
            print(f"grader: warning: {unguarded}", file=sys.stderr)
        moved = course.preflight(Path(args.course_dir), args.assignment)
        renamed = [(path, reason) for path, reason in moved if path.name.endswith(course.UNREADABLE_SUFFIX)]
        for path, reason in moved:
            done = "renamed to" if (path, reason) in renamed else "left as it is,"
            print(f"unreadable, {done} {shown_name(str(path))}: {reason}")
        print(f"{len(renamed)} unreadable notebook(s) renamed; nbgrader autograde will count them as not submitted")
        return 0
    if not Path(args.course_dir, "submitted").is_dir():
        print(f"grader: {args.course_dir} has no submitted/ folder", file=sys.stderr)
        return 2
    from grader.batch.store import Busy
    from grader.sandbox import SandboxUnavailable

    isolation = "off" if args.no_sandbox else "required"  # a batch of other people's code: never unsandboxed by default
    if _no_sandbox_here(isolation):
        return 2
    if args.workers < 1:
        print(f"grader: --workers must be at least 1, not {args.workers}", file=sys.stderr)
        return 2
    try:
        results = course.regrade(
            Path(args.course_dir), args.assignment, args.db, isolation, args.workers,
            Path(args.out) if args.out else None, args.force, args.student,
        )  # fmt: skip
    except (SandboxUnavailable, ValueError, Busy) as err:
        print(f"grader: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        out = Path(args.out) if args.out else Path(args.course_dir) / "isolated" / args.assignment
        print(f"grader: {_disk_trouble(err, out)}", file=sys.stderr)
        return 1
    course.print_regrade(results)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"submissions": [r.as_dict() for r in results]}, indent=2) + "\n")
    if args.csv:
        print(f"wrote {course.write_csv(Path(args.csv), results)}")
    if args.use_isolated:
        left = course.use_isolated(Path(args.course_dir), args.assignment, results, args.db)
        for line in left:
            print(f"gradebook unchanged for {line}")
        print(f"the isolated scores are now the grades of {len(results) - len(left)} submission(s) in the gradebook")
    lost = [r for r in results if r.lost]
    if lost:
        _say_not_graded(len(lost), lost[0].student)
        return 1
    return 0


def _due_date(text: str) -> datetime:
    """An ISO 8601 date and time; one without a zone is UTC (argparse turns a ValueError into a usage error)."""
    when = datetime.fromisoformat(text)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _reference(args: argparse.Namespace) -> int:
    from grader import regenerate

    if args.action == "regenerate":
        for path in regenerate.regenerate(retrain_pictures=not args.keep_weights):
            print(f"wrote {path}")
        return 0
    problems = regenerate.verify()
    for problem in problems:
        print(f"drift: {problem}")
    print("the stored results match the reference" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


def _release(args: argparse.Namespace) -> int:
    if _no_clone_here("release"):
        return 2
    kind, out = args.target if len(args.target) == 2 else ["student", *args.target]
    if kind not in ("student", "gradescope", "prairielearn") or len(args.target) > 2:
        print("grader: release OUT, release student OUT, release gradescope OUT.zip or release prairielearn OUT",
              file=sys.stderr)  # fmt: skip
        return 2
    if kind == "prairielearn":
        from grader.authoring import prairielearn

        written = prairielearn.build(Path(out), args.image or prairielearn.DEFAULT_IMAGE)
        print(f"wrote {len(written)} files to {out}: see {Path(out) / 'README.md'} for the image and the question")
        return 0
    if kind == "gradescope":
        from grader.authoring import gradescope_zip

        names = gradescope_zip.build(Path(out), args.feedback_visibility)
        print(f"wrote {out} ({len(names)} files): upload it as the assignment's autograder on Gradescope")
        return 0
    from grader.authoring.release import release

    files = release(Path(out))
    print(f"wrote {len(files)} files to {out}")
    return 0


def _audit(args: argparse.Namespace) -> int:
    if _no_clone_here("audit"):
        return 2
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from grader.authoring import audit
    from grader.grading.items import RECORDS
    from grader.sandbox import Limits

    unknown = sorted(set(args.items or []) - set(RECORDS))
    if unknown or args.workers < 1:
        why = (
            f"unknown item(s) {', '.join(unknown)}" if unknown else f"--workers must be at least 1, not {args.workers}"
        )
        print(f"grader: {why}", file=sys.stderr)
        return 2
    patches = audit.corpus(args.items or None)  # none named: every item
    console = Console(stderr=True)
    with Progress(
        TextColumn("auditing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    ) as progress:  # fmt: skip
        task = progress.add_task("corpus", total=len(patches))
        verdicts = audit.grade_corpus(
            patches,
            Limits(call_timeout_s=args.timeout),
            "off" if args.no_sandbox else "auto",
            on_verdict=lambda v: progress.advance(task),
            workers=args.workers,
        )
    rows = audit.by_item(verdicts, args.items or None)
    for row in rows:
        print(row.line())
        for verdict in row.verdicts:
            if verdict.problem:
                print(f"     {verdict.kind} {verdict.patch.name!r}: {verdict.problem}")
                print("       " + verdict.feedback.replace("\n", "\n       "))
        for name in row.uncatalogued:
            print(f"     catalogued mistake {name!r}: the corpus needs exactly one mutant of that name")
    good = sum(row.ok for row in rows)
    print(
        f"{good}/{len(rows)} items discriminate: every wrong implementation loses points, every correct one keeps them"
    )
    return 0 if good == len(rows) else 1


def _keep_cases(args: argparse.Namespace) -> int:
    """Grade the reference, laid out as a submission, behind a wall, so that every item's cases are kept (an image's
    build: each of its containers then grades one submission from them)."""
    import tempfile

    from grader import import_before_grading

    import_before_grading("grader.grading.items", "grader.grading.run")
    from grader.grading import replay
    from grader.grading.items import CHECKS
    from grader.grading.run import grade, item_seed
    from grader.sandbox import SandboxUnavailable

    where = replay.folder() if replay.enabled() else None
    if where is None:
        print("grader: no folder to keep cases in: GRADER_CACHE_DIR is off, or names a folder that is not this "
              "user's alone", file=sys.stderr)  # fmt: skip
        return 1
    with tempfile.TemporaryDirectory(prefix="grader-keep-cases-") as scratch:
        folder = replay.reference_submission(Path(scratch) / "reference-submission")
        try:
            report = grade(folder, list(CHECKS), isolation="required")
        except SandboxUnavailable as err:
            print(f"grader: {err}; nothing kept", file=sys.stderr)
            return 1
    failed = [r.id for r in report.items if r.status != "passed"]
    if failed:  # the reference fails its own checks here: this machine's installation is not the one graded against
        print(f"grader: the reference does not pass {', '.join(failed)} on this machine; nothing is wrong with a "
              "submission, but these items are drawn each time", file=sys.stderr)  # fmt: skip
        return 1
    kept = [item for item in CHECKS if replay.on_disk(item, item_seed(item))]
    drawn = sorted(set(CHECKS) - set(kept))
    unkept = f"; drawn each time (a case the record's format cannot hold): {', '.join(drawn)}" if drawn else ""
    print(f"kept the cases of {len(kept)} of {len(CHECKS)} items in {where}{unkept}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    if _no_clone_here("generate"):
        return 2
    from grader.authoring import contract_doc, notebooks
    from grader.authoring.generate import generate

    for path in [*generate(), *notebooks.generate(), contract_doc.write()]:
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a name that is not UTF-8 (a student's file) prints as its escapes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = argparse.ArgumentParser(
        prog="python -m grader", description="Generative-models exercises: grade, generate."
    )
    verbs = parser.add_subparsers(dest="verb", required=True)  # each verb names its function: nothing falls through
    g = verbs.add_parser(
        "grade", help="grade a folder holding any of mle.py ... ddpm.py, or notebooks 01_mle.ipynb ... 05_ddpm.ipynb"
    )
    g.add_argument("submission")
    g.add_argument("--json", metavar="FILE", help="write {score, max_score, items} as JSON")
    g.add_argument("--gradescope", metavar="FILE", help="write Gradescope's results.json")
    g.add_argument("--html", metavar="FILE", help="write the feedback page: the grade and pictures, one HTML file")
    g.add_argument("--items", nargs="+", metavar="ID", help="grade only these items (e.g. mle.binomial_mle)")
    g.add_argument("--timeout", type=float, default=10.0, help="seconds a single graded call may take (default: 10)")
    g.add_argument("--memory-mb", type=int, default=4096, help="memory a worker may use (default: 4096)")
    wall_mode = g.add_mutually_exclusive_group()
    wall_mode.add_argument("--no-sandbox", action="store_true", help="do not use bubblewrap even where it is available")
    wall_mode.add_argument(
        "--require-sandbox", action="store_true", help="refuse to grade where bubblewrap cannot build the sandbox"
    )
    g.set_defaults(run=_grade)
    c = verbs.add_parser(
        "grade-class", help="grade every student of a folder (or an nbgrader course): results/, grades.csv, report.html"
    )
    c.add_argument("submissions", help="one entry per student (a folder or a .zip), or an nbgrader course folder")
    c.add_argument("--out", required=True, metavar="DIR", help="where results/, grades.csv and report.html go")
    c.add_argument("--workers", type=int, default=2, help="submissions graded at once on this machine (default: 2)")
    c.add_argument("--dask", metavar="ADDRESS", help="grade on this dask.distributed scheduler instead")
    c.add_argument("--force", action="store_true", help="grade again the students that already have a result")
    c.add_argument("--items", nargs="+", metavar="ID", help="grade only these items")
    c.add_argument("--timeout", type=float, default=10.0, help="seconds a single graded call may take (default: 10)")
    c.add_argument("--memory-mb", type=int, default=4096, help="memory a worker may use (default: 4096)")
    c.add_argument("--pages", action="store_true", help="also write each student's feedback page to DIR/pages/")
    c.add_argument("--assignment", default="generative_models", help="in an nbgrader course: the assignment")
    c.add_argument("--no-sandbox", action="store_true", help="grade without bubblewrap (refused by default)")
    c.set_defaults(run=_grade_class)
    student.add_check(verbs)  # the student's verbs, as their bundle offers them
    student.add_submit(verbs)
    r = verbs.add_parser("reference", help="the public checks' stored expected results")
    r.add_argument("action", choices=["regenerate", "verify"])
    r.add_argument(
        "--keep-weights", action="store_true", help="regenerate: keep the pictures' trained weights (no retraining)"
    )
    r.set_defaults(run=_reference)
    rel = verbs.add_parser(
        "release", help="the student bundle (release OUT), Gradescope's autograder (release gradescope OUT.zip) "
        "or a PrairieLearn question and its grading image (release prairielearn OUT)",
    )  # fmt: skip
    rel.add_argument("target", nargs="+", metavar="[student|gradescope|prairielearn] OUT")
    rel.add_argument("--image", default=None, help="PrairieLearn: the grading image's name, as pushed (info.json)")
    rel.add_argument(
        "--feedback-visibility", default="visible", choices=("visible", "after_published", "after_due_date", "hidden"),
        help="Gradescope: when students see each item's feedback (default: visible)",
    )  # fmt: skip
    rel.set_defaults(run=_release)
    nb = verbs.add_parser("nbgrader", help="an nbgrader course of the five notebooks")
    nb_verbs = nb.add_subparsers(dest="action", required=True)
    nb.set_defaults(run=_nbgrader)
    init = nb_verbs.add_parser("init", help="write nbgrader_config.py and source/ASSIGNMENT/*.ipynb in COURSE_DIR")
    init.add_argument("course_dir")
    init.add_argument("--assignment", default="generative_models")
    init.add_argument("--course-id", default="generative-models")
    init.add_argument(
        "--due", type=_due_date, metavar="WHEN",
        help="the assignment's due date, ISO 8601 (2026-12-15T23:59+01:00; without a zone, UTC), in the gradebook",
    )  # fmt: skip
    init.add_argument(
        "--late-percent-per-day", dest="late_percent", type=float, metavar="P",
        help="late submissions lose P%% of each notebook's score per started day late",
    )  # fmt: skip
    pre = nb_verbs.add_parser(
        "preflight", help="before autograde: rename submitted notebooks nbgrader cannot read to *.unreadable"
    )
    pre.add_argument("course_dir")
    pre.add_argument("--assignment", default="generative_models")
    regrade = nb_verbs.add_parser(
        "regrade", help="grade every submitted/STUDENT/ASSIGNMENT in isolation; list in-kernel scores that are higher"
    )
    regrade.add_argument("course_dir")
    regrade.add_argument("--assignment", default="generative_models")
    regrade.add_argument("--db", metavar="URL", help="the gradebook (default: sqlite:///COURSE_DIR/gradebook.db)")
    regrade.add_argument("--json", metavar="FILE", help="write the comparison as JSON")
    regrade.add_argument("--workers", type=int, default=2, help="submissions graded at once (default: 2)")
    regrade.add_argument("--out", metavar="DIR", help="the isolated results (default: COURSE_DIR/isolated/ASSIGNMENT)")
    regrade.add_argument("--force", action="store_true", help="grade again the students that already have a result")
    regrade.add_argument("--student", action="append", metavar="ID", help="only this student (repeat for more)")
    regrade.add_argument(
        "--use-isolated", action="store_true",
        help="make the isolated scores the grades in the gradebook (manual scores; late penalties computed again)",
    )  # fmt: skip
    regrade.add_argument("--csv", metavar="FILE", help="write an upload-ready CSV: student, grade (isolated), ...")
    regrade.add_argument(
        "--no-sandbox", action="store_true", help="grade without bubblewrap (refused by default: it is others' code)"
    )
    a = verbs.add_parser(
        "audit", help="grade each item's corpus of wrong and correct implementations: does its check discriminate?"
    )
    a.add_argument("items", nargs="*", metavar="ITEM", help="only these items (default: all)")
    a.add_argument("--timeout", type=float, default=10.0, help="seconds a single graded call may take (default: 10)")
    a.add_argument("--no-sandbox", action="store_true", help="do not use bubblewrap even where it is available")
    a.add_argument("--workers", type=int, default=2, help="processes grading the corpus at once (default: 2)")
    a.set_defaults(run=_audit)
    keep = verbs.add_parser(
        "keep-cases", help="grade the reference behind a wall and keep every item's cases (GRADER_CACHE_DIR): once, "
        "where an image is built to grade each submission in a fresh container (Gradescope, PrairieLearn)",
    )  # fmt: skip
    keep.set_defaults(run=_keep_cases)
    gen = verbs.add_parser(
        "generate", help="write exercises/ (stubs and notebooks) and the nbgrader source notebooks from solutions/"
    )
    gen.set_defaults(run=_generate)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:  # Ctrl-C, or SIGINT to the command's process group: a sentence, not a traceback
        resumable = args.verb == "grade-class" or getattr(args, "action", None) == "regrade"
        print("grader: interrupted" + (RESUME if resumable else ""), file=sys.stderr)
        return 128 + signal.SIGINT


RESUME = "; every result stored before is whole and kept: run the same command again to grade the rest"


if __name__ == "__main__":
    leave(main())
