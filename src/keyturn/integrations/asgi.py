"""Pure ASGI middleware: API keys for any ASGI app (Starlette, FastAPI, Quart, raw ASGI).

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: no task group, no response
wrapping, no buffering - a verified request reaches the app with one dictionary write,
which is what keeps keyturn within a few percent of an unprotected app.

Handlers find the verified key in ``scope["state"]["keyturn_key"]`` - that is
``request.state.keyturn_key`` in Starlette and FastAPI - as a ``VerifiedKey`` (id, name,
owner, scopes, metadata; never the key or its hash), and the app's response carries the
key's lifecycle headers (``keyturn.lifecycle_headers``: its expiry, a rotation's end). A
rejected request gets keyturn's full
answer (status, ``WWW-Authenticate`` challenge, problem+json body) and never reaches the app.
Either answer carries ``X-Request-Id``, the id the decision is recorded under in the
verification log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from time import time

from keyturn._asgi import ASGIApp, Message, Receive, Scope, Send
from keyturn._request_ids import HEADER_ASGI, new_id
from keyturn._verifications import Seen
from keyturn.answer import HttpAnswer
from keyturn.errors import KeyturnError
from keyturn.integrations.guard import Guard, KeySource
from keyturn.integrations.identity import VerifiedKey
from keyturn.verifier import Candidate, Decision

STATE_KEY = "keyturn_key"
"""Where the ``VerifiedKey`` lands: ``scope["state"][STATE_KEY]``, ``request.state.keyturn_key``."""
REFUSED_KEY = "keyturn_refused"
"""Set in ``scope["state"]`` when keyturn refuses a request the middleware had let through."""
REQUEST_ID_KEY = "keyturn_request_id"
"""The request's id (``X-Request-Id``) in ``scope["state"]``: a later decision on the same
request (FastAPI's dependency) is recorded under it."""

_POLICY_VIOLATION = 1008  # RFC 6455 close code, for WebSocket servers without HTTP denial
_MIDDLEWARE_DEPTH = 32  # middleware layers looked through for a CORSMiddleware
_ENCODED_LIMIT = 1024  # refusals kept encoded
# A Seen from all its fields in order, as one C call: Seen(...) runs the Python-level
# __new__ NamedTuple writes, a frame more on every request (~1,500 instructions of ~50,000).
_new_seen = tuple.__new__


class KeyturnMiddleware:
    """Require a key on every path except ``open_paths``, with per-path ``scopes``.

    ``scopes`` maps paths (optionally ``"METHOD /path"``) to required scopes; see
    ``keyturn._path_rules`` for how rules match. Rules are matched on the path the app
    routes on, below its mount point (``root_path``). WebSocket handshakes are checked
    like HTTP requests. A CORS preflight refused here goes on when Starlette's
    ``CORSMiddleware`` is inside this one, since that answers it without calling the app.
    When the middleware opened the store itself (``keys`` is a URL), it closes it at
    lifespan shutdown so pending last-used times are written.
    """

    def __init__(
        self,
        app: ASGIApp,
        keys: KeySource = None,
        *,
        realm: str | None = None,
        open_paths: Iterable[str] | None = None,
        scopes: Mapping[str, Sequence[str]] | None = None,
        public_url: str | None = None,
    ) -> None:
        self.app = app
        given = {
            "realm": realm,
            "open_paths": open_paths,
            "scopes": scopes,
            "public_url": public_url,
        }
        self.guard = Guard.of(keys, **{k: v for k, v in given.items() if v is not None})
        # Bound once: the hot path pays for no attribute chains. Without rules every path
        # needs a key and no scope (``PathRules.requirement`` says ``()``): not even a call.
        self._requirement = self.guard.rules.requirement
        self._ruled = bool(self.guard.rules)
        # guard.check_asgi, unrolled: a cached key is decided inline, without a coroutine.
        self._triage = self.guard.manager.verify_asgi
        self._resume = self.guard.async_manager.resume_asgi
        self._settle = self.guard.settle
        self._settled = self.guard.settled
        # A request id of keyturn's own, or (some proxy is trusted) perhaps the proxy's.
        ids = self.guard.request_ids
        self._taken = ids.asgi if ids.trusted else None
        self._cors_inside = _wraps_cors(app)
        # Servers and frameworks tell an ASGI 3 app from an ASGI 2 one by ``app.__call__``
        # being a coroutine function (uvicorn, hypercorn, asgiref for daphne, Starlette).
        # ``__call__`` returns an awaitable without being one, so ``app.__call__`` is this
        # coroutine function doing the same (an instance's attribute: calls of ``app``
        # itself take the type's ``__call__``). No marker says so to ``inspect`` before 3.12.
        self.__call__ = self._asgi3  # type: ignore[method-assign]

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # A plain function handing back the app's own awaitable for a key the cache decides:
        # no coroutine of the middleware's on every request (about 600 instructions). The
        # rest - a store read, a refusal - is a coroutine (``_decided``, ``_refuse``).
        kind = scope["type"]
        if kind == "http" or kind == "websocket":
            path = scope["path"]
            if scope.get("root_path"):
                path = route_path(path, scope["root_path"])
            method = scope.get("method", "GET")
            required = self._requirement(method, path) if self._ruled else ()
            if required is not None:
                headers = scope["headers"]
                client = scope.get("client")
                peer = client[0] if client else None
                # Recorded with the decision; the headers only if a proxy is trusted (its
                # forwarded addresses name the client). The user agent is left to the core
                # (``None``), which finds it as it looks through the headers for the key.
                if self._taken is None:
                    rid, rid_header = new_id()
                    seen = _new_seen(Seen, (method, path, rid, None, ()))
                else:
                    rid, rid_header = self._taken(headers, peer)
                    seen = _new_seen(Seen, (method, path, rid, None, headers))
                try:
                    found = self._triage(headers, scope["query_string"], required, peer, seen, True)
                except KeyturnError as exc:  # no decision could be made: fail closed
                    return self._refuse(scope, receive, send, self.guard.failure(exc), rid_header)
                # Guard.settle, inlined for a decision it settled before: a cached key's
                # accepting decision is one object, request after request. Anything else (a
                # store read to make, a refusal) goes the long way, where it is told apart.
                settled = self._settled.get(id(found))
                if settled is None or settled[0] is not found:
                    return self._decided(
                        found, scope, receive, send, required, peer, seen, rid_header
                    )
                result = settled[1]
                state = scope.get("state")
                if state is None:
                    scope["state"] = state = {}
                state[STATE_KEY] = result
                state[REQUEST_ID_KEY] = rid
                told = (HEADER_ASGI, rid_header)
                # The key's lifecycle only once it is due (``VerifiedKey.lifecycle``), which
                # for most keys, most of the time, it is not: then an HTTP response's start
                # takes the request's ``X-Request-Id`` alone, in the ``send`` made here.
                if kind == "http" and time() < result.lifecycle_due:
                    app_send = send

                    # Defined here, not made by a helper: one call fewer per request. A plain
                    # function handing back ``send``'s awaitable (ASGI asks for an awaitable
                    # callable): no coroutine of its own on each message. A new list (an app
                    # may send one list each time), in the app's own message, as Starlette's
                    # MutableHeaders does: no copy of the message.
                    def telling(message: Message) -> Awaitable[None]:
                        if message["type"] == "http.response.start":
                            message["headers"] = [*message.get("headers", ()), told]
                        return app_send(message)

                    send = telling
                else:
                    send = _telling(send, _START[kind], told, result, state)
        elif kind == "lifespan" and self.guard.owns_manager:
            send = self._closing_on_shutdown(send)
        return self.app(scope, receive, send)

    async def _asgi3(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self(scope, receive, send)

    async def _decided(
        self,
        found: Decision | Candidate | None,
        scope: Scope,
        receive: Receive,
        send: Send,
        required: tuple[str, ...],
        peer: str | None,
        seen: Seen,
        rid_header: bytes,
    ) -> None:
        """The request ``__call__``'s settled decisions could not answer at once: a decision
        to settle, a store read to make, a refusal."""
        verdict = (
            self._settle(found)
            if isinstance(found, Decision)
            else await self._resumed(found, scope, required, peer, seen)
        )
        if isinstance(verdict, HttpAnswer):
            await self._refuse(scope, receive, send, verdict, rid_header)
            return
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state[STATE_KEY] = verdict
        state[REQUEST_ID_KEY] = seen.request_id
        told = (HEADER_ASGI, rid_header)
        await self.app(scope, receive, _telling(send, _START[scope["type"]], told, verdict, state))

    async def _resumed(
        self,
        found: Candidate | None,
        scope: Scope,
        required: tuple[str, ...],
        peer: str | None,
        seen: Seen,
    ) -> VerifiedKey | HttpAnswer:
        """The key, or the answer to send, when the triage could not decide: a store read
        to make (in a thread), or the general path."""
        try:
            query = scope["query_string"]
            decision = await self._resume(found, scope["headers"], query, required, peer, seen)
            return self._settle(decision)
        except KeyturnError as exc:  # no decision could be made: fail closed
            return self.guard.failure(exc)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, answer: HttpAnswer, rid_header: bytes
    ) -> None:
        """Answer ``answer`` instead of the app (a preflight goes on to a CORSMiddleware
        inside, which answers it without calling the app)."""
        if self._cors_inside and is_preflight(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _send_answer(send, answer, "http.response", rid_header)
        else:
            await _refuse_websocket(scope, send, answer, rid_header)

    def _closing_on_shutdown(self, send: Send) -> Send:
        async def forward(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await asyncio.to_thread(self.guard.close)
            await send(message)

        return forward


_START = {"http": "http.response.start", "websocket": "websocket.accept"}


def _telling(
    send: Send, start: str, told: tuple[bytes, bytes], key: VerifiedKey, state: dict[str, object]
) -> Send:
    """``send`` that adds the key's lifecycle headers (when due) and the request's
    ``X-Request-Id`` (``told``) to the response's start or a WebSocket's accept, whatever
    the app put there; only the id to a refusal of keyturn's own made inside (FastAPI's
    dependency asking for more scopes marks ``REFUSED_KEY``): a refusal never tells anything
    about the key. The middleware's own, lighter ``send`` does this for an HTTP response
    when nothing of the key's is due."""
    lifecycle = key.lifecycle_all_asgi if time() >= key.lifecycle_due else ()

    def telling(message: Message) -> Awaitable[None]:
        if message["type"] == start:
            headers = [*message.get("headers", ())]
            if lifecycle and not state.get(REFUSED_KEY):
                headers += lifecycle
            headers.append(told)
            message["headers"] = headers
        return send(message)

    return telling


def route_path(path: str, root_path: str) -> str:
    """The path the app routes on: ``path`` less the mount point (``root_path``), which
    servers (``uvicorn --root-path``) and Starlette's ``Mount`` leave in ``scope["path"]``.
    Starlette's router reads it so; a path outside the mount point is taken as it is."""
    if path.startswith(root_path):
        rest = path[len(root_path) :]
        if not rest or rest[0] == "/":
            return rest
    return path


def is_preflight(scope: Scope) -> bool:
    """A CORS preflight, as Starlette's ``CORSMiddleware`` recognises one (and answers it
    itself, without calling the app behind it)."""
    if scope.get("method") != "OPTIONS":
        return False
    names = {name for name, _ in scope["headers"]}
    return b"origin" in names and b"access-control-request-method" in names


def _wraps_cors(app: object) -> bool:
    """Whether ``app`` is, or wraps through other middleware, Starlette's CORSMiddleware:
    then a preflight refused here may go on, to be answered there."""
    try:
        from starlette.middleware.cors import CORSMiddleware
    except ImportError:  # pragma: no cover - Starlette is not installed: no CORSMiddleware
        return False
    for _ in range(_MIDDLEWARE_DEPTH):
        if isinstance(app, CORSMiddleware):
            return True
        app = getattr(app, "app", None)
        if app is None:
            return False
    return False


_Encoded = tuple[HttpAnswer, tuple[tuple[bytes, bytes], ...], bytes]
_encoded: dict[int, _Encoded] = {}  # id(answer) -> (the answer, its headers, its body)


def _encoding(answer: HttpAnswer) -> _Encoded:
    """``answer``'s headers and body as ASGI sends them, encoded once per answer (the guard
    renders a repeated refusal once: ``Guard.settle``)."""
    known = _encoded.get(id(answer))
    if known is not None and known[0] is answer:
        return known
    body = answer.body_bytes()
    headers = tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers)
    if len(_encoded) >= _ENCODED_LIMIT:
        _encoded.clear()
    known = _encoded[id(answer)] = (
        answer,
        (*headers, (b"content-length", str(len(body)).encode())),
        body,
    )  # it holds the id in use
    return known


async def _send_answer(send: Send, answer: HttpAnswer, prefix: str, request_id: bytes) -> None:
    _, encoded, body = _encoding(answer)
    headers = [*encoded, (HEADER_ASGI, request_id)]
    await send({"type": f"{prefix}.start", "status": answer.status, "headers": headers})
    await send({"type": f"{prefix}.body", "body": body})


async def _refuse_websocket(
    scope: Scope, send: Send, answer: HttpAnswer, request_id: bytes
) -> None:
    """The full HTTP answer where the server supports it, else a policy-violation close."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await _send_answer(send, answer, "websocket.http.response", request_id)
    else:
        await send(
            {"type": "websocket.close", "code": _POLICY_VIOLATION, "reason": answer.body["code"]}
        )
