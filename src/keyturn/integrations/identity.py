"""The key a request handler sees: who is calling and what they may do, nothing secret.

Handlers get this instead of the stored ``KeyRecord`` so that no framework can leak the
key's hash into a template, a log line or a JSON response by accident.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from keyturn.lifecycle_headers import as_bytes, due_from, lifecycle_headers
from keyturn.record import KeyRecord
from keyturn.scopes import missing_scopes


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """A key that passed verification. ``masked`` (``kt_live_4fQz…9aB1``) is safe to log."""

    id: str
    name: str
    owner: str | None
    scopes: frozenset[str]  # effective: its own and its roles' (``keyturn.roles``)
    metadata: Mapping[str, Any]
    masked: str
    expires_at: datetime | None
    roles: tuple[str, ...] = ()
    # The key's lifecycle headers (``keyturn.lifecycle_headers``), which every integration
    # adds to the app's response for a request it accepted from ``lifecycle_due`` on (epoch
    # seconds: ``lifecycle_headers.due_from``); built once per cached record.
    lifecycle_all: tuple[tuple[str, str], ...] = field(default=(), repr=False, compare=False)
    # The same, as an ASGI server takes them: encoded once, not on every request.
    lifecycle_all_asgi: tuple[tuple[bytes, bytes], ...] = field(
        default=(), repr=False, compare=False
    )
    lifecycle_due: float = field(default=math.inf, repr=False, compare=False)

    @classmethod
    def from_record(cls, record: KeyRecord) -> VerifiedKey:
        # A read-only view: a handler must not be able to edit the cached record's metadata.
        return cls(
            id=record.id,
            name=record.name,
            owner=record.owner,
            scopes=record.granted,
            metadata=MappingProxyType(record.metadata),
            masked=record.masked,
            expires_at=record.expires_at,
            roles=record.roles,
            lifecycle_all=(lifecycle := lifecycle_headers(record)),
            lifecycle_all_asgi=as_bytes(lifecycle),
            lifecycle_due=due_from(record),
        )

    @property
    def lifecycle(self) -> tuple[tuple[str, str], ...]:
        """The lifecycle headers for a response sent now: none while the end is far."""
        return self.lifecycle_all if time.time() >= self.lifecycle_due else ()

    def has_scopes(self, *required: str) -> bool:
        """Whether the key grants all of ``required`` (wildcards as the verifier reads them).
        A route's own scopes, held as written, are one set comparison: the usual case of
        ``Security(auth, scopes=[...])``, on every request."""
        return self.scopes.issuperset(required) or not missing_scopes(self.scopes, required)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for handlers that echo the caller's identity."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "scopes": sorted(self.scopes),
            "roles": list(self.roles),
            "metadata": dict(self.metadata),
            "key": self.masked,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
        }
