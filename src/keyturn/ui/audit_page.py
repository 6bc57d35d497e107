"""The audit log: every change to every key, newest first, filtered by key, actor or action.

Needs ``audit:read``, as ``GET /v1/audit`` does, and reads the same ``manager.audit``. Pages
go backwards by event id (``before``), the store's own cursor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyturn.store.base import AuditEvent
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.echo import echo
from keyturn.ui.forms import Form
from keyturn.ui.render import MOUNT

PAGE_SIZE = 50
ACTIONS = ("key.create", "key.update", "key.revoke", "key.disable", "key.enable", "key.rotate")
_FILTER = re.compile(r"[\x21-\x7e]{1,200}")


def details_text(event: AuditEvent, redact: Callable[[str], str]) -> str:
    """An event's details on one line, with anything key-shaped masked."""
    return redact(json.dumps(event.details, sort_keys=True, ensure_ascii=False, default=str))


def query_filters(
    request: Request, names: tuple[str, ...], shape: re.Pattern[str]
) -> dict[str, str] | str:
    """The log filters of the query string, each empty or one word of ``shape``; else the
    name of the first that is not (one rule for every log page of the dashboard)."""
    values = {name: request.query_params.get(name, "").strip() for name in names}
    for name, value in values.items():
        if value and not shape.fullmatch(value):
            return name
    return values


def bad_filter(ui: Dashboard, admin: Admin, name: str) -> Response:
    return ui.error(
        admin.session,
        admin,
        400,
        "That filter does not work",
        f"The {name.replace('_', ' ')} filter is one word of printable ASCII.",
    )


async def audit_log(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    params = request.query_params
    values = query_filters(request, ("key_id", "actor", "action"), _FILTER)
    if isinstance(values, str):
        return bad_filter(ui, admin, values)
    before_text = params.get("before", "")
    if before_text and (not before_text.isdigit() or not 1 <= int(before_text) < 2**63):
        return ui.error(
            admin.session, admin, 400, "That page does not exist", "Start from the first page."
        )
    events = list(
        await ui.keys.audit(
            admin.actor,
            key_id=values["key_id"] or None,
            by=values["actor"] or None,
            action=values["action"] or None,
            limit=PAGE_SIZE + 1,
            before=int(before_text) if before_text else None,
        )
    )
    more = len(events) > PAGE_SIZE
    events = events[:PAGE_SIZE]
    query = {name: value for name, value in values.items() if value}
    next_url = (
        f"{MOUNT}/audit?" + urlencode({**query, "before": events[-1].id})
        if more and events
        else None
    )
    return ui.render(
        "audit.html",
        admin.session,
        admin,
        nav="audit",
        rows=[(event, details_text(event, ui.redactor.text)) for event in events],
        values=echo(values),
        actions=ACTIONS,
        next_url=next_url,
        first_url=(f"{MOUNT}/audit?" + urlencode(query)) if before_text else None,
    )


def routes(ui: Dashboard) -> list[BaseRoute]:
    return [Route(f"{MOUNT}/audit", ui.page(audit_log, "audit:read"), methods=["GET"])]
