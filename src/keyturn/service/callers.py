"""Who is calling the admin and verify API: the calling key, as an ``Actor``.

Callers authenticate with a keyturn key like any client, through the same verifier and the
same catalogue answers, and must hold the operation's scope (``keyturn.admin.READ``,
``WRITE``, ``VERIFY``, ``AUDIT``). What a caller may then do to which keys - the grant
rules - is the admin layer's to decide (``keyturn.actor``), not this module's.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPBearer

from keyturn._asgi import Scope
from keyturn._request_ids import RequestIds
from keyturn._verifications import Seen
from keyturn.actor import Actor
from keyturn.answer import render
from keyturn.record import KeyRecord
from keyturn.service.access_log import LOG_KEY
from keyturn.service.context import ServiceContext
from keyturn.service.problems import REQUEST_ID, Refused

Caller = Callable[..., Awaitable[Actor]]
# Where an authenticated request keeps (scope checked, the calling key's record).
CALLER_KEY = "keyturn.caller"


def _undocumented() -> None:
    """Stands in for the API-key header scheme when none is configured."""


class Callers:
    """Makes the FastAPI dependencies that authenticate a caller for one scope."""

    def __init__(self, context: ServiceContext) -> None:
        self._context = context
        self._ids = RequestIds(context.manager.sync.verifier.proxies.set)
        # Each dependency ``holding`` made -> the scope it demands (the body gate reads it).
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

    def holding(self, scope: str) -> Caller:
        """A FastAPI dependency: the calling key, which must hold ``scope``, as an actor.
        When the body gate (``keyturn.service.body_limit``) has already checked the key for
        this scope, its answer is used rather than checking twice."""
        bearer, header = self._bearer, self._header

        async def dependency(
            request: Request,
            _bearer: Any = Security(bearer),  # noqa: B008 - FastAPI's dependency idiom
            _header: Any = Security(header),  # noqa: B008
        ) -> Actor:
            known = request.scope.get(CALLER_KEY)
            if known is not None and known[0] == scope:
                return Actor.of_key(known[1])
            return Actor.of_key(await self.authenticate(request.scope, scope))

        self.scopes[dependency] = scope
        return dependency

    async def authenticate(self, request: Scope, scope: str) -> KeyRecord:
        """The key of the ASGI ``request``, which must hold ``scope``; else ``Refused``
        with the catalogue's answer. Counted in the metrics and noted for the access log."""
        context = self._context
        started = time.perf_counter()
        client = request.get("client")
        peer = client[0] if client else None
        # The request's id, kept for its answer whatever it is (a refusal too), and the
        # decision recorded under it.
        rid = request.get(REQUEST_ID)
        if rid is None:
            rid = request[REQUEST_ID] = self._ids.asgi(request["headers"], peer)[0]
        decision = await context.manager.verify_asgi(
            request["headers"],
            request["query_string"],
            scopes=(scope,),
            peer=peer,
            # recorded with the decision (the headers: forwarded addresses, if trusted); the
            # user agent left to the core, which reads it with the key
            seen=Seen(request["method"], request["path"], rid, None,
                      request["headers"] if self._ids.trusted else ()),
        )
        context.metrics.count["admin"][decision.code]()
        context.metrics.observe["admin"](time.perf_counter() - started)
        record = decision.key
        request[LOG_KEY] = {
            "outcome": decision.code,
            "key_id": record.id if record is not None else None,
        }
        if not decision.ok or record is None:
            raise Refused(render(decision, context.settings.realm, context.settings.public_url))
        request[CALLER_KEY] = (scope, record)
        return record
