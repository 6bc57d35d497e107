"""Changing keys: create, edit, revoke, disable, enable, rotate. All need ``keys:write``.

A translator: each form becomes the admin layer's request (``NewKey``, ``KeyChange``, a
grace period) and goes to the same operation as the admin API and the CLI, in the
signed-in key's name (``Admin.actor``), so the audit log shows the same actor as the API
would and the same rules apply: validation, defaults and what a key may grant are the admin
layer's (``keyturn.admin``). Here only the form's own spelling is read (whole numbers of
days and hours, a ``datetime-local`` in UTC, scopes separated by spaces); an
``InvalidValue`` comes back as a message next to the field it names.

Destructive actions (revoke, disable, rotate) are two steps that work without JavaScript: a
GET shows what will happen and a confirm button, the POST does it. A new key (created or
rotated) is shown once, on the response to the POST, and never stored anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keyturn.admin import (
    DEFAULT_GRACE,
    DEFAULT_LIFETIME,
    MAX_GRACE,
    UNSET,
    WRITE,
    IssuedKey,
    KeyChange,
    NewKey,
    Unset,
)
from keyturn.errors import InvalidValue, KeyNotFound
from keyturn.record import KeyRecord
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.echo import echo, masked_fields
from keyturn.ui.forms import Form
from keyturn.ui.key_pages import edit_values, key_id_of, render_detail
from keyturn.ui.render import MOUNT

DEFAULT_LIFETIME_DAYS = DEFAULT_LIFETIME.days
DEFAULT_GRACE_HOURS = int(DEFAULT_GRACE.total_seconds()) // 3600
MAX_GRACE_HOURS = int(MAX_GRACE.total_seconds()) // 3600
_LOCAL_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
# The admin layer's field -> the form field that holds it, for messages beside the input.
_FIELDS = {
    "expires_in": "expires_days",
    "grace": "grace_hours",
    "grace_max": "grace_hours",
    "grace_until_quiet": "quiet_minutes",
}


def split_scopes(text: str) -> list[str]:
    """Scopes (or addresses) as people type them: separated by spaces, commas or new lines."""
    return list(dict.fromkeys(s for s in re.split(r"[\s,]+", text) if s))


def field_error(error: InvalidValue) -> dict[str, str]:
    """The admin layer's message, keyed by the form field it is about."""
    field = error.field or "form"
    return {_FIELDS.get(field, field): error.message}


def whole_number(text: str, field: str, errors: dict[str, str]) -> int | None:
    if not text.isdigit() or len(text) > 9:
        errors[field] = "a whole number"
        return None
    return int(text)


def grace_of(form: Form, errors: dict[str, str]) -> tuple[timedelta, timedelta | None] | None:
    """The rotate form's grace: whole hours, and optionally whole minutes of quiet, which
    make the hours the most the old key works (``KeyAdmin.rotate``'s ``quiet``)."""
    hours = whole_number(form.get("grace_hours"), "grace_hours", errors)
    quiet = None
    if form.get("quiet_minutes").strip():
        minutes = whole_number(form.get("quiet_minutes").strip(), "quiet_minutes", errors)
        quiet = None if minutes is None else timedelta(minutes=minutes)
    if hours is None or errors:
        return None
    return timedelta(hours=hours), quiet


def utc_moment(text: str, field: str, errors: dict[str, str]) -> datetime | None:
    """A ``datetime-local`` value, read as UTC (the form says so)."""
    if _LOCAL_MINUTE.fullmatch(text):
        try:
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        except ValueError:
            pass
    errors[field] = "a date and time, like 2030-01-31T12:00 (UTC)"
    return None


@dataclass(frozen=True, slots=True)
class Action:
    verb: str
    title: str
    warning: str
    button: str
    danger: bool


ACTIONS = {
    "revoke": Action(
        "revoke",
        "Revoke this key",
        "Revoking is permanent. From now on every request with this key is refused "
        "(key_revoked), and the key can never be enabled again.",
        "Revoke the key",
        True,
    ),
    "disable": Action(
        "disable",
        "Disable this key",
        "Every request with this key will be refused (key_disabled) until it is enabled again.",
        "Disable the key",
        True,
    ),
    "enable": Action(
        "enable",
        "Enable this key",
        "Requests with this key will be accepted again.",
        "Enable the key",
        False,
    ),
    "rotate": Action(
        "rotate",
        "Rotate this key",
        "A new key with the same name, owner, scopes and lifetime is issued and shown once. "
        "The old key keeps working for the grace period, then is refused (key_rotated).",
        "Rotate the key",
        True,
    ),
}


def new_form_values(form: Form | None, ui: Dashboard) -> dict[str, str]:
    if form is None:
        return {
            "name": "",
            "owner": "",
            "scopes": "",
            "allowed_ips": "",
            "roles": "",
            "expires_days": "",
            "never": "",
            "canary": "",
            "prefix": ui.settings.default_prefix,
        }
    return {
        "name": form.get("name"),
        "owner": form.get("owner"),
        "scopes": form.get("scopes"),
        "allowed_ips": form.get("allowed_ips"),
        "roles": form.get("roles"),
        "expires_days": form.get("expires_days"),
        "never": "on" if form.checked("never") else "",
        "canary": "on" if form.checked("canary") else "",
        "prefix": form.get("prefix"),
    }


def new_form(
    ui: Dashboard, admin: Admin, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> Response:
    return ui.render(
        "key_new.html",
        admin.session,
        admin,
        status,
        nav="keys",
        values=echo(values),
        errors=errors,
        prefixes=ui.settings.prefixes,
        own_scopes=sorted(admin.key.granted),
        default_days=DEFAULT_LIFETIME_DAYS,
    )


async def new_key(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    return new_form(ui, admin, new_form_values(None, ui), {})


async def create_key(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    assert form is not None
    values = new_form_values(form, ui)
    errors = masked_fields(values)
    lifetime: timedelta | Unset | None = None
    if not values["never"]:
        lifetime = UNSET  # empty: the admin layer's default
        if values["expires_days"]:
            days = whole_number(values["expires_days"], "expires_days", errors)
            lifetime = timedelta(days=days or 0)
    if errors:
        return new_form(ui, admin, values, errors, 422)
    new = NewKey(
        values["name"],
        split_scopes(values["scopes"]),
        lifetime,
        values["owner"] or None,
        prefix=values["prefix"] or None,
        allowed_ips=split_scopes(values["allowed_ips"]),
        roles=split_scopes(values["roles"]),
        canary=bool(values["canary"]),
    )
    try:
        issued = await ui.keys.create(admin.actor, new)
    except InvalidValue as exc:
        return new_form(ui, admin, values, field_error(exc), 422)
    return shown_once(ui, admin, issued, None, 201)


def shown_once(
    ui: Dashboard, admin: Admin, issued: IssuedKey, rotated: KeyRecord | None, status: int
) -> Response:
    """The page with the new key; the only time the full key is ever sent."""
    return ui.render(
        "key_created.html",
        admin.session,
        admin,
        status,
        nav="keys",
        key=issued.record,
        secret=issued.key,
        rotated=rotated,
    )


async def load(ui: Dashboard, request: Request, admin: Admin) -> KeyRecord:
    key_id = key_id_of(request)
    if key_id is None:
        raise KeyNotFound(str(request.path_params.get("key_id", ""))[:64])
    return await ui.keys.get(admin.actor, key_id)


async def edit_key(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    assert form is not None
    record = await load(ui, request, admin)
    admin.actor.ensure_manages(record)
    current = edit_values(record)
    values = {name: form.get(name) for name in current}
    errors = masked_fields(values, current)
    changed: dict[str, Any] = {}
    if values["name"] != current["name"]:
        changed["name"] = values["name"]
    if values["owner"] != current["owner"]:
        changed["owner"] = values["owner"] or None
    scopes = split_scopes(values["scopes"])
    if set(scopes) != record.scopes:
        changed["scopes"] = scopes
    if values["allowed_ips"] != current["allowed_ips"]:
        changed["allowed_ips"] = split_scopes(values["allowed_ips"])
    roles = split_scopes(values["roles"])
    if tuple(sorted(roles)) != record.roles:
        changed["roles"] = roles
    if values["expires_at"] != current["expires_at"]:
        text = values["expires_at"]
        changed["expires_at"] = utc_moment(text, "expires_at", errors) if text else None
    if errors:
        return await render_detail(ui, admin, record, status=422, errors=errors, values=values)
    if not changed:
        admin.session.flash = "Nothing was changed."
        return RedirectResponse(f"{MOUNT}/keys/{record.id}", status_code=303)
    try:
        await ui.keys.update(admin.actor, record.id, KeyChange(**changed))
    except InvalidValue as exc:
        return await render_detail(
            ui, admin, record, status=422, errors=field_error(exc), values=values
        )
    admin.session.flash = f"Saved: {', '.join(sorted(changed))} changed."
    return RedirectResponse(f"{MOUNT}/keys/{record.id}", status_code=303)


def action_page(verb: str) -> Any:
    action = ACTIONS[verb]

    async def confirm(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
        record = await load(ui, request, admin)
        admin.actor.ensure_manages(record)
        return ui.render(
            "confirm.html",
            admin.session,
            admin,
            nav="keys",
            key=record,
            action=action,
            grace_hours=DEFAULT_GRACE_HOURS,
            max_grace_hours=MAX_GRACE_HOURS,
            quiet_minutes="",
            errors={},
        )

    async def perform(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
        assert form is not None
        record = await load(ui, request, admin)
        if verb == "rotate":
            return await rotate(ui, admin, record, form)
        await getattr(ui.keys, verb)(admin.actor, record.id)
        admin.session.flash = {
            "revoke": "Revoked. Requests with this key are now refused.",
            "disable": "Disabled. Requests with this key are refused until it is enabled.",
            "enable": "Enabled. Requests with this key are accepted again.",
        }[verb]
        return RedirectResponse(f"{MOUNT}/keys/{record.id}", status_code=303)

    return confirm, perform


async def rotate(ui: Dashboard, admin: Admin, record: KeyRecord, form: Form) -> Response:
    errors: dict[str, str] = {}
    grace = grace_of(form, errors)
    if grace is not None:
        try:
            issued = await ui.keys.rotate(admin.actor, record.id, grace[0], quiet=grace[1])
        except InvalidValue as exc:
            errors = field_error(exc)
        else:
            old = await ui.keys.get(admin.actor, record.id)
            return shown_once(ui, admin, issued, old, 201)
    return ui.render(
        "confirm.html",
        admin.session,
        admin,
        422,
        nav="keys",
        key=record,
        action=ACTIONS["rotate"],
        grace_hours=form.get("grace_hours"),
        max_grace_hours=MAX_GRACE_HOURS,
        quiet_minutes=form.get("quiet_minutes"),
        errors=errors,
    )


async def narrow_key(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    """The key page's least-privilege form: the suggestion as it was shown, applied in one
    audited change (``KeyAdmin.narrow``, which refuses anything but a narrowing)."""
    assert form is not None
    record = await load(ui, request, admin)
    days = form.get("days")
    try:
        narrowed = await ui.keys.narrow(
            admin.actor,
            record.id,
            scopes=split_scopes(form.get("scopes")),
            allowed_ips=split_scopes(form.get("allowed_ips")),
            reason={"suggested_from_days": int(days) if days.isdigit() and len(days) < 4 else None},
        )
    except InvalidValue as exc:
        return await render_detail(ui, admin, record, status=422, errors={"narrow": exc.message})
    admin.session.flash = (
        f"Narrowed: scopes {' '.join(sorted(narrowed.scopes)) or '(none)'}, allowed from "
        f"{' '.join(narrowed.allowed_ips)}."
    )
    return RedirectResponse(f"{MOUNT}/keys/{record.id}", status_code=303)


def routes(ui: Dashboard) -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Route(f"{MOUNT}/keys/{{key_id}}/narrow", ui.page(narrow_key, WRITE), methods=["POST"]),
        Route(f"{MOUNT}/keys/new", ui.page(new_key, WRITE), methods=["GET"]),
        Route(f"{MOUNT}/keys/new", ui.page(create_key, WRITE), methods=["POST"]),
        Route(f"{MOUNT}/keys/{{key_id}}/edit", ui.page(edit_key, WRITE), methods=["POST"]),
    ]
    for verb in ACTIONS:
        confirm, perform = action_page(verb)
        path = f"{MOUNT}/keys/{{key_id}}/{verb}"
        found.append(Route(path, ui.page(confirm, WRITE), methods=["GET"]))
        found.append(Route(path, ui.page(perform, WRITE), methods=["POST"]))
    return found
