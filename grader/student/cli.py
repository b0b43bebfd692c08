"""The student's command line, the one a student's bundle offers as ``python -m grader``:

    check [PATH]    the public checks (a few fixed cases per item, stored results) on a folder of modules

Every verb it lists works in the bundle (tests/test_public_and_release.py runs each).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def check(args: argparse.Namespace) -> int:
    from grader import public

    folder = Path(args.path)
    if not folder.is_dir():
        print(f"grader: {folder} is not a folder", file=sys.stderr)
        return 2
    results = public.check(folder)
    public.print_results(results)
    return 0 if all(r.passed == r.total for r in results) else 1


def add_check(verbs: argparse._SubParsersAction) -> None:
    """The ``check`` verb, as both command lines (the student's, the instructor's) offer it."""
    c = verbs.add_parser("check", help="run the public checks on a folder of modules (default: exercises)")
    c.add_argument("path", nargs="?", default="exercises")
    c.set_defaults(run=check)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description="Check your exercises.")
    verbs = parser.add_subparsers(dest="verb", required=True)
    add_check(verbs)
    args = parser.parse_args(argv)
    return int(args.run(args))
