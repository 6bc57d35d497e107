"""Lifecycle events: what happened to a key, as webhooks receive it.

An event is written to the store's outbox in the transaction of the change it describes
(``keyturn.store.outbox``), so a change that commits always has its event and a change
that is rolled back never does; a worker delivers it later (``keyturn._delivery``). Its body
is fixed when it is recorded, so every attempt sends and signs the same bytes.

The data of an event is the key's public view (``KeyRecord.public``): identity and state,
never the key, its hash or anything that would let a receiver use it.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from keyturn.record import KeyRecord, utcnow

CREATED: Final = "key.created"
UPDATED: Final = "key.updated"
ROTATED: Final = "key.rotated"
REVOKED: Final = "key.revoked"
DISABLED: Final = "key.disabled"
ENABLED: Final = "key.enabled"
EXPIRING: Final = "key.expiring"
EXPIRED: Final = "key.expired"
GRACE_ENDING: Final = "key.grace_ending"
CREDITS_LOW: Final = "key.credits_low"
LEAKED: Final = "key.leaked"
CANARY_USED: Final = "key.canary_used"
UNUSED: Final = "key.unused"

TYPES: Final = (
    CREATED,
    UPDATED,
    ROTATED,
    REVOKED,
    DISABLED,
    ENABLED,
    EXPIRING,
    EXPIRED,
    GRACE_ENDING,
    CREDITS_LOW,
    LEAKED,
    CANARY_USED,
    UNUSED,
)
ANY: Final = "*"


def new_event_id() -> str:
    """``msg_`` + the time in milliseconds + 64 random bits, in hex: unique, and in the
    order events are made, so the outbox's unique index grows at its end instead of at a
    random page for each event (a bulk creation writes thousands in one transaction)."""
    return f"msg_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(8)}"


# One encoder for every body: ``json.dumps`` with options builds a new one per call.
_encode_body = json.JSONEncoder(separators=(",", ":"), sort_keys=True).encode


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its type, the key it is about and what to say. ``once`` names an
    occasion (``key.expiring:key_1:7d:<expiry>``) that is recorded at most once, however
    many instances notice it."""

    type: str
    data: dict[str, Any]
    key_id: str | None = None
    once: str | None = None
    id: str = field(default_factory=new_event_id)
    at: datetime = field(default_factory=utcnow)

    def body(self) -> str:
        """The JSON a webhook receives: ``{"type", "timestamp", "data"}``."""
        payload = {"type": self.type, "timestamp": self.at.isoformat(), "data": self.data}
        return _encode_body(payload)


def about(kind: str, record: KeyRecord, *, once: str | None = None, **extra: Any) -> Event:
    """An event about a key: its public view, and what else the event says."""
    data = record.public()
    data.update(extra)
    return Event(kind, data, record.id, once)
