"""The admin and verify API as a FastAPI app, and the OpenAPI document it serves.

FastAPI rather than hand-written Starlette routes: the pydantic models that validate each
request are also what the OpenAPI document is generated from, so the document cannot drift
from the code (schemathesis holds the server to it). It handles only ``/v1/...`` and the
document; ``/auth`` and the probes never reach it (see ``keyturn.service.app``), but the
document describes them too (``keyturn.service.raw_paths``).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from keyturn import __version__
from keyturn.answer import DEFAULT_TYPE_BASE, OUTCOMES_PATH, PROBLEM_JSON, PROBLEM_TYPE_BASE
from keyturn.service.admin_api import admin_router
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.docs_page import add_docs_page
from keyturn.service.leaks_api import leaks_router
from keyturn.service.models import FieldError, Health, Problem
from keyturn.service.owners_api import owners_router
from keyturn.service.portal_api import portal_router
from keyturn.service.problems import PROBLEM_REF, install_handlers
from keyturn.service.raw_paths import raw_paths
from keyturn.service.roles_api import roles_router
from keyturn.service.traffic_api import traffic_router
from keyturn.service.verifications_api import verifications_router
from keyturn.service.verify_api import verify_router
from keyturn.service.webhooks_api import webhooks_router

DESCRIPTION = """\
Create, list, change, rotate and revoke API keys, read the audit log, and verify keys.

Authenticate with a keyturn key (`Authorization: Bearer <key>`). Each operation names the
scope it needs: `keys:read`, `keys:write`, `keys:verify`, `audit:read`, `webhooks:read`,
`webhooks:write`, or `*` (root).
A key can never create a key with scopes it does not hold, nor change a key that holds
scopes it does not hold; no key it creates or changes may outlive it or have a looser
allowance (credits, refill, rate limits) than its own. Errors are
`application/problem+json` (RFC 9457), each `code` explained by `keyturn explain CODE`.
"""


BAD_REQUEST = {
    "description": "The body cannot be read as JSON (`http_400`)",
    "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}},
}


def problem_type_schema(public_url: str | None) -> dict[str, Any]:
    """What a problem's ``type`` is on this deployment (``keyturn.answer.problem_type``)."""
    if public_url:
        base = f"{public_url.rstrip('/')}{OUTCOMES_PATH}/"
        return {
            "type": "string",
            "format": "uri",
            "title": "Type",
            "description": f"`{base}{{code}}`: the catalogue page of `code` (GET it as HTML, "
            f"JSON or Markdown). Without `public_url` it would be `{DEFAULT_TYPE_BASE}{{code}}`.",
            "examples": [f"{base}missing_credentials"],
        }
    return {
        "type": "string",
        "format": "uri",
        "title": "Type",
        "description": f"`{DEFAULT_TYPE_BASE}{{code}}` for a key check's answer, "
        f"`{PROBLEM_TYPE_BASE}{{code}}` for any other; with the `public_url` setting, the "
        "address of the code's page under `/outcomes`. `keyturn explain CODE` explains it.",
        "examples": [f"{DEFAULT_TYPE_BASE}missing_credentials"],
    }


def _closed_pattern_properties(node: Any) -> None:
    """Objects whose keys pydantic constrains (``dict[NoNulText, ...]``) as
    ``patternProperties`` say so for every key (``propertyNames``): JSON Schema lets keys
    that match no pattern through, and the server refuses them (metadata keys with NUL)."""
    if isinstance(node, dict):
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict) and len(patterns) == 1 and "propertyNames" not in node:
            ((pattern, schema),) = patterns.items()
            node["propertyNames"] = {"pattern": pattern}
            node["additionalProperties"] = schema
            del node["patternProperties"]
        for value in node.values():
            _closed_pattern_properties(value)
    elif isinstance(node, list):
        for value in node:
            _closed_pattern_properties(value)


def _unreadable_bodies(document: dict[str, Any]) -> None:
    """Every operation that takes a body can answer 400 for one that cannot be read (bytes
    that are not UTF-8 JSON), whoever may call it: said once here rather than per route."""
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("400", BAD_REQUEST)


def build_api(context: ServiceContext) -> FastAPI:
    app = FastAPI(
        title="keyturn",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # keyturn's own page, with vendored assets and a strict CSP
        redoc_url=None,
    )
    add_docs_page(app, "keyturn")
    install_handlers(app, context.settings.public_url)
    callers = Callers(context)
    app.include_router(verify_router(context, callers))
    app.include_router(admin_router(context, callers))
    app.include_router(portal_router(context, callers))
    app.include_router(webhooks_router(context, callers))
    app.include_router(leaks_router(context, callers))
    app.include_router(owners_router(context, callers))
    app.include_router(roles_router(context, callers))
    app.include_router(verifications_router(context, callers))
    app.include_router(traffic_router(context, callers))
    prefixes = list(context.settings.prefixes)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            document["paths"].update(raw_paths(context.settings))
            for model in (Problem, FieldError, Health):
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schema.pop("$defs", None)
                schemas[model.__name__] = schema
            schemas["Problem"]["properties"]["type"] = problem_type_schema(
                context.settings.public_url
            )
            # The prefixes this server accepts are configuration, not code: say them.
            create = schemas["CreateKey"]["properties"]["prefix"]
            create["anyOf"][0]["enum"] = prefixes
            _closed_pattern_properties(document)
            _unreadable_bodies(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
