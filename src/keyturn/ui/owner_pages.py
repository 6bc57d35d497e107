"""An owner's page: its shared limits, its keys and requests, and all its keys at once.

A translator, as the key pages are: the limits form becomes ``OwnerLimits`` and revoking or
disabling all keys goes to the owner operations of the admin layer (``keyturn._owners``) in
the signed-in key's name. Revoking or disabling all keys is two steps that work without
JavaScript: a GET shows what will happen, the POST does it.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keyturn import _path_names as path_names
from keyturn._owners import OWNERS_WRITE, OwnerLimits, OwnerUsage
from keyturn._path_names import segment
from keyturn.admin import READ, WRITE
from keyturn.errors import InvalidValue
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard, Page
from keyturn.ui.echo import echo, masked_fields
from keyturn.ui.forms import Form
from keyturn.ui.key_actions import field_error, split_scopes, whole_number
from keyturn.ui.render import MOUNT

_WARNINGS = {
    "revoke": "Every key of this owner is revoked, for good: requests with any of them are "
    "refused (key_revoked) and none can be enabled again.",
    "disable": "Every live key of this owner is disabled: requests with any of them are "
    "refused (key_disabled) until each is enabled again.",
}


path_names.register()


def owner_url(owner: str) -> str:
    """The owner's page: the owner as one path segment (``keyturn._path_names``)."""
    return f"{MOUNT}/owners/{segment(owner)}"


def _values(usage: OwnerUsage) -> dict[str, str]:
    owner = usage.owner
    return {
        "rate_limits": " ".join(owner.rate_limits),
        "credits": "" if owner.credits is None else str(owner.credits),
        "refill": owner.refill or "",
    }


async def _page(
    ui: Dashboard,
    admin: Admin,
    owner: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    usage = await ui.manager.owners.get(admin.actor, owner)
    return ui.render(
        "owner.html",
        admin.session,
        admin,
        status,
        nav="keys",
        usage=usage,
        owner_url=owner_url(usage.owner.owner),
        errors=errors or {},
        values=echo(values, _values(usage)) if values else _values(usage),
    )


async def owner_detail(
    ui: Dashboard, request: Request, admin: Admin, form: Form | None
) -> Response:
    return await _page(ui, admin, str(request.path_params["owner"]))


async def set_limits(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    assert form is not None
    owner = str(request.path_params["owner"])
    values = {name: form.get(name) for name in ("rate_limits", "credits", "refill")}
    usage = await ui.manager.owners.get(admin.actor, owner)
    errors = masked_fields(values, _values(usage))
    credits = whole_number(values["credits"], "credits", errors) if values["credits"] else None
    if errors:
        return await _page(ui, admin, owner, 422, errors, values)
    # The form shows the limits, not the metadata or the refill amount (set through the
    # API): a PUT sets the whole record, so those are carried over as stored, not erased
    # (an amount left out defaults to the whole balance, which could loosen the refill).
    current = usage.owner
    refill = values["refill"] or None
    limits = OwnerLimits(
        tuple(split_scopes(values["rate_limits"])),
        credits,
        refill,
        current.refill_amount if refill is not None else None,
        current.metadata,
    )
    try:
        stored = await ui.manager.owners.put(admin.actor, owner, limits)
    except InvalidValue as exc:
        return await _page(ui, admin, owner, 422, field_error(exc), values)
    admin.session.flash = "Saved: the owner's limits now apply to all of its keys."
    return RedirectResponse(owner_url(stored.owner), status_code=303)


def all_keys_page(verb: str) -> tuple[Page, Page]:
    async def confirm(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
        usage = await ui.manager.owners.get(admin.actor, str(request.path_params["owner"]))
        return ui.render(
            "owner_confirm.html",
            admin.session,
            admin,
            nav="keys",
            usage=usage,
            verb=verb,
            warning=_WARNINGS[verb],
            owner_url=owner_url(usage.owner.owner),
        )

    async def perform(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
        owner = str(request.path_params["owner"])
        changed = await getattr(ui.manager.owners, verb)(admin.actor, owner)
        past = {"revoke": "Revoked", "disable": "Disabled"}[verb]
        admin.session.flash = f"{past} {len(changed)} key(s) of {owner}."
        return RedirectResponse(owner_url(owner), status_code=303)

    return confirm, perform


def routes(ui: Dashboard) -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Route(f"{MOUNT}/owners/{{owner:name}}", ui.page(owner_detail, READ), methods=["GET"]),
        Route(
            f"{MOUNT}/owners/{{owner:name}}", ui.page(set_limits, OWNERS_WRITE), methods=["POST"]
        ),
    ]
    for verb in ("revoke", "disable"):
        confirm, perform = all_keys_page(verb)
        path = f"{MOUNT}/owners/{{owner:name}}/{verb}"
        found.append(Route(path, ui.page(confirm, WRITE), methods=["GET"]))
        found.append(Route(path, ui.page(perform, WRITE), methods=["POST"]))
    return found
