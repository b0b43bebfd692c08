"""The class at a glance: ``OUT/report.html``, rebuilt from ``results/`` (never from memory of a run).

One self-contained page (plots inline as PNG, drawn with matplotlib's object API, no global
state; the page from a Jinja2 template with autoescaping, so a student's id or a feedback text is
shown, never run): the score histogram, every item's pass rate, the catalogued mistakes ranked by
how many students made them and who, the items that errored or timed out, the students whose
grading hit a limit, and the entries that gave nothing to grade.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader import __version__
from grader.batch.entries import Entry
from grader.batch.store import Store, atomic_write
from grader.grading.items import ITEMS, RECORDS
from grader.intake.untrusted import shown_name
from grader.outputs import pages

TEMPLATES = Path(__file__).with_name("templates")


def mistakes_in(result: dict[str, Any], item_id: str) -> list[str]:
    """The catalogued mistakes named in the feedback of ``item_id``, as the grader recorded them (by name)."""
    named = _classified(result, item_id).get("mistakes")
    record = RECORDS.get(item_id)
    known = {m.name for m in record.mistakes} if record is not None else set()
    return [str(m) for m in named if m in known] if isinstance(named, list) else []


def limit_hit(result: dict[str, Any], item: dict[str, Any]) -> bool:
    """The item ended at a limit of the sandbox, its time or its memory, as the grader recorded it."""
    limit = _classified(result, str(item.get("id"))).get("limit")
    return item.get("status") == "timeout" or limit in ("time", "memory")


def _classified(result: dict[str, Any], item_id: str) -> dict[str, Any]:
    classified = result.get("classified")
    entry = classified.get(item_id) if isinstance(classified, dict) else None
    return entry if isinstance(entry, dict) else {}


@dataclass
class ItemRow:
    id: str
    points: int
    graded: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    @property
    def pass_rate(self) -> float:
        return self.statuses["passed"] / self.graded if self.graded else 0.0


def _histogram(totals: list[int], maximum: int) -> str:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(7, 2.6))
    axes = figure.add_subplot()
    bins = list(range(0, maximum + 6, 5)) if maximum > 0 else [0, 1]
    axes.hist(totals, bins=bins, color="#4c72b0", edgecolor="white")
    axes.set_xlabel(f"total score (of {maximum})")
    axes.set_ylabel("students")
    axes.set_xlim(0, max(maximum, 1) + 5)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    return pages.png(figure)


def _pass_rates(rows: list[ItemRow]) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 0.22 * len(rows) + 0.8))
    axes = figure.add_subplot()
    names = [r.id for r in rows][::-1]
    rates = [100 * r.pass_rate for r in rows][::-1]
    axes.barh(names, rates, color=["#55a868" if v >= 50 else "#c44e52" for v in rates])
    axes.set_xlim(0, 100)
    axes.set_xlabel("students who passed (%)")
    axes.tick_params(axis="y", labelsize=7)
    return pages.png(figure)


def build(results: list[dict[str, Any]]) -> dict[str, Any]:
    """What the page shows, from the results alone."""
    results = [{**r, "student": shown_name(str(r.get("student")))} for r in results]  # as every output shows ids
    graded = [r for r in results if r.get("status") in ("graded", "grader-fault")]
    selection = {i["id"] for r in graded for i in r.get("items", [])}
    rows = [ItemRow(i.id, i.points) for i in ITEMS if i.id in selection]
    by_id = {row.id: row for row in rows}
    mistakes: dict[tuple[str, str], list[str]] = defaultdict(list)
    troubled: dict[str, list[tuple[str, str]]] = defaultdict(list)  # item → (student, status)
    limited: dict[str, list[str]] = defaultdict(list)  # student → items at a limit
    for result in graded:
        student = str(result.get("student"))
        for item in result.get("items", []):
            row = by_id.get(item.get("id"))
            if row is None:
                continue
            row.graded += 1
            row.statuses[item.get("status", "error")] += 1
            if item.get("status") in ("error", "timeout"):
                troubled[row.id].append((student, item["status"]))
            if limit_hit(result, item):
                limited[student].append(row.id)
            if item.get("status") != "passed":
                names = mistakes_in(result, row.id)
                if names:
                    mistakes[(row.id, " or ".join(names))].append(student)
    maximum = max((int(r.get("max_score", 0)) for r in graded), default=0)
    totals = [int(r.get("score", 0)) for r in graded]
    explanations = {(i, m.name): m.explanation for i, rec in RECORDS.items() for m in rec.mistakes}
    return {
        "version": __version__,
        "students": results,
        "graded": graded,
        "maximum": maximum,
        "mean": statistics.fmean(totals) if totals else None,
        "median": statistics.median(totals) if totals else None,
        "histogram": _histogram(totals, maximum) if totals else None,
        "rates": _pass_rates(rows) if rows else None,
        "rows": rows,
        "mistakes": sorted(
            ((item, name, explanations.get((item, name), ""), sorted(who)) for (item, name), who in mistakes.items()),
            key=lambda m: (-len(m[3]), m[0], m[1]),
        ),
        "troubled": sorted(troubled.items()),
        "limited": sorted(limited.items()),
        "failed": [r for r in results if r.get("status") == "failed"],
        "unread": [r for r in results if r.get("status") in ("empty", "unreadable")],
    }


def render(results: list[dict[str, Any]]) -> str:
    return pages.template(TEMPLATES, "class_report.html.j2").render(**build(results))


def write(store: Store, entries: list[Entry], target: Path) -> Path:
    """report.html of the class ``entries`` from the results stored in ``store`` (one per entry)."""
    atomic_write(target, render([r for r in store.of(entries) if r.get("status") != "missing"]))
    return target
