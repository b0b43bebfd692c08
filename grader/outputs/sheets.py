"""CSV files an instructor opens in a spreadsheet: every cell a student chose is data, never a formula.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula (and some read a
leading tab or carriage return the same way), so a student id such as ``=HYPERLINK(...)`` would run on
the instructor's machine. As OWASP recommends against CSV injection, such a text cell is written with a
leading ``'``, which spreadsheets show as text; numbers are written as they are. Every name is shown
one-to-one (grader/intake/untrusted.py, ``shown_name``), so a name that is not UTF-8 is still a row of its own.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from grader.intake.untrusted import shown_name

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    """``value`` as a safe cell: text shown one-to-one and never read as a formula; numbers unchanged."""
    if isinstance(value, bool) or not isinstance(value, str):
        return value
    text = shown_name(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """The rows as CSV text, every cell made safe."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([cell(v) for v in row] for row in rows)
    return buffer.getvalue()
