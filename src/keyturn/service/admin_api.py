"""``/v1/keys`` and ``/v1/audit``: manage keys over HTTP, as the CLI does locally.

Every change is made in the calling key's name (the audit log's ``actor`` is its id) and
passes the guard's two checks: no granting scopes the caller lacks, no changing a key that
holds scopes the caller lacks.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to dependencies made inside the router factory.

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query
from starlette.convertors import StringConvertor, register_url_convertor

from keyturn.record import KeyRecord
from keyturn.service.body_limit import gated_route
from keyturn.service.context import ServiceContext
from keyturn.service.guard import Guard
from keyturn.service.models import (
    AuditPage,
    CreateKey,
    IssuedKeyView,
    KeyPage,
    KeyView,
    RotateKey,
    Status,
    Timestamp,
    UpdateKey,
)
from keyturn.service.problems import invalid_field, problem_responses
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
_AUTH = problem_responses(400, 401, 403, 429)
_BY_ID = problem_responses(400, 401, 403, 404, 422, 429)


def admin_router(context: ServiceContext, guard: Guard) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(guard, context.settings))
    manager = context.manager
    prefixes = context.settings.prefixes
    reader = guard.caller("keys:read")
    writer = guard.caller("keys:write")
    auditor = guard.caller("audit:read")

    @router.post(
        "/keys",
        status_code=201,
        response_model=IssuedKeyView,
        responses={**_AUTH, **problem_responses(422)},
        tags=["keys"],
        summary="Create a key (shown once)",
    )
    async def create_key(
        body: CreateKey, caller: Annotated[KeyRecord, Depends(writer)]
    ) -> dict[str, Any]:
        guard.ensure_grants(caller, body.scopes)
        if body.prefix is not None and body.prefix not in prefixes:
            raise invalid_field(
                "body.prefix", f"{body.prefix!r} is not accepted here; use {', '.join(prefixes)}"
            )
        try:
            issued = await manager.create_key(body.name, actor=caller.id, **body.create_options())
        except ValueError as exc:  # credit settings that only make sense together
            raise invalid_field("body", str(exc)) from None
        return {**issued.record.public(), "key": issued.key}

    @router.get(
        "/keys",
        response_model=KeyPage,
        responses={**_AUTH, **problem_responses(422)},
        tags=["keys"],
        summary="List keys, newest first",
    )
    async def list_keys(
        caller: Annotated[KeyRecord, Depends(reader)],
        owner: Text = None,
        status: Status | None = None,
        search: Text = None,
        prefix: Annotated[str | None, Query(max_length=32)] = None,
        expiring_before: Timestamp | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 50,
        after: Annotated[str | None, Query(max_length=64, description=_AFTER)] = None,
    ) -> dict[str, Any]:
        filters = KeyFilter(
            owner=owner,
            status=status,
            search=search,
            expiring_before=expiring_before,
            prefix=prefix,
        )
        records = await manager.list_keys(filters, limit=limit, after=after)
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
    async def get_key(
        key_id: KeyId, caller: Annotated[KeyRecord, Depends(reader)]
    ) -> dict[str, Any]:
        record: KeyRecord = await manager.get(key_id)
        return record.public()

    @router.patch(
        "/keys/{key_id:keyturn_key_id}",
        response_model=KeyView,
        responses=_BY_ID,
        tags=["keys"],
        summary="Change a key's name, owner, scopes, metadata, expiry, rate limits or credits",
    )
    async def update_key(
        key_id: KeyId, body: UpdateKey, caller: Annotated[KeyRecord, Depends(writer)]
    ) -> dict[str, Any]:
        guard.ensure_manages(caller, await manager.get(key_id))
        changes = {name: getattr(body, name) for name in body.model_fields_set}
        if "refill" in changes:
            refill = changes.pop("refill")
            changes["refill"] = refill.interval if refill else None
            if refill:
                changes["refill_amount"] = refill.amount
        if "scopes" in changes:
            guard.ensure_grants(caller, changes["scopes"])
        try:
            record: KeyRecord = await manager.update(key_id, **changes, actor=caller.id)
        except ValueError as exc:  # credit settings that only make sense together
            raise invalid_field("body", str(exc)) from None
        return record.public()

    def state_change(verb: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def change(
            key_id: KeyId, caller: Annotated[KeyRecord, Depends(writer)]
        ) -> dict[str, Any]:
            guard.ensure_manages(caller, await manager.get(key_id))
            record: KeyRecord = await getattr(manager, verb)(key_id, actor=caller.id)
            return record.public()

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
    )
    async def rotate_key(
        key_id: KeyId,
        caller: Annotated[KeyRecord, Depends(writer)],
        body: Annotated[RotateKey | None, Body()] = None,
    ) -> dict[str, Any]:
        guard.ensure_manages(caller, await manager.get(key_id))
        grace = timedelta(seconds=(body or RotateKey()).grace_seconds)
        issued = await manager.rotate(key_id, grace=grace, actor=caller.id)
        return {**issued.record.public(), "key": issued.key}

    @router.get(
        "/audit",
        response_model=AuditPage,
        responses={**_AUTH, **problem_responses(422)},
        tags=["audit"],
        summary="The audit log, newest first",
    )
    async def audit(
        caller: Annotated[KeyRecord, Depends(auditor)],
        key_id: Annotated[str | None, Query(max_length=64)] = None,
        actor: Text = None,
        action: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description=_BEFORE)] = None,
    ) -> dict[str, Any]:
        events = await manager.audit(
            key_id=key_id, actor=actor, action=action, limit=limit, before=before
        )
        return {
            "events": [e.public() for e in events],
            "next": events[-1].id if len(events) == limit else None,
        }

    return router
