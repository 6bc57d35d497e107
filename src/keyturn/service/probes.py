"""``/healthz``, ``/readyz`` and ``/metrics``: answered before any framework runs.

``/healthz`` says the process serves requests; ``/readyz`` also says that every dependency
in use answers (the store, and Redis when rate limits are counted there), each checked on
its own and named in ``checks``, so an orchestrator stops routing to an instance whose
database or Redis is gone without restarting it, and an operator sees which one it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

from keyturn._asgi import Receive, Scope, Send, respond
from keyturn.answer import PROBLEM_JSON, problem
from keyturn.errors import KeyturnError, LimiterUnavailable, Unavailable
from keyturn.service.context import ServiceContext

_JSON = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
_OK = json.dumps({"status": "ok"}).encode()
READY_TIMEOUT = 2.0
_log = logging.getLogger("keyturn.service")


async def not_allowed(context: ServiceContext, scope: Scope, receive: Receive, send: Send) -> None:
    """The probes answer GET (and HEAD) only."""
    allowed = f"{scope['method']} is not allowed here; allowed: GET, HEAD"
    body = problem("method_not_allowed", allowed, public_url=context.settings.public_url)
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"allow", b"GET, HEAD")]
    await respond(send, 405, headers, json.dumps(body).encode())


async def healthz(context: ServiceContext, scope: Scope, receive: Receive, send: Send) -> None:
    await respond(send, 200, _JSON, _OK)


async def readyz(context: ServiceContext, scope: Scope, receive: Receive, send: Send) -> None:
    checks = dependencies(context)
    results = await asyncio.gather(*(_check(name, probe) for name, probe in checks.items()))
    failed = [(name, exc) for name, exc in results if exc is not None]
    named = {name: "ok" if exc is None else _why(exc) for name, exc in results}
    if not failed:
        body = {"status": "ready", "checks": named}
        await respond(send, 200, _JSON, json.dumps(body).encode())
        return
    name, exc = failed[0]
    error = exc if isinstance(exc, Unavailable) else _DOWN[name](_why(exc))
    detail = "; ".join(f"{n}: {why}" for n, why in named.items() if why != "ok")
    body = problem(
        error.code, f"not ready: {detail}", public_url=context.settings.public_url, checks=named
    )
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"cache-control", b"no-store"),
        (b"retry-after", str(error.retry_after).encode()),
    ]
    await respond(send, 503, headers, json.dumps(body).encode())


def dependencies(context: ServiceContext) -> dict[str, Callable[[], object]]:
    """What ``/readyz`` checks: each dependency the service uses, by name."""
    store = context.sync.store
    # A read by primary key that matches nothing: it proves that the database answers a
    # query for one index probe (a count would read every key, on every probe).
    checks: dict[str, Callable[[], object]] = {"store": lambda: store.get(_NO_KEY)}
    if context.settings.redis_url:
        limiter = context.sync.limiter
        checks["rate_limits"] = limiter.ping
    return checks


async def _check(name: str, probe: Callable[[], object]) -> tuple[str, BaseException | None]:
    try:
        await asyncio.wait_for(asyncio.to_thread(probe), READY_TIMEOUT)
    except Exception as exc:  # any failure of a dependency means "not ready", never a 500
        _log.warning("readiness check of %s failed: %s", name, _why(exc))
        return name, exc
    return name, None


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {READY_TIMEOUT:g} s"
    if isinstance(exc, KeyturnError):
        return exc.message
    return type(exc).__name__


_NO_KEY = "readiness-probe"
_DOWN: dict[str, Callable[[str], Unavailable]] = {
    "store": Unavailable,
    "rate_limits": LimiterUnavailable,
}


async def metrics(context: ServiceContext, scope: Scope, receive: Receive, send: Send) -> None:
    body, content_type = context.metrics.exposition()
    await respond(send, 200, [(b"content-type", content_type.encode())], body)
