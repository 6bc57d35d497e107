"""What an accepted request tells its caller about the key's future: when it expires, and,
during a rotation's grace period, that a successor exists and until when this key works.

A key that stops working surprises the program holding it only if nobody told it. Every face
that accepts a request (``/auth`` through the documented proxies, the ASGI middleware, the
FastAPI, Flask, Django and DRF integrations) adds these headers to the response once the end
is near, so a client, a log or ``keyturn doctor`` sees it coming:

- ``Keyturn-Key-Expires: <HTTP-date>`` - the key's expiry, once it is within ``WARNING``
  (30 days) - or, after a rotation, whatever its distance;
- ``Keyturn-Key-Rotated-Until: <HTTP-date>`` - the key was rotated: a successor exists, and
  this key is accepted until then (the end of its grace period).

Why only near the end: a key made with the default 90-day life would otherwise carry its
expiry on every response of its first two months, when nothing is to be done about it, and
each header costs the server more than a fifth of what keyturn's own check costs on a
hello-world request (the HTTP servers validate and write every header). 30 days is when
keyturn's first ``key.expiring`` reminder goes to the provider and when ``keyturn doctor``
turns the date into a warning (``key_expiry_near``); further off, the expiry is in the
verify API's answer, the dashboard and ``keyturn keys show``.

Why not RFC 8594 ``Sunset`` or RFC 9745 ``Deprecation`` with ``Link: rel="successor-version"``:
both speak of the *resource* (the URI) a response comes from. When a key expires, the
resource goes on answering every other key; a generic client that reads ``Sunset`` would
warn that the endpoint is going away, and an application that deprecates its own endpoints
sends those headers itself, where keyturn's would collide with them (a proxy adds, it does
not merge). ``successor-version`` names the successor by URI, and a successor key has none
and must never be named. So the headers are keyturn's own, ``Keyturn-Key-*`` (no ``X-``,
RFC 6648), with HTTP-dates as ``Expires``, ``Sunset`` and ``Retry-After`` carry them.

Refused requests never carry them: a refusal says nothing about the key it refused.

The values depend on the record alone (no clock), so each face builds them once per cached
record, with the moment from which they are due (``due_from``); a request compares its
clock to that one number. Times are cut to whole seconds, never rounded up: the caller is
told a moment at or before the real one.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

from keyturn.record import KeyRecord

EXPIRES_HEADER = "Keyturn-Key-Expires"
ROTATED_HEADER = "Keyturn-Key-Rotated-Until"
HEADER_NAMES = (EXPIRES_HEADER, ROTATED_HEADER)
WARNING = timedelta(days=30)
"""How close the expiry must be for ``Keyturn-Key-Expires`` to be sent: keyturn's first
``key.expiring`` reminder, and ``keyturn doctor``'s ``key_expiry_near``."""

Headers = tuple[tuple[str, str], ...]


def http_date(moment: datetime) -> str:
    """``moment`` as an RFC 9110 IMF-fixdate (``Mon, 07 Dec 2026 00:00:00 GMT``)."""
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)


def lifecycle_headers(record: KeyRecord) -> Headers:
    """The headers for a request ``record`` was accepted for (empty: nothing to tell)."""
    headers: list[tuple[str, str]] = []
    if record.expires_at is not None:
        headers.append((EXPIRES_HEADER, http_date(record.expires_at)))
    if record.replaced_by is not None and record.grace_until is not None:
        headers.append((ROTATED_HEADER, http_date(record.grace_until)))
    return tuple(headers)


def due_from(record: KeyRecord) -> float:
    """The moment (epoch seconds) from which a request accepted for ``record`` carries its
    ``lifecycle_headers``: at once during a rotation's grace period, ``WARNING`` before the
    expiry, never (``inf``) for a key with neither."""
    if record.replaced_by is not None and record.grace_until is not None:
        return -math.inf
    if record.expires_at is not None:
        return (record.expires_at - WARNING).timestamp()
    return math.inf


def as_bytes(headers: Headers) -> tuple[tuple[bytes, bytes], ...]:
    """For ASGI messages (lower-case names, as servers pass them)."""
    return tuple((n.lower().encode("ascii"), v.encode("ascii")) for n, v in headers)


def read_http_date(value: str) -> datetime | None:
    """A header's HTTP-date as an aware datetime; ``None`` when it is not one."""
    try:
        moment = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
