"""FastAPI under ``protect``: a route's ``Security(auth, scopes=[...])`` answered from the
middleware's verification, without FastAPI resolving the dependency.

Under ``protect`` the middleware has verified the key before any route runs, and the
dependency only holds the route's scopes against that key in memory. FastAPI's resolution
of a sub-dependency costs far more than that check: about 80,000 instructions a request
(a recursive solve, a cache key, classifying the callable three times), whatever the
dependency does - under uvicorn, ``Security`` cost 0.80x the bare app where ``protect``
alone cost 0.89x (``bench/http.py``). So when the app's middleware stack is built, each of
its routes that declares the protecting ``KeyturnAuth`` as a dependency of its own gets a
second handler, which FastAPI builds from the route's dependant less keyturn's dependency,
and whose endpoint is handed the middleware's key as the dependency would have returned it.

A request takes that handler only when the middleware accepted a key holding every scope
the route's uses of ``auth`` ask for, before any of the route's other dependencies or its
body are looked at, and when ``auth`` is not overridden (``app.dependency_overrides``); any
other request - one the route refuses, a test's override, an open path the middleware let
through - takes the route's own handler and is answered exactly as without the shortcut.
The route's dependant itself is left as it is, so the OpenAPI document lists the same
schemes and scopes.

It builds on FastAPI's routing internals, so it is taken only on the FastAPI versions it
was built and tested on (``KNOWN``); elsewhere every route keeps FastAPI's own path. So do
routes added once the app has started, routes of included routers (FastAPI answers them
through handlers of its own, one per inclusion) and mounted apps.
"""

from keyturn._extras import require

require("fastapi", "keyturn.integrations._fastapi_shortcut")

import copy
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Iterable
from inspect import Parameter, signature
from typing import Any

import fastapi
from fastapi.routing import APIRoute

from keyturn._asgi import ASGIApp, Receive, Scope, Send
from keyturn.integrations.asgi import STATE_KEY

KNOWN = frozenset({(0, 165)})
"""FastAPI's (major, minor) versions whose routing internals the shortcut is built on."""

_REQUEST = "keyturn request"  # not an identifier: never one of an endpoint's own parameters
# The key the route's scopes were held against, in the request's scope: the route's other
# dependencies run between the check and the endpoint, and may replace ``request.state``'s.
_CHECKED = "keyturn checked key"


def known(version: str) -> bool:
    """Whether FastAPI ``version`` is one the shortcut was built and tested on."""
    parts = version.split(".")
    try:
        return (int(parts[0]), int(parts[1])) in KNOWN
    except (IndexError, ValueError):
        return False


def shortcut(routes: Iterable[Any], auth: object) -> None:
    """Give each route of ``routes`` that depends on ``auth`` directly the shortcut handler
    (see the module), on a known FastAPI version; a route given it already is left alone."""
    if not known(fastapi.__version__):
        return
    for route in routes:
        # A route class of the app's own (``route_class``) is fine as long as it builds its
        # app as APIRoute does: its own get_route_handler builds the second handler too.
        if (
            isinstance(route, APIRoute)
            and type(route).__init__ is APIRoute.__init__
            and not isinstance(getattr(route.app, "__self__", None), _Shortcut)
        ):
            _shortcut_route(route, auth)


def _shortcut_route(route: APIRoute, auth: object) -> None:
    # Imported here, on a known version only: other versions may not have them at all.
    from fastapi._body_limit import wrap_app_with_body_limit
    from fastapi.dependencies.models import (
        _get_oauth_scopes,
        _is_async_gen_callable,
        _is_coroutine_callable,
        _is_gen_callable,
    )
    from fastapi.routing import _endpoint_context_cache, _extract_endpoint_context, request_response

    dependant = route.dependant
    endpoint = dependant.call
    ours = [d for d in dependant.dependencies if d.call is auth]
    if (
        not ours
        or endpoint is None
        or _is_gen_callable(endpoint)
        or _is_async_gen_callable(endpoint)
    ):
        return  # nothing to skip, or a streaming endpoint (FastAPI treats those apart)
    names = tuple(d.name for d in ours if d.name is not None)
    lean = dataclasses.replace(
        dependant, dependencies=[d for d in dependant.dependencies if d.call is not auth]
    )
    if names:
        given = dependant.request_param_name
        if given is None and len(names) == 1 and _sole_parameter(endpoint, names[0]):
            # The endpoint's one parameter is the key: ``request`` is no name of its own.
            lean.request_param_name = "request"
            lean.call = _handing_sole(endpoint)
        else:
            lean.request_param_name = given or _REQUEST
            lean.call = _handing_key(endpoint, names, lean.request_param_name, given is None)
        if _is_coroutine_callable(lean.call) != _is_coroutine_callable(endpoint):
            return  # FastAPI would await what it ran in a thread before, or the reverse
        # FastAPI names the endpoint in its validation errors (file, line, function): the
        # user's endpoint, not the function handing it the key.
        _endpoint_context_cache[id(lean.call)] = _extract_endpoint_context(endpoint)
    twin = copy.copy(route)
    twin.dependant = lean
    lean_app = wrap_app_with_body_limit(
        request_response(twin.get_route_handler()), route.max_body_size
    )
    route.app = _Shortcut(
        route.app,
        lean_app,
        tuple(tuple(_get_oauth_scopes(dependant=d)) for d in ours),
        auth,
        route.dependency_overrides_provider,
    ).choose


def _handing_key(
    endpoint: Callable[..., Any], names: tuple[str, ...], request_name: str, pop: bool
) -> Callable[..., Any]:
    """``endpoint``, called with the key the route's scopes were held against as its
    ``names`` arguments (read from the request FastAPI passes as ``request_name``; ``pop``:
    a parameter of ours only).

    A plain function returning what ``endpoint`` returns: FastAPI tells a coroutine
    function from the function it wraps (``__wrapped__``), so it awaits an ``async def``
    endpoint's coroutine from here - no coroutine of our own - and runs a ``def`` one in
    its thread pool, as it did the endpoint itself."""

    @functools.wraps(endpoint)
    def call(**values: Any) -> Any:
        request = values.pop(request_name) if pop else values[request_name]
        key = request.scope[_CHECKED]
        for name in names:
            values[name] = key
        return endpoint(**values)

    return call


def _handing_sole(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``_handing_key`` for the usual ``async def route(key = Security(auth, scopes=[...]))``:
    the key as the endpoint's one argument, by position, and the request taken as a named
    parameter. Packing FastAPI's values into a dict and unpacking it again for the endpoint
    took about 4,800 instructions a request more (callgrind, under ``protect``)."""

    @functools.wraps(endpoint)
    def sole(request: Any) -> Any:
        return endpoint(request.scope[_CHECKED])

    return sole


def _sole_parameter(endpoint: Callable[..., Any], name: str) -> bool:
    """Whether ``endpoint`` takes ``name`` alone, and by position. Its own signature, not
    one a decorator's ``__wrapped__`` claims: a wrapper of ``**kwargs`` takes no position."""
    try:
        parameters = list(signature(endpoint, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - no signature to read
        return False
    return (
        len(parameters) == 1
        and parameters[0].name == name
        and parameters[0].kind in (Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD)
    )


class _Shortcut:
    """A route's app (its ``choose``): the shortcut handler for a request whose middleware
    key holds the route's scopes (unless ``auth`` is overridden), the route's own handler
    otherwise. The route's app is the bound method, not the object: Starlette calls a
    method in line, where calling an object goes through its type's ``__call__`` slot (a
    new interpreter loop in C, about 400 instructions a request more)."""

    __slots__ = ("auth", "lean_app", "needed", "overrides", "required", "route_app")

    def __init__(
        self,
        route_app: ASGIApp,
        lean_app: ASGIApp,
        required: tuple[tuple[str, ...], ...],
        auth: object,
        overrides: Any,
    ) -> None:
        self.route_app = route_app
        self.lean_app = lean_app
        self.required = required  # one tuple of scopes for each use of ``auth``
        # All of them as written, held by one set comparison (the usual case)
        self.needed = frozenset().union(*required)
        self.auth = auth
        self.overrides = overrides  # what FastAPI reads dependency_overrides from, or None

    # A plain function handing back the chosen app's awaitable: no coroutine of its own.
    def choose(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        state = scope.get("state")
        key = state.get(STATE_KEY) if state is not None else None
        if (
            key is not None
            and (self.overrides is None or self.auth not in self.overrides.dependency_overrides)
            # As the dependency holds them: the scopes as written, then wildcards.
            and (
                key.scopes.issuperset(self.needed)
                or all(key.has_scopes(*required) for required in self.required)
            )
        ):
            scope[_CHECKED] = key
            return self.lean_app(scope, receive, send)
        return self.route_app(scope, receive, send)
