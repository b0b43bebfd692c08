"""What the grader's HTML pages share (the class report, grader/batch/page.py; the student's feedback page,
grader/pictures/page.py): Jinja2 templates that escape every value and refuse an undefined name, and
matplotlib figures inlined as base64 PNG (no timestamp or software tag, so the same figure gives the same
bytes)."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any


def template(folder: Path, name: str) -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    environment = Environment(
        loader=FileSystemLoader(folder), autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True
    )
    return environment.get_template(name)


def png(figure: Any, dpi: int = 96) -> str:
    """A matplotlib figure as base64 PNG text, for an ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode()
