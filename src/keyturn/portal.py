"""The customer portal's core: an owner's policy, and the single-use links that open it.

An API's customers manage their own keys in a portal (``keyturn.ui.portal``) or through a
host app's router (``keyturn.integrations.fastapi.portal_router``). Either way they act as an
``Actor`` confined to one owner (``OwnerPolicy.actor``), and every change goes through the
admin layer (``keyturn.admin``) like any other: the policy is a set of actor bounds, not
rules of a face.

- **scopes**: the scopes the owner may give its keys (a subset of these, each time);
- **max_lifetime** and **require_expiry**: every key expires, at most this long after it
  is made or changed (a rotation's successor included); a ``max_lifetime`` bounds every
  key, so with one set every key expires, whatever ``require_expiry`` says;
- **max_keys**: how many working keys (active or disabled) the owner may hold at once.

A link (``POST /v1/portal/sessions``, scope ``portal:write``) holds a random token of 256
bits (``ktp_`` and 43 base62 characters, which the server's log masker masks as a key);
the store keeps only its SHA-256. It opens a portal session once: redeeming it is one
conditional ``UPDATE`` (not used yet, not expired), so two visitors racing with the same
link cannot both get in, on any number of instances.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from keyturn import _webhooks as webhooks
from keyturn._durations import parse_duration
from keyturn._owners import OWNERS_WRITE
from keyturn._verifications import READ_SCOPE as LOG_READ
from keyturn.actor import Actor
from keyturn.admin import (
    AUDIT,
    DEFAULT_LIFETIME,
    MAX_LIFETIME,
    READ,
    VERIFY,
    WRITE,
    checked_period,
    checked_scopes,
    checked_text,
)
from keyturn.errors import InvalidValue
from keyturn.keys import KEY_AS_TEXT, url_holds_key
from keyturn.record import KeyRecord, utcnow
from keyturn.roles import ROLES_READ, ROLES_WRITE
from keyturn.scopes import missing_scopes
from keyturn.store.base import KeyStore, PortalGrant

PORTAL_WRITE: Final = "portal:write"
PATH: Final = "/portal"  # where ``keyturn serve`` serves the portal's pages
DEFAULT_MAX_KEYS = 5
MAX_MAX_KEYS = 1000
DEFAULT_TTL = timedelta(minutes=15)
MIN_TTL = timedelta(seconds=10)
MAX_TTL = timedelta(hours=24)
MAX_URL_LENGTH = 2000
# The most keys a portal lists (newest first; revoked and expired ones too).
LIST_LIMIT = 200
TOKEN_PREFIX = "ktp_"  # noqa: S105 - a prefix, not a secret
TOKEN_LENGTH = 43  # base62: 256 bits
_ALPHABET = string.digits + string.ascii_letters
# Shaped like a key (a prefix, "_", base62), so the server's log masker masks it too.
_TOKEN = re.compile(r"ktp_[0-9A-Za-z]{43}")
# A link's ``created_by`` naming a key (``keyturn.admin``'s ids), not the operator.
_KEY_ID = re.compile(r"key_[0-9a-f]{16}")
# What a portal visitor may do: read and change its owner's keys, nothing else.
OPERATIONS = frozenset({READ, WRITE})
# keyturn's own scopes: what its admin API, dashboard and verify API check. A customer's
# key is for the deployment's API; one holding any of these would reach every owner's keys.
KEYTURN_SCOPES: Final = (
    READ, WRITE, VERIFY, AUDIT, PORTAL_WRITE, LOG_READ, ROLES_READ, ROLES_WRITE,
    webhooks.READ, webhooks.WRITE, OWNERS_WRITE,
)


@dataclass(frozen=True, slots=True)
class OwnerPolicy:
    """What an owner may do with its own keys (see the module's docstring)."""

    scopes: frozenset[str] = frozenset()
    max_keys: int = DEFAULT_MAX_KEYS
    max_lifetime: timedelta | None = DEFAULT_LIFETIME
    require_expiry: bool = True

    def __post_init__(self) -> None:
        """A policy never hands out keyturn's own scopes, nor a wildcard granting one
        (``*``, ``keys:*``): the link's maker may hold them, but the owner's keys would then
        read, change or open the portal of every other owner's keys."""
        for scope in sorted(self.scopes):
            granted = [s for s in KEYTURN_SCOPES if not missing_scopes(frozenset((scope,)), (s,))]
            if granted:
                raise InvalidValue(
                    f"the scope {scope!r} grants keyturn's own {', '.join(granted)}: an "
                    "owner's keys are for your API, so a policy names its scopes only",
                    "policy.scopes",
                )

    @classmethod
    def of(cls, value: Mapping[str, Any] | None) -> OwnerPolicy:
        """A policy from JSON (``{"scopes": [...], "max_keys": 5, "max_lifetime": "90d",
        "require_expiry": true}``; ``max_lifetime`` also as seconds, or ``null``), each
        field checked; left-out fields take the defaults."""
        given = dict(value or {})
        unknown = set(given) - {"scopes", "max_keys", "max_lifetime", "require_expiry"}
        if unknown:
            raise InvalidValue(f"unknown policy field {sorted(unknown)[0][:40]!r}", "policy")
        require = given.get("require_expiry", True)
        if not isinstance(require, bool):
            raise InvalidValue("expected true or false", "policy.require_expiry")
        lifetime: timedelta | None = DEFAULT_LIFETIME if require else None
        if "max_lifetime" in given:  # a bound on every key's life: each then expires
            lifetime = _lifetime(given["max_lifetime"])
        if lifetime is None and require:
            lifetime = MAX_LIFETIME
        count = given.get("max_keys", DEFAULT_MAX_KEYS)
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_MAX_KEYS:
            raise InvalidValue(
                f"expected a whole number from 0 to {MAX_MAX_KEYS}", "policy.max_keys"
            )
        try:
            scopes = checked_scopes(given.get("scopes", ()))
        except InvalidValue as exc:
            raise exc.at("policy.scopes") from None
        return cls(scopes, count, lifetime, require)

    def public(self) -> dict[str, Any]:
        """As JSON, the form ``of`` reads (the lifetime in seconds)."""
        lifetime = self.max_lifetime
        return {
            "scopes": sorted(self.scopes),
            "max_keys": self.max_keys,
            "max_lifetime": int(lifetime.total_seconds()) if lifetime is not None else None,
            "require_expiry": self.require_expiry,
        }

    def actor(self, owner: str, maker: KeyRecord | None = None) -> Actor:
        """The owner acting under this policy: ``owner:<owner>`` in the audit log, confined
        to its own keys, granting only the policy's scopes, its keys living at most
        ``max_lifetime`` from each change. ``maker``: the key that opened the link, as it
        is now; the owner acts within it too (the policy's scopes it still holds, its
        expiry, its allowance), or a leaked short-lived or metered key could hand out, through
        a link, keys that outlive it and are unlimited."""
        scopes, bound = self.scopes, Actor.operator()
        if maker is not None:
            bound = Actor.of_key(maker)
            scopes = frozenset(s for s in scopes if not missing_scopes(bound.scopes, (s,)))
        return Actor(
            f"owner:{owner}",
            scopes,
            bound.expires_at,
            bound.allowance,
            owner=owner,
            operations=OPERATIONS,
            max_keys=self.max_keys,
            max_lifetime=self.max_lifetime,
        )


def _lifetime(value: object) -> timedelta | None:
    field = "policy.max_lifetime"
    if value is None:
        return None
    if isinstance(value, str):
        try:
            period = parse_duration(value)
        except InvalidValue as exc:
            raise exc.at(field) from None
    elif isinstance(value, int) and not isinstance(value, bool):
        period = _seconds(value, field)
    else:
        raise InvalidValue("expected a duration like 90d, or seconds", field)
    return checked_period(period, field, timedelta(seconds=1), MAX_LIFETIME)


def checked_ttl(value: object) -> timedelta:
    """How long a link may wait to be opened: ``"15m"`` or seconds, 10 s to 24 h."""
    if isinstance(value, str):
        try:
            value = parse_duration(value)
        except InvalidValue as exc:
            raise exc.at("ttl") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        value = _seconds(value, "ttl")
    return checked_period(value, "ttl", MIN_TTL, MAX_TTL)


def _seconds(value: int, field: str) -> timedelta:
    """A whole number of seconds, up to a century (``timedelta`` overflows past a few
    billion years, and no key should live beyond one)."""
    if not 0 <= value <= MAX_LIFETIME.total_seconds():
        raise InvalidValue(f"expected from 0 to {int(MAX_LIFETIME.total_seconds())} seconds", field)
    return timedelta(seconds=value)


def checked_return_url(value: object) -> str | None:
    """Where the portal's "back" link goes: an absolute http(s) URL (never ``javascript:``)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_URL_LENGTH:
        raise InvalidValue(f"expected a URL of at most {MAX_URL_LENGTH} characters", "return_url")
    try:
        parts = urlsplit(value)
    except ValueError:  # an unclosed IPv6 bracket
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc or not value.isprintable():
        raise InvalidValue("expected an absolute http:// or https:// URL", "return_url")
    if url_holds_key(value):  # kept with the link, the portal's Back link
        raise InvalidValue(KEY_AS_TEXT, "return_url")
    return value


def link_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PortalLink:
    """What a link opens: a portal for ``owner`` under ``policy``."""

    owner: str
    policy: OwnerPolicy
    expires_at: datetime
    return_url: str | None = None
    created_by: str = ""

    @classmethod
    def of(cls, grant: PortalGrant) -> PortalLink:
        return cls(
            grant.owner,
            OwnerPolicy.of(grant.policy),
            grant.expires_at,
            grant.return_url,
            grant.created_by,
        )


class PortalLinks:
    """Make portal links and redeem them, over a store (as ``KeyAdmin`` is)."""

    def __init__(self, store: KeyStore, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def open(
        self,
        actor: Actor,
        owner: object,
        policy: OwnerPolicy,
        ttl: timedelta = DEFAULT_TTL,
        return_url: object = None,
    ) -> tuple[str, PortalLink]:
        """A new link (the token, shown once, and what it opens). The actor needs
        ``portal:write`` and may put in the policy only scopes it holds itself."""
        actor.require(PORTAL_WRITE)
        name = checked_text(owner, "owner") or ""
        actor.ensure_grants(policy.scopes)
        actor.ensure_shares(name, "a portal")
        ttl = checked_period(ttl, "ttl", MIN_TTL, MAX_TTL)
        back = checked_return_url(return_url)
        link = PortalLink(name, policy, self.clock() + ttl, back, actor.name)
        token = TOKEN_PREFIX + "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))
        self.store.create_portal_link(
            PortalGrant(link.owner, policy.public(), link.expires_at, link.return_url, actor.name),
            link_hash(token),
            actor.name,
        )
        return token, link

    def actor(self, link: PortalLink) -> Actor | None:
        """The owner acting through ``link`` (``OwnerPolicy.actor``), within the key that
        made it as that key is now; ``None`` when that key no longer works (revoked,
        disabled, expired, its grace over) or no longer holds ``portal:write``: what a key
        opened closes with it, and so does a key bound by another owner's limits
        (``Actor.bound_owner``). A link the
        operator made (the CLI, the library) is bounded by its policy alone."""
        if not _KEY_ID.fullmatch(link.created_by):
            return link.policy.actor(link.owner)
        maker = self.store.get(link.created_by)
        if maker is None or not maker.usable() or missing_scopes(maker.granted, (PORTAL_WRITE,)):
            return None
        if Actor.of_key(maker).bound_owner not in (None, link.owner):
            return None  # its owner's limits came to bind it: it hands out no other owner's
        return link.policy.actor(link.owner, maker)

    def redeem(self, token: str) -> PortalLink | None:
        """What ``token`` opens, once: ``None`` for a token that is malformed, unknown,
        used or expired (the visitor is told the same for each)."""
        if not _TOKEN.fullmatch(token):
            return None
        grant = self.store.redeem_portal_link(link_hash(token), self.clock())
        return PortalLink.of(grant) if grant is not None else None


class AsyncPortalLinks:
    """``PortalLinks`` for ``async`` code: the store's work in a worker thread."""

    def __init__(self, links: PortalLinks) -> None:
        self.sync = links

    async def open(
        self,
        actor: Actor,
        owner: object,
        policy: OwnerPolicy,
        ttl: timedelta = DEFAULT_TTL,
        return_url: object = None,
    ) -> tuple[str, PortalLink]:
        return await asyncio.to_thread(self.sync.open, actor, owner, policy, ttl, return_url)

    async def redeem(self, token: str) -> PortalLink | None:
        return await asyncio.to_thread(self.sync.redeem, token)

    async def actor(self, link: PortalLink) -> Actor | None:
        return await asyncio.to_thread(self.sync.actor, link)
