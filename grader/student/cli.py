"""The student's command line, the one a student's bundle offers as ``python -m grader``:

    check [PATH] [--items ID ...]   the public checks (a few fixed cases per item, stored results) on a folder
                                    of modules or notebooks, or on one module or notebook
    submit [PATH] [--out ZIP]       the public checks, then a zip of exactly what is graded, to hand in

Every verb it lists works in the bundle (tests/test_public_and_release.py runs each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def check(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from grader import public
    from grader.intake.submission import near_part, part_of

    path = Path(args.path)
    known = {i["id"] for i in public.stored()["items"]}
    unknown = sorted(set(args.items or []) - known)
    if unknown:
        print(f"grader: unknown item(s) {', '.join(unknown)}; they are named like mle.binomial_mle", file=sys.stderr)
        return 2
    items = args.items
    with tempfile.TemporaryDirectory(prefix="grader-check-") as scratch:
        if path.is_file() and not path.is_symlink():  # one module or notebook: its part's items
            part = part_of(path.name) or near_part(path.name)
            if part is None:
                print(f"grader: {path.name} is not a part's module or notebook (mle.py, 01_mle.ipynb, ...)",
                      file=sys.stderr)  # fmt: skip
                return 2
            shutil.copyfile(path, Path(scratch) / path.name)
            items = items or [i for i in sorted(known) if i.split(".")[0] == part]
            path = Path(scratch)
        elif not path.is_dir():
            print(f"grader: {path} is neither a folder nor a module or notebook", file=sys.stderr)
            return 2
        results = public.check(path, items=items)
    public.print_results(results)
    return 0 if all(r.passed == r.total for r in results) else 1


def add_check(verbs: argparse._SubParsersAction) -> None:
    """The ``check`` verb, as both command lines (the student's, the instructor's) offer it."""
    c = verbs.add_parser(
        "check", help="run the public checks on a folder of modules or notebooks, or on one file (default: exercises)"
    )
    c.add_argument("path", nargs="?", default="exercises", help="a folder, or one module or notebook")
    c.add_argument("--items", nargs="+", metavar="ID", help="only these items (mle.binomial_mle ...)")
    c.set_defaults(run=check)


def submit(args: argparse.Namespace) -> int:
    """Run the public checks on PATH, then zip exactly what the grader reads of it: each part's module or
    notebook (found as ``grade`` finds them), under the names the grader expects."""
    import zipfile

    from grader import public
    from grader.intake.submission import find_parts

    folder, out = Path(args.path), Path(args.out)
    if not folder.is_dir():
        print(f"grader: {folder} is not a folder; give the folder with your modules or notebooks", file=sys.stderr)
        return 2
    parts, notes = find_parts(folder)
    if not parts:
        print(f"grader: nothing to hand in in {folder}: no mle.py ... ddpm.py, no 01_mle.ipynb ... 05_ddpm.ipynb",
              file=sys.stderr)  # fmt: skip
        return 2
    public.print_results(public.check(folder, items=None))
    names = {part: source.expected_name for part, source in parts.items()}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, source in parts.items():
            archive.write(folder / source.label, names[part])
    for note in notes:
        print(note)
    print(f"wrote {out} with {', '.join(names.values())}: hand in this file.")
    return 0


def add_submit(verbs: argparse._SubParsersAction) -> None:
    s = verbs.add_parser("submit", help="run the public checks, then zip exactly what is graded, to hand in")
    s.add_argument("path", nargs="?", default=".", help="the folder with your modules or notebooks (default: .)")
    s.add_argument("--out", default="submission.zip", help="the zip to write (default: submission.zip)")
    s.set_defaults(run=submit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description="Check your exercises.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    add_check(verbs)
    add_submit(verbs)
    args = parser.parse_args(argv)
    return int(args.run(args))
