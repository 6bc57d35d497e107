"""A key's requests per UTC day and outcome, read from the store's usage counters.

The core counts requests per key, day and outcome in batches (``usage`` table, written off
the hot path); the store answers totals by outcome since a given day. The dashboard needs a
series, so it asks for the totals since each of the last N days and takes differences:
N + 1 indexed reads of a table with one row per key, day and outcome. A store that counts
nothing (no ``usage`` method) gives ``None``, and the page says so instead of drawing zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import Any

UsageSince = Callable[..., Mapping[str, int]]


def usage_reader(store: Any) -> UsageSince | None:
    """The store's ``usage(key_id, since=...)``, or ``None`` if this store has none."""
    reader = getattr(store, "usage", None)
    return reader if callable(reader) else None


def daily_usage(
    reader: UsageSince, key_id: str, days: int, today: date
) -> tuple[list[date], dict[str, list[int]]]:
    """The last ``days`` days up to ``today`` and, per outcome, the count on each day."""
    span = [today - timedelta(days=days - 1 - i) for i in range(days)]
    since = [dict(reader(key_id, since=day)) for day in [*span, today + timedelta(days=1)]]
    outcomes = sorted({outcome for totals in since for outcome in totals})
    counts = {
        outcome: [
            max(since[i].get(outcome, 0) - since[i + 1].get(outcome, 0), 0) for i in range(days)
        ]
        for outcome in outcomes
    }
    return span, counts
