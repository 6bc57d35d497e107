"""The portal's pages: the owner's keys, one key (usage, last use), create, rotate, revoke.

Translators, as the dashboard's pages are: a form becomes the admin layer's request
(``NewKey``, a grace period) made as the owner (``Visitor.actor``), so what the policy
allows is decided there, for a forged post as for the form. The form offers only what the
policy allows (its scopes as check boxes, lifetimes up to ``max_lifetime``); a value
outside it comes back from the admin layer as a refusal shown on the form. A new key is
shown once, on the answer to the post that made it.
"""

from __future__ import annotations

from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from keyturn.admin import NewKey
from keyturn.errors import InvalidValue, KeyNotFound, NotPermitted
from keyturn.portal import LIST_LIMIT, PATH, OwnerPolicy
from keyturn.record import KeyRecord, utcnow
from keyturn.ui.echo import echo, masked_fields
from keyturn.ui.forms import Form
from keyturn.ui.key_actions import (
    ACTIONS,
    DEFAULT_GRACE_HOURS,
    MAX_GRACE_HOURS,
    field_error,
    grace_of,
    whole_number,
)
from keyturn.ui.key_pages import USAGE_DAYS, key_id_of, usage_chart
from keyturn.ui.portal import Portal, PortalPage, Visitor

_DAY = 86_400
# Lifetimes offered on the form, in seconds; those beyond the policy's are left out.
LIFETIMES = (3600, _DAY, 7 * _DAY, 30 * _DAY, 90 * _DAY, 365 * _DAY)


def lifetime_text(seconds: int) -> str:
    if seconds % _DAY == 0:
        days = seconds // _DAY
        return f"{days} day{'' if days == 1 else 's'}"
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'' if hours == 1 else 's'}"
    return f"{seconds} seconds"


def lifetime_choices(policy: OwnerPolicy) -> list[tuple[str, str]]:
    """(value, label) for the expiry select: the standard lifetimes within the policy, its
    longest, and "never" when the policy lets keys live for ever."""
    if policy.max_lifetime is None:
        choices = [(str(s), lifetime_text(s)) for s in LIFETIMES]
        return [*choices, ("never", "Never")]
    longest = int(policy.max_lifetime.total_seconds())
    choices = [(str(s), lifetime_text(s)) for s in LIFETIMES if s < longest]
    return [*choices, (str(longest), f"{lifetime_text(longest)} (the longest allowed)")]


async def key_list(
    portal: Portal, request: Request, visitor: Visitor, form: Form | None
) -> Response:
    records = await portal.keys.list_keys(visitor.actor, limit=LIST_LIMIT)
    now = utcnow()
    working = await portal.keys.working_keys(visitor.actor)
    return portal.render(
        "portal/keys.html",
        visitor,
        nav="keys",
        rows=[(r, r.status(now)) for r in records],
        working=working,
        policy=visitor.link.policy,
    )


async def key_detail(
    portal: Portal, request: Request, visitor: Visitor, form: Form | None
) -> Response:
    record = await load(portal, request, visitor)
    days_text = request.query_params.get("days", "14")
    days = int(days_text) if days_text.isdigit() and int(days_text) in USAGE_DAYS else 14
    return portal.render(
        "portal/key.html",
        visitor,
        key=record,
        key_status=record.status(),
        # A successor holds its predecessor's scopes: only within the policy's.
        rotatable=record.granted <= visitor.link.policy.scopes,
        chart=await usage_chart(portal.manager, record.id, days),
        days=days,
        usage_days=USAGE_DAYS,
        flush_seconds=portal.settings.usage_flush_interval,
    )


async def load(portal: Portal, request: Request, visitor: Visitor) -> KeyRecord:
    """The key in the address, read as the owner: another owner's is ``KeyNotFound``."""
    key_id = key_id_of(request)
    if key_id is None:
        raise KeyNotFound(str(request.path_params.get("key_id", ""))[:64])
    return await portal.keys.get(visitor.actor, key_id)


def new_form(
    portal: Portal,
    visitor: Visitor,
    values: dict[str, object],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    policy = visitor.link.policy
    return portal.render(
        "portal/key_new.html",
        visitor,
        status,
        nav="keys",
        values=echo(values),
        errors=errors,
        scopes=sorted(policy.scopes),
        lifetimes=lifetime_choices(policy),
    )


async def new_key(
    portal: Portal, request: Request, visitor: Visitor, form: Form | None
) -> Response:
    choices = lifetime_choices(visitor.link.policy)
    default = next((v for v, _ in choices if v == str(90 * _DAY)), choices[-1][0])
    return new_form(portal, visitor, {"name": "", "scopes": [], "expires": default}, {})


async def create_key(
    portal: Portal, request: Request, visitor: Visitor, form: Form | None
) -> Response:
    assert form is not None
    values: dict[str, object] = {
        "name": form.get("name"),
        "scopes": form.all("scopes"),
        "expires": form.get("expires"),
    }
    errors = masked_fields(values)
    expires = form.get("expires")
    lifetime: timedelta | None = None
    if expires != "never":
        seconds = whole_number(expires, "expires", errors)
        lifetime = timedelta(seconds=seconds or 0)
    if errors:
        return new_form(portal, visitor, values, errors, 422)
    new = NewKey(form.get("name"), form.all("scopes"), lifetime)
    try:
        issued = await portal.keys.create(visitor.actor, new)
    except InvalidValue as exc:
        errors = {("expires" if k == "expires_days" else k): v for k, v in field_error(exc).items()}
        return new_form(portal, visitor, values, errors, 422)
    except NotPermitted as exc:
        return new_form(portal, visitor, values, {"form": exc.message}, exc.status)
    return portal.render(
        "key_created.html", visitor, 201, key=issued.record, secret=issued.key, rotated=None
    )


def action_page(verb: str) -> tuple[PortalPage, PortalPage]:
    action = ACTIONS[verb]

    async def confirm(
        portal: Portal, request: Request, visitor: Visitor, form: Form | None
    ) -> Response:
        record = await load(portal, request, visitor)
        return portal.render(
            "confirm.html",
            visitor,
            key=record,
            action=action,
            grace_hours=DEFAULT_GRACE_HOURS,
            max_grace_hours=MAX_GRACE_HOURS,
            quiet_minutes="",
            errors={},
        )

    async def perform(
        portal: Portal, request: Request, visitor: Visitor, form: Form | None
    ) -> Response:
        assert form is not None
        record = await load(portal, request, visitor)
        if verb == "revoke":
            await portal.keys.revoke(visitor.actor, record.id)
            visitor.session.flash = "Revoked. Requests with this key are now refused."
            return RedirectResponse(f"{PATH}/keys/{record.id}", status_code=303)
        errors: dict[str, str] = {}
        grace = grace_of(form, errors)
        if grace is not None:
            try:
                issued = await portal.keys.rotate(
                    visitor.actor, record.id, grace[0], quiet=grace[1]
                )
            except InvalidValue as exc:
                errors = field_error(exc)
            else:
                old = await portal.keys.get(visitor.actor, record.id)
                return portal.render(
                    "key_created.html",
                    visitor,
                    201,
                    key=issued.record,
                    secret=issued.key,
                    rotated=old,
                )
        return portal.render(
            "confirm.html",
            visitor,
            422,
            key=record,
            action=action,
            grace_hours=form.get("grace_hours"),
            max_grace_hours=MAX_GRACE_HOURS,
            quiet_minutes=form.get("quiet_minutes"),
            errors=errors,
        )

    return confirm, perform


def routes(portal: Portal) -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Route(PATH, portal.page(key_list), methods=["GET"]),
        Route(f"{PATH}/", portal.page(key_list), methods=["GET"]),
        Route(f"{PATH}/keys/new", portal.page(new_key), methods=["GET"]),
        Route(f"{PATH}/keys/new", portal.page(create_key), methods=["POST"]),
    ]
    for verb in ("rotate", "revoke"):
        confirm, perform = action_page(verb)
        path = f"{PATH}/keys/{{key_id}}/{verb}"
        found.append(Route(path, portal.page(confirm), methods=["GET"]))
        found.append(Route(path, portal.page(perform), methods=["POST"]))
    found.append(Route(f"{PATH}/keys/{{key_id}}", portal.page(key_detail), methods=["GET"]))
    return found
