"""The OpenAPI description of what is served before FastAPI: ``/auth`` and the probes.

They are raw ASGI for speed, so FastAPI knows nothing of them; written out here, they are
in the served document like every other endpoint, and the schemathesis run fuzzes them too.
"""

from __future__ import annotations

from typing import Any

from keyturn.answer import PROBLEM_JSON
from keyturn.config import Settings
from keyturn.service.problems import PROBLEM_REF, problem_responses

# /auth answers any method; these are the ones OpenAPI 3.1 can name (HEAD and OPTIONS are
# implicit), described alike.
AUTH_METHODS = ("get", "post", "put", "patch", "delete", "trace")
_STRING = {"type": "string"}
_SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}, {"APIKeyHeader": []}]


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": _STRING,
            "description": description}


def _forward_auth(settings: Settings, method: str) -> dict[str, Any]:
    parameters = [
        _header("X-Forwarded-Uri", "The original request's URI (Traefik, Caddy)."),
        _header("X-Original-URI", "The original request's URI (nginx, as configured)."),
        _header("X-Forwarded-Method", "The original request's method (Traefik, Caddy)."),
        _header("X-Original-Method", "The original request's method (nginx, as configured)."),
    ]
    if settings.scopes_header:
        parameters.append(
            _header(settings.scopes_header, "Scopes the request needs, besides the rules'.")
        )
    identity = {
        "X-Keyturn-Key-Id": "The key's id.",
        "X-Keyturn-Owner": "The key's owner (empty if none, or longer than 2,400 bytes "
        "encoded), percent-encoded UTF-8.",
        "X-Keyturn-Scopes": "The key's scopes, space-separated (whole scopes in sorted order, "
        "as many as fit the identity's 3.5 KB).",
        "X-Keyturn-Truncated": "What was left out to fit (owner, scopes), or empty.",
    }
    return {
        "tags": ["forward-auth"],
        "summary": "Forward-auth: may the proxied request through?",
        "description": "Asked by nginx (auth_request), Traefik (ForwardAuth), Caddy "
        "(forward_auth) or Envoy (ext_authz) with the original request's headers. The "
        "required scopes are those of the configured rules for the original method and "
        "path, plus any in the scopes header.",
        "operationId": f"forward_auth_{method}",
        "security": _SECURITY,
        "parameters": parameters,
        "responses": {
            "204": {
                "description": "The key is valid and holds the required scopes.",
                "headers": {
                    name: {"description": text, "required": True, "schema": _STRING}
                    for name, text in identity.items()
                },
            },
            **problem_responses(400, 401, 403, 429),
        },
    }


def _probe(summary: str, ok: dict[str, Any], *failures: int) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    for status in failures:
        responses[str(status)] = {
            "description": "Not ready: the store does not answer.",
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
        }
    return {"get": {"tags": ["operations"], "summary": summary, "responses": responses}}


def _json_ok(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
    }


def raw_paths(settings: Settings) -> dict[str, Any]:
    """OpenAPI path items for the endpoints answered before the API app."""
    return {
        "/auth": {method: _forward_auth(settings, method) for method in AUTH_METHODS},
        "/healthz": _probe("Is the process serving?", _json_ok("Serving.")),
        "/readyz": _probe("Is the key store reachable too?", _json_ok("Ready."), 503),
        "/metrics": _probe(
            "Prometheus metrics",
            {
                "description": "The Prometheus text format.",
                "content": {"text/plain": {"schema": _STRING}},
            },
        ),
    }
