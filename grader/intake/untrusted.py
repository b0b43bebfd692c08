"""Text that came from a submission, made safe to show: clipped, and without control characters.

Everything a worker sends is the submission's to choose: exception type names, messages,
file names, the strings a function returns, even the keys of a dict. Before any of it reaches
a report, a terminal or a web page it goes through ``clean_text``: control characters (ANSI
escape sequences, carriage returns, the bidirectional overrides that make text read backwards)
are dropped, and the text is clipped, so a report stays small and reads as it prints.
"""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 600  # characters of one string from a worker: an exception's message, a location
# C0 and C1 controls except tab and newline, and the Unicode format characters that reorder or hide text
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


# Lone surrogates: the bytes of a file name that is not UTF-8, as Python reads it (os.fsdecode)
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def clean_text(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` without control characters, clipped to ``limit`` characters; the bytes of a name that is not
    UTF-8 shown as ``\\xe9``, so that the text can be written anywhere (a terminal, JSON, a CSV, a page)."""
    text = _CONTROL.sub("", text[: limit * 4])  # bound the work before cleaning: the input can be 64 MB
    text = _SURROGATE.sub(_escaped, text)
    return text if len(text) <= limit else text[: limit - 4] + " ..."


# What shown_name escapes: a backslash, controls, format characters, surrogates
_SHOWN = re.compile("[\\\\\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]")


def shown_name(name: str) -> str:
    """A name a submission chose (a student id, a file name), shown whole and one-to-one: a backslash, a control
    or format character and each byte that is not UTF-8 are written as escapes (``r\\xe9sum\\xe9``,
    ``\\x1b``, ``\\u202e``), everything else as it is. Two names are shown alike only if they are alike."""
    return _SHOWN.sub(_escape_one, name)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    if "\ud800" <= char <= "\udfff":
        return _escaped(match)
    return f"\\x{ord(char):02x}" if ord(char) < 0x80 else f"\\u{ord(char):04x}"  # \\x80 up: bytes alone


def clean(value: Any, limit: int = MAX_TEXT) -> Any:
    """A decoded message with every string in it (dict keys too) cleaned; other values unchanged."""
    if isinstance(value, str):
        return clean_text(value, limit)
    if isinstance(value, list):
        return [clean(v, limit) for v in value]
    if isinstance(value, tuple):
        return tuple(clean(v, limit) for v in value)
    if isinstance(value, dict):
        return {clean_text(str(k), limit): clean(v, limit) for k, v in value.items()}
    return value
