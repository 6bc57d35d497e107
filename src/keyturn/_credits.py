"""Usage credits: a key may carry a number of uses left, refilled daily or monthly.

Credits are spent in the store, not in a cache: one conditional ``UPDATE ... SET credits =
credits - 1 ... WHERE credits > 0 RETURNING credits`` per request, which the database
serialises per row. Any number of instances sharing the store therefore admit exactly as
many requests as there were credits, never one more. A refill is folded into the same
statement (the first spend of a new period resets the count), so there is no timer to run
and nothing to lose in a crash.

Periods are UTC calendar days and months.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from keyturn.errors import InvalidValue
from keyturn.record import REFILLS, Refill


def period_starts(now: datetime) -> tuple[datetime, datetime]:
    """The start of the current UTC day and month: a refill is due once per period."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


def next_refill(refill: Refill | None, now: datetime) -> datetime | None:
    """When spent credits come back, or ``None`` if they never do."""
    if refill is None:
        return None
    day, month = period_starts(now)
    if refill == "daily":
        return day + timedelta(days=1)
    return (month + timedelta(days=32)).replace(day=1)


def validate_credits(
    credits: int | None, refill: str | None, refill_amount: int | None
) -> tuple[int | None, Refill | None, int | None]:
    """Checked credit settings; ``InvalidValue`` says what is wrong.

    The refill amount defaults to the starting credits, and a key with a refill but no
    starting credits starts full.
    """
    if credits is not None and credits < 0:
        raise InvalidValue("credits must be zero or more", "credits")
    if refill is None:
        if refill_amount is not None:
            raise InvalidValue("a refill amount needs a refill period (daily or monthly)", "refill")
        return credits, None, None
    if refill not in REFILLS:
        raise InvalidValue(f"invalid refill {refill[:20]!r}: use daily or monthly", "refill")
    amount = credits if refill_amount is None else refill_amount
    if amount is None:
        raise InvalidValue("a refill needs an amount (or starting credits to refill to)", "refill")
    if amount < 1:
        raise InvalidValue("the refill amount must be at least 1", "refill")
    return amount if credits is None else credits, refill, amount
