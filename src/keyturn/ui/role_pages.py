"""The roles page: named sets of scopes, what each grants and how many keys hold it.

A translator, as the owner page is: the form becomes a call to the role operations of the
admin layer (``keyturn.roles``) in the signed-in key's name, with its rules (``roles:read``
to see, ``roles:write`` to change, a role only within the key's own scopes, no deletion of
a role that keys hold); an ``InvalidValue`` comes back beside the field it names, any other
refusal as the dashboard's error page.
"""

from __future__ import annotations

from contextlib import suppress
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keyturn.errors import InvalidValue, RoleNotFound
from keyturn.roles import ROLES_READ, ROLES_WRITE, Role
from keyturn.ui.admin import Admin
from keyturn.ui.app import Dashboard
from keyturn.ui.echo import echo, masked_fields
from keyturn.ui.forms import Form
from keyturn.ui.key_actions import field_error, split_scopes
from keyturn.ui.render import MOUNT


def role_url(name: str) -> str:
    return f"{MOUNT}/roles/{quote(name, safe='')}"


def _values(role: Role | None) -> dict[str, str]:
    if role is None:
        return {"name": "", "scopes": "", "description": ""}
    return {
        "name": role.name,
        "scopes": " ".join(sorted(role.scopes)),
        "description": role.description or "",
    }


async def role_list(
    ui: Dashboard,
    request: Request,
    admin: Admin,
    form: Form | None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    return ui.render(
        "roles.html",
        admin.session,
        admin,
        status,
        nav="roles",
        roles=await ui.manager.roles.list_roles(admin.actor),
        errors=errors or {},
        values=echo(values) if values else _values(None),
    )


async def role_detail(
    ui: Dashboard,
    request: Request,
    admin: Admin,
    form: Form | None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    role = await ui.manager.roles.get(admin.actor, str(request.path_params["name"]))
    return ui.render(
        "role.html",
        admin.session,
        admin,
        status,
        nav="roles",
        role=role,
        role_url=role_url(role.name),
        errors=errors or {},
        values=echo(values, _values(role)) if values else _values(role),
    )


async def put_role(ui: Dashboard, request: Request, admin: Admin, form: Form | None) -> Response:
    """Define a role (the list's form) or change one (its page's form)."""
    assert form is not None
    named = request.path_params.get("name")
    values = {name: form.get(name) for name in ("name", "scopes", "description")}
    stored = _values(None)
    if named is not None:
        values["name"] = str(named)
        with suppress(RoleNotFound):  # a POST to a new role's address defines it
            stored = _values(await ui.manager.roles.get(admin.actor, str(named)))
    page = role_list if named is None else role_detail
    if errors := masked_fields(values, stored):
        return await page(ui, request, admin, form, 422, errors, values)
    try:
        role = await ui.manager.roles.put(
            admin.actor,
            values["name"].strip(),
            split_scopes(values["scopes"]),
            values["description"].strip() or None,
        )
    except InvalidValue as exc:
        return await page(ui, request, admin, form, 422, field_error(exc), values)
    admin.session.flash = f"Saved: every key holding {role.name} now has its scopes."
    return RedirectResponse(role_url(role.name), status_code=303)


async def delete_role(
    ui: Dashboard, request: Request, admin: Admin, form: Form | None
) -> Response:
    deleted = await ui.manager.roles.delete(admin.actor, str(request.path_params["name"]))
    admin.session.flash = f"Deleted the role {deleted.name}."
    return RedirectResponse(f"{MOUNT}/roles", status_code=303)


def routes(ui: Dashboard) -> list[BaseRoute]:
    return [
        Route(f"{MOUNT}/roles", ui.page(role_list, ROLES_READ), methods=["GET"]),
        Route(f"{MOUNT}/roles", ui.page(put_role, ROLES_WRITE), methods=["POST"]),
        Route(f"{MOUNT}/roles/{{name}}", ui.page(role_detail, ROLES_READ), methods=["GET"]),
        Route(f"{MOUNT}/roles/{{name}}", ui.page(put_role, ROLES_WRITE), methods=["POST"]),
        Route(
            f"{MOUNT}/roles/{{name}}/delete", ui.page(delete_role, ROLES_WRITE), methods=["POST"]
        ),
    ]
