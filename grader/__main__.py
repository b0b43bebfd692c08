"""python -m grader VERB ...: the grader's command line."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grader", description="Generative-models exercises: grade, generate."
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("generate", help="write exercises/ (student stubs) from solutions/")
    args = parser.parse_args(argv)
    if args.verb == "generate":
        from grader.generate import generate

        for path in generate():
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
