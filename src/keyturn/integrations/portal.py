"""The customer portal's operations as JSON, for a host app that signs its users in itself.

``keyturn serve`` opens its portal with single-use links. A host app (FastAPI:
``keyturn.integrations.fastapi.portal_router``; Django:
``keyturn.integrations.django.portal_urls``) already knows who its user is, so its own
session decides the owner, and these are the same operations as the portal's pages: list
the owner's keys, create one within the policy (shown once), read one with its usage,
rotate with a grace period, revoke. Each runs through the admin layer as
``OwnerPolicy.actor(owner)``, so another owner's key is a 404, the policy's bounds are a
403, a malformed field a 422 naming it, and every change is audited as ``owner:<owner>``;
errors are keyturn's problem documents (``answer.render_error``).

This module is the framework-free part: JSON in, JSON out, errors raised. The adapters only
read the request, call one method (in a worker thread under async frameworks) and write the
answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from keyturn.actor import Actor
from keyturn.admin import UNSET, NewKey, Unset
from keyturn.errors import InvalidValue
from keyturn.manager import KeyManager
from keyturn.portal import LIST_LIMIT, PATH, OwnerPolicy, PortalLinks

USAGE_DAYS = 30
PAGES_TTL = timedelta(minutes=1)  # a link minted for a redirect is used at once
MAX_BODY = 16 * 1024  # a name, a few scopes and a lifetime: far less is enough

PolicySource = OwnerPolicy | Mapping[str, Any] | Callable[[str], OwnerPolicy]


def _whole(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue("expected a whole number of seconds", field)
    return value


def _object(body: object) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise InvalidValue("expected a JSON object", "body")
    return body


def is_json(content_type: str) -> bool:
    """Whether a body is declared JSON: the one kind these routes read, and one a form on
    another site cannot send (a cross-site request of it needs a CORS preflight)."""
    return content_type.partition(";")[0].strip().lower() == "application/json"


def read_json(content_type: str, raw: bytes, *, optional: bool = False) -> Any:
    """The body as JSON (``None`` when ``optional`` and there is none), or
    ``InvalidValue`` naming what is wrong with it."""
    if optional and not raw:
        return None
    if not is_json(content_type):
        raise InvalidValue("send the body as application/json", "body")
    if len(raw) > MAX_BODY:
        raise InvalidValue(f"the body is larger than {MAX_BODY // 1024} KiB", "body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidValue("the body is not JSON", "body") from None


class OwnerKeys:
    """The portal's operations for one deployment's manager and a policy (one for every
    owner, or ``policy(owner)`` to decide per owner)."""

    def __init__(self, manager: KeyManager, policy: PolicySource) -> None:
        self.manager = manager
        self.keys = manager.admin
        if isinstance(policy, OwnerPolicy) or callable(policy):
            self._policy = policy
        else:
            self._policy = OwnerPolicy.of(policy)

    def policy(self, owner: str) -> OwnerPolicy:
        policy = self._policy
        return policy if isinstance(policy, OwnerPolicy) else policy(owner)

    def list(self, owner: str) -> dict[str, Any]:
        """The owner's keys (newest first), how many work, and the policy."""
        policy = self.policy(owner)
        actor = policy.actor(owner)
        records = self.keys.list_keys(actor, limit=LIST_LIMIT)
        working = self.keys.working_keys(actor)
        return {
            "keys": [r.public() for r in records],
            "working": working,
            "policy": policy.public(),
        }

    def create(self, owner: str, body: object) -> dict[str, Any]:
        """``{"name": ..., "scopes": [...], "expires_in": seconds | null}``: the new key,
        with the full key this once. ``expires_in`` left out: the default lifetime, cut to
        the policy's; ``null``: never, if the policy allows it."""
        fields = _object(body)
        unknown = set(fields) - {"name", "scopes", "expires_in"}
        if unknown:
            raise InvalidValue("unknown field", sorted(unknown)[0][:40])
        lifetime: timedelta | Unset | None = UNSET
        if "expires_in" in fields:
            given = fields["expires_in"]
            lifetime = None if given is None else timedelta(
                seconds=min(_whole(given, "expires_in"), 10**12)
            )
        new = NewKey(fields.get("name"), fields.get("scopes", ()), lifetime)  # type: ignore[arg-type]
        issued = self.keys.create(self.policy(owner).actor(owner), new)
        return {**issued.record.public(), "key": issued.key}

    def get(self, owner: str, key_id: str) -> dict[str, Any]:
        """One of the owner's keys, with its requests by outcome over the last 30 days."""
        actor = self.policy(owner).actor(owner)
        record = self.keys.get(actor, key_id)
        since = datetime.now(UTC).date() - timedelta(days=USAGE_DAYS - 1)
        return {**record.public(), "usage": self._usage(owner, key_id, since)}

    def _usage(self, owner: str, key_id: str, since: date) -> dict[str, Any]:
        counts = self.keys.usage(self.policy(owner).actor(owner), key_id, since)
        return {"since": since.isoformat(), "by_outcome": counts}

    def rotate(self, owner: str, key_id: str, body: object) -> dict[str, Any]:
        """``{"grace_seconds": N}`` (default 24 hours), or ``{"grace_until_quiet_seconds":
        Q, "grace_max_seconds": M}`` (until unused for Q seconds, at most M, default 7
        days): the successor, with its full key this once; the old key works until then."""
        fields = _object(body)
        unknown = set(fields) - {"grace_seconds", "grace_until_quiet_seconds", "grace_max_seconds"}
        if unknown:
            raise InvalidValue("unknown field", sorted(unknown)[0][:40])
        given = {
            name: timedelta(seconds=min(_whole(value, name), 10**9))
            for name, value in fields.items()
        }
        quiet = given.get("grace_until_quiet_seconds")
        if quiet is None and "grace_max_seconds" in given:
            raise InvalidValue("give grace_until_quiet_seconds too", "grace_max_seconds")
        if quiet is not None and "grace_seconds" in given:
            raise InvalidValue("with grace_until_quiet_seconds, use grace_max_seconds",
                               "grace_seconds")  # fmt: skip
        grace = given.get("grace_max_seconds" if quiet else "grace_seconds")
        actor = self.policy(owner).actor(owner)
        issued = self.keys.rotate(actor, key_id, grace, quiet=quiet)
        return {**issued.record.public(), "key": issued.key}

    def pages(self, owner: str, server_url: str, return_url: str | None = None) -> str:
        """A single-use link into ``keyturn serve``'s portal pages at ``server_url`` for
        ``owner``, under the same policy: the app redirects its signed-in user there. The
        app acts as the deployment's operator (it holds the store), named ``app`` in the
        audit log."""
        token, _ = PortalLinks(self.manager.store).open(
            Actor.operator("app"), owner, self.policy(owner), PAGES_TTL, return_url
        )
        return f"{server_url.rstrip('/')}{PATH}/enter?token={token}"

    def revoke(self, owner: str, key_id: str) -> dict[str, Any]:
        return self.keys.revoke(self.policy(owner).actor(owner), key_id).public()
