"""Flask: an extension that holds the keys, and ``@require_key`` for the views that need one.

::

    keyturn = Keyturn(app, "sqlite:///keyturn.db")

    @app.get("/items")
    @require_key(scopes=["items:read"])
    def items():
        return {"caller": g.keyturn_key.name}

A view that passes gets the ``VerifiedKey`` on ``flask.g.keyturn_key`` (and its response the
key's lifecycle headers, ``keyturn.lifecycle_headers``); any other request
gets keyturn's full answer (catalogue status, ``WWW-Authenticate`` challenge, problem+json
body) and the view never runs. Either answer carries ``X-Request-Id``, the id the decision
is recorded under in the verification log. Flask is sync, so verification uses the sync manager: a
cached key costs no I/O, a cache miss reads the store on the request's own thread.
"""

from __future__ import annotations

from keyturn._extras import require

require("flask", "keyturn.integrations.flask")

import functools
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar, overload

from flask import Flask, Response, after_this_request, current_app, g, request

from keyturn._request_ids import HEADER as REQUEST_ID
from keyturn._verifications import Seen
from keyturn.answer import HttpAnswer
from keyturn.integrations.guard import Guard, KeySource

EXTENSION = "keyturn"
"""The key of ``app.extensions`` under which the extension registers."""

P = ParamSpec("P")
R = TypeVar("R")


class Keyturn:
    """The Flask extension; supports the app-factory pattern through ``init_app``."""

    def __init__(
        self,
        app: Flask | None = None,
        keys: KeySource | None = None,
        *,
        realm: str | None = None,
        public_url: str | None = None,
    ) -> None:
        self.guard: Guard | None = None
        if keys is not None:
            given = {"realm": realm, "public_url": public_url}
            self.guard = Guard.of(keys, **{k: v for k, v in given.items() if v is not None})
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, keys: KeySource | None = None) -> None:
        """Register on ``app``; ``keys`` here overrides (or supplies) the constructor's."""
        if keys is not None:
            self.guard = Guard.of(keys)
        if self.guard is None:  # the settings of the environment, as `keyturn serve` reads them
            self.guard = Guard.of(None)
        app.extensions[EXTENSION] = self

    def check(self, scopes: Sequence[str]) -> Response | None:
        """Verify the current request; ``None`` when it may proceed (the key is then on g)."""
        guard = self.guard
        assert guard is not None  # init_app refuses to register without one
        peer = request.remote_addr
        rid = guard.request_ids.of(request.headers.get(REQUEST_ID), peer)
        headers = list(request.headers.items())
        agent = request.headers.get("User-Agent", "")
        forwarded = headers if guard.request_ids.trusted else ()  # read only behind a proxy
        result = guard.verdict(
            headers,
            request.query_string,
            scopes,
            peer,
            Seen(request.method, request.path, rid, agent, forwarded),
        )
        if isinstance(result, HttpAnswer):
            return Response(
                result.body_bytes(), result.status, [*result.headers, (REQUEST_ID, rid)]
            )
        g.keyturn_key = result
        told = [*result.lifecycle, (REQUEST_ID, rid)]

        @after_this_request
        def tell(response: Response) -> Response:
            response.headers.extend(told)
            return response

        return None


@overload
def require_key(view: Callable[P, R]) -> Callable[P, R | Response]: ...


@overload
def require_key(
    *, scopes: Sequence[str] = ()
) -> Callable[[Callable[P, R]], Callable[P, R | Response]]: ...


def require_key(view: Callable[P, R] | None = None, *, scopes: Sequence[str] = ()) -> Any:
    """Decorate a view so it runs only for a valid key holding ``scopes``.

    Usable bare (``@require_key``) or with scopes (``@require_key(scopes=["a", "b"])``);
    the app's ``Keyturn`` extension does the checking.
    """
    if isinstance(scopes, str):
        raise TypeError(f"scopes must be a list of scopes, not the string {scopes!r}")
    required = tuple(scopes)

    def decorate(view: Callable[P, R]) -> Callable[P, R | Response]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            try:
                extension: Keyturn = current_app.extensions[EXTENSION]
            except KeyError:
                raise RuntimeError(
                    "@require_key needs the Keyturn extension: Keyturn(app, keys)"
                ) from None
            refusal = extension.check(required)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        return guarded

    if view is not None:
        return decorate(view)
    return decorate
