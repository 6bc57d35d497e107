"""FastAPI: a security dependency that shows in OpenAPI, and a one-call ``protect(app)``.

Three lines add keyturn to an existing app::

    from keyturn.integrations.fastapi import KeyturnAuth
    auth = KeyturnAuth("sqlite:///keyturn.db")
    auth.protect(app)  # every path needs a key but the docs pages FastAPI serves

and a route asks for scopes (and gets the caller's key) with
``key: VerifiedKey = Security(auth, scopes=["items:write"])``.

The dependency is declared to OpenAPI as two schemes, an HTTP bearer scheme and an
``apiKey`` header scheme, so Swagger UI's Authorize dialog works with either. The
dependency itself is the ``apiKey`` scheme; ``install`` (which ``protect`` calls) adds the
bearer alternative beside it in the document, rather than a second, empty dependency:
FastAPI resolves every dependency of a route on every request, and one more level cost a
third of the dependency's time (``bench/http.py``). When the
middleware that ``protect`` installs has already verified the request, the dependency only
reads the key from ``request.state`` (and checks the route's scopes in memory); the routes
declared before the app starts do that without FastAPI resolving the dependency at all
(``_fastapi_shortcut``). Rejections
are keyturn's full answer - the catalogue status, the ``WWW-Authenticate`` challenge and the
problem+json body - never FastAPI's bare ``403 {"detail": "Not authenticated"}``. Every answer
the dependency or the middleware decided carries ``X-Request-Id``, the id its decision is
recorded under in the verification log.
"""

from keyturn._extras import require

require("fastapi", "keyturn.integrations.fastapi")


# No ``from __future__ import annotations``: FastAPI reads these signatures at runtime.

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.middleware import Middleware
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.models import APIKey, APIKeyIn, HTTPBearer
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.concurrency import run_in_threadpool

from keyturn._asgi import ASGIApp
from keyturn._path_rules import PathRules
from keyturn._request_ids import HEADER as REQUEST_ID
from keyturn._verifications import Seen
from keyturn.answer import HttpAnswer, render_error
from keyturn.errors import InvalidValue, KeyturnError, NotPermitted
from keyturn.integrations._fastapi_shortcut import shortcut
from keyturn.integrations.asgi import REFUSED_KEY, REQUEST_ID_KEY, STATE_KEY, KeyturnMiddleware
from keyturn.integrations.guard import Guard, KeySource
from keyturn.integrations.identity import VerifiedKey
from keyturn.integrations.portal import MAX_BODY, OwnerKeys, PolicySource, read_json

_OPERATIONS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
_DESCRIPTION = "A keyturn API key (kt_live_... or kt_test_...)."


class KeyturnRejected(HTTPException):
    """A rejected request, carrying keyturn's full answer.

    It is an ``HTTPException`` so that an app without keyturn's handler (see
    ``KeyturnAuth.install``) still answers with the right status and challenge; with the
    handler installed the body is the exact problem+json document as well. ``request_id``:
    the ``X-Request-Id`` to answer with, when no middleware of keyturn's adds it.
    """

    def __init__(self, answer: HttpAnswer, request_id: str | None = None) -> None:
        headers = {k: v for k, v in answer.headers if k != "content-type"}
        if request_id is not None:
            headers[REQUEST_ID] = request_id
        super().__init__(answer.status, detail=answer.body, headers=headers)
        self.answer = answer
        self.request_id = request_id


async def answer_rejection(request: Request, exc: Exception) -> Response:
    """The exception handler ``install`` registers: send the answer exactly."""
    if not isinstance(exc, KeyturnRejected):  # pragma: no cover - registered for this type only
        raise exc
    answer = exc.answer
    headers = dict(answer.headers)
    if exc.request_id is not None:
        headers[REQUEST_ID] = exc.request_id
    return Response(answer.body_bytes(), answer.status, headers=headers)


class _BearerScheme(SecurityBase):
    """Declares ``Authorization: Bearer`` to OpenAPI (``KeyturnAuth.install`` lists it);
    reading the header is keyturn's job."""

    def __init__(self, scheme_name: str, description: str) -> None:
        self.model = HTTPBearer(bearerFormat="keyturn API key", description=description)
        self.scheme_name = scheme_name


BEARER = _BearerScheme("keyturnBearer", _DESCRIPTION)


class KeyturnAuth(SecurityBase):
    """The security dependency: ``Security(auth, scopes=[...])`` returns the ``VerifiedKey``.

    It is itself the OpenAPI ``apiKey`` scheme (header named after the manager's first
    API-key header, ``x-api-key`` by default); with ``install`` or ``protect``, every route
    using it lists the bearer scheme too, as an alternative.
    """

    def __init__(
        self,
        keys: KeySource = None,
        *,
        realm: str | None = None,
        scheme_name: str = "keyturnApiKey",
        description: str = _DESCRIPTION,
        public_url: str | None = None,
    ) -> None:
        given = {"realm": realm, "public_url": public_url}
        self.guard = Guard.of(keys, **{k: v for k, v in given.items() if v is not None})
        headers = self.guard.manager.verifier.reader.api_key_headers
        self.model = APIKey(
            **{"in": APIKeyIn.header},  # type: ignore[arg-type]
            name=headers[0] if headers else "x-api-key",
            description=description,
        )
        self.scheme_name = scheme_name

    async def __call__(
        self,
        request: Request,
        security_scopes: SecurityScopes,
        response: Response,
    ) -> VerifiedKey:
        required = security_scopes.scopes
        state = request.scope.get("state")
        if state is not None:
            key = state.get(STATE_KEY)
            # The route's scopes held as written: one set comparison, no call (has_scopes
            # reads wildcards for the rest).
            if key is not None and (
                key.scopes.issuperset(required) or key.has_scopes(*required)
            ):
                return key  # type: ignore[no-any-return]
        scope = request.scope
        client = scope.get("client")
        peer = client[0] if client else None
        told = state.get(REQUEST_ID_KEY) if state is not None else None
        # Under ``protect`` the middleware's id, which it adds to the answer; else a new one.
        rid = told if told is not None else self.guard.request_ids.asgi(scope["headers"], peer)[0]
        result = await self.guard.verdict_asgi(
            scope["headers"],
            scope["query_string"],
            required,
            peer,
            # The user agent left to the core, which reads it with the key (``Seen``).
            Seen(scope.get("method", "GET"), scope["path"], rid, None,
                 scope["headers"] if self.guard.request_ids.trusted else ()),
        )
        if isinstance(result, HttpAnswer):
            if state is not None:
                state[REFUSED_KEY] = True  # the middleware tells the key's lifecycle: not now
            raise KeyturnRejected(result, None if told is not None else rid)
        request.state.keyturn_key = result
        # The key's lifecycle and the request's id on the response FastAPI builds from the
        # route's return value (with ``protect``, the middleware adds them to every
        # response instead).
        headers = response.headers
        for name, value in result.lifecycle:
            headers[name] = value
        if told is None:
            headers[REQUEST_ID] = rid
        return result

    def install(self, app: FastAPI) -> None:
        """Make ``app`` answer rejections with keyturn's full answer, and document the
        bearer scheme beside the ``apiKey`` one on every operation that uses this
        dependency (``protect`` does this)."""
        app.add_exception_handler(KeyturnRejected, answer_rejection)
        if not getattr(app.openapi, "_keyturn", False):
            app.openapi = self._documenting(app.openapi, None)  # type: ignore[method-assign]

    def protect(
        self,
        app: FastAPI,
        *,
        open_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """Require a key on every path of ``app`` but its docs and ``open_paths``.

        The docs are exactly the pages FastAPI serves (``GET /docs``, its OAuth2 redirect,
        ``/redoc``, ``/openapi.json``, as configured), not what lies below them. Installs the
        rejection handler and the ASGI middleware, which protects every route whenever it was
        declared, and mounted sub-apps too; it goes inside any ``CORSMiddleware``, added
        before or after, so CORS preflights and refusals get their CORS headers. ``scopes``
        adds per-path scope rules, as in ``KeyturnMiddleware``. The OpenAPI document then
        lists both key schemes on every operation the rules protect (with their scopes) and
        none on open paths, so the docs say exactly what the middleware enforces.
        """
        self.guard.rules = PathRules([*_documentation(app), *open_paths], scopes)
        app.add_exception_handler(KeyturnRejected, answer_rejection)
        _add_inside_cors(
            app, Middleware(_ProtectingMiddleware, keys=self.guard, auth=self, routes=app.router)
        )
        app.openapi = self._documenting(app.openapi, self.guard.rules)  # type: ignore[method-assign]

    def _documenting(
        self, build: Callable[[], dict[str, Any]], rules: PathRules | None
    ) -> Callable[[], dict[str, Any]]:
        """Wrap ``app.openapi`` to add the schemes, the bearer alternative of each use of
        the dependency, and the rules' requirements (idempotent)."""
        schemes = {
            scheme.scheme_name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
            for scheme in (self, BEARER)
        }
        own, bearer = self.scheme_name, BEARER.scheme_name

        def openapi() -> dict[str, Any]:
            document = build()
            components = document.setdefault("components", {})
            components.setdefault("securitySchemes", {}).update(schemes)
            for path, item in document.get("paths", {}).items():
                for method, operation in item.items():
                    if method not in _OPERATIONS:
                        continue
                    required = rules.requirement(method.upper(), path) if rules else None
                    if required is not None:
                        operation.setdefault(
                            "security", [{name: list(required)} for name in schemes]
                        )
                    listed = operation.get("security", [])
                    for entry in list(listed):
                        alternative = {bearer: entry[own]} if own in entry else None
                        if alternative is not None and alternative not in listed:
                            listed.insert(listed.index(entry) + 1, alternative)
            return document

        openapi._keyturn = True  # type: ignore[attr-defined]
        return openapi


class _ProtectingMiddleware(KeyturnMiddleware):
    """``protect``'s middleware: built with the app's middleware stack (at startup or the
    first request), it gives the routes declared by then that use ``auth`` the shortcut of
    ``_fastapi_shortcut``, which takes the key this middleware verified."""

    def __init__(self, app: ASGIApp, keys: Guard, *, auth: KeyturnAuth, routes: APIRouter) -> None:
        super().__init__(app, keys)
        # A subclass's own __call__ does more than hold the scopes: FastAPI must call it.
        if type(auth).__call__ is KeyturnAuth.__call__:
            shortcut(routes.routes, auth)


def _documentation(app: FastAPI) -> list[str]:
    """Open-path rules for exactly the routes ``FastAPI.setup`` adds for its docs."""
    if not app.openapi_url:
        return []
    urls = [app.openapi_url, app.docs_url, app.redoc_url]
    if app.docs_url:
        urls.append(app.swagger_ui_oauth2_redirect_url)
    return [f"GET = {url}" for url in urls if url]


def _add_inside_cors(app: FastAPI, middleware: Middleware) -> None:
    """``app.add_middleware`` puts a middleware outermost; keyturn's goes just inside the
    innermost ``CORSMiddleware`` instead (one added later is outermost anyway)."""
    if app.middleware_stack is not None:
        raise RuntimeError("protect() must be called before the application starts")
    stack = app.user_middleware
    cors = [i for i, m in enumerate(stack) if issubclass(m.cls, CORSMiddleware)]  # type: ignore[arg-type]
    stack.insert(cors[-1] + 1 if cors else 0, middleware)


# -- the customer portal, embedded --------------------------------------------------------


def portal_router(
    auth: KeyturnAuth,
    *,
    owner: Callable[..., Any],
    policy: PolicySource,
    prefix: str = "/portal",
    pages_url: str | None = None,
    return_url: str | None = None,
) -> APIRouter:
    """The customer portal's operations as JSON, for an app whose own session decides the
    owner (``docs/portal.md``)::

        app.include_router(portal_router(auth, owner=current_customer, policy={
            "scopes": ["orders:read", "orders:write"], "max_keys": 5, "max_lifetime": "90d"}))

    ``owner`` is a FastAPI dependency returning the signed-in user's owner id (it refuses
    visitors who are not signed in, as the app's other routes do); ``policy`` an
    ``OwnerPolicy``, its JSON form, or a function of the owner returning one. Routes, below
    ``prefix``: ``GET /keys``, ``POST /keys``, ``GET /keys/{id}`` (with usage),
    ``POST /keys/{id}/rotate``, ``POST /keys/{id}/revoke``; with ``pages_url`` (the address
    of ``keyturn serve`` on the same store) also ``GET /pages``, which sends the signed-in
    user to the portal's pages there with a single-use link (its "Back" link goes to
    ``return_url``). Bodies must be JSON
    (``application/json``), which a cross-site form cannot send: with cookie sessions, that
    and ``SameSite`` cookies keep other sites from posting here.
    """
    operations = OwnerKeys(auth.guard.manager, policy)
    realm, public_url = auth.guard.realm, auth.guard.public_url
    router = APIRouter(prefix=prefix, tags=["keys portal"])

    def who(signed_in: Annotated[Any, Depends(owner)]) -> str:
        if not isinstance(signed_in, str) or not signed_in:
            refusal = NotPermitted("no signed-in owner: this needs a signed-in user")
            raise KeyturnRejected(render_error(refusal, realm, public_url=public_url))
        return signed_in

    Owner = Annotated[str, Depends(who)]

    async def answer(call: Callable[..., dict[str, Any]], *args: Any, status: int = 200) -> Any:
        try:
            return _json_answer(await run_in_threadpool(call, *args), status)
        except KeyturnError as exc:
            return _problem(render_error(exc, realm, "body.", public_url))

    @router.get("/keys", summary="The signed-in owner's keys")
    async def list_keys(owner_id: Owner) -> Any:
        return await answer(operations.list, owner_id)

    @router.post("/keys", status_code=201, summary="Create a key within the policy (shown once)")
    async def create_key(request: Request, owner_id: Owner) -> Any:
        body = await _json_body(request, public_url)
        if isinstance(body, Response):
            return body
        return await answer(operations.create, owner_id, body, status=201)

    @router.get("/keys/{key_id}", summary="One of the owner's keys, with its usage")
    async def get_key(key_id: str, owner_id: Owner) -> Any:
        return await answer(operations.get, owner_id, key_id)

    @router.post("/keys/{key_id}/rotate", status_code=201, summary="Rotate a key (shown once)")
    async def rotate_key(key_id: str, request: Request, owner_id: Owner) -> Any:
        body = await _json_body(request, public_url, optional=True)
        if isinstance(body, Response):
            return body
        return await answer(operations.rotate, owner_id, key_id, body, status=201)

    if pages_url is not None:
        server = pages_url

        @router.get("/pages", summary="The portal's pages for the signed-in owner")
        async def pages(owner_id: Owner) -> Any:
            try:
                link = await run_in_threadpool(operations.pages, owner_id, server, return_url)
            except KeyturnError as exc:
                return _problem(render_error(exc, realm, public_url=public_url))
            moved = {"location": link, "cache-control": "no-store"}
            return Response(status_code=303, headers=moved)

    @router.post("/keys/{key_id}/revoke", summary="Revoke a key for good")
    async def revoke_key(key_id: str, request: Request, owner_id: Owner) -> Any:
        body = await _json_body(request, public_url, optional=True)
        if isinstance(body, Response):
            return body
        return await answer(operations.revoke, owner_id, key_id)

    return router


def _json_answer(body: dict[str, Any], status: int) -> Response:
    return Response(
        json.dumps(body, default=str).encode(),
        status,
        headers={"content-type": "application/json", "cache-control": "no-store"},
    )


def _problem(answer: HttpAnswer) -> Response:
    return Response(answer.body_bytes(), answer.status, headers=dict(answer.headers))


async def _json_body(
    request: Request, public_url: str | None, *, optional: bool = False
) -> Any:
    """The JSON body (``integrations.portal.read_json``) or the problem to answer; a body
    not declared JSON is refused before it is read, a large one after ``MAX_BODY`` bytes.
    A post without a body (revoke) must declare JSON too: another site can send a bodiless
    post with no type at all (``fetch`` in ``no-cors`` mode, ``sendBeacon``), with the
    user's cookies where they are ``SameSite=None`` or the site is a sibling subdomain,
    and only a declared JSON type makes a browser ask first (CORS preflight)."""
    kind = request.headers.get("content-type", "")
    raw = bytearray()
    try:
        read_json(kind, b"{}")  # the declared type, before a byte is read
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY:
                break
        return read_json(kind, bytes(raw), optional=optional)
    except InvalidValue as exc:
        return _problem(render_error(exc, public_url=public_url))
