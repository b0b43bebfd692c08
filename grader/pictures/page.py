"""A student's feedback page: one self-contained HTML file (pictures inline as PNG) with the grade, every item's
verdict and feedback, and the pictures of grader/pictures/scenes.py drawn with matplotlib.

The page is built from a Jinja2 template with autoescaping, so a feedback text that quotes a student's
output is shown, never run, and it holds no script: it opens the same from a disk, an LMS or Gradescope.
Drawing is matplotlib's object API (no global state); a picture whose drawing fails is left out with a
sentence, never the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader import __version__
from grader.outputs import pages
from grader.pictures.scenes import Picture

TEMPLATES = Path(__file__).with_name("templates")
REFERENCE_STYLE = {"color": "0.55", "linewidth": 2.6}
STUDENT_STYLE = {"color": "tab:red", "linewidth": 1.4, "linestyle": "--"}
SAME = 1e-4  # largest absolute difference under which the page says a picture matches the reference's


@dataclass
class Shown:
    """A picture as the template shows it."""

    title: str
    caption: str
    png: str | None  # base64
    verdict: str  # matches, or differs by how much, or why the student's side is missing


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _image(ax: Any, values: np.ndarray, low: float, high: float) -> None:
    ax.imshow(np.clip(values.reshape(8, 8), low, high), cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _rows(picture: Picture) -> list[tuple[str, list[np.ndarray]]]:
    """(label, arrays) for the reference and, when there is one, the student's side."""
    rows = [("reference", picture.reference)]
    if picture.student is not None:
        rows.append(("yours", picture.student))
    return rows


def draw_schedules(picture: Picture) -> Any:
    fig = _figure(8.0, 5.0)
    axes = fig.subplots(2, 2, sharex=True)
    for column, name in enumerate(("linear", "cosine")):
        for label, arrays in _rows(picture):
            betas = arrays[column]
            with np.errstate(all="ignore"):
                alpha_bar = np.cumprod(1.0 - betas)
            style = REFERENCE_STYLE if label == "reference" else STUDENT_STYLE
            axes[0, column].plot(betas, label=label, **style)
            axes[1, column].plot(alpha_bar, label=label, **style)
        axes[0, column].set_title(f"{name}_beta_schedule")
        axes[1, column].set_xlabel("t")
    axes[0, 0].set_ylabel("β_t")
    axes[1, 0].set_ylabel("ᾱ_t")
    axes[0, 0].legend(frameon=False)
    return fig


def draw_q_sample(picture: Picture) -> Any:
    from grader.pictures.scenes import Q_SAMPLE_T

    rows = _rows(picture)
    fig = _figure(1.3 * (len(Q_SAMPLE_T) + 1), 1.4 * len(rows))
    axes = fig.subplots(len(rows), len(Q_SAMPLE_T) + 1, squeeze=False)
    for r, (label, arrays) in enumerate(rows):
        _image(axes[r, 0], picture.extra["x_0"], -1.0, 1.0)
        axes[r, 0].set_ylabel(label)
        for c, t in enumerate(Q_SAMPLE_T, start=1):
            _image(axes[r, c], arrays[0][c - 1], -1.0, 1.0)
            if r == 0:
                axes[r, c].set_title(f"t = {t}", fontsize=9)
    axes[0, 0].set_title("x_0", fontsize=9)
    return fig


def draw_samples(picture: Picture) -> Any:
    rows = _rows(picture)
    fig = _figure(3.2 * len(rows), 3.4)
    panels = fig.subfigures(1, len(rows), squeeze=False)[0]
    for panel, (label, arrays) in zip(panels, rows, strict=True):
        panel.suptitle(label)
        axes = panel.subplots(4, 4)
        for k, ax in enumerate(axes.flat):
            _image(ax, arrays[0][k], -1.0, 1.0)
    return fig


def draw_vae(picture: Picture) -> Any:
    lines = [("digits", picture.extra["x"])]
    for label, arrays in _rows(picture):
        lines.append((f"{label}: reconstructions", arrays[0]))
    for label, arrays in _rows(picture):
        lines.append((f"{label}: samples", arrays[1]))
    columns = picture.extra["x"].shape[0]
    fig = _figure(1.0 * columns + 1.5, 1.05 * len(lines))
    axes = fig.subplots(len(lines), columns, squeeze=False)
    for r, (label, values) in enumerate(lines):
        for c in range(columns):
            _image(axes[r, c], values[c], 0.0, 1.0)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    return fig


def draw_discriminator(picture: Picture) -> Any:
    x = picture.extra["x"]
    fig = _figure(7.0, 4.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    for label, arrays in _rows(picture):
        top.plot(x, arrays[0], label=label, **(REFERENCE_STYLE if label == "reference" else STUDENT_STYLE))
    top.axhline(0.5, color="0.8", linewidth=0.8)
    top.set_ylabel("D*(x)")
    top.legend(frameon=False)
    bottom.fill_between(x, picture.extra["p_data"], alpha=0.35, label="p_data")
    bottom.fill_between(x, picture.extra["p_model"], alpha=0.35, label="p_model")
    bottom.set_xlabel("x")
    bottom.legend(frameon=False)
    return fig


DRAW = {
    "schedules": draw_schedules,
    "q_sample": draw_q_sample,
    "samples": draw_samples,
    "vae": draw_vae,
    "discriminator": draw_discriminator,
}


def difference(picture: Picture) -> float | None:
    """The largest absolute difference between the student's arrays and the reference's: nan where either
    has nan and the other a number, inf where one is infinite and the other not (nan beside nan counts 0)."""
    if picture.student is None:
        return None
    gap = 0.0
    for s, r in zip(picture.student, picture.reference, strict=True):
        one_nan = np.isnan(s) != np.isnan(r)
        if one_nan.any():
            return math.nan
        with np.errstate(invalid="ignore"):  # inf - inf: same-sign infinities, counted 0 below
            apart = np.abs(np.where(np.isnan(s), 0.0, s) - np.where(np.isnan(r), 0.0, r))
        apart = np.where(np.isinf(s) & np.isinf(r) & (np.sign(s) == np.sign(r)), 0.0, apart)
        gap = max(gap, float(apart.max(initial=0.0)))
    return gap


def verdict(picture: Picture) -> str:
    if picture.problem:
        return picture.problem[0].upper() + picture.problem[1:]
    gap = difference(picture)
    if gap is not None and gap <= SAME:
        return "Yours matches the reference's."
    if gap is not None and math.isnan(gap):
        mine = any(np.isnan(s).any() for s in picture.student or ())
        where = (
            "yours has nan (not a number) where the reference's has"
            if mine
            else "the reference's has nan where yours has"
        )
        return f"Yours differs from the reference's: {where} numbers."
    return f"Yours differs from the reference's: the largest difference is {gap:.3g}."


def shown(picture: Picture) -> Shown:
    try:
        png = pages.png(DRAW[picture.name](picture), dpi=90)
        words = verdict(picture)
    except Exception as exc:  # a drawing that fails costs its picture, never the page
        png, words = None, f"This picture could not be drawn ({type(exc).__name__})."
    return Shown(picture.title, picture.caption, png, words)


def render(report: Any, pictures: list[Picture], submission: str) -> str:
    """The page for a run.Report and its pictures."""
    return pages.template(TEMPLATES, "feedback.html.j2").render(
        report=report, pictures=[shown(p) for p in pictures], submission=submission, version=__version__
    )


def fragment(report: Any, summary: str) -> str:
    """The pictures as an HTML fragment after ``summary`` (text, escaped): Gradescope's top-level output, whose
    tests already show every item's verdict and feedback."""
    return pages.template(TEMPLATES, "fragment.html.j2").render(
        summary=summary, pictures=[shown(p) for p in report.pictures]
    )
