"""The graded items and the total, derived from the check records (grader/checks/): nothing is written twice.

For the instructor's side (grading, generation, nbgrader). A student's bundle has no records: it
reads the same list from the stored public results (``grader.public.stored_items``), which
``python -m grader reference regenerate`` writes from these records and ``verify`` compares.
"""

from __future__ import annotations

from collections.abc import Iterable

from grader.checks import Check, Record, records
from grader.contract import Item

RECORDS: dict[str, Record] = records()
ITEMS: tuple[Item, ...] = tuple(Item(r.item, r.points) for r in RECORDS.values())
BY_ID: dict[str, Item] = {item.id: item for item in ITEMS}
MAX_SCORE = sum(item.points for item in ITEMS)
CHECKS: dict[str, Check] = {i: r for i, r in RECORDS.items() if isinstance(r, Check)}  # graded on cases


def any_trains(item_ids: Iterable[str]) -> bool:
    """Whether grading these items trains a model somewhere: then the zygote, and the grading process, take the
    optimizer warm-up first (``drivers.warm_up``)."""
    return any(RECORDS[i].trains for i in item_ids)


__all__ = ["BY_ID", "CHECKS", "ITEMS", "MAX_SCORE", "RECORDS", "Item", "any_trains"]
