"""Webhook subscriptions: the admin operations, their scopes and the rules for URLs.

Like ``keyturn.admin`` for keys, this is where the rules live and every face translates:
the admin API's ``/v1/webhooks``, ``keyturn webhooks`` and the dashboard call the same
operations with an ``Actor``. A webhook's secret is made here and returned once, by
``create``; the store keeps it (signing needs it) and no read shows it again.

Where keyturn may send requests is a rule too: a service that posts to any URL an API
caller names can be turned against the network it runs in (server-side request forgery).
So a URL must be ``http`` or ``https``, without credentials or a fragment, and its host
must resolve to public addresses only: no loopback, private, link-local (the cloud
metadata address among them), shared, reserved or multicast ones. The check runs when the
webhook is made and again before every delivery (a name may be re-pointed later). A
deployment whose receivers live on its own network says so with
``webhook_allow_private`` (``KEYTURN_WEBHOOK_ALLOW_PRIVATE``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from keyturn import _events as events
from keyturn._signing import new_secret
from keyturn.actor import Actor
from keyturn.errors import InvalidValue, NotFound
from keyturn.record import utcnow
from keyturn.store.base import Delivery, EventStore, Webhook

READ: Final = "webhooks:read"
WRITE: Final = "webhooks:write"
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION = 200
MAX_WEBHOOKS = 100


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
    if not allow_private:
        refused = private_address(parts.hostname, port or (443 if parts.scheme == "https" else 80))
        if refused is not None:
            raise InvalidValue(
                f"the URL's host {refused}; webhooks go to public addresses only, unless the "
                "deployment allows its own network (webhook_allow_private, "
                "KEYTURN_WEBHOOK_ALLOW_PRIVATE)",
                "url",
            )
    return url


def private_address(host: str, port: int) -> str | None:
    """Why ``host`` is not a public destination (``None``: every address it has is)."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"{host[:80]!r} does not resolve"
    for *_, address in found:
        ip = ipaddress.ip_address(str(address[0]).split("%")[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if not ip.is_global or ip.is_multicast:
            return f"{host[:80]!r} is (or resolves to) the non-public address {ip}"
    return None


class WebhookAdmin:
    """Create, list and delete webhooks, and read their deliveries, for an actor."""

    def __init__(self, store: EventStore, *, allow_private: bool = False) -> None:
        self.store = store
        self.allow_private = allow_private

    def create(self, actor: Actor, new: NewWebhook) -> CreatedWebhook:
        actor.require(WRITE)
        chosen = checked_events(new.events)  # before the URL: resolving its host is slow
        url = checked_url(new.url, allow_private=self.allow_private)
        description = new.description
        if description is not None:
            description = description.strip()[:MAX_DESCRIPTION] or None
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
