"""The webhooks pages: the list with its create form, each webhook's deliveries, deletion.

A translator, as the roles page is: the form becomes a call to the webhook operations of
the admin layer (``keyturn._webhooks``) in the signed-in key's name (``webhooks:read`` to
see, ``webhooks:write`` to change). The signing secret is shown once, on the page the
creation answers with, and never again (the list and the webhook's page only say it
exists); an ``InvalidValue`` comes back beside the field it names.

The deliveries page shows every delivery's status, attempts and last answer, with failed
ones (given up after ``GIVE_UP_AFTER``) and those being retried marked as such, so an
operator sees at a glance that a receiver stopped taking events.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keyturn import _events as events
from keyturn import _webhooks as webhooks
from keyturn._webhooks import NewWebhook
from keyturn.errors import InvalidValue, NotFound
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.echo import echo, masked_fields
from keyturn.ui.forms import Form
from keyturn.ui.key_actions import field_error
from keyturn.ui.render import MOUNT

_STATUSES = ("pending", "delivered", "failed")


async def webhook_list(
    ui: Dashboard,
    request: Request,
    admin: Admin,
    form: Form | None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    return ui.render(
        "webhooks.html",
        admin.session,
        admin,
        status,
        nav="webhooks",
        webhooks=await ui.manager.webhooks.list(admin.actor),
        event_types=events.TYPES,
        errors=errors or {},
        values=echo(values) if values else {"url": "", "events": "*", "description": ""},
    )


async def create_webhook(
    ui: Dashboard, request: Request, admin: Admin, form: Form | None
) -> Response:
    assert form is not None
    values = {name: form.get(name) for name in ("url", "events", "description")}
    chosen = form.all("event") or values["events"].split() or ["*"]
    values["events"] = " ".join(chosen)
    if errors := masked_fields(values):
        return await webhook_list(ui, request, admin, form, 422, errors, values)
    try:
        made = await ui.manager.webhooks.create(
            admin.actor,
            NewWebhook(values["url"].strip(), tuple(chosen), values["description"] or None),
        )
    except InvalidValue as exc:
        return await webhook_list(ui, request, admin, form, 422, field_error(exc), values)
    return ui.render(
        "webhook_created.html",
        admin.session,
        admin,
        201,
        {"cache-control": "no-store"},
        nav="webhooks",
        webhook=made.webhook,
        secret=made.secret,
    )


async def webhook_detail(
    ui: Dashboard, request: Request, admin: Admin, form: Form | None
) -> Response:
    webhook_id = str(request.path_params["webhook_id"])
    found = [w for w in await ui.manager.webhooks.list(admin.actor) if w.id == webhook_id]
    if not found:
        raise NotFound(f"no webhook {webhook_id[:64]!r}")
    shown = request.query_params.get("status", "")
    deliveries = await ui.manager.webhooks.deliveries(admin.actor, webhook_id, limit=200)
    counts = {s: sum(1 for d in deliveries if d.status == s) for s in _STATUSES}
    if shown in _STATUSES:
        deliveries = [d for d in deliveries if d.status == shown]
    return ui.render(
        "webhook.html",
        admin.session,
        admin,
        nav="webhooks",
        webhook=found[0],
        deliveries=deliveries,
        counts=counts,
        shown=shown if shown in _STATUSES else "",
        statuses=_STATUSES,
    )


async def delete_webhook(
    ui: Dashboard, request: Request, admin: Admin, form: Form | None
) -> Response:
    webhook_id = str(request.path_params["webhook_id"])
    await ui.manager.webhooks.delete(admin.actor, webhook_id)
    admin.session.flash = f"Deleted the webhook {webhook_id}: it gets no more events."
    return RedirectResponse(f"{MOUNT}/webhooks", status_code=303)


def routes(ui: Dashboard) -> list[BaseRoute]:
    return [
        Route(f"{MOUNT}/webhooks", ui.page(webhook_list, webhooks.READ), methods=["GET"]),
        Route(f"{MOUNT}/webhooks", ui.page(create_webhook, webhooks.WRITE), methods=["POST"]),
        Route(
            f"{MOUNT}/webhooks/{{webhook_id}}",
            ui.page(webhook_detail, webhooks.READ),
            methods=["GET"],
        ),
        Route(
            f"{MOUNT}/webhooks/{{webhook_id}}/delete",
            ui.page(delete_webhook, webhooks.WRITE),
            methods=["POST"],
        ),
    ]
