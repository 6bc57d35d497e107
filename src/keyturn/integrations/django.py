"""Django: middleware that requires a key on every path but the open ones.

Configure it in settings, and add ``"keyturn.integrations.django.KeyturnMiddleware"`` to
``MIDDLEWARE``::

    KEYTURN = {
        "KEYS": "sqlite:////srv/keyturn/keyturn.db",  # optional: a store URL, a KeyManager,
                                          # or a dotted path to one (default: KEYTURN_* settings)
        "REALM": "api",                   # optional, the challenge's realm
        "PUBLIC_URL": "https://auth.example.com",  # optional: problem types link there
        "OPEN_PATHS": ["/health"],        # optional, no key needed (prefixes)
        "SCOPES": {"/admin": ["admin"]},  # optional, per-path scopes ("POST /items" too)
        "USER": "myapp.auth.user_for_key",  # optional, for DRF: VerifiedKey -> user
    }

A request that passes carries the ``VerifiedKey`` as ``request.keyturn_key``, and its response
the key's lifecycle headers (``keyturn.lifecycle_headers``); any other gets
keyturn's full answer and never reaches a view. Either answer carries ``X-Request-Id``, the
id the decision is recorded under in the verification log. Paths are matched on
``request.path_info``, as URLconf patterns are. The middleware works under WSGI and ASGI;
under ASGI a cache miss reads the store in a worker thread, never on the event loop.

The DRF classes in ``keyturn.integrations.drf`` share this configuration and reuse the
middleware's verification when both are installed.

``portal_urls(owner=..., policy=...)`` serves the customer portal's operations as JSON for
the app's own signed-in users (``docs/portal.md``)::

    path("account/api-keys/", include(portal_urls(
        owner=lambda request: request.user.customer_id if request.user.is_authenticated
        else None,
        policy={"scopes": ["orders:read"], "max_keys": 5, "max_lifetime": "90d"}))),
"""

from __future__ import annotations

from keyturn._extras import require

require("django", "keyturn.integrations.django", "django")

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.urls import URLPattern, path
from django.utils.module_loading import import_string

from keyturn._request_ids import HEADER as REQUEST_ID
from keyturn._verifications import Seen
from keyturn.answer import DEFAULT_REALM, HttpAnswer, render_error
from keyturn.errors import InvalidValue, KeyturnError, NotPermitted
from keyturn.integrations.guard import Guard
from keyturn.integrations.identity import VerifiedKey
from keyturn.integrations.portal import MAX_BODY, OwnerKeys, PolicySource, is_json, read_json
from keyturn.manager import AsyncKeyManager, KeyManager

SETTING = "KEYTURN"


@dataclass(frozen=True, slots=True)
class Setup:
    """``settings.KEYTURN``, resolved once: the guard, the DRF user mapping, and which
    ``request.META`` entries keyturn reads: those that can hold a key, the forwarding
    headers a trusted proxy sets (the client's address, for keys restricted by address)
    and the user agent (for the verification log). Reading these few beats building
    ``request.headers`` from all of them on every request."""

    guard: Guard
    user_for_key: Callable[[VerifiedKey], Any] | None
    meta_headers: tuple[tuple[str, str], ...]

    def headers(self, request: HttpRequest) -> list[tuple[str, str]]:
        meta = request.META
        return [(name, meta[key]) for key, name in self.meta_headers if key in meta]


_lock = threading.Lock()
_setup: Setup | None = None


def setup() -> Setup:
    """The process's configuration, read from ``settings.KEYTURN`` on first use."""
    global _setup
    current = _setup
    if current is not None:
        return current
    with _lock:
        if _setup is None:
            _setup = _build(dict(getattr(settings, SETTING, None) or {}))
        return _setup


def guard() -> Guard:
    """The process's guard (and so its ``KeyManager``: ``guard().manager``)."""
    return setup().guard


def _build(options: dict[str, Any]) -> Setup:
    keys = options.get("KEYS")
    if isinstance(keys, str) and "://" not in keys:
        keys = import_string(keys)
    if not (keys is None or isinstance(keys, KeyManager | AsyncKeyManager | str)):
        raise ImproperlyConfigured(
            f"settings.{SETTING}['KEYS'] must be a store URL (sqlite:///keyturn.db), a "
            "KeyManager, or the dotted path to one; left out, keyturn serve's settings "
            "(KEYTURN_DATABASE_URL, ...) are used"
        )
    try:
        g = Guard(
            keys,
            realm=options.get("REALM"),
            public_url=options.get("PUBLIC_URL"),
            open_paths=options.get("OPEN_PATHS", ()),
            scopes=options.get("SCOPES"),
        )
    except InvalidValue as exc:  # a database or setting keyturn cannot use
        raise ImproperlyConfigured(f"settings.{SETTING}: {exc.message}") from None
    user = options.get("USER")
    if isinstance(user, str):
        user = import_string(user)
    names = (
        "authorization",
        *g.manager.verifier.reader.api_key_headers,
        "x-forwarded-for",  # what keyturn._addresses reads behind a trusted proxy
        "x-real-ip",
        "forwarded",
        "user-agent",
    )
    meta = tuple(("HTTP_" + name.upper().replace("-", "_"), name) for name in names)
    return Setup(g, user, meta)


def _reset(*, setting: str, **_: object) -> None:
    """Rebuild on the next request after ``KEYTURN`` changes (``override_settings``)."""
    global _setup
    if setting == SETTING:
        with _lock:
            old, _setup = _setup, None
        if old is not None:
            old.guard.close()


setting_changed.connect(_reset)


def response(answer: HttpAnswer) -> HttpResponse:
    """keyturn's answer as a Django response, byte for byte."""
    return HttpResponse(answer.body_bytes(), status=answer.status, headers=dict(answer.headers))


def peer(request: HttpRequest) -> str | None:
    """The address the request came from (``REMOTE_ADDR``), for keys restricted by address;
    forwarding headers are judged by keyturn's ``trusted_proxies``, not here."""
    address = request.META.get("REMOTE_ADDR")
    return address if isinstance(address, str) and address else None


def query_string(request: HttpRequest) -> str:
    return str(request.META.get("QUERY_STRING", ""))


def request_id(request: HttpRequest, guard: Guard) -> str:
    """The request's ``X-Request-Id`` (a trusted proxy's, or a new one), kept on the request
    as ``keyturn_request_id``: every decision made on it is recorded under that id, and
    every answer carries it."""
    rid: str | None = getattr(request, "keyturn_request_id", None)
    if rid is None:
        given = request.META.get("HTTP_X_REQUEST_ID")
        rid = request.keyturn_request_id = guard.request_ids.of(given, peer(request))
    return rid


def seen_of(request: HttpRequest, guard: Guard, headers: list[tuple[str, str]]) -> Seen:
    """The request's method, path, id and user agent, recorded with its decision (the
    verification log); its ``headers`` only when a proxy is trusted (the writer reads the
    forwarded addresses then)."""
    return Seen(
        request.method or "GET", request.path, request_id(request, guard),
        request.META.get("HTTP_USER_AGENT", ""), headers if guard.request_ids.trusted else (),
    )  # fmt: skip


class KeyturnMiddleware:
    """Require a key per ``settings.KEYTURN``; sync or async, whichever the stack is."""

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        conf = setup()
        g = conf.guard
        required = g.requirement(request.method or "GET", request.path_info)
        if required is not None:
            headers = conf.headers(request)
            verdict = g.verdict(
                headers, query_string(request), required, peer(request),
                seen_of(request, g, headers),
            )  # fmt: skip
            refusal = admit(request, verdict)
            if refusal is not None:
                return refusal
        return tell(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> Any:
        conf = setup()
        g = conf.guard
        required = g.requirement(request.method or "GET", request.path_info)
        if required is not None:
            headers = conf.headers(request)
            verdict = await g.verdict_async(
                headers, query_string(request), required, peer(request),
                seen_of(request, g, headers),
            )  # fmt: skip
            refusal = admit(request, verdict)
            if refusal is not None:
                return refusal
        return tell(request, await self.get_response(request))


def admit(request: HttpRequest, verdict: VerifiedKey | HttpAnswer) -> HttpResponse | None:
    """Put the verified key on ``request.keyturn_key``, or return the answer to send."""
    if isinstance(verdict, HttpAnswer):
        return tell(request, response(verdict))
    request.keyturn_key = verdict
    return None


def tell(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Add the request's ``X-Request-Id`` (once keyturn decided on it) and the lifecycle
    headers of the key the request was accepted with (by this middleware, or by DRF's
    ``KeyturnAuthentication`` on an open path) to ``response``; no lifecycle headers when
    keyturn refused it after all (DRF's ``HasScopes``)."""
    rid = getattr(request, "keyturn_request_id", None)
    if rid is not None:
        response[REQUEST_ID] = rid
    key = getattr(request, "keyturn_key", None)
    if isinstance(key, VerifiedKey) and not getattr(request, "keyturn_refused", False):
        for name, value in key.lifecycle:
            response[name] = value
    return response


# -- the customer portal, embedded --------------------------------------------------------


def portal_urls(
    *,
    owner: Callable[[HttpRequest], str | None],
    policy: PolicySource,
    keys: KeyManager | None = None,
    pages_url: str | None = None,
    return_url: str | None = None,
) -> list[URLPattern]:
    """The portal's operations as JSON views, to ``include`` under a path of the app's.

    ``owner(request)`` returns the signed-in user's owner id (``None``: nobody is signed
    in, a 403); ``policy`` as for ``OwnerPolicy`` (its JSON form, an ``OwnerPolicy``, or a
    function of the owner); ``keys`` the manager (default: ``settings.KEYTURN``'s, as the
    middleware's); ``pages_url`` and ``return_url`` add ``pages`` as in FastAPI's. The same
    routes and answers as FastAPI's ``portal_router``. Django's
    CSRF protection stays on: a post carries the app's CSRF token (``X-CSRFToken``), and
    its body must be ``application/json``.
    """
    made: list[OwnerKeys] = []

    def operations() -> OwnerKeys:
        manager = keys if keys is not None else guard().manager
        if not made or made[0].manager is not manager:
            made[:] = [OwnerKeys(manager, policy)]
        return made[0]

    def act(request: HttpRequest, call: Callable[..., Any], *args: Any) -> Any:
        """``call(owner, *args)`` as the signed-in owner; keyturn's answer on an error."""
        try:
            signed_in = owner(request)
            if not isinstance(signed_in, str) or not signed_in:
                raise NotPermitted("no signed-in owner: this needs a signed-in user")
            return call(operations(), signed_in, *args)
        except KeyturnError as exc:
            conf = guard() if keys is None else None
            realm = conf.realm if conf is not None else DEFAULT_REALM
            public_url = conf.public_url if conf is not None else None
            return response(render_error(exc, realm, "body.", public_url))

    def keys_view(request: HttpRequest) -> HttpResponse:
        if request.method == "GET":
            return _json_answer(act(request, OwnerKeys.list))
        if request.method != "POST":
            return HttpResponseNotAllowed(["GET", "POST"])
        create = lambda ops, who: ops.create(who, _json_body(request))  # noqa: E731
        return _json_answer(act(request, create), 201)

    def key_view(request: HttpRequest, key_id: str) -> HttpResponse:
        if request.method != "GET":
            return HttpResponseNotAllowed(["GET"])
        return _json_answer(act(request, OwnerKeys.get, key_id))

    def rotate_view(request: HttpRequest, key_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])

        def rotate(ops: OwnerKeys, who: str) -> dict[str, Any]:
            return ops.rotate(who, key_id, _json_body(request, optional=True))

        return _json_answer(act(request, rotate), 201)

    def revoke_view(request: HttpRequest, key_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])

        def revoke(ops: OwnerKeys, who: str) -> dict[str, Any]:
            _json_body(request, optional=True)
            return ops.revoke(who, key_id)

        return _json_answer(act(request, revoke))

    def pages_view(request: HttpRequest) -> HttpResponse:
        if request.method != "GET" or pages_url is None:
            return HttpResponseNotAllowed(["GET"])
        link = act(request, OwnerKeys.pages, pages_url, return_url)
        if isinstance(link, HttpResponse):
            return link
        return HttpResponse(status=303, headers={"location": link, "cache-control": "no-store"})

    found = [] if pages_url is None else [path("pages", pages_view, name="keyturn-portal")]
    return [
        *found,
        path("keys", keys_view, name="keyturn-portal-keys"),
        path("keys/<str:key_id>", key_view, name="keyturn-portal-key"),
        path("keys/<str:key_id>/rotate", rotate_view, name="keyturn-portal-rotate"),
        path("keys/<str:key_id>/revoke", revoke_view, name="keyturn-portal-revoke"),
    ]


def _json_body(request: HttpRequest, optional: bool = False) -> Any:
    """The request's JSON body, checked for its type before its size and then read. A post
    without a body declares JSON too, as on FastAPI's router: a bodiless post with no type
    is what another site can send (Django's CSRF check is the first guard, this the second)."""
    kind = request.content_type or ""
    if not is_json(kind):
        raise InvalidValue("send the body as application/json", "body")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > MAX_BODY:
        raise InvalidValue(f"the body is larger than {MAX_BODY // 1024} KiB", "body")
    return read_json(kind, request.body, optional=optional)


def _json_answer(result: Any, status: int = 200) -> HttpResponse:
    if isinstance(result, HttpResponse):
        return result
    reply = JsonResponse(result, status=status)
    reply["cache-control"] = "no-store"
    return reply
