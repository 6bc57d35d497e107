"""Changing keys: create, edit, revoke, disable, enable, rotate. All need ``keys:write``.

The rules are the admin API's, reused rather than restated: its request models
(``CreateKey``, ``UpdateKey``, ``RotateKey``) validate the form values with the same limits
and messages, and its guard decides that a key may grant only scopes it holds and change only
keys whose scopes it holds. Changes are made in the signed-in key's name, so the audit log
shows the same actor as it would for the API.

Destructive actions (revoke, disable, rotate) are two steps that work without JavaScript: a
GET shows what will happen and a confirm button, the POST does it. A new key (created or
rotated) is shown once, on the response to the POST, and never stored anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keyturn.manager import IssuedKey
from keyturn.record import KeyRecord
from keyturn.service.models import CreateKey, RotateKey, UpdateKey
from keyturn.store import KeyNotFound
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.forms import Form
from keyturn.ui.key_pages import edit_values, key_id_of, render_detail
from keyturn.ui.render import MOUNT

DEFAULT_LIFETIME_DAYS = 90
MAX_LIFETIME_DAYS = 36_500
DEFAULT_GRACE_HOURS = 24
MAX_GRACE_HOURS = 366 * 24
_LOCAL_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
# Model field -> the form field that holds it, for error messages next to the right input.
_FIELDS = {"expires_in": "expires_days", "grace_seconds": "grace_hours"}


def split_scopes(text: str) -> list[str]:
    """Scopes as people type them: separated by spaces, commas or new lines."""
    return list(dict.fromkeys(s for s in re.split(r"[\s,]+", text) if s))


def field_errors(error: ValidationError) -> dict[str, str]:
    """The models' messages, keyed by form field; the first message per field."""
    found: dict[str, str] = {}
    for item in error.errors():
        loc = item.get("loc") or ("form",)
        name = _FIELDS.get(str(loc[0]), str(loc[0]))
        where = f" (scope {int(loc[1]) + 1})" if name == "scopes" and len(loc) > 1 else ""
        found.setdefault(name, f"{item.get('msg', 'invalid value')}{where}")
    return found


def whole_number(text: str, field: str, low: int, high: int, errors: dict[str, str]) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        errors[field] = f"a whole number from {low} to {high}"
        return low
    return int(text)


def utc_timestamp(text: str) -> str:
    """A ``datetime-local`` value read as UTC, in the RFC 3339 form the model takes."""
    if _LOCAL_MINUTE.fullmatch(text):
        return text + (":00" if len(text) == 16 else "") + "+00:00"
    return text  # the model explains what is wrong with it


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
            "expires_days": str(DEFAULT_LIFETIME_DAYS),
            "never": "",
            "prefix": ui.settings.default_prefix,
        }
    return {
        "name": form.get("name"),
        "owner": form.get("owner"),
        "scopes": form.get("scopes"),
        "expires_days": form.get("expires_days"),
        "never": "on" if form.checked("never") else "",
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
        values=values,
        errors=errors,
        prefixes=ui.settings.prefixes,
        own_scopes=sorted(admin.key.scopes),
    )


async def new_key(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    return new_form(ui, admin, new_form_values(None, ui), {})


async def create_key(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    assert form is not None
    values = new_form_values(form, ui)
    errors: dict[str, str] = {}
    lifetime = None
    if not values["never"]:
        lifetime = 86_400 * whole_number(
            values["expires_days"], "expires_days", 1, MAX_LIFETIME_DAYS, errors
        )
    data: dict[str, Any] = {
        "name": values["name"],
        "scopes": split_scopes(values["scopes"]),
        "owner": values["owner"] or None,
        "expires_in": lifetime,
        "prefix": values["prefix"] or None,
    }
    try:
        body = CreateKey.model_validate(data)
    except ValidationError as exc:
        errors = {**field_errors(exc), **errors}
    else:
        if body.prefix is not None and body.prefix not in ui.settings.prefixes:
            errors["prefix"] = f"use one of {', '.join(ui.settings.prefixes)}"
    if errors:
        return new_form(ui, admin, values, errors, 422)
    ui.guard.ensure_grants(admin.key, body.scopes)
    issued: IssuedKey = await ui.manager.create_key(
        body.name, actor=admin.key.id, **body.create_options()
    )
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


async def load(ui: Dashboard, request: Request) -> KeyRecord:
    key_id = key_id_of(request)
    if key_id is None:
        raise KeyNotFound(str(request.path_params.get("key_id", ""))[:64])
    record: KeyRecord = await ui.manager.get(key_id)
    return record


async def edit_key(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    assert form is not None
    record = await load(ui, request)
    ui.guard.ensure_manages(admin.key, record)
    current = edit_values(record)
    values = {name: form.get(name) for name in current}
    changes: dict[str, Any] = {}
    if values["name"] != current["name"]:
        changes["name"] = values["name"]
    if values["owner"] != current["owner"]:
        changes["owner"] = values["owner"] or None
    scopes = split_scopes(values["scopes"])
    if set(scopes) != record.scopes:
        changes["scopes"] = scopes
    if values["expires_at"] != current["expires_at"]:
        changes["expires_at"] = (
            utc_timestamp(values["expires_at"]) if values["expires_at"] else None
        )
    if not changes:
        admin.session.flash = "Nothing was changed."
        return RedirectResponse(f"{MOUNT}/keys/{record.id}", status_code=303)
    try:
        body = UpdateKey.model_validate(changes)
    except ValidationError as exc:
        return await render_detail(
            ui, admin, record, status=422, errors=field_errors(exc), values=values
        )
    fields = {name: getattr(body, name) for name in body.model_fields_set}
    if "scopes" in fields:
        ui.guard.ensure_grants(admin.key, fields["scopes"])
    await ui.manager.update(record.id, **fields, actor=admin.key.id)
    admin.session.flash = f"Saved: {', '.join(sorted(fields))} changed."
    return RedirectResponse(f"{MOUNT}/keys/{record.id}", status_code=303)


def action_page(verb: str) -> Any:
    action = ACTIONS[verb]

    async def confirm(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
        record = await load(ui, request)
        ui.guard.ensure_manages(admin.key, record)
        return ui.render(
            "confirm.html",
            admin.session,
            admin,
            nav="keys",
            key=record,
            action=action,
            grace_hours=DEFAULT_GRACE_HOURS,
            max_grace_hours=MAX_GRACE_HOURS,
            errors={},
        )

    async def perform(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
        assert form is not None
        record = await load(ui, request)
        ui.guard.ensure_manages(admin.key, record)
        if verb == "rotate":
            return await rotate(ui, admin, record, form)
        await getattr(ui.manager, verb)(record.id, actor=admin.key.id)
        admin.session.flash = {
            "revoke": "Revoked. Requests with this key are now refused.",
            "disable": "Disabled. Requests with this key are refused until it is enabled.",
            "enable": "Enabled. Requests with this key are accepted again.",
        }[verb]
        return RedirectResponse(f"{MOUNT}/keys/{record.id}", status_code=303)

    return confirm, perform


async def rotate(ui: Dashboard, admin: Admin, record: KeyRecord, form: Form) -> Response:
    errors: dict[str, str] = {}
    hours = whole_number(form.get("grace_hours"), "grace_hours", 0, MAX_GRACE_HOURS, errors)
    if not errors:
        try:
            body = RotateKey.model_validate({"grace_seconds": hours * 3600})
        except ValidationError as exc:
            errors = field_errors(exc)
    if errors:
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
            errors=errors,
        )
    issued: IssuedKey = await ui.manager.rotate(
        record.id, grace=timedelta(seconds=body.grace_seconds), actor=admin.key.id
    )
    old: KeyRecord = await ui.manager.get(record.id)
    return shown_once(ui, admin, issued, old, 201)


def routes(ui: Dashboard) -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Route(f"{MOUNT}/keys/new", ui.page(new_key, "keys:write"), methods=["GET"]),
        Route(f"{MOUNT}/keys/new", ui.page(create_key, "keys:write"), methods=["POST"]),
        Route(f"{MOUNT}/keys/{{key_id}}/edit", ui.page(edit_key, "keys:write"), methods=["POST"]),
    ]
    for verb in ACTIONS:
        confirm, perform = action_page(verb)
        path = f"{MOUNT}/keys/{{key_id}}/{verb}"
        found.append(Route(path, ui.page(confirm, "keys:write"), methods=["GET"]))
        found.append(Route(path, ui.page(perform, "keys:write"), methods=["POST"]))
    return found
