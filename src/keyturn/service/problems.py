"""Every error the API sends is ``application/problem+json`` (RFC 9457).

Key-check failures are the catalogue's answers, rendered by ``keyturn.answer.render`` like
everywhere else; the rest (a missing key id, a bad field, a conflict) are API problems in
the same shape. FastAPI's own error responses are replaced here, so no client ever sees
``{"detail": ...}`` from one endpoint and a problem document from the next.
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

from keyturn.answer import PROBLEM_JSON, HttpAnswer
from keyturn.outcomes import lookup
from keyturn.store import KeyNotFound, StoreError

TYPE_BASE = "urn:keyturn:problem:"
_log = logging.getLogger("keyturn.service")


class Refused(Exception):
    """A key check said no: carries the catalogue answer to send as it is."""

    def __init__(self, answer: HttpAnswer) -> None:
        super().__init__(answer.body.get("code"))
        self.answer = answer


class ApiProblem(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body["detail"])
        self.body = body


def invalid_field(field: str, message: str) -> ApiProblem:
    """A 422 for a check the models cannot make (it depends on the server's settings)."""
    return ApiProblem(invalid([{"field": field, "message": message}]))


def problem(
    status: int, code: str, title: str, detail: str, hint: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if hint:
        body["hint"] = hint
    body.update(extra)
    return body


def catalogued(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """A problem whose status, title and fix are the catalogue's entry for ``code``."""
    entry = lookup(code)
    return problem(entry.status, code, entry.title, detail, entry.fix, **extra)


def problem_response(
    body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        dict(body), status_code=int(body["status"]), headers=headers, media_type=PROBLEM_JSON
    )


def _field(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return problem_response(exc.answer.body, dict(exc.answer.headers))


async def _api_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiProblem)
    return problem_response(exc.body)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field. Only pydantic's message is kept, never the input value:
    the verify API's input is a key."""
    assert isinstance(exc, RequestValidationError)
    errors = [{"field": _field(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
    return problem_response(invalid(errors))


def invalid(errors: list[dict[str, str]]) -> dict[str, Any]:
    first = errors[0] if errors else {"field": "request", "message": "invalid request"}
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return problem(
        422,
        "invalid_request",
        "The request has invalid fields",
        f"{first['field']}: {first['message']}{more}",
        "fix the fields listed in `errors`; the OpenAPI document at /openapi.json "
        "describes each one",
        errors=errors,
    )


_HTTP_CODES = {
    404: ("not_found", "No such endpoint"),
    405: ("method_not_allowed", "Method not allowed"),
}


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


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, (f"http_{exc.status_code}", "Request failed"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        detail = f"there is no endpoint at {request.url.path!r}; see /openapi.json"
    elif exc.status_code == 405:
        headers["Allow"] = _allowed(request) or headers.get("Allow", "")
        detail = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
    return problem_response(problem(exc.status_code, code, title, detail), headers)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeyNotFound)
    return problem_response(
        problem(404, "key_not_found", "No such key", f"no key with id {exc.key_id!r}",
                "list keys with GET /v1/keys")
    )


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(problem(409, "conflict", "The key cannot be changed so", str(exc)))


async def _crashed(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        problem(500, "internal_error", "Internal error", "the server failed; see its log")
    )


def install_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(KeyNotFound, _not_found)
    app.add_exception_handler(StoreError, _conflict)
    app.add_exception_handler(Exception, _crashed)


# -- the OpenAPI side: which problems an operation can answer ---------------------------

_DESCRIPTIONS = {
    400: "Malformed credentials (catalogue answer, e.g. `malformed_credentials`)",
    401: "No usable key (catalogue answer with `WWW-Authenticate`)",
    403: "The calling key lacks a scope, or would grant more than it holds",
    404: "No key with this id",
    409: "The key's state forbids the change (e.g. enabling a revoked key)",
    422: "A field is invalid; `errors` names each one",
    429: "The calling key is over a rate limit or out of credits (`Retry-After` says when)",
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
