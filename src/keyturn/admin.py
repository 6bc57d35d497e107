"""The admin layer: every change to a key, with its rules, validation and defaults, once.

Faces translate; this decides. The admin API turns JSON into a ``NewKey`` or a
``KeyChange``, the dashboard an HTML form, the CLI its flags, the library its keyword
arguments; each calls the same operation here with an ``Actor`` (``keyturn.actor``) and
maps the same errors (``keyturn.errors``) in its own way. What is checked here and nowhere
else:

- **validation** - names and owners are printable text, scopes are scope tokens, metadata
  is a small JSON object without NUL characters, times lie in a range every store engine
  and Python can hold (``EARLIEST`` to ``LATEST``), prefixes are the deployment's;
- **defaults** - a new key lives ``DEFAULT_LIFETIME`` (90 days), a rotation's old key
  works for ``DEFAULT_GRACE`` (24 hours);
- **grant rules** - the actor's scopes, life and allowance bound what it may do
  (``Actor.require`` / ``ensure_*``);
- **state rules** - a revoked key cannot be enabled, disabled or rotated, a key is rotated
  once (``Conflict``).

Every change is one store transaction with its audit entry, decided on the key as stored
under the transaction's write lock (``KeyStore.change``, ``KeyStore.rotate``): a change that
is refused changes nothing, and concurrent changes to one key are decided one after the
other, each on what the previous one left (of 20 rotations at once, one wins). Later
operations (owners with shared limits, roles, IP allow-lists, webhooks written to an outbox
in the change's transaction) are sibling methods here.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import secrets
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import Any, Final, cast

from keyturn import _events as events
from keyturn._addresses import checked_networks, within_networks
from keyturn._credits import validate_credits
from keyturn._redact import mask_text
from keyturn._suggestions import MAX_DAYS, Suggestion, suggest
from keyturn._verifications import READ_SCOPE as LOG_READ
from keyturn._verifications import KeyCallers
from keyturn.actor import Actor, Allowance
from keyturn.cache import KeyCache
from keyturn.errors import Conflict, InvalidValue, KeyNotFound, NotPermitted, UnknownRole
from keyturn.keys import (
    KEY_AS_TEXT,
    KeyDefect,
    display_parts,
    generate_key,
    hash_key,
    holds_key,
    mask,
    parse_key,
)
from keyturn.record import KeyRecord, utcnow
from keyturn.scopes import missing_scopes, validate_roles, validate_scopes
from keyturn.store.base import (
    AuditEvent,
    Decide,
    EventStore,
    Grace,
    KeyFilter,
    KeyStore,
    RecordedEvent,
)

DEFAULT_LIFETIME = timedelta(days=90)
DEFAULT_GRACE = timedelta(hours=24)
# A usage-aware grace (``rotate`` with ``quiet``) lasts at most this long unless told.
DEFAULT_GRACE_MAX = timedelta(days=7)
# The shortest quiet period, in multiples of the lag with which a use reaches every
# instance (the usage flush, 5 s by default, plus the cache's 1 s): that lag is the rule's
# slack, so it is kept to a quarter of the period at most (24 s with the defaults).
QUIET_LAGS = 4
MAX_LIFETIME = timedelta(days=100 * 366)  # a century
MAX_GRACE = timedelta(days=366)
_SECOND = timedelta(seconds=1)
# Every time keyturn stores lies here: Unix time is not negative, and a year of margin
# below Python's datetime.max keeps any UTC offset or display arithmetic from overflowing.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
MAX_TEXT_LENGTH = 200
MAX_SCOPES = 64
MAX_ROLES = 16
MAX_METADATA_BYTES = 8192
MAX_METADATA_DEPTH = 8
MAX_RATE_LIMITS = 10
MAX_CREDITS = 10**12  # exactly representable in JSON Schema, and more than any plan needs
# Printable text: at least one visible character, no control characters, C1 included
# (they break logs and terminals: U+009B is a terminal's CSI, as ESC [ is; and an owner
# travels in the X-Keyturn-Owner header).
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
_TEXT = re.compile(TEXT_PATTERN)

# The scope each operation needs; faces authenticate callers with the same names.
READ: Final = "keys:read"
WRITE: Final = "keys:write"
VERIFY: Final = "keys:verify"
AUDIT: Final = "audit:read"

# What a reported leak does to the key (``leak_action``): revoke it, disable it (an operator
# may enable it again), or only say so (audit entry and ``key.leaked``).
LEAK_ACTIONS: Final = ("revoke", "disable", "notify")


class Unset(Enum):
    """Left out: keep what the key has (``KeyChange``), or use the default (``NewKey``)."""

    UNSET = "unset"

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly issued key. ``key`` is the only copy there will ever be: show it once."""

    key: str
    record: KeyRecord

    def __repr__(self) -> str:
        return f"IssuedKey(key={mask(self.key)!r}, id={self.record.id!r})"


@dataclass(frozen=True, slots=True)
class NewKey:
    """What a new key should be; left-out values take the defaults. ``allowed_ips``: the
    client addresses and CIDR blocks it may be used from (empty: anywhere).

    ``expires_in=None``: never expires; left out: ``DEFAULT_LIFETIME``, cut short to the
    acting key's own life. ``roles``: names of defined roles (``keyturn.roles``), whose
    scopes the key holds besides its own. ``rate_limits`` like ``["100/second", "10000/day"]``;
    ``credits``: uses the key has (``None``: unlimited), refilled to ``refill_amount``
    (default: the starting credits) every ``refill`` (``"daily"`` or ``"monthly"``, UTC).
    """

    name: str
    scopes: Collection[str] = ()
    expires_in: timedelta | Unset | None = UNSET
    owner: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    prefix: str | None = None
    rate_limits: Collection[str] = ()
    credits: int | None = None
    refill: str | None = None
    refill_amount: int | None = None
    allowed_ips: Collection[str] = ()
    canary: bool = False
    roles: Collection[str] = ()


@dataclass(frozen=True, slots=True)
class KeyChange:
    """The fields to change; ``UNSET`` ones stay as they are. ``owner=None`` and
    ``expires_at=None`` clear them, ``credits=None`` makes the key unlimited (and drops its
    refill), ``rate_limits=()`` removes its limits, ``allowed_ips=()`` its address
    restriction, ``roles=()`` its roles. Setting ``credits`` or ``refill`` starts a
    new refill period."""

    name: str | Unset = UNSET
    owner: str | Unset | None = UNSET
    scopes: Collection[str] | Unset = UNSET
    metadata: Mapping[str, Any] | Unset = UNSET
    expires_at: datetime | Unset | None = UNSET
    rate_limits: Collection[str] | Unset = UNSET
    credits: int | Unset | None = UNSET
    refill: str | Unset | None = UNSET
    refill_amount: int | Unset | None = UNSET
    allowed_ips: Collection[str] | Unset = UNSET
    roles: Collection[str] | Unset = UNSET

    def given(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if getattr(self, name) is not UNSET
        }


@dataclass(frozen=True, slots=True)
class LifetimePolicy:
    """How long the deployment lets a key live (settings ``max_lifetime``,
    ``require_expiry``): a new or changed expiry beyond ``max_lifetime`` from now - never
    expiring among them - or a key without an expiry where one is required, is refused
    naming the limit; the default lifetime and a rotation's successor are cut to it."""

    max_lifetime: timedelta | None = None
    require_expiry: bool = False

    def check(self, expires_at: datetime | None, now: datetime, field: str) -> None:
        limit = self.max_lifetime
        if expires_at is None and (self.require_expiry or limit is not None):
            raise InvalidValue(
                "this deployment requires every key to expire"
                + (f" within {_span(limit)} (max_lifetime)" if limit else " (require_expiry)"),
                field,
            )
        if limit is not None and expires_at is not None and expires_at - now > limit:
            raise InvalidValue(
                f"this deployment lets a key live at most {_span(limit)} (max_lifetime): "
                f"expire it by {(now + limit).strftime('%Y-%m-%d %H:%M:%S UTC')}",
                field,
            )

    def longest(self) -> timedelta | None:
        """The longest life the policy allows (``None``: no expiry at all)."""
        if self.max_lifetime is not None:
            return self.max_lifetime
        return MAX_LIFETIME if self.require_expiry else None

    def cap(self, expires_at: datetime | None, now: datetime) -> datetime | None:
        if self.max_lifetime is None:
            return expires_at
        latest = now + self.max_lifetime
        return latest if expires_at is None or expires_at > latest else expires_at


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


# -- validation: one function per kind of value ------------------------------------------


def checked_text(value: object, field: str, *, optional: bool = False) -> str | None:
    """A name or owner: printable text with a visible character, at most 200 characters."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidValue("expected text", field)
    text = value.strip()
    if not text or len(text) > MAX_TEXT_LENGTH or not _TEXT.match(text):
        raise InvalidValue(
            f"expected 1 to {MAX_TEXT_LENGTH} characters of printable text (no control "
            "characters)",
            field,
        )
    if holds_key(text):
        raise InvalidValue(KEY_AS_TEXT, field)
    return text


def checked_scopes(scopes: object) -> frozenset[str]:
    if isinstance(scopes, str) or not isinstance(scopes, Iterable):
        raise InvalidValue("expected a list of scopes", "scopes")
    checked = validate_scopes(scopes)
    if len(checked) > MAX_SCOPES:
        raise InvalidValue(f"a key holds at most {MAX_SCOPES} scopes", "scopes")
    return checked


def checked_roles(roles: object) -> tuple[str, ...]:
    checked = validate_roles(roles)  # type: ignore[arg-type]
    if len(checked) > MAX_ROLES:
        raise InvalidValue(f"a key holds at most {MAX_ROLES} roles", "roles")
    return checked


def checked_metadata(value: object) -> dict[str, Any]:
    """A JSON object of at most 8 KiB, nesting at most 8 levels, with finite numbers and
    no NUL character anywhere (PostgreSQL cannot store one; SQLite would)."""
    if not isinstance(value, Mapping):
        raise InvalidValue("expected a JSON object", "metadata")
    metadata = dict(value)
    _check_json(metadata, 0)
    if len(json.dumps(metadata)) > MAX_METADATA_BYTES:
        raise InvalidValue(
            f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON", "metadata"
        )
    return metadata


def _check_json(value: object, depth: int) -> None:
    if depth > MAX_METADATA_DEPTH:
        raise InvalidValue(f"metadata nests deeper than {MAX_METADATA_DEPTH} levels", "metadata")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidValue("metadata text may not hold a NUL character", "metadata")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidValue("metadata text must be valid Unicode", "metadata") from None
        if holds_key(value):
            raise InvalidValue(KEY_AS_TEXT, "metadata")
    elif isinstance(value, bool) or value is None or isinstance(value, int):
        return
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue("metadata numbers must be finite (no NaN or Infinity)", "metadata")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidValue("metadata keys must be text", "metadata")
            _check_json(key, depth + 1)
            _check_json(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_json(item, depth + 1)
    else:
        raise InvalidValue(f"metadata cannot hold a {type(value).__name__}", "metadata")


def checked_time(value: object, field: str) -> datetime:
    """An aware moment from ``EARLIEST`` to ``LATEST`` (in UTC): every engine stores it,
    and reading it back, rotating it or showing it in any time zone cannot overflow."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidValue("expected a date-time with a UTC offset", field)
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError):
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        raise InvalidValue(
            f"expected a time from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC)",
            field,
        )
    return moment


def checked_period(value: object, field: str, low: timedelta, high: timedelta) -> timedelta:
    if not isinstance(value, timedelta) or not low <= value <= high:
        raise InvalidValue(
            f"expected from {_span(low)} to {_span(high)}", field
        )
    return value


def _span(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    if seconds and seconds % 86_400 == 0:
        return f"{seconds // 86_400} days"
    return f"{seconds} seconds"


def checked_rate_limits(values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidValue("expected a list of rate limits", "rate_limits")
    texts = tuple(values)
    if len(texts) > MAX_RATE_LIMITS:
        raise InvalidValue(f"a key has at most {MAX_RATE_LIMITS} rate limits", "rate_limits")
    if not texts:
        return ()
    from keyturn._ratelimit import normalize_rate_limits  # ``limits`` only when used

    try:
        return normalize_rate_limits(texts)
    except InvalidValue as exc:
        raise exc.at("rate_limits") from None


def _credits(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CREDITS:
        raise InvalidValue(
            f"credits must be a whole number, zero or more (at most {MAX_CREDITS})", "credits"
        )
    return value


def checked_metering(
    credits: object, refill: object, refill_amount: object
) -> tuple[int | None, Any, int | None]:
    amount = refill_amount
    if amount is not None and (
        isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_CREDITS
    ):
        raise InvalidValue(
            f"the refill amount must be a whole number, at least 1 (at most {MAX_CREDITS})",
            "refill",
        )
    if refill is not None and not isinstance(refill, str):
        raise InvalidValue("expected daily or monthly", "refill")
    try:
        return validate_credits(_credits(credits), refill, amount)
    except InvalidValue as exc:
        raise exc.at("refill") from None


# -- the operations ----------------------------------------------------------------------


_EVENTS: Final = {
    "key.update": events.UPDATED,
    "key.revoke": events.REVOKED,
    "key.disable": events.DISABLED,
    "key.enable": events.ENABLED,
}


def _reported(text: object, limit: int) -> str:
    """A reporter's words as the audit log and the ``key.leaked`` event keep them: any key
    in them masked (the place a key was found may quote it, and with ``leak_action =
    notify`` that key still works), no NUL (PostgreSQL refuses one), then cut."""
    return mask_text(str(text)).replace("\x00", "\ufffd")[:limit]


class KeyAdmin:
    """Create, change, rotate, revoke, disable and enable keys, and read them, for an actor.

    Built by ``KeyManager`` over its store, cache and verifier (for the pepper and the
    accepted prefixes); ``default_prefix`` is the first accepted one unless given.
    """

    def __init__(
        self,
        store: KeyStore,
        cache: KeyCache,
        *,
        prefixes: Sequence[str],
        pepper: bytes | None = None,
        default_prefix: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        lifetime: LifetimePolicy | None = None,
        usage_lag: timedelta = timedelta(seconds=6),
    ) -> None:
        """``usage_lag``: how late a use of a key can reach the store and every instance
        (the usage flush interval plus the cache TTL), which bounds the quiet periods of
        usage-aware rotations from below (``QUIET_LAGS`` of it, at least a second)."""
        self.store = store
        self.shortest_quiet = max(_SECOND, QUIET_LAGS * usage_lag)
        self.cache = cache
        self.lifetime = lifetime or LifetimePolicy()
        self.prefixes = tuple(prefixes)
        self.pepper = pepper
        self.default_prefix = default_prefix or self.prefixes[0]
        self.clock = clock
        # Creates bounded by an owner's ``max_keys`` count and insert one at a time.
        self._counting = threading.Lock()

    # -- reads ------------------------------------------------------------------------------

    def get(self, actor: Actor, key_id: str) -> KeyRecord:
        actor.require(READ)
        record = self._get(key_id)
        actor.ensure_sees(record)
        return record

    def list_keys(
        self,
        actor: Actor,
        filters: KeyFilter | None = None,
        *,
        limit: int = 50,
        after: str | None = None,
    ) -> Sequence[KeyRecord]:
        actor.require(READ)
        filters = filters or KeyFilter()
        if filters.owner is not None:  # trimmed, as keys store it and /v1/owners/{owner} reads
            filters = replace(filters, owner=filters.owner.strip())
        if actor.owner is not None:
            if filters.owner not in (None, actor.owner):
                return []
            filters = replace(filters, owner=actor.owner)
        if filters.expiring_before is not None:
            # A bound, not a stored time: one outside what keyturn stores is clamped to it
            # (before 1970 no key expires; after 9998 every expiring key does).
            bound = filters.expiring_before
            if not isinstance(bound, datetime) or bound.utcoffset() is None:
                checked_time(bound, "expiring_before")
            if bound.year < 1970:
                bound = EARLIEST
            elif bound.year >= LATEST.year:
                bound = LATEST
            filters = replace(filters, expiring_before=min(max(bound, EARLIEST), LATEST))
        if filters.role is not None:
            checked_roles([filters.role])
        return self.store.list_keys(filters, limit=limit, after=after)

    def audit(
        self,
        actor: Actor,
        *,
        key_id: str | None = None,
        by: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[AuditEvent]:
        """The audit log, newest first; ``by`` is the acting name to filter on."""
        actor.require(AUDIT)
        return self.store.audit(
            key_id=key_id, actor=by, action=action, limit=limit, before=before
        )

    def canary_uses(
        self, actor: Actor, key_id: str | None = None, *, limit: int = 100
    ) -> Sequence[RecordedEvent]:
        """The uses of canary keys (of ``key_id``), newest first: each ``key.canary_used``
        event (client, method, path, user agent) the outbox still holds (a week after its
        dispatch). An actor bound to an owner names one of its own keys. Who used a key is
        the verification log's to tell, so it needs the log's scope too, as ``callers``."""
        actor.require(READ)
        actor.require(LOG_READ)
        if actor.owner is not None:
            if key_id is None:
                raise NotPermitted("name one of the owner's canary keys")
            actor.ensure_sees(self._get(key_id))
        events_store = cast(EventStore, self.store)
        return events_store.recorded(events.CANARY_USED, key_id=key_id, limit=limit)

    def usage(self, actor: Actor, key_id: str, since: date | None = None) -> dict[str, int]:
        """Requests per outcome for a key, as flushed so far (see ``_usage.py``)."""
        actor.require(READ)
        if actor.owner is not None:
            actor.ensure_sees(self._get(key_id))
        return self.store.usage(key_id, since)

    def callers(
        self, actor: Actor, key_id: str, since: datetime | None = None, limit: int = 20
    ) -> KeyCallers:
        """Who used the key (the verification log: client address, method, path, requests,
        last seen), since ``since``; by default, for a rotated key, since its rotation (who
        still uses the old key), else over the last day. Client addresses are the log's, so
        they need its scope (``verifications:read``) beside ``keys:read``, on every face."""
        actor.require(READ)
        actor.require(LOG_READ)
        record = self._get(key_id)
        actor.ensure_sees(record)
        if since is None:
            successor = self.store.get(record.replaced_by) if record.replaced_by else None
            since = successor.created_at if successor else self.clock() - timedelta(days=1)
        return KeyCallers(key_id, since, tuple(self.store.key_callers(key_id, since, limit)))

    def suggest(self, actor: Actor, key_id: str, days: int = 30) -> Suggestion:
        """The scopes the key's requests needed and the address ranges they came from over
        the last ``days`` whole days (UTC, today included): ``keyturn._suggestions``. Made
        of the verification log (client addresses included), so it needs the log's scope too.
        """
        actor.require(READ)
        actor.require(LOG_READ)
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
            raise InvalidValue(f"expected a whole number of days from 1 to {MAX_DAYS}", "days")
        record = self._get(key_id)
        actor.ensure_sees(record)
        today = self.clock().astimezone(UTC).date()
        first = today - timedelta(days=days - 1)
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        counted = self.store.usage(key_id, first).get("valid", 0)
        needs = self.store.key_needs(key_id, since)
        return suggest(
            key_id, record.scopes, record.allowed_ips, needs, counted, days=days, since=since,
            by_roles=record.role_scopes,
        )  # fmt: skip

    def narrow(
        self,
        actor: Actor,
        key_id: str,
        *,
        scopes: Collection[str] | None = None,
        allowed_ips: Collection[str] | None = None,
        reason: Mapping[str, Any] | None = None,
    ) -> KeyRecord:
        """Take scopes away from the key and confine it to fewer addresses, in one audited
        change (``key.narrow``, the event ``key.updated``; ``reason`` goes in the audit
        entry): every scope given must be one the key holds now (directly or by a
        wildcard), every network inside its current ``allowed_ips`` (when it has any), so
        this can only narrow a key. ``None``: that part stays."""
        actor.require(WRITE)

        def decide(current: KeyRecord) -> dict[str, Any] | None:
            actor.ensure_manages(current)
            changes: dict[str, Any] = {}
            if scopes is not None:
                narrowed = checked_scopes(scopes)
                wider = missing_scopes(current.scopes, sorted(narrowed))
                if wider:
                    raise InvalidValue(
                        f"key {current.id} does not hold {', '.join(wider)}: narrowing only "
                        "takes scopes away (use an update to grant scopes)",
                        "scopes",
                    )
                changes["scopes"] = narrowed
            if allowed_ips is not None:
                networks = checked_networks(allowed_ips)
                if not networks:
                    raise InvalidValue(
                        "an empty allow-list lets a key be used from anywhere: narrowing "
                        "gives at least one address or network",
                        "allowed_ips",
                    )
                if not within_networks(networks, current.allowed_ips):
                    raise InvalidValue(
                        f"narrowing only confines key {current.id} further: every network "
                        "must lie inside its current allowed_ips (use an update to widen)",
                        "allowed_ips",
                    )
                actor.ensure_confined(networks, f"key {current.id}")
                changes["allowed_ips"] = networks
            return changes or None

        changed = self.store.change(
            key_id, decide, actor.name, "key.narrow", emit=events.UPDATED, details=reason
        )
        self.cache.invalidate(changed.key_hash)
        return changed

    def working_keys(self, actor: Actor) -> int:
        """How many working keys (active or disabled) the owner acting holds, counted to one
        past its ``max_keys``: what that bound counts. A rotated key's successor takes its
        place; a revoked or expired key frees one."""
        actor.require(READ)
        if actor.owner is None:
            raise InvalidValue("working keys are counted for an owner", "owner")
        return self._working(actor)

    def _working(self, actor: Actor) -> int:
        limit = (actor.max_keys or 0) + 1
        return sum(
            len(self.store.list_keys(KeyFilter(owner=actor.owner, status=s), limit=limit))
            for s in ("active", "disabled")
        )

    def _get(self, key_id: str) -> KeyRecord:
        record = self.store.get(key_id)
        if record is None:
            raise KeyNotFound(key_id)
        return record

    # -- creating -------------------------------------------------------------------------

    def create(self, actor: Actor, new: NewKey) -> IssuedKey:
        issued = self.draft(actor, new)
        if actor.max_keys is None:
            self.store.create(issued.record, actor.name)
        else:
            with self._counting:
                self._ensure_room(actor)
                self.store.create(issued.record, actor.name)
        self.cache.invalidate(issued.record.key_hash)
        return issued

    def _ensure_room(self, actor: Actor) -> None:
        """The owner holds fewer working keys than ``max_keys``."""
        bound = actor.max_keys or 0
        held = self._working(actor)
        if held >= bound:
            raise NotPermitted(
                f"owner {actor.owner} holds {held} working keys, the most allowed is {bound}; "
                "revoke one first"
            )

    def create_many(self, actor: Actor, news: Iterable[NewKey]) -> list[IssuedKey]:
        """Several keys in one transaction (an import, a bulk load); for an actor bounded
        by a count of keys, one by one, each counted."""
        if actor.max_keys is not None:
            return [self.create(actor, new) for new in news]
        issued = [self.draft(actor, new) for new in news]
        self.store.create_many([i.record for i in issued], actor.name)
        return issued

    def draft(self, actor: Actor, new: NewKey) -> IssuedKey:
        """The key ``new`` describes, checked against every rule but not stored."""
        actor.require(WRITE)
        scopes = checked_scopes(new.scopes)
        roles = checked_roles(new.roles)
        role_scopes = self._role_scopes(roles)
        actor.ensure_grants(scopes | role_scopes)
        now = self.clock()
        if new.expires_in is UNSET:
            expires_at = actor.cap(self.lifetime.cap(now + DEFAULT_LIFETIME, now), now)
        elif new.expires_in is None:
            expires_at = None
        else:
            lifetime = checked_period(new.expires_in, "expires_in", _SECOND, MAX_LIFETIME)
            expires_at = now + lifetime
        self.lifetime.check(expires_at, now, "expires_in")
        actor.ensure_outlived(expires_at, "a key", now)
        credits, refill, amount = checked_metering(new.credits, new.refill, new.refill_amount)
        allowance = Allowance(checked_rate_limits(new.rate_limits), credits, refill, amount)
        actor.ensure_within(allowance, "a key")
        allowed_ips = checked_networks(new.allowed_ips)
        actor.ensure_confined(allowed_ips, "a key")
        return self._issue(
            name=checked_text(new.name, "name") or "",
            owner=actor.owner_for(checked_text(new.owner, "owner", optional=True)),
            scopes=scopes,
            metadata=checked_metadata(new.metadata),
            prefix=self._prefix(new.prefix),
            expires_at=expires_at,
            allowance=allowance,
            now=now,
            allowed_ips=allowed_ips,
            canary=new.canary is True,
            roles=roles,
            role_scopes=role_scopes,
        )

    def _role_scopes(self, roles: tuple[str, ...]) -> frozenset[str]:
        """The scopes the named roles grant together; ``UnknownRole`` names any that is not
        defined. (The store checks again in the write's transaction, against a deletion
        made meanwhile.)"""
        if not roles:
            return frozenset()
        defined = self.store.role_scopes(roles)
        missing = tuple(name for name in roles if name not in defined)
        if missing:
            raise UnknownRole(missing)
        return frozenset().union(*defined.values())

    def _prefix(self, prefix: object) -> str:
        if prefix is None:
            return self.default_prefix
        if prefix not in self.prefixes:
            raise InvalidValue(
                f"prefix {str(prefix)[:40]!r} is not accepted by this deployment, so its keys "
                f"would be refused; use {' or '.join(self.prefixes)} (or add it to the "
                "prefixes setting, KEYTURN_PREFIXES)",
                "prefix",
            )
        return str(prefix)

    def _issue(
        self,
        *,
        name: str,
        owner: str | None,
        scopes: frozenset[str],
        metadata: dict[str, Any],
        prefix: str,
        expires_at: datetime | None,
        allowance: Allowance,
        now: datetime,
        replaces: KeyRecord | None = None,
        refilled_at: datetime | None = None,
        allowed_ips: tuple[str, ...] = (),
        canary: bool = False,
        roles: tuple[str, ...] = (),
        role_scopes: frozenset[str] = frozenset(),
    ) -> IssuedKey:
        """A new key; ``replaces``: the key it succeeds, whose allowance it shares."""
        key = generate_key(prefix)
        key_prefix, start, end = display_parts(key)
        if allowance.refill is not None and refilled_at is None:
            refilled_at = now  # the starting credits are this period's
        record = KeyRecord(
            id=new_key_id(),
            key_hash=hash_key(key, self.pepper),
            prefix=key_prefix,
            start=start,
            end=end,
            name=name,
            owner=owner,
            scopes=scopes,
            metadata=metadata,
            created_at=now,
            expires_at=expires_at,
            replaces=None if replaces is None else replaces.id,
            rate_limits=allowance.rate_limits,
            credits=allowance.credits,
            refill=allowance.refill,
            refill_amount=allowance.refill_amount,
            refilled_at=refilled_at,
            allowance_id="" if replaces is None else replaces.allowance_id,
            allowed_ips=allowed_ips,
            canary=canary,
            roles=roles,
            role_scopes=role_scopes,
        )
        return IssuedKey(key, record)

    # -- changing -------------------------------------------------------------------------

    def update(self, actor: Actor, key_id: str, change: KeyChange) -> KeyRecord:
        actor.require(WRITE)

        def decide(current: KeyRecord) -> dict[str, Any]:
            actor.ensure_manages(current)
            return self._changes(actor, current, change)

        return self._change(key_id, decide, actor, "key.update")

    def _changes(self, actor: Actor, current: KeyRecord, change: KeyChange) -> dict[str, Any]:
        given = change.given()
        changes: dict[str, Any] = {}
        if "name" in given:
            changes["name"] = checked_text(given["name"], "name")
        if "owner" in given:
            changes["owner"] = actor.owner_for(checked_text(given["owner"], "owner", optional=True))
        if "scopes" in given:
            changes["scopes"] = checked_scopes(given["scopes"])
            actor.ensure_grants(changes["scopes"])
        if "roles" in given:
            changes["roles"] = checked_roles(given["roles"])
            actor.ensure_grants(self._role_scopes(changes["roles"]))
        if "metadata" in given:
            changes["metadata"] = checked_metadata(given["metadata"])
        if "expires_at" in given:
            expires = given["expires_at"]
            changes["expires_at"] = None if expires is None else checked_time(expires, "expires_at")
            self.lifetime.check(changes["expires_at"], self.clock(), "expires_at")
            actor.ensure_outlived(changes["expires_at"], f"key {current.id}", self.clock())
        if "allowed_ips" in given:
            changes["allowed_ips"] = checked_networks(given["allowed_ips"])
            actor.ensure_confined(changes["allowed_ips"], f"key {current.id}")
        metering = self._metering_changes(current, given)
        if metering:
            merged = Allowance.of(current.evolve(**metering))
            actor.ensure_within(merged, f"key {current.id}")
            changes.update(metering)
        return changes

    def _metering_changes(self, current: KeyRecord, given: Mapping[str, Any]) -> dict[str, Any]:
        """Rate limits as given; credit settings merged with the key's and checked as a
        whole (``credits=None`` drops the refill; a refill amount is kept unless given)."""
        changes: dict[str, Any] = {}
        if "rate_limits" in given:
            changes["rate_limits"] = checked_rate_limits(given["rate_limits"])
        credit_fields = {"credits", "refill", "refill_amount"} & set(given)
        if not credit_fields:
            return changes
        credits = given.get("credits", current.credits)
        refill = given.get("refill", current.refill)
        if "credits" in given and credits is None and "refill" not in given:
            refill = None
        amount = given.get("refill_amount")
        if "refill_amount" not in given and refill is not None:
            amount = current.refill_amount
        merged = checked_metering(credits, refill, amount)
        changes.update(zip(("credits", "refill", "refill_amount"), merged, strict=True))
        if "credits" in given or "refill" in given:
            changes["refilled_at"] = self.clock() if merged[1] is not None else None
        return changes

    def revoke(self, actor: Actor, key_id: str) -> KeyRecord:
        """Permanent. Revoking a revoked key changes nothing and succeeds."""
        actor.require(WRITE)

        def decide(record: KeyRecord) -> dict[str, Any] | None:
            actor.ensure_revokes(record)
            if record.revoked_at is not None:
                return None
            return {"revoked_at": self.clock()}

        return self._change(key_id, decide, actor, "key.revoke")

    def disable(self, actor: Actor, key_id: str) -> KeyRecord:
        return self._set_disabled(actor, key_id, True)

    def enable(self, actor: Actor, key_id: str) -> KeyRecord:
        """Re-enabling hands the key its life and allowance back: within the actor's."""
        return self._set_disabled(actor, key_id, False)

    def _set_disabled(self, actor: Actor, key_id: str, disabled: bool) -> KeyRecord:
        actor.require(WRITE)

        def decide(record: KeyRecord) -> dict[str, Any] | None:
            actor.ensure_manages(record)
            if record.revoked_at is not None:
                raise Conflict(
                    f"key {key_id} is revoked; revoked keys cannot be enabled or disabled"
                )
            if not disabled:
                actor.ensure_outlived(record.expires_at, f"key {key_id}", self.clock())
                actor.ensure_within(Allowance.of(record), f"key {key_id}")
                actor.ensure_confined(record.allowed_ips, f"key {key_id}")
            return None if record.disabled == disabled else {"disabled": disabled}

        action = "key.disable" if disabled else "key.enable"
        return self._change(key_id, decide, actor, action)

    def rotate(
        self,
        actor: Actor,
        key_id: str,
        grace: timedelta | None = None,
        *,
        quiet: timedelta | None = None,
    ) -> IssuedKey:
        """A successor with the same name, owner, scopes, metadata, lifetime and allowance;
        the old key keeps working for ``grace`` (default 24 hours; 0: it stops now), then
        answers ``key_rotated``. The two share one allowance (credits left, rate-limit
        windows) for as long as both work, so a rotation never hands out an allowance
        twice. The successor's life is cut short to the actor's own. Of several rotations
        of one key at once, one wins and the others are a ``Conflict``.

        ``quiet``: a usage-aware grace. The old key works until nobody has used it for
        ``quiet`` (at least ``shortest_quiet``), counted from the rotation and then from each
        use, and ``grace`` (default 7 days, at least ``quiet``) is the most it works. Uses
        are the last-used times the usage recorder flushes (``usage.py``), written by every
        instance, so the rule holds across instances; a use reaches the store up to one
        flush interval late, which is the rule's slack (``store.sql.extend_quiet_grace``).

        Either grace ends at the old key's own expiry at the latest: it is refused then
        anyway, and what the rotation stores is what every face shows."""
        actor.require(WRITE)
        if quiet is None:
            grace = checked_period(
                DEFAULT_GRACE if grace is None else grace, "grace", timedelta(0), MAX_GRACE
            )
        else:
            if isinstance(quiet, timedelta) and quiet < self.shortest_quiet:
                raise InvalidValue(
                    f"a quiet period must be at least {_span(self.shortest_quiet)}: "
                    f"{QUIET_LAGS} times how late a use reaches every instance "
                    "(usage_flush_interval + cache_ttl), which is the rule's slack",
                    "grace_until_quiet",
                )
            quiet = checked_period(quiet, "grace_until_quiet", self.shortest_quiet, MAX_GRACE)
            most = DEFAULT_GRACE_MAX if grace is None else grace
            if isinstance(most, timedelta) and most < quiet:
                raise InvalidValue(
                    f"the longest grace ({_span(most)}) is shorter than the quiet period "
                    f"({_span(quiet)}): make it at least as long",
                    "grace_max",
                )
            grace = checked_period(most, "grace_max", quiet, MAX_GRACE)
        issued: list[IssuedKey] = []

        def successor(old: KeyRecord) -> tuple[KeyRecord, Grace]:
            issued.append(self._successor(actor, old))
            start = issued[-1].record.created_at

            def ending(at: datetime) -> datetime:
                # The old key is refused once it expires, whatever its grace: every face
                # (API, dashboard, CLI, the grace_ending webhook) must name that earlier end.
                return at if old.expires_at is None else min(at, old.expires_at)

            if quiet is None:
                return issued[-1].record, Grace(ending(start + grace))
            return issued[-1].record, Grace(
                ending(start + quiet), math.ceil(quiet.total_seconds()), ending(start + grace)
            )

        old, _ = self.store.rotate(key_id, successor, actor.name)
        self.cache.invalidate(old.key_hash)
        return issued[-1]

    def _successor(self, actor: Actor, old: KeyRecord) -> IssuedKey:
        """The key that replaces ``old`` (read under the rotation's lock), by the rules."""
        actor.ensure_manages(old)
        if old.revoked_at is not None:
            raise Conflict(f"key {old.id} is revoked; only a live key can be rotated")
        if old.replaced_by is not None:
            raise Conflict(
                f"key {old.id} was already rotated to {old.replaced_by}: rotate "
                f"{old.replaced_by} instead, or revoke {old.id} to stop it now"
            )
        allowance = Allowance.of(old)
        actor.ensure_within(allowance, f"the successor of key {old.id}")
        actor.ensure_shares(old.owner, f"the successor of key {old.id}")
        actor.ensure_confined(old.allowed_ips, f"the successor of key {old.id}")
        now = self.clock()
        expires_at = None
        if old.expires_at is not None:
            lifetime = old.expires_at - old.created_at
            expires_at = now + lifetime if lifetime < LATEST - now else LATEST
        return self._issue(
            name=old.name,
            owner=old.owner,
            scopes=old.scopes,
            metadata=dict(old.metadata),
            prefix=old.prefix,
            expires_at=actor.cap(self.lifetime.cap(expires_at, now), now),
            allowance=allowance,
            now=now,
            replaces=old,
            refilled_at=old.refilled_at,
            allowed_ips=old.allowed_ips,
            canary=old.canary,
            roles=old.roles,
            role_scopes=old.role_scopes,
        )

    def disable_unused(self, actor: Actor, key_id: str, unused_since: datetime) -> KeyRecord:
        """Disable a key not used since before ``unused_since`` (the lifetime policy's
        ``disable_unused_after``), with the event ``key.unused``; a key used meanwhile, or
        already disabled or revoked, is left as it is."""
        actor.require(WRITE)

        def decide(record: KeyRecord) -> dict[str, Any] | None:
            last = record.last_used_at or record.created_at
            if record.revoked_at is not None or record.disabled or last >= unused_since:
                return None
            return {"disabled": True}

        details = {"reason": "unused", "unused_since": unused_since.isoformat()}
        changed = self.store.change(
            key_id, decide, actor.name, "key.disable", emit=events.UNUSED, details=details
        )
        self.cache.invalidate(changed.key_hash)
        return changed

    # -- leaks ----------------------------------------------------------------------------

    def leaked(
        self,
        actor: Actor,
        key: str,
        *,
        action: str = "revoke",
        url: str | None = None,
        source: str | None = None,
    ) -> KeyRecord | None:
        """A report that ``key`` was found in the open: apply ``action`` (``LEAK_ACTIONS``)
        to the key it names, with an audit entry (``key.leak``: the action, url and source)
        and the event ``key.leaked``, in one transaction. ``None`` when the value is no key
        of this deployment (a false positive); a key already revoked is reported again and
        stays revoked."""
        actor.require(WRITE)
        if action not in LEAK_ACTIONS:
            raise InvalidValue(f"expected one of {', '.join(LEAK_ACTIONS)}", "leak_action")
        if not isinstance(key, str) or isinstance(
            parse_key(key.strip(), frozenset(self.prefixes)), KeyDefect
        ):
            return None
        found = self.store.find_by_hash(hash_key(key.strip(), self.pepper))
        if found is None:
            return None
        now = self.clock()

        def decide(record: KeyRecord) -> dict[str, Any]:
            if action == "revoke" and record.revoked_at is None:
                return {"revoked_at": now}
            if action == "disable" and record.revoked_at is None and not record.disabled:
                return {"disabled": True}
            return {}  # audited and announced all the same

        details = {
            "leak_action": action,
            "url": None if url is None else _reported(url, 2048),
            "source": None if source is None else _reported(source, 200),
        }
        changed = self.store.change(
            found.id, decide, actor.name, "key.leak", emit=events.LEAKED, details=details
        )
        self.cache.invalidate(changed.key_hash)
        return changed

    def _change(self, key_id: str, decide: Decide, actor: Actor, action: str) -> KeyRecord:
        """``decide`` on the key as stored, and write, in one store transaction with its
        audit entry and its event (``key.update`` -> ``key.updated``) in the outbox."""
        changed = self.store.change(key_id, decide, actor.name, action, emit=_EVENTS[action])
        self.cache.invalidate(changed.key_hash)
        return changed


class AsyncKeyAdmin:
    """``KeyAdmin`` for ``async`` code: each operation runs in a worker thread, so the
    event loop never waits on the store. The same operations, explicitly, and typed."""

    def __init__(self, admin: KeyAdmin) -> None:
        self.sync = admin

    async def get(self, actor: Actor, key_id: str) -> KeyRecord:
        return await asyncio.to_thread(self.sync.get, actor, key_id)

    async def list_keys(
        self,
        actor: Actor,
        filters: KeyFilter | None = None,
        *,
        limit: int = 50,
        after: str | None = None,
    ) -> Sequence[KeyRecord]:
        return await asyncio.to_thread(
            self.sync.list_keys, actor, filters, limit=limit, after=after
        )

    async def canary_uses(
        self, actor: Actor, key_id: str | None = None, *, limit: int = 100
    ) -> Sequence[RecordedEvent]:
        return await asyncio.to_thread(
            lambda: self.sync.canary_uses(actor, key_id, limit=limit)
        )

    async def audit(
        self,
        actor: Actor,
        *,
        key_id: str | None = None,
        by: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[AuditEvent]:
        return await asyncio.to_thread(
            lambda: self.sync.audit(
                actor, key_id=key_id, by=by, action=action, limit=limit, before=before
            )
        )

    async def callers(
        self, actor: Actor, key_id: str, since: datetime | None = None, limit: int = 20
    ) -> KeyCallers:
        return await asyncio.to_thread(self.sync.callers, actor, key_id, since, limit)

    async def suggest(self, actor: Actor, key_id: str, days: int = 30) -> Suggestion:
        return await asyncio.to_thread(self.sync.suggest, actor, key_id, days)

    async def narrow(
        self,
        actor: Actor,
        key_id: str,
        *,
        scopes: Collection[str] | None = None,
        allowed_ips: Collection[str] | None = None,
        reason: Mapping[str, Any] | None = None,
    ) -> KeyRecord:
        return await asyncio.to_thread(
            lambda: self.sync.narrow(
                actor, key_id, scopes=scopes, allowed_ips=allowed_ips, reason=reason
            )
        )

    async def working_keys(self, actor: Actor) -> int:
        return await asyncio.to_thread(self.sync.working_keys, actor)

    async def usage(self, actor: Actor, key_id: str, since: date | None = None) -> dict[str, int]:
        return await asyncio.to_thread(self.sync.usage, actor, key_id, since)

    async def create(self, actor: Actor, new: NewKey) -> IssuedKey:
        return await asyncio.to_thread(self.sync.create, actor, new)

    async def update(self, actor: Actor, key_id: str, change: KeyChange) -> KeyRecord:
        return await asyncio.to_thread(self.sync.update, actor, key_id, change)

    async def rotate(
        self,
        actor: Actor,
        key_id: str,
        grace: timedelta | None = None,
        *,
        quiet: timedelta | None = None,
    ) -> IssuedKey:
        return await asyncio.to_thread(
            lambda: self.sync.rotate(actor, key_id, grace, quiet=quiet)
        )

    async def revoke(self, actor: Actor, key_id: str) -> KeyRecord:
        return await asyncio.to_thread(self.sync.revoke, actor, key_id)

    async def disable_unused(
        self, actor: Actor, key_id: str, unused_since: datetime
    ) -> KeyRecord:
        return await asyncio.to_thread(self.sync.disable_unused, actor, key_id, unused_since)

    async def leaked(
        self,
        actor: Actor,
        key: str,
        *,
        action: str = "revoke",
        url: str | None = None,
        source: str | None = None,
    ) -> KeyRecord | None:
        return await asyncio.to_thread(
            lambda: self.sync.leaked(actor, key, action=action, url=url, source=source)
        )

    async def disable(self, actor: Actor, key_id: str) -> KeyRecord:
        return await asyncio.to_thread(self.sync.disable, actor, key_id)

    async def enable(self, actor: Actor, key_id: str) -> KeyRecord:
        return await asyncio.to_thread(self.sync.enable, actor, key_id)
