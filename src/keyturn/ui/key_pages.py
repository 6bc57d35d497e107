"""Reading keys: the searchable, paged list and one key's page (state, usage, history).

Everything here needs ``keys:read``. The key itself never appears, only its mask; what an
admin may do to a key is decided by the admin layer's grant rules (``Actor.ensure_manages``),
so the page offers exactly the actions the admin API would accept from the same key.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyturn._states import STATUSES
from keyturn._verifications import READ_SCOPE as LOG_READ
from keyturn.errors import NotPermitted
from keyturn.manager import AsyncKeyManager
from keyturn.record import KeyRecord, utcnow
from keyturn.scopes import ROLE_NAME
from keyturn.store import KeyFilter
from keyturn.store.base import AuditEvent
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.chart import Chart, build_chart
from keyturn.ui.echo import echo
from keyturn.ui.forms import Form
from keyturn.ui.render import MOUNT
from keyturn.ui.usage_data import daily_usage, usage_reader

PAGE_SIZE = 25
USAGE_DAYS = (7, 14, 30, 90)
MAX_EXPIRING_DAYS = 3650
_KEY_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class BadQuery(ValueError):
    """A filter in the address is unusable; shown as a 400 with the message."""


def key_id_of(request: Request) -> str | None:
    key_id = str(request.path_params.get("key_id", ""))
    return key_id if _KEY_ID.fullmatch(key_id) else None


def list_filters(request: Request) -> tuple[KeyFilter, dict[str, str], str | None]:
    """The filter for ``list_keys``, the values to put back in the form, and ``after``."""
    params = request.query_params
    search = params.get("q", "").strip()
    if len(search) > 200:
        raise BadQuery("The search is longer than 200 characters.")
    status = params.get("status", "")
    if status and status not in STATUSES:
        raise BadQuery(f"Unknown status {status[:20]!r}; use one of {', '.join(STATUSES)}.")
    expiring_text = params.get("expiring", "").strip()
    expiring_before = None
    if expiring_text:
        if not expiring_text.isdigit() or not 1 <= int(expiring_text) <= MAX_EXPIRING_DAYS:
            raise BadQuery(
                f"'Expires within' takes a number of days from 1 to {MAX_EXPIRING_DAYS}."
            )
        expiring_before = utcnow() + timedelta(days=int(expiring_text))
    role = params.get("role", "").strip()
    if role and not ROLE_NAME.fullmatch(role):
        raise BadQuery("That is not a role name: letters, digits and . _ : - only.")
    after = params.get("after") or None
    if after is not None and not _KEY_ID.fullmatch(after):
        raise BadQuery("That page address is not valid; start again from the first page.")
    filters = KeyFilter(
        search=search or None,
        # "Expiring soon" means keys that still work and will stop: active ones.
        status=status or ("active" if expiring_before else None),
        expiring_before=expiring_before,
        role=role or None,
    )
    values = {"q": search, "status": status, "expiring": expiring_text, "role": role}
    return filters, values, after


def page_url(values: dict[str, str], after: str | None = None) -> str:
    query = {name: value for name, value in values.items() if value}
    if after:
        query["after"] = after
    return f"{MOUNT}/keys" + ("?" + urlencode(query) if query else "")


async def key_list(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    try:
        filters, values, after = list_filters(request)
    except BadQuery as exc:
        return ui.error(admin.session, admin, 400, "That filter does not work", str(exc))
    found = await ui.keys.list_keys(admin.actor, filters, limit=PAGE_SIZE + 1, after=after)
    records: list[KeyRecord] = list(found[:PAGE_SIZE])
    more = len(found) > PAGE_SIZE
    now = utcnow()
    return ui.render(
        "keys.html",
        admin.session,
        admin,
        nav="keys",
        rows=[(r, r.status(now)) for r in records],
        values=echo(values),
        statuses=STATUSES,
        filtered=any(values.values()),
        next_url=page_url(values, records[-1].id) if more and records else None,
        first_url=page_url(values) if after else None,
    )


def metering(record: KeyRecord) -> dict[str, Any] | None:
    """Rate limits and credits, when this version of the core records them."""
    limits = tuple(getattr(record, "rate_limits", ()) or ())
    credits = getattr(record, "credits", None)
    if not limits and credits is None:
        return None
    return {
        "rate_limits": limits,
        "credits": credits,
        "refill": getattr(record, "refill", None),
        "refill_amount": getattr(record, "refill_amount", None),
        "refilled_at": getattr(record, "refilled_at", None),
    }


async def usage_chart(manager: AsyncKeyManager, key_id: str, days: int) -> Chart | None:
    """A key's requests per day; the caller has read the key through the admin layer, so
    an actor sees only the usage of keys it may see."""
    reader = usage_reader(manager.store)
    if reader is None:
        return None
    today = datetime.now(UTC).date()
    span, counts = await asyncio.to_thread(daily_usage, reader, key_id, days, today)
    return build_chart(span, counts)


def manage_refusal(admin: Admin, record: KeyRecord) -> str | None:
    """Why this admin may not change this key (the admin layer's words), or ``None``."""
    if not admin.can_write:
        return None
    try:
        admin.actor.ensure_manages(record)
    except NotPermitted as exc:
        return exc.message
    return None


async def render_detail(
    ui: Dashboard,
    admin: Admin,
    record: KeyRecord,
    *,
    days: int = 14,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """One key's page; ``errors`` and ``values`` (as typed) refill its edit form after a
    bad post."""
    reads_log = admin.can(LOG_READ)
    events: list[AuditEvent] = (
        list(await ui.keys.audit(admin.actor, key_id=record.id, limit=10))
        if admin.can_audit
        else []
    )
    return ui.render(
        "key.html",
        admin.session,
        admin,
        status,
        nav="keys",
        key=record,
        key_status=record.status(),
        metering=metering(record),
        chart=await usage_chart(ui.manager, record.id, days),
        days=days,
        usage_days=USAGE_DAYS,
        flush_seconds=ui.settings.usage_flush_interval,
        events=events,
        refusal=manage_refusal(admin, record),
        errors=errors or {},
        values=echo(values, edit_values(record)) if values else edit_values(record),
        # Who called (client addresses) is the verification log's: only for its readers.
        reads_log=reads_log,
        callers=(await ui.keys.callers(admin.actor, record.id)).callers
        if record.replaced_by and reads_log
        else None,
        suggestion=await ui.keys.suggest(admin.actor, record.id, days) if reads_log else None,
    )


def edit_values(record: KeyRecord) -> dict[str, str]:
    """The edit form's fields for a key as it is stored."""
    expires = record.expires_at
    return {
        "name": record.name,
        "owner": record.owner or "",
        "scopes": " ".join(sorted(record.scopes)),
        "allowed_ips": " ".join(record.allowed_ips),
        "roles": " ".join(record.roles),
        "expires_at": expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if expires else "",
    }


async def key_detail(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    key_id = key_id_of(request)
    if key_id is None:
        return ui.error(admin.session, admin, 404, "No such key", "That is not a key id.")
    days_text = request.query_params.get("days", "14")
    if not days_text.isdigit() or int(days_text) not in USAGE_DAYS:
        return ui.error(
            admin.session,
            admin,
            400,
            "That range does not work",
            f"Usage can be shown for {', '.join(map(str, USAGE_DAYS))} days.",
        )
    record = await ui.keys.get(admin.actor, key_id)
    return await render_detail(ui, admin, record, days=int(days_text))


def routes(ui: Dashboard) -> list[BaseRoute]:
    """After ``key_actions.routes``: ``/ui/keys/new`` must win over ``/ui/keys/{key_id}``."""
    return [
        Route(f"{MOUNT}/keys", ui.page(key_list, "keys:read"), methods=["GET"]),
        Route(f"{MOUNT}/keys/{{key_id}}", ui.page(key_detail, "keys:read"), methods=["GET"]),
    ]
