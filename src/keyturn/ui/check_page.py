"""The "why was it rejected?" page, in front of ``keyturn.ui.diagnose``.

Needs ``keys:verify`` (it tells whether a key is accepted, as the verify API does). Looking
up a masked key also needs ``keys:read``, since it shows which stored keys match. The form
is a POST so that a pasted key never lands in an address, a browser history or a log.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyturn._addresses import parse_address
from keyturn._redact import mask_text
from keyturn.errors import InvalidPermissions
from keyturn.permissions import MAX_LENGTH, parse
from keyturn.scopes import SCOPE_TOKEN
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.diagnose import PasteError, masked_headers, parse_masked, parse_pasted
from keyturn.ui.forms import Form
from keyturn.ui.key_actions import split_scopes
from keyturn.ui.render import MOUNT

MAX_PASTE = 16 * 1024


def page(ui: Dashboard, admin: Admin, status: int = 200, **context: Any) -> Response:
    values = {
        "error": "",
        "result": None,
        "matches": None,
        "truncated": False,
        "ignored": [],
        "shown_headers": [],
        "shown_query": "",
        "scopes": "",
        "ip": "",
        "permissions": "",
        "mode": "headers",
        **context,
    }
    return ui.render("check.html", admin.session, admin, status, nav="check", **values)


async def show(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    return page(ui, admin)


async def run(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    assert form is not None
    pasted_text = form.raw("headers")
    key_text = form.get("key")
    scope_text = form.get("scopes")
    ip = form.get("ip") or None
    expression = form.get("permissions")
    scopes = tuple(split_scopes(scope_text))
    mode = "key" if key_text else "headers"
    # Put back in their fields, where a key pasted into the wrong one is masked.
    common: dict[str, Any] = {
        "scopes": mask_text(scope_text),
        "ip": mask_text(ip or ""),
        "permissions": mask_text(expression)[:MAX_LENGTH],
        "mode": mode,
    }
    bad = next((s for s in scopes if not SCOPE_TOKEN.fullmatch(s)), None)
    if bad is not None or len(scopes) > 64:
        return page(ui, admin, 400, error="Scopes are words of printable ASCII.", **common)
    if ip is not None and parse_address(ip) is None:
        return page(
            ui,
            admin,
            400,
            error="The client address is an IP address, like 203.0.113.9 or 2001:db8::1.",
            **{**common, "ip": common["ip"][:64]},
        )
    try:
        permissions = parse(expression) if expression else None
    except InvalidPermissions as exc:
        return page(ui, admin, 400, error=f"Permissions: {exc.message}.", **common)
    if len(pasted_text) > MAX_PASTE or len(key_text) > 1024:
        return page(ui, admin, 413, error="That is more than a request's headers.", **common)
    diagnostician = ui.diagnostician
    if key_text:
        if parse_masked(key_text) is not None:
            if not admin.can_read:
                return page(
                    ui,
                    admin,
                    403,
                    error="Looking up a masked key needs the scope 'keys:read'.",
                    **common,
                )
            matches, truncated = await diagnostician.masked(
                admin.actor, key_text, scopes, ip, permissions
            )
            return page(ui, admin, matches=matches, truncated=truncated, **common)
        result = await diagnostician.key(key_text, scopes, ip, permissions)
        return page(ui, admin, result=result, **common)
    if not pasted_text.strip():
        return page(ui, admin, 400, error="Paste a request's headers, or a key.", **common)
    try:
        pasted = parse_pasted(pasted_text)
    except PasteError as exc:
        return page(ui, admin, 400, error=str(exc), **common)
    shown = masked_headers(pasted.headers, ui.settings.api_key_headers, ui.redactor)
    result = await diagnostician.request(pasted, scopes, ip, permissions)
    return page(
        ui,
        admin,
        result=result,
        shown_headers=shown,
        shown_query=ui.redactor.uri("?" + pasted.query) if pasted.query else "",
        ignored=pasted.ignored,
        **common,
    )


def routes(ui: Dashboard) -> list[BaseRoute]:
    path = f"{MOUNT}/check"
    return [
        Route(path, ui.page(show, "keys:verify"), methods=["GET"]),
        Route(path, ui.page(run, "keys:verify"), methods=["POST"]),
    ]
