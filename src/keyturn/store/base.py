"""The store protocol: the few operations keyturn needs from any database.

Kept small on purpose so that a new engine (PostgreSQL next to the SQLite default) is a
short module and the whole store test suite runs unchanged against each.

An engine reports its failures in ``keyturn.errors`` terms, once, at this boundary: a
database that does not answer is ``Unavailable``, a write that collides with stored state
is a ``Conflict``, an unusable URL or file is an ``InvalidValue``. No driver exception
leaves a store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, unquote_plus

from keyturn._events import Event
from keyturn._states import Status
from keyturn.record import KeyRecord

if TYPE_CHECKING:
    from keyturn._owners import Owner, OwnerUsage
    from keyturn._suggestions import Need
    from keyturn._verifications import Caller, Verification, VerificationFilter
    from keyturn.roles import Role
    from keyturn.store.verification_rows import LateRow, ShapeRow


def masked_url(url: str) -> str:
    """The URL without its password, for messages and logs: before the ``@`` whatever it
    holds (libpq reads a ``#``, ``?`` or ``@`` in it as part of it, where a URL parser
    would end the authority early), and as a query parameter (``?password=``,
    ``sslpassword``), which libpq and redis-py take too."""
    return _masking(url)[0]


def url_secrets(url: str) -> list[str]:
    """Each password ``url`` holds (``masked_url`` hides them), as written and decoded,
    longest first: a driver's message may quote one alone (libpq's "invalid
    percent-encoded token" quotes the token, not the URL)."""
    forms = {form for raw in _masking(url)[1] for form in (raw, unquote(raw), unquote_plus(raw))}
    return sorted(forms - {""}, key=len, reverse=True)


def _masking(url: str) -> tuple[str, list[str]]:
    """``masked_url`` and the secrets it masked."""
    secrets: list[str] = []
    scheme, sep, rest = url.partition("://")
    at = _userinfo_end(scheme, rest) if sep else -1
    if at >= 0 and ":" in rest[:at]:
        user, _, password = rest[:at].partition(":")
        secrets.append(password)
        rest = f"{user}:***@{rest[at + 1 :]}"
    head, mark, tail = rest.partition("?")

    def masked_pair(pair: re.Match[str]) -> str:
        if "password" not in unquote_plus(pair[1]).lower():
            return pair[0]
        secrets.append(pair[2])
        return f"{pair[1]}=***"

    # The whole tail, fragment too: libpq keeps a '#' in a query value (password=ab#cd).
    return f"{scheme}{sep}{head}{mark}{_QUERY_PASSWORD.sub(masked_pair, tail)}", secrets


def _userinfo_end(scheme: str, rest: str) -> int:
    """Where the user-and-password part of ``rest`` (the URL after ``://``) ends: its last
    ``@`` (-1: none). A SQLite URL has none (``sqlite:///tmp/a:b@c.db`` is a path), and an
    ``@`` in a query value after the path (``/db?application_name=me@host``) is not one.
    But when what comes before the first ``/`` cannot be hosts and ports (``u:S3cr`` of
    ``u:S3cr/et?x=1@db/keys``), it is a password written with a raw ``/``: the userinfo
    then runs to the last ``@`` before any query that follows it (masking is the safe
    reading of a URL no parser agrees on)."""
    if scheme.lower() == "sqlite":
        return -1
    path = rest.find("/")
    start = path
    if path >= 0 and "@" not in (first := rest[:path]) and not _HOSTS.fullmatch(first):
        start = rest.find("@", path)
    query = rest.find("?", start) if start >= 0 else -1
    if query >= 0 and _QUERY_START.match(rest, query + 1):
        return rest.rfind("@", 0, query)
    return rest.rfind("@")


_QUERY_PASSWORD = re.compile(r"([^&=]*)=([^&]*)")
_QUERY_START = re.compile(r"[A-Za-z_%][A-Za-z0-9_%]*=")
# libpq's host list: ``db``, ``db:5432``, ``[::1]:5432``, ``h1:5432,h2:5433`` (no password).
_HOST = r"(?:\[[^\]]*\]|[^:,\[\]]*)(?::[0-9]*)?"
_HOSTS = re.compile(rf"{_HOST}(?:,{_HOST})*")


EVERY_KEY = "*"
"""What a store announces (``_announce``) for a change that may touch any key, such as a
role's scopes: every cache drops everything. No key hash (hex) is ever ``*``."""

Decide = Callable[[KeyRecord], Mapping[str, Any] | None]
"""The key as stored now -> the fields to change (``None``: none); raises to refuse."""


@dataclass(frozen=True, slots=True)
class Grace:
    """How long a rotated key keeps working: until ``until``; with ``quiet_seconds``, that
    end moves later with each use, to the last use plus the quiet period, but never past
    ``most`` (``KeyAdmin.rotate``)."""

    until: datetime
    quiet_seconds: int | None = None
    most: datetime | None = None


Successor = Callable[[KeyRecord], tuple[KeyRecord, Grace]]
"""The key as stored now -> its successor and its grace; raises to refuse."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str
    action: str
    key_id: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "key_id": self.key_id,
            "details": self.details,
        }


@dataclass(frozen=True, slots=True)
class Webhook:
    """A subscription: where to send which events. ``secret`` signs them (never listed)."""

    id: str
    url: str
    events: tuple[str, ...]
    description: str | None
    created_at: datetime
    secret: str = field(repr=False)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events),
            "description": self.description,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event for one webhook, and how sending it went so far."""

    id: int
    webhook_id: str
    event_id: str
    type: str
    status: str  # pending, delivered, failed
    attempts: int
    created_at: datetime
    next_at: datetime
    last_at: datetime | None
    last_status: int | None
    last_error: str | None

    def public(self) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "webhook_id": self.webhook_id,
            "event_id": self.event_id,
            "type": self.type,
            "status": self.status,
            "attempts": self.attempts,
            "created_at": iso(self.created_at),
            "next_attempt_at": iso(self.next_at) if self.status == "pending" else None,
            "last_attempt_at": iso(self.last_at),
            "last_status": self.last_status,
            "last_error": self.last_error,
        }


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as the outbox holds it (for a week after it was dispatched)."""

    id: str
    type: str
    at: datetime
    key_id: str | None
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery taken by one worker until ``locked_until``: what to send, and where."""

    delivery: Delivery
    url: str
    secret: str = field(repr=False)
    body: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyFilter:
    """What ``list_keys`` returns: every field is optional and they combine with AND."""

    owner: str | None = None
    status: Status | None = None
    search: str | None = None  # substring of name, owner or id
    expiring_before: datetime | None = None
    prefix: str | None = None
    role: str | None = None  # holds this role
    canary: bool | None = None  # a canary key (True) or not (False)


@dataclass(frozen=True, slots=True)
class PortalGrant:
    """What a customer portal link opens (``keyturn.portal``), as stored."""

    owner: str
    policy: dict[str, Any]
    expires_at: datetime
    return_url: str | None
    created_by: str


@runtime_checkable
class KeyStore(Protocol):
    url: str

    def find_by_hash(self, key_hash: str) -> KeyRecord | None: ...

    def get(self, key_id: str) -> KeyRecord | None: ...

    def create(self, record: KeyRecord, actor: str) -> None: ...

    def create_many(self, records: Iterable[KeyRecord], actor: str) -> int: ...

    def update(
        self, key_id: str, changes: Mapping[str, Any], actor: str, action: str
    ) -> KeyRecord: ...

    def change(
        self,
        key_id: str,
        decide: Decide,
        actor: str,
        action: str,
        *,
        emit: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> KeyRecord:
        """Decide on the key as stored, under a write lock, and write: one transaction,
        with its audit entry (``details`` added to it) and, if ``emit`` names an event
        type, that event about the changed key in the outbox."""
        ...

    def rotate(self, old_id: str, successor: Successor, actor: str) -> tuple[KeyRecord, KeyRecord]:
        """Build the successor from the key as stored, under a write lock, and link the two
        only if the key is neither rotated nor revoked: one transaction, with the events
        ``key.rotated`` (the old key) and ``key.created`` (the new one). (old, new)."""
        ...

    def list_keys(
        self, filters: KeyFilter = ..., *, limit: int = 50, after: str | None = None
    ) -> Sequence[KeyRecord]: ...

    def count(self) -> int: ...

    def touch(self, last_used: Mapping[str, datetime]) -> None: ...

    def spend(self, allowance_id: str, now: datetime | None = None) -> int | None:
        """Take one credit of an allowance atomically (a key's ``allowance_id``: its own id,
        or its rotation chain's, whose keys share one count); what is left, or None if none
        was."""
        ...

    def credits_left(self, allowance_id: str, now: datetime | None = None) -> int | None:
        """What ``spend`` would find now, without spending (a check is not a use)."""
        ...

    def count_usage(self, counts: Mapping[tuple[str, str], int], day: date | None = None) -> None:
        """Add batched request counts per (key id, outcome) to the day's totals."""
        ...

    def usage(self, key_id: str, since: date | None = None) -> dict[str, int]: ...

    def audit(
        self,
        *,
        key_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[AuditEvent]: ...

    def create_portal_link(self, grant: PortalGrant, link_hash: str, actor: str) -> None:
        """Store a portal link by its hash, audited; links expired a day ago go."""
        ...

    def redeem_portal_link(self, link_hash: str, now: datetime) -> PortalGrant | None:
        """Mark the link used, if it is unused and unexpired at ``now``, and audit it:
        one statement, so a link is redeemed at most once on any number of instances."""
        ...

    # Owners' shared limits (``keyturn._owners``).

    def put_owner(
        self, owner: Owner, check: Callable[[KeyRecord], None], actor: str
    ) -> tuple[Owner, list[str]]: ...

    def get_owner(self, owner: str) -> Owner | None: ...

    def owner_usage(self, owner: str, since: date | None = None) -> OwnerUsage | None: ...

    def change_owner_keys(
        self,
        owner: str,
        decide: Callable[[KeyRecord], dict[str, Any] | None],
        actor: str,
        action: str,
        owner_action: str,
    ) -> list[KeyRecord]: ...

    def spend_owner(self, owner: str, now: datetime | None = None) -> int | None: ...

    def owner_credits_left(self, owner: str, now: datetime | None = None) -> int | None: ...

    # Roles (``keyturn.roles``): named sets of scopes that keys hold.

    def get_role(self, name: str) -> Role | None: ...

    def list_roles(self) -> list[Role]: ...

    def role_scopes(self, names: Iterable[str]) -> dict[str, frozenset[str]]:
        """The scopes of each named role that exists."""
        ...

    def put_role(self, role: Role, check: Callable[[Role | None], None], actor: str) -> Role:
        """Create or replace a role (``check`` refuses by raising); announced to every key."""
        ...

    def delete_role(self, name: str, check: Callable[[Role], None], actor: str) -> Role:
        """Delete a role no working key holds (``RoleInUse``), or ``RoleNotFound``."""
        ...

    # The verification log (``keyturn._verifications``).

    def record_verifications(self, values: list[Any], late: list[LateRow] | None = None) -> None:
        """Insert a batch of blocks (one flat list: ``verification_rows.BLOCK_COLUMNS`` in
        order for each block, the ids ``None``: the store numbers the entries, each id
        given once), and note the blocks holding entries written late (``LATE``: each
        block's place in the batch and its time)."""
        ...

    def add_verification_shapes(self, shapes: list[ShapeRow]) -> list[int]:
        """Insert what entries repeat (``verification_rows.SHAPE_COLUMNS`` in order); the
        new shapes' ids, in order."""
        ...

    def purge_verifications(self, before: datetime) -> None: ...

    def verifications(
        self, filters: VerificationFilter, *, limit: int = 100, before: int | None = None
    ) -> list[Verification]: ...

    def key_callers(self, key_id: str, since: datetime, limit: int = 20) -> list[Caller]:
        """Who used the key since ``since``, per client, method and path, latest first."""
        ...

    def key_needs(self, key_id: str, since: datetime, limit: int = 10_000) -> list[Need]:
        """What the key's accepted requests since ``since`` needed, per scopes and client."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class EventStore(Protocol):
    """The outbox and the webhooks it is delivered to (``keyturn.store.outbox``)."""

    def record_events(self, events: Iterable[Event]) -> int:
        """Write events on their own (time-driven ones, canary uses): one transaction; an
        event whose ``once`` was recorded before is skipped. How many were new."""
        ...

    def due_for_events(
        self, now: datetime, horizon: datetime, unused_before: datetime | None
    ) -> Sequence[KeyRecord]:
        """Keys a time-driven event may be due for (``keyturn._reminders``)."""
        ...

    def create_webhook(self, webhook: Webhook, actor: str) -> None: ...

    def recorded(
        self, type: str, *, key_id: str | None = None, limit: int = 100
    ) -> Sequence[RecordedEvent]:
        """Events of ``type`` still in the outbox (about ``key_id``), newest first."""
        ...

    def webhooks(self) -> Sequence[Webhook]: ...

    def delete_webhook(self, webhook_id: str, actor: str) -> bool: ...

    def deliveries(
        self, webhook_id: str, *, limit: int = 100, before: int | None = None
    ) -> Sequence[Delivery]: ...

    def dispatch(self, limit: int = 100) -> int:
        """Fan recorded events out to one delivery per subscribed webhook; how many events."""
        ...

    def claim(self, now: datetime, lease: float, limit: int = 20) -> Sequence[Claim]:
        """Take due deliveries for ``lease`` seconds; other workers skip them meanwhile."""
        ...

    def settle(
        self,
        delivery_id: int,
        *,
        status: str,
        attempts: int,
        at: datetime,
        next_at: datetime,
        last_status: int | None,
        last_error: str | None,
    ) -> None: ...

    def delivery_counts(self) -> dict[str, int]: ...
