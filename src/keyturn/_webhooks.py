"""Webhook subscriptions: the admin operations, their scopes and the rules for URLs.

Like ``keyturn.admin`` for keys, this is where the rules live and every face translates:
the admin API's ``/v1/webhooks``, ``keyturn webhooks`` and the dashboard call the same
operations with an ``Actor``. A webhook's secret is made here and returned once, by
``create``; the store keeps it (signing needs it) and no read shows it again.

Where keyturn may send requests is a rule too: a service that posts to any URL an API
caller names can be turned against the network it runs in (server-side request forgery).
So a URL must be ``http`` or ``https``, without credentials, a fragment or port 0, and
its host must resolve to public addresses only: no loopback, private, link-local (the
cloud metadata address among them), shared, reserved, site-local or multicast ones, in any
of the ways an IPv6 address can carry an IPv4 one (mapped ``::ffff:127.0.0.1``,
compatible ``::127.0.0.1``, translated, NAT64 ``64:ff9b::a00:1``, 6to4 ``2002:7f00:1::``:
the IPv4 address inside must be public). The check runs when the webhook is made, and a
delivery connects only to an address it has just checked (``keyturn._delivery``), so a
name re-pointed later, or answering differently each time (DNS rebinding), gains
nothing. A deployment whose receivers live on its own network says so with
``webhook_allow_private`` (``KEYTURN_WEBHOOK_ALLOW_PRIVATE``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network
from typing import Final
from urllib.parse import urlsplit

from keyturn import _events as events
from keyturn._signing import new_secret
from keyturn._verifications import READ_SCOPE as LOG_READ
from keyturn.actor import Actor
from keyturn.admin import READ as KEYS_READ
from keyturn.admin import checked_text
from keyturn.errors import InvalidValue, NotFound, ScopeNotHeld
from keyturn.keys import KEY_AS_TEXT, url_holds_key
from keyturn.record import utcnow
from keyturn.store.base import Delivery, EventStore, Webhook

READ: Final = "webhooks:read"
WRITE: Final = "webhooks:write"
MAX_URL_LENGTH = 2048
MAX_WEBHOOKS = 100
# IPv6 ranges whose last 32 bits are an IPv4 address a host or a gateway would reach:
# compatible (::/96), mapped, translated (RFC 2765) and NAT64's well-known prefix.
_CARRY_IPV4 = tuple(
    IPv6Network(n) for n in ("::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96")
)
_LOCAL_NAT64 = IPv6Network("64:ff9b:1::/48")  # RFC 8215: translates to a local network


@dataclass(frozen=True, slots=True)
class NewWebhook:
    url: str
    events: Collection[str] = (events.ANY,)
    description: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedWebhook:
    """A new webhook and its signing secret: the only time the secret is shown."""

    webhook: Webhook
    secret: str

    def public(self) -> dict[str, object]:
        return {**self.webhook.public(), "secret": self.secret}


def checked_events(values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Collection) or not values:
        raise InvalidValue('expected a list of event types, or ["*"] for all', "events")
    chosen = tuple(dict.fromkeys(values))
    if events.ANY in chosen:
        return (events.ANY,)
    unknown = [v for v in chosen if v not in events.TYPES]
    if unknown:
        raise InvalidValue(
            f"unknown event type {str(unknown[0])[:60]!r}; known: {', '.join(events.TYPES)}, "
            "or * for all",
            "events",
        )
    return chosen


def checked_url(url: object, *, allow_private: bool = False) -> str:
    """A URL keyturn may post to (see the module's docstring); ``InvalidValue`` if not."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        raise InvalidValue(f"expected a URL of at most {MAX_URL_LENGTH} characters", "url")
    if url_holds_key(url):  # listed to every webhooks:read key, shown, audited
        raise InvalidValue(KEY_AS_TEXT, "url")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidValue("expected an http or https URL", "url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue("expected an http or https URL with a host", "url")
    if parts.username is not None or parts.password is not None:
        raise InvalidValue("a webhook URL may not hold a user name or password", "url")
    if parts.fragment or any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise InvalidValue(
            "a webhook URL may hold no fragment, spaces or control characters", "url"
        )
    if port == 0:
        raise InvalidValue("a webhook URL's port must be 1-65535", "url")
    if not parts.hostname.isascii():
        raise InvalidValue(
            "write an internationalised host name in its ASCII form (xn--...), so that "
            "every reader of the URL means the same host",
            "url",
        )
    if not allow_private:
        try:
            public_addresses(parts.hostname, port or (443 if parts.scheme == "https" else 80))
        except NotPublic as refused:
            raise InvalidValue(
                f"the URL's host {refused}; webhooks go to public addresses only, unless the "
                "deployment allows its own network (webhook_allow_private, "
                "KEYTURN_WEBHOOK_ALLOW_PRIVATE)",
                "url",
            ) from None
    return url


def is_public(ip: IPv4Address | IPv6Address) -> bool:
    """Whether keyturn may connect to ``ip`` (see the module's docstring): an IPv6 address
    that carries an IPv4 one is judged by the IPv4 address."""
    if isinstance(ip, IPv6Address):
        carried = next((n for n in _CARRY_IPV4 if ip in n), None)
        if carried is not None:
            return is_public(IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None:
            return is_public(ip.sixtofour)
        if ip in _LOCAL_NAT64 or ip.is_site_local or ip.is_reserved:
            return False
    return ip.is_global and not ip.is_multicast


def public_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, when all of them are public; ``NotPublic``
    saying why not otherwise (one private answer spoils the name: a client may pick it)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise NotPublic(f"{host[:80]!r} does not resolve") from None
    addresses = []
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if not is_public(ip):
            raise NotPublic(f"{host[:80]!r} is (or resolves to) the non-public address {ip}")
        addresses.append(str(address[0]))
    return addresses


class NotPublic(Exception):
    """A destination keyturn may not connect to; the message says why."""


class WebhookAdmin:
    """Create, list and delete webhooks, and read their deliveries, for an actor."""

    def __init__(self, store: EventStore, *, allow_private: bool = False) -> None:
        self.store = store
        self.allow_private = allow_private

    def create(self, actor: Actor, new: NewWebhook) -> CreatedWebhook:
        actor.require(WRITE)
        try:  # every event carries a key's view, which every face shows with keys:read only
            actor.require(KEYS_READ)
        except ScopeNotHeld as refused:
            raise ScopeNotHeld(
                f"{refused}: every event carries the key's view (name, owner, scopes, "
                f"metadata, mask), which needs {KEYS_READ}; use a key holding it",
                refused.missing,
            ) from None
        chosen = checked_events(new.events)  # before the URL: resolving its host is slow
        naming = [e for e in (events.GRACE_ENDING, events.CANARY_USED) if e in chosen]
        if events.ANY in chosen or naming:
            # key.grace_ending names who still uses a key, key.canary_used who tried a
            # canary (client addresses, paths): the verification log's, readable only with
            # its scope, on every face.
            try:
                actor.require(LOG_READ)
            except ScopeNotHeld as refused:
                said = " and ".join(naming or (events.GRACE_ENDING, events.CANARY_USED))
                raise ScopeNotHeld(
                    f"{refused}: {said} (and so '*') name who used a key, client addresses "
                    f"included, which needs {LOG_READ}; choose the events without them, or "
                    "use a key holding it",
                    refused.missing,
                ) from None
        url = checked_url(new.url, allow_private=self.allow_private)
        description = new.description
        if isinstance(description, str) and not description.strip():
            description = None  # a form's empty field
        description = checked_text(description, "description", optional=True)
        if len(self.store.webhooks()) >= MAX_WEBHOOKS:
            raise InvalidValue(f"a deployment has at most {MAX_WEBHOOKS} webhooks", "url")
        secret = new_secret()
        webhook = Webhook(
            "wh_" + secrets.token_hex(8), url, chosen, description, utcnow(), secret
        )
        self.store.create_webhook(webhook, actor.name)
        return CreatedWebhook(webhook, secret)

    def list(self, actor: Actor) -> Sequence[Webhook]:
        actor.require(READ)
        return self.store.webhooks()

    def delete(self, actor: Actor, webhook_id: str) -> None:
        actor.require(WRITE)
        if not self.store.delete_webhook(webhook_id, actor.name):
            raise NotFound(f"no webhook {webhook_id[:64]!r}")

    def deliveries(
        self, actor: Actor, webhook_id: str, *, limit: int = 100, before: int | None = None
    ) -> Sequence[Delivery]:
        """The webhook's deliveries, newest first: pending, delivered and failed."""
        actor.require(READ)
        if not any(w.id == webhook_id for w in self.store.webhooks()):
            raise NotFound(f"no webhook {webhook_id[:64]!r}")
        return self.store.deliveries(webhook_id, limit=limit, before=before)


class AsyncWebhookAdmin:
    """``WebhookAdmin`` for ``async`` code: each operation in a worker thread."""

    def __init__(self, admin: WebhookAdmin) -> None:
        self.sync = admin

    async def create(self, actor: Actor, new: NewWebhook) -> CreatedWebhook:
        return await asyncio.to_thread(self.sync.create, actor, new)

    async def list(self, actor: Actor) -> Sequence[Webhook]:
        return await asyncio.to_thread(self.sync.list, actor)

    async def delete(self, actor: Actor, webhook_id: str) -> None:
        await asyncio.to_thread(self.sync.delete, actor, webhook_id)

    async def deliveries(
        self, actor: Actor, webhook_id: str, *, limit: int = 100, before: int | None = None
    ) -> Sequence[Delivery]:
        return await asyncio.to_thread(
            lambda: self.sync.deliveries(actor, webhook_id, limit=limit, before=before)
        )
