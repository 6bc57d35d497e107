"""Who is calling the admin API, and what they may do to which keys.

Callers authenticate with a keyturn key like any client, through the same verifier and the
same catalogue answers. Authorisation has one rule, applied everywhere a key is made or
changed: a key may only grant scopes it holds itself, and may only change keys whose scopes
it holds. Without the second half, a ``keys:write`` key could revoke or rotate the root key.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from keyturn.answer import render
from keyturn.record import KeyRecord, scopes_satisfy
from keyturn.service.access_log import LOG_KEY
from keyturn.service.asgi import Scope
from keyturn.service.context import ServiceContext
from keyturn.service.problems import Refused

ADMIN_SCOPES = ("keys:read", "keys:write", "keys:verify", "audit:read", "*")

Caller = Callable[..., Awaitable[KeyRecord]]
# Where an authenticated request keeps (scope checked, the calling key's record).
CALLER_KEY = "keyturn.caller"


def _undocumented() -> None:
    """Stands in for the API-key header scheme when none is configured."""


class Guard:
    def __init__(self, context: ServiceContext) -> None:
        self._context = context
        # Each dependency ``caller`` made -> the scope it demands (the body gate reads it).
        self.scopes: dict[Callable[..., Any], str] = {}
        header = context.settings.api_key_headers[0] if context.settings.api_key_headers else None
        # Declared for the OpenAPI document (and its "Authorize" button); the check itself
        # reads the raw headers through the verifier, which knows every way to get them wrong.
        self._bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
        self._header: Callable[..., Any] = (
            APIKeyHeader(name=header, auto_error=False, description=f"`{header}: <key>`")
            if header
            else _undocumented
        )

    def caller(self, scope: str) -> Caller:
        """A FastAPI dependency: the calling key, which must hold ``scope``. When the body
        gate (``keyturn.service.body_limit``) has already checked the key for this scope,
        its answer is used rather than checking twice."""
        bearer, header = self._bearer, self._header

        async def dependency(
            request: Request,
            _bearer: Any = Security(bearer),  # noqa: B008 - FastAPI's dependency idiom
            _header: Any = Security(header),  # noqa: B008
        ) -> KeyRecord:
            known = request.scope.get(CALLER_KEY)
            if known is not None and known[0] == scope:
                record: KeyRecord = known[1]
                return record
            return await self.authenticate(request.scope, scope)

        self.scopes[dependency] = scope
        return dependency

    async def authenticate(self, request: Scope, scope: str) -> KeyRecord:
        """The key of the ASGI ``request``, which must hold ``scope``; else ``Refused``
        with the catalogue's answer. Counted in the metrics and noted for the access log."""
        context = self._context
        started = time.perf_counter()
        decision = await context.manager.verify_asgi(
            request["headers"], request["query_string"], scopes=(scope,)
        )
        context.metrics.count["admin"][decision.code]()
        context.metrics.observe["admin"](time.perf_counter() - started)
        record = decision.key
        request[LOG_KEY] = {
            "outcome": decision.code,
            "key_id": record.id if record is not None else None,
        }
        if not decision.ok or record is None:
            raise Refused(render(decision, context.settings.realm))
        request[CALLER_KEY] = (scope, record)
        return record

    def refuse(self, caller: KeyRecord, missing: tuple[str, ...], detail: str) -> Refused:
        decision = self._context.sync.verifier.reject(
            "insufficient_scope", detail, key=caller, required_scopes=missing
        )
        return Refused(render(decision, self._context.settings.realm))

    def ensure_grants(self, caller: KeyRecord, scopes: Iterable[str]) -> None:
        """``caller`` may hand out ``scopes``: it holds every one of them."""
        missing = scopes_satisfy(caller.scopes, tuple(scopes))
        if missing:
            raise self.refuse(
                caller,
                missing,
                f"key {caller.id} cannot grant scopes it does not hold: {', '.join(missing)}",
            )

    def ensure_manages(self, caller: KeyRecord, target: KeyRecord) -> None:
        """``caller`` may change ``target``: it holds every scope ``target`` holds."""
        missing = scopes_satisfy(caller.scopes, tuple(sorted(target.scopes)))
        if missing:
            raise self.refuse(
                caller,
                missing,
                f"key {target.id} holds scopes that key {caller.id} does not: "
                f"{', '.join(missing)}; only a key holding them may change it",
            )
