"""Every error the API sends is ``application/problem+json`` (RFC 9457).

Key-check failures are the catalogue's answers, rendered by ``keyturn.answer.render`` like
everywhere else; the rest (a missing key id, a bad field, a conflict, an outage) are
``keyturn.errors`` raised by the admin layer and the stores, mapped here in one handler by
``keyturn.answer.render_error``, and catalogued too (``kind = "problem"``). FastAPI's own
error responses are replaced here, so no client ever sees ``{"detail": ...}`` from one
endpoint and a problem document from the next.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from keyturn.answer import PROBLEM_JSON, HttpAnswer, problem, render_error
from keyturn.errors import KeyturnError

_log = logging.getLogger("keyturn.service")


class Refused(Exception):
    """A key check said no: carries the catalogue answer to send as it is."""

    def __init__(self, answer: HttpAnswer) -> None:
        super().__init__(answer.body.get("code"))
        self.answer = answer


class ApiProblem(Exception):
    """A catalogued problem (``kind = "problem"``) to answer with; the handler writes it."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def problem_response(
    body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        dict(body), status_code=int(body["status"]), headers=headers, media_type=PROBLEM_JSON
    )


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def invalid(errors: list[dict[str, str]], public_url: str | None = None) -> dict[str, Any]:
    first = errors[0] if errors else {"field": "request", "message": "invalid request"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    detail = f"{first['field']}: {first['message']}{more}"
    return problem("invalid_request", detail, public_url=public_url, errors=errors)


_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def _allowed(request: Request) -> str:
    """Every method some route takes at this path. Starlette's router names only the first
    route that matched the path, and /v1/keys/{key_id} is two routes (GET and PATCH)."""
    routes: list[BaseRoute] = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    )


def answer_response(answer: HttpAnswer) -> JSONResponse:
    return problem_response(answer.body, dict(answer.headers))


# Where a request's id is kept once its caller is authenticated (``callers``): a refusal
# carries it too, so the id a client got finds its entry in the verification log.
REQUEST_ID = "keyturn.request_id"


def _identified(request: Request, response: JSONResponse) -> JSONResponse:
    rid = request.scope.get(REQUEST_ID)
    if rid is not None:
        response.headers["x-request-id"] = rid
    return response


def install_handlers(app: FastAPI, public_url: str | None = None) -> None:
    """Every error of ``app`` as a problem; catalogued types point into ``public_url``."""

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Refused)
        return _identified(request, answer_response(exc.answer))

    async def api_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return _identified(
            request, problem_response(problem(exc.code, exc.detail, public_url=public_url))
        )

    async def invalid_fields(request: Request, exc: Exception) -> JSONResponse:
        """422 naming each bad field. Only pydantic's message is kept, never the input
        value: the verify API's input is a key."""
        assert isinstance(exc, RequestValidationError)
        errors = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        return _identified(request, problem_response(invalid(errors, public_url)))

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        detail = exc.detail if isinstance(exc.detail, str) else "the request failed"
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            detail = f"there is no endpoint at {request.url.path!r}; see /openapi.json"
        elif exc.status_code == 405:
            headers["Allow"] = _allowed(request) or headers.get("Allow", "")
            detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
        return _identified(
            request,
            problem_response(
                problem(code, detail, status=exc.status_code, public_url=public_url), headers
            ),
        )

    async def keyturn_error(request: Request, exc: Exception) -> JSONResponse:
        """Every ``KeyturnError``, once: 422, 404, 403, 409, 503 (with ``Retry-After``)."""
        assert isinstance(exc, KeyturnError)
        where = "query." if request.method in ("GET", "HEAD") else "body."
        return _identified(
            request, answer_response(render_error(exc, where=where, public_url=public_url))
        )

    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        _log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = problem("internal_error", "the server failed; see its log", public_url=public_url)
        return _identified(request, problem_response(body))

    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(ApiProblem, api_problem)
    app.add_exception_handler(RequestValidationError, invalid_fields)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(KeyturnError, keyturn_error)
    app.add_exception_handler(Exception, crashed)


# -- the OpenAPI side: which problems an operation can answer ---------------------------

_DESCRIPTIONS = {
    400: "Malformed credentials (catalogue answer, e.g. `malformed_credentials`)",
    401: "No usable key (catalogue answer with `WWW-Authenticate`)",
    403: "The calling key lacks a scope, or would grant more than it holds "
    "(`insufficient_scope`, `grant_exceeded`)",
    404: "No key with this id",
    408: "The body did not arrive within the read timeout (`request_timeout`)",
    409: "The key's state forbids the change (e.g. enabling a revoked key)",
    413: "The body is larger than this endpoint takes (`body_too_large`; the detail says "
    "how large it may be)",
    422: "A field is invalid; `errors` names each one",
    429: "The calling key is over a rate limit or out of credits (`Retry-After` says when)",
    503: "The key store or the rate-limit store does not answer (`Retry-After` says when to retry)",
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI response entries for ``statuses``, all with the Problem schema."""
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
        }
        for status in statuses
    }
