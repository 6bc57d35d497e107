"""Human durations (``30s``, ``15m``, ``12h``, ``90d``, ``2w``, ``never``) for CLI and config."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*")


def parse_duration(text: str) -> timedelta:
    """Raise ``ValueError`` naming the accepted forms when ``text`` is not a duration."""
    match = _DURATION.fullmatch(text.lower())
    if not match or int(match.group(1)) == 0:
        raise ValueError(
            f"invalid duration {text!r}: use a positive number and a unit, "
            "like 30s, 15m, 12h, 90d or 2w"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def parse_expiry(text: str) -> timedelta | None:
    """A duration, or ``None`` for ``never``."""
    return None if text.strip().lower() == "never" else parse_duration(text)
