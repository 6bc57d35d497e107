"""What is stored about a key: everything but the key itself.

The record holds the key's hash (for lookup) and its display parts (for people), so a
database dump, a log line or a ``repr`` can never hand out a usable key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from keyturn.keys import mask_parts

Status = Literal["active", "revoked", "disabled", "rotated", "expired"]
Refill = Literal["daily", "monthly"]
REFILLS: tuple[Refill, ...] = ("daily", "monthly")


def utcnow() -> datetime:
    return datetime.now(UTC)


_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")


def validate_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """Scopes as RFC 6750 §3 scope tokens; ``ValueError`` names the first bad one."""
    checked = frozenset(scopes)
    for scope in checked:
        if not _SCOPE_TOKEN.fullmatch(scope):
            raise ValueError(
                f"invalid scope {scope[:40]!r}: a scope is one word of printable ASCII "
                "without spaces, quotes or backslashes, like 'read' or 'billing:write'"
            )
    return checked


def scopes_satisfy(held: frozenset[str], required: tuple[str, ...]) -> tuple[str, ...]:
    """The required scopes that ``held`` does not grant.

    ``*`` grants everything; ``keys:*`` grants every ``keys:...`` scope.
    """
    if not required or "*" in held:
        return ()
    return tuple(
        scope
        for scope in required
        if scope not in held and f"{scope.partition(':')[0]}:*" not in held
    )


@dataclass(slots=True)
class KeyRecord:
    """One key's stored state. Treat it as immutable (use ``evolve``): cached records are
    shared between requests. Not ``frozen`` only because a frozen dataclass takes 5 µs to
    build, which a cache miss cannot afford."""

    id: str
    key_hash: str = field(repr=False)
    prefix: str
    start: str
    end: str
    name: str
    owner: str | None
    scopes: frozenset[str]
    metadata: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    disabled: bool = False
    last_used_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    grace_until: datetime | None = None
    # Metering (see ``ratelimit.py`` and ``credits.py``): limits like "100/second"; the
    # uses left (None: unlimited), refilled to ``refill_amount`` each ``refill`` period.
    rate_limits: tuple[str, ...] = ()
    credits: int | None = None
    refill: Refill | None = None
    refill_amount: int | None = None
    refilled_at: datetime | None = None
    # Unix times computed once, so the hot path compares floats instead of datetimes:
    # ``deadline`` - refused from then on for rotation or expiry (inf if never);
    # ``live_until`` - until when the ASGI fast path may accept the key from the cache alone:
    # the deadline, or -inf when revoked, disabled or metered (a metered key must reach its
    # limiter or its credit counter on every request, so it never takes the fast path).
    deadline: float = field(init=False, repr=False, compare=False)
    live_until: float = field(init=False, repr=False, compare=False)
    # The accepting decision per tuple of required scopes, built once per cached record:
    # a cache hit hands back the same immutable Decision instead of building one each time.
    accepted: dict[tuple[str, ...], Any] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    metered: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grace, expires = self.grace_until, self.expires_at
        if grace is None and expires is None:
            deadline = math.inf
        elif grace is None or expires is None:
            deadline = (grace or expires).timestamp()  # type: ignore[union-attr]
        else:
            deadline = min(grace.timestamp(), expires.timestamp())
        self.deadline = deadline
        self.metered = bool(self.rate_limits) or self.credits is not None
        blocked = self.revoked_at is not None or self.disabled or self.metered
        self.live_until = -math.inf if blocked else deadline

    @property
    def masked(self) -> str:
        return mask_parts(self.prefix, self.start, self.end)

    def status(self, now: datetime | None = None) -> Status:
        """The first reason the key would be refused, in the verifier's order, or active."""
        now = now or utcnow()
        if self.revoked_at is not None:
            return "revoked"
        if self.disabled:
            return "disabled"
        if self.grace_until is not None and now >= self.grace_until:
            return "rotated"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        """A JSON-ready view for APIs and the CLI: identity and state, never the hash."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "key": self.masked,
            "prefix": self.prefix,
            "scopes": sorted(self.scopes),
            "metadata": self.metadata,
            "status": self.status(now),
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "disabled": self.disabled,
            "last_used_at": iso(self.last_used_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "grace_until": iso(self.grace_until),
            "rate_limits": list(self.rate_limits),
            "credits": self.credits,
            "refill": (
                {"interval": self.refill, "amount": self.refill_amount} if self.refill else None
            ),
        }

    def evolve(self, **changes: Any) -> KeyRecord:
        return replace(self, **changes)
