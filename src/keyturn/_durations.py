"""Human durations (``30s``, ``15m``, ``12h``, ``90d``, ``2w``, ``never``) for CLI and config."""

from __future__ import annotations

import re
from datetime import timedelta

from keyturn.errors import InvalidValue

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*")
_ZERO = re.compile(r"\s*0+\s*[smhdw]?\s*")
LONGEST = timedelta(days=100 * 366)  # beyond a century, date arithmetic overflows


def parse_duration(text: str, *, zero: bool = False) -> timedelta:
    """A positive duration (or, with ``zero``, also ``0`` / ``0s``); ``InvalidValue``
    naming the accepted forms otherwise."""
    if zero and _ZERO.fullmatch(text):
        return timedelta(0)
    match = _DURATION.fullmatch(text.lower())
    seconds = int(match.group(1)) * _UNITS[match.group(2)] if match else 0
    if not match or seconds == 0:
        raise InvalidValue(
            f"invalid duration {text[:40]!r}: use a {'' if zero else 'positive '}number and a "
            f"unit, like {'0, ' if zero else ''}30s, 15m, 12h, 90d or 2w"
        )
    if seconds > LONGEST.total_seconds():
        raise InvalidValue(f"invalid duration {text[:40]!r}: at most {LONGEST.days} days")
    return timedelta(seconds=seconds)


def parse_expiry(text: str) -> timedelta | None:
    """A duration, or ``None`` for ``never``."""
    return None if text.strip().lower() == "never" else parse_duration(text)
