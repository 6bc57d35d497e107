"""Django REST framework: an authentication class and a scope permission.

::

    class ItemList(APIView):
        authentication_classes = [KeyturnAuthentication]
        permission_classes = [HasScopes]
        required_scopes = ["items:read"]          # or {"GET": [...], "POST": [...]}

``request.auth`` is the ``VerifiedKey``; ``request.user`` is a ``KeyUser`` for it, or the
user that ``settings.KEYTURN["USER"]`` (a dotted path to ``fn(key) -> user``) maps it to.
The view's response carries the key's lifecycle headers (``keyturn.lifecycle_headers``), and
every answer keyturn decided ``X-Request-Id``, the id the decision is recorded under in the
verification log.

The answers follow RFC 6750 as every keyturn integration does: a missing or bad key is a
401 with keyturn's challenge (``authenticate_header`` returns it, so DRF never turns a 401
into a 403), a key lacking a scope is a 403 ``insufficient_scope``. Rejections carry the
catalogue's status, ``WWW-Authenticate`` header and problem body; set
``REST_FRAMEWORK["EXCEPTION_HANDLER"] = "keyturn.integrations.drf.exception_handler"`` to
also send them as ``application/problem+json`` with ``Cache-Control: no-store`` instead of
through DRF's renderers.

Configuration is the Django middleware's (``keyturn.integrations.django``); when that
middleware is installed too, these classes reuse its verification instead of repeating it.
"""

from __future__ import annotations

from keyturn._extras import require

require("django", "keyturn.integrations.drf")

from collections.abc import Mapping, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import exception_handler as drf_exception_handler

from keyturn._request_ids import HEADER as REQUEST_ID
from keyturn.answer import HttpAnswer
from keyturn.errors import KeyturnError
from keyturn.integrations.django import guard, peer, query_string, response, seen_of, setup
from keyturn.integrations.identity import VerifiedKey
from keyturn.lifecycle_headers import HEADER_NAMES


class KeyturnRejection(APIException):  # type: ignore[misc]
    """keyturn's answer as a DRF exception.

    Deliberately not an ``AuthenticationFailed``: DRF would replace its challenge with the
    first authentication class's, and turn the 401 into a 403 when that class has none.
    """

    def __init__(self, answer: HttpAnswer) -> None:
        super().__init__()
        self.status_code = answer.status
        self.detail = answer.body  # set after __init__, which would turn numbers into strings
        self.auth_header = answer.header("www-authenticate")
        retry_after = answer.header("retry-after")  # DRF's handler sends it from ``wait``
        self.wait = int(retry_after) if retry_after and retry_after.isdigit() else None
        self.answer = answer


class KeyUser:
    """The ``request.user`` of a key with no mapped user: authenticated, and nothing more."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    def __init__(self, key: VerifiedKey) -> None:
        self.key = key
        self.pk = self.id = key.id
        self.username = key.name

    def get_username(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: object = None) -> bool:
        return False

    def __str__(self) -> str:
        return f"API key {self.key.name} ({self.key.masked})"


def _http(request: Request) -> HttpRequest:
    return request._request


class KeyturnAuthentication(BaseAuthentication):  # type: ignore[misc]
    """Authenticates a keyturn key; ``None`` when the request carries no key at all, so
    other authentication classes may still try, as DRF expects."""

    def authenticate(self, request: Request) -> tuple[Any, VerifiedKey] | None:
        http = _http(request)
        conf = setup()
        key: VerifiedKey | None = getattr(http, "keyturn_key", None)  # the middleware's
        if key is None:
            g = conf.guard
            headers = conf.headers(http)
            seen = seen_of(http, g, headers)
            _tell_id(request, http)  # on any answer, refusals included
            try:
                decision = g.check(headers, query_string(http), (), peer(http), seen)
            except KeyturnError as exc:  # no decision could be made: fail closed
                raise KeyturnRejection(g.failure(exc)) from None
            if decision.code == "missing_credentials":
                return None
            verdict = g.settle(decision)
            if isinstance(verdict, HttpAnswer):
                raise KeyturnRejection(verdict)
            key = http.keyturn_key = verdict
        _tell(request, key)
        _tell_id(request, http)
        user_for_key = conf.user_for_key
        return (KeyUser(key) if user_for_key is None else user_for_key(key)), key

    def authenticate_header(self, request: Request) -> str:
        """The challenge DRF sends when it finds no credentials; it keeps DRF's 401 a 401."""
        g = guard()
        return g.missing().header("www-authenticate") or "Bearer"


def _tell(request: Request, key: VerifiedKey) -> None:
    """The key's lifecycle headers (``keyturn.lifecycle_headers``) on the view's response:
    DRF's ``finalize_response`` copies the view's ``headers`` onto it, whether or not the
    Django middleware is installed (which sets the same values)."""
    view = (request.parser_context or {}).get("view")
    headers = getattr(view, "headers", None)
    if isinstance(headers, dict):
        headers.update(key.lifecycle)


def _tell_id(request: Request, http: HttpRequest) -> None:
    """The request's ``X-Request-Id`` on the view's response, whatever it is."""
    view = (request.parser_context or {}).get("view")
    headers = getattr(view, "headers", None)
    rid = getattr(http, "keyturn_request_id", None)
    if isinstance(headers, dict) and rid is not None:
        headers[REQUEST_ID] = rid


def _untell(request: Request) -> None:
    """A refusal says nothing about the key: no lifecycle headers on it, from the view or
    from the Django middleware (``keyturn.integrations.django.tell``)."""
    view = (request.parser_context or {}).get("view")
    headers = getattr(view, "headers", None)
    if isinstance(headers, dict):
        for name in HEADER_NAMES:
            headers.pop(name, None)
    _http(request).keyturn_refused = True


class HasScopes(BasePermission):  # type: ignore[misc]
    """Requires a keyturn key holding ``scopes`` and the view's ``required_scopes``.

    ``required_scopes`` on the view is a list, or a dict from HTTP method to list (a
    ``GET`` entry holds for ``HEAD`` too).
    ``HasScopes.require("a", "b")`` makes a subclass with fixed scopes.
    """

    scopes: tuple[str, ...] = ()

    @classmethod
    def require(cls, *scopes: str) -> type[HasScopes]:
        return type(f"HasScopes[{' '.join(scopes)}]", (cls,), {"scopes": cls.scopes + scopes})

    def has_permission(self, request: Request, view: Any) -> bool:
        required = self.scopes + _view_scopes(view, request.method)
        key = request.auth
        if isinstance(key, VerifiedKey) and key.has_scopes(*required):
            return True
        # No keyturn key, or one short of a scope: the full check gives the exact answer.
        conf = setup()
        http = _http(request)
        headers = conf.headers(http)
        verdict = conf.guard.verdict(
            headers, query_string(http), required, peer(http), seen_of(http, conf.guard, headers)
        )
        _tell_id(request, http)
        if isinstance(verdict, HttpAnswer):
            _untell(request)
            raise KeyturnRejection(verdict)
        return True


def _view_scopes(view: Any, method: str) -> tuple[str, ...]:
    """The view's ``required_scopes`` for ``method``: a list for every method, or a dict by
    method (any case). ``HEAD`` needs ``GET``'s scopes too: DRF answers it with ``get``."""
    declared: Sequence[str] | Mapping[str, Sequence[str]] = getattr(view, "required_scopes", ())
    if not isinstance(declared, Mapping):
        return _scope_list(declared)
    by_method = {str(name).upper(): scopes for name, scopes in declared.items()}
    method = method.upper()
    wanted = (method, "GET") if method == "HEAD" else (method,)
    found = [s for m in wanted for s in _scope_list(by_method.get(m, ()))]
    return tuple(dict.fromkeys(found))


def _scope_list(declared: Sequence[str]) -> tuple[str, ...]:
    if isinstance(declared, str):
        raise TypeError(f"required_scopes must be a list of scopes, not the string {declared!r}")
    return tuple(declared)


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    """DRF's handler, except that keyturn's answers go out exactly as keyturn renders them.

    That includes DRF's own "no credentials" 401 when keyturn is the view's first
    authentication class, which then answers like every other keyturn integration.
    """
    if isinstance(exc, KeyturnRejection):
        return response(exc.answer)
    request = context.get("request")
    if (
        isinstance(exc, NotAuthenticated)
        and request is not None
        and request.authenticators
        and isinstance(request.authenticators[0], KeyturnAuthentication)
    ):
        g = guard()
        return response(g.missing())
    result: HttpResponse | None = drf_exception_handler(exc, context)
    return result
