"""Request bodies on the API: the caller's key first, then at most the route's cap.

FastAPI reads and parses a route's whole body before it runs the route's dependencies (the
guard among them), so without this gate an anonymous client could make the server hold any
body it cares to send: three 100 MB posts took a server from 56 MB to 755 MB. Every API
route is a ``gated_route`` (FastAPI's documented way to wrap a route's handler), which, for
a request that carries a body, before the handler reads it:

1. checks the key with the scope the route's guard demands (read from the route's own
   dependencies, so the two cannot disagree), and refuses with the catalogue's answer
   without reading a byte of the body;
2. refuses a ``Content-Length`` over the route's cap at once (``body_too_large``, 413);
3. reads the body, chunked or not, only up to the cap (one byte more is a 413) and within
   ``read_timeout`` seconds (``request_timeout``, 408);
4. hands the handler the body it read.

What is left of a refused body is not this module's business: the server's protocol
(``keyturn.service.connections``) drains a little of it and then closes the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from keyturn._asgi import Message, Receive, Scope
from keyturn.config import Settings
from keyturn.service.callers import Callers
from keyturn.service.problems import ApiProblem, problem_responses

# Routes whose bodies are small by nature: a smaller cap than ``max_body_size``.
SMALL_BODIES = {"/v1/keys/verify": 8 * 1024}

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def has_body(scope: Scope) -> bool:
    """The request announces a body: a non-zero ``Content-Length`` or any transfer coding."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length" and value.strip() not in (b"0", b""):
            return True
    return False


def declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() else None
    return None


def _demands(dependant: Dependant, scopes: dict[Callable[..., Any], str]) -> str | None:
    """The scope the guard demands on a route, found among its dependencies."""
    stack = list(dependant.dependencies)
    while stack:
        dependant = stack.pop()
        if dependant.call in scopes:
            return scopes[dependant.call]
        stack.extend(dependant.dependencies)
    return None


def gated_route(guard: Callers, settings: Settings) -> type[APIRoute]:
    """The route class for an API router whose routes take a key from ``guard``."""
    limit, timeout = settings.max_body_size, settings.read_timeout

    class GatedRoute(APIRoute):
        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            super().__init__(path, endpoint, **kwargs)
            # Every route that takes a body can answer the gate's 413 and 408 (an
            # undocumented status is a contract break for a generated client).
            if self.methods and self.methods & _BODY_METHODS:
                self.responses = {**problem_responses(408, 413), **self.responses}

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            needed = _demands(self.dependant, guard.scopes)
            cap = min(limit, SMALL_BODIES.get(self.path, limit))

            async def gated(request: Request) -> Response:
                if has_body(request.scope):
                    if needed is not None:
                        await guard.authenticate(request.scope, needed)  # or Refused
                    try:
                        body = await read_body(request.scope, request.receive, cap, timeout)
                    except ClientDisconnect:  # nobody left to answer, nothing to log
                        return Response(status_code=400)
                    request = Request(request.scope, _replay(body, request.receive))
                return await handler(request)

            return gated

    return GatedRoute


async def read_body(scope: Scope, receive: Receive, limit: int, timeout: float) -> bytes:
    """The whole body, if it is at most ``limit`` bytes and arrives within ``timeout``
    seconds; else the catalogue's 413 or 408 as an ``ApiProblem``."""
    declared = declared_length(scope)
    if declared is not None and declared > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                if message["type"] != "http.request":  # the client went away: nobody to tell
                    raise ClientDisconnect
                chunk: bytes = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(chunks)
    except TimeoutError:
        detail = f"the body did not arrive within {timeout:g} seconds"
        raise ApiProblem("request_timeout", detail) from None


def _too_large(limit: int) -> ApiProblem:
    return ApiProblem("body_too_large", f"this endpoint takes bodies of at most {limit} bytes")


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` for the app: the body read already, then the server's own messages."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay
