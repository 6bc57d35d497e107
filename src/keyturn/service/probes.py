"""``/healthz``, ``/readyz`` and ``/metrics``: answered before any framework runs.

``/healthz`` says the process serves requests; ``/readyz`` also says the store answers, so
an orchestrator stops routing to an instance whose database is gone without restarting it.
"""

from __future__ import annotations

import asyncio
import json
import logging

from keyturn._asgi import Receive, Scope, Send, respond
from keyturn.answer import PROBLEM_JSON
from keyturn.service.context import ServiceContext
from keyturn.service.problems import problem

_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_OK = json.dumps({"status": "ok"}).encode()
_READY = json.dumps({"status": "ready"}).encode()
READY_TIMEOUT = 2.0
_log = logging.getLogger("keyturn.service")


async def not_allowed(
    context: ServiceContext, scope: Scope, receive: Receive, send: Send
) -> None:
    """The probes answer GET (and HEAD) only."""
    allowed = f"{scope['method']} is not allowed here; allowed: GET, HEAD"
    body = problem(405, "method_not_allowed", allowed, context.settings.public_url)
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"allow", b"GET, HEAD")]
    await respond(send, 405, headers, json.dumps(body).encode())


async def healthz(context: ServiceContext, scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, 200, _JSON, _OK)


async def readyz(context: ServiceContext, scope: Scope, receive: Receive, send: Send) -> None:
    store = context.sync.store
    try:
        await asyncio.wait_for(asyncio.to_thread(store.count), READY_TIMEOUT)
    except Exception as exc:  # any failure of the store means "not ready", never a 500
        _log.warning("readiness check failed: %s", exc)
        why = f"the store did not answer: {type(exc).__name__}"
        body = problem(503, "store_unavailable", why, context.settings.public_url)
        headers = [(b"content-type", PROBLEM_JSON.encode()), (b"cache-control", b"no-store")]
        await respond(send, 503, headers, json.dumps(body).encode())
        return
    await respond(send, 200, _JSON, _READY)


async def metrics(context: ServiceContext, scope: Scope, receive: Receive, send: Send) -> None:
    body, content_type = context.metrics.exposition()
    await respond(send, 200, [(b"content-type", content_type.encode())], body)
