"""``/v1/keys`` and ``/v1/audit``: manage keys over HTTP, as the CLI does locally.

A translator: each route turns JSON into the admin layer's request (``NewKey``,
``KeyChange``) and calls the same operation as the dashboard and the CLI, in the calling
key's name (the audit log's ``actor`` is its id). The rules - what a key may grant and to
which keys, the defaults, every validation - are the admin layer's (``keyturn.admin``); its
errors become problem documents in one handler (``keyturn.service.problems``).
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to dependencies made inside the router factory.

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from starlette.convertors import StringConvertor, register_url_convertor

from keyturn import admin
from keyturn._states import Status
from keyturn.actor import Actor
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import (
    AuditPage,
    CreateKey,
    IssuedKeyView,
    KeyPage,
    KeyView,
    RoleName,
    RotateKey,
    Timestamp,
    UpdateKey,
)
from keyturn.service.problems import problem_responses
from keyturn.store import KeyFilter


class _KeyIdConvertor(StringConvertor):
    """A key id in a path: any segment but ``verify``, which is the verify API's. Without
    it, ``GET /v1/keys/verify`` would be "key 'verify' not found" instead of a 405."""

    regex = "(?!verify(?:/|$))[^/]+"


register_url_convertor("keyturn_key_id", _KeyIdConvertor())

KeyId = Annotated[str, Path(max_length=64, description="A key id, e.g. `key_0123456789abcdef`.")]
Text = Annotated[str | None, Query(max_length=200)]
_AFTER = "The `next` of the previous page: the id of its last key."
_BEFORE = "The `next` of the previous page: the id of its last event."
_AUTH = problem_responses(400, 401, 403, 429, 503)
_BY_ID = problem_responses(400, 401, 403, 404, 422, 429, 503)


def admin_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    keys = context.admin
    reader = callers.holding(admin.READ)
    writer = callers.holding(admin.WRITE)
    auditor = callers.holding(admin.AUDIT)

    @router.post(
        "/keys",
        status_code=201,
        response_model=IssuedKeyView,
        responses={**_AUTH, **problem_responses(422)},
        tags=["keys"],
        summary="Create a key (shown once)",
    )
    async def create_key(
        body: CreateKey, actor: Annotated[Actor, Depends(writer)]
    ) -> dict[str, Any]:
        issued = await keys.create(actor, body.to_new_key())
        return {**issued.record.public(), "key": issued.key}

    @router.get(
        "/keys",
        response_model=KeyPage,
        responses={**_AUTH, **problem_responses(422)},
        tags=["keys"],
        summary="List keys, newest first",
    )
    async def list_keys(
        actor: Annotated[Actor, Depends(reader)],
        owner: Text = None,
        status: Status | None = None,
        search: Text = None,
        prefix: Annotated[str | None, Query(max_length=32)] = None,
        expiring_before: Timestamp | None = None,
        role: Annotated[RoleName | None, Query(description="Only keys holding this role.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        after: Annotated[str | None, Query(max_length=64, description=_AFTER)] = None,
    ) -> dict[str, Any]:
        filters = KeyFilter(
            owner=owner,
            status=status,
            search=search,
            expiring_before=expiring_before,
            prefix=prefix,
            role=role,
        )
        records = await keys.list_keys(actor, filters, limit=limit, after=after)
        return {
            "keys": [r.public() for r in records],
            "next": records[-1].id if len(records) == limit else None,
        }

    @router.get(
        "/keys/{key_id:keyturn_key_id}",
        response_model=KeyView,
        responses=_BY_ID,
        tags=["keys"],
        summary="Show one key",
    )
    async def get_key(key_id: KeyId, actor: Annotated[Actor, Depends(reader)]) -> dict[str, Any]:
        return (await keys.get(actor, key_id)).public()

    @router.patch(
        "/keys/{key_id:keyturn_key_id}",
        response_model=KeyView,
        responses=_BY_ID,
        tags=["keys"],
        summary="Change a key's name, owner, scopes, metadata, expiry, rate limits or credits",
    )
    async def update_key(
        key_id: KeyId, body: UpdateKey, actor: Annotated[Actor, Depends(writer)]
    ) -> dict[str, Any]:
        return (await keys.update(actor, key_id, body.to_change())).public()

    def state_change(verb: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        operation = getattr(keys, verb)

        async def change(key_id: KeyId, actor: Annotated[Actor, Depends(writer)]) -> dict[str, Any]:
            return (await operation(actor, key_id)).public()  # type: ignore[no-any-return]

        change.__name__ = f"{verb}_key"
        return change

    for verb, summary in (
        ("revoke", "Revoke a key for good"),
        ("disable", "Disable a key (undo with enable)"),
        ("enable", "Re-enable a disabled key"),
    ):
        router.add_api_route(
            f"/keys/{{key_id:keyturn_key_id}}/{verb}",
            state_change(verb),
            methods=["POST"],
            response_model=KeyView,
            responses={**_BY_ID, **problem_responses(409)},
            tags=["keys"],
            summary=summary,
        )

    @router.post(
        "/keys/{key_id:keyturn_key_id}/rotate",
        status_code=201,
        response_model=IssuedKeyView,
        responses={**_BY_ID, **problem_responses(409)},
        tags=["keys"],
        summary="Replace a key; the old one works for a grace period",
        description="The old key keeps working for `grace_seconds` (default 24 hours), or, "
        "with `grace_until_quiet_seconds`, until nobody has used it for that long, at most "
        "`grace_max_seconds` (default 7 days). The two keys share one allowance meanwhile.",
    )
    async def rotate_key(
        key_id: KeyId,
        actor: Annotated[Actor, Depends(writer)],
        body: Annotated[RotateKey | None, Body()] = None,
    ) -> dict[str, Any]:
        grace, quiet = (body or RotateKey()).grace()
        issued = await keys.rotate(actor, key_id, grace, quiet=quiet)
        return {**issued.record.public(), "key": issued.key}

    @router.get(
        "/audit",
        response_model=AuditPage,
        responses={**_AUTH, **problem_responses(422)},
        tags=["audit"],
        summary="The audit log, newest first",
    )
    async def audit(
        actor: Annotated[Actor, Depends(auditor)],
        key_id: Annotated[str | None, Query(max_length=64)] = None,
        by: Annotated[str | None, Query(alias="actor", max_length=200)] = None,
        action: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description=_BEFORE)] = None,
    ) -> dict[str, Any]:
        events = await keys.audit(
            actor, key_id=key_id, by=by, action=action, limit=limit, before=before
        )
        return {
            "events": [e.public() for e in events],
            "next": events[-1].id if len(events) == limit else None,
        }

    return router
