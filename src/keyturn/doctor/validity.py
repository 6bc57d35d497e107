"""Is the key still valid by the clock? Its age, and a JWT's ``exp``/``nbf``/``iat``.

Both are known offline: a key's creation date (given by the user, who knows their rotation
policy) and a JWT's claims (readable by anyone; the signature is the server's business).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from keyturn.doctor.report import Finding, finding
from keyturn.doctor.shape import jwt_parts

DEFAULT_MAX_AGE_DAYS = 90
EXPIRING_WITHIN = timedelta(days=14)
CLOCK_LEEWAY = timedelta(seconds=60)  # issuers' and clients' clocks differ by seconds


def parse_created_at(text: str) -> datetime:
    """An ISO 8601 date or time; a value without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--created-at {text!r} is not an ISO 8601 date or time (e.g. 2025-01-31 or "
            "2025-01-31T09:30:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))


def _count(count: int, unit: str) -> str:
    return f"{count} {unit}{'s' if count != 1 else ''}"


def span(delta: timedelta) -> str:
    """A duration for people: '3 days', '4 days 23 hours', '5 hours', '40 seconds'.

    The largest unit, and the next one when it is not nought, both rounded down: one unit
    alone said "expires in 4 days" of a key made for 5 days a second before."""
    seconds = abs(int(delta.total_seconds()))
    for (unit, size), (smaller, smaller_size) in pairwise(_UNITS):
        if seconds >= size:
            said = _count(seconds // size, unit)
            rest = seconds % size // smaller_size
            return f"{said} {_count(rest, smaller)}" if rest else said
    return _count(seconds, "second")


def check_age(
    created_at: datetime, max_age_days: int, now: datetime
) -> tuple[str, list[Finding]]:
    """(summary, findings) for a key created at ``created_at`` under a maximum age."""
    limit = created_at + timedelta(days=max_age_days)
    age = now - created_at
    summary = f"created {_when(created_at)}, {span(age)} ago; maximum age {max_age_days} days"
    if now >= limit:
        detail = (
            f"the key was created {span(age)} ago ({_when(created_at)}); its maximum age of "
            f"{max_age_days} days was reached {span(now - limit)} ago, on {_when(limit)}"
        )
        return summary, [finding("key_expired_by_age", detail)]
    if limit - now <= EXPIRING_WITHIN:
        detail = (
            f"the key reaches its maximum age of {max_age_days} days in {span(limit - now)}, "
            f"on {_when(limit)}"
        )
        return summary, [finding("key_expiring_soon", detail)]
    return summary + f", {span(limit - now)} left", []


def _claim_time(payload: dict[str, Any], claim: str) -> datetime | None:
    value = payload.get(claim)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def check_jwt(key: str, now: datetime) -> tuple[str, list[Finding]] | None:
    """(summary, findings) for a JWT's time claims; ``None`` when ``key`` is not a JWT."""
    parts = jwt_parts(key)
    if parts is None:
        return None
    payload = parts[1]
    exp, nbf, iat = (_claim_time(payload, c) for c in ("exp", "nbf", "iat"))
    found: list[Finding] = []
    if exp is not None and now >= exp:
        found.append(
            finding("token_expired", f"the token's exp is {_when(exp)}, {span(now - exp)} ago")
        )
    if nbf is not None and nbf > now + CLOCK_LEEWAY:
        found.append(
            finding(
                "token_not_yet_valid",
                f"the token's nbf is {_when(nbf)}, {span(nbf - now)} from now",
            )
        )
    if iat is not None and iat > now + CLOCK_LEEWAY:
        found.append(
            finding(
                "token_not_yet_valid",
                f"the token's iat (issued at) is {_when(iat)}, {span(iat - now)} in the "
                "future: this machine's clock or the issuer's is wrong",
            )
        )
    claims = [f"{c} {_when(t)}" for c, t in (("iat", iat), ("nbf", nbf), ("exp", exp)) if t]
    summary = "JSON Web Token; " + (", ".join(claims) if claims else "no time claims")
    return summary, found
