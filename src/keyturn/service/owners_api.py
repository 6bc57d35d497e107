"""``/v1/owners/{owner}``: an owner's shared limits, its usage, and all its keys at once.

A translator, as ``admin_api`` is: JSON becomes ``OwnerLimits`` and goes to the owner
operations of the admin layer (``keyturn._owners``) in the calling key's name; the rules
(who may change limits that several keys share) are there, the errors mapped by the one
handler (``keyturn.service.problems``).

An owner is one path segment, percent-encoded: ``team/payments`` is
``/v1/owners/team%2Fpayments`` (``keyturn._path_names``: the ``name`` convertor).
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to dependencies made inside the router factory.

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from keyturn import _path_names as path_names
from keyturn import admin
from keyturn._owners import OWNERS_WRITE, OwnerLimits
from keyturn.actor import Actor
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import Name, OwnerKeysChanged, OwnerView, PutOwner
from keyturn.service.problems import problem_responses

OwnerName = Annotated[
    Name,
    Path(
        description="The owner, as keys name it (`owner`): one path segment, percent-encoded "
        "(a `/` in it as `%2F`)."
    ),
]
path_names.register()
_BY_NAME = problem_responses(400, 401, 403, 404, 422, 429, 503)


def owners_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    owners = context.manager.owners
    store = context.sync.store
    reader = callers.holding(admin.READ)
    writer = callers.holding(admin.WRITE)
    limiter = callers.holding(OWNERS_WRITE)

    @router.put(
        "/owners/{owner:name}",
        response_model=OwnerView,
        responses=problem_responses(400, 401, 403, 422, 429, 503),
        tags=["owners"],
        summary="Set an owner's limits, shared by all of its keys",
    )
    async def put_owner(
        owner: OwnerName, body: PutOwner, actor: Annotated[Actor, Depends(limiter)]
    ) -> dict[str, Any]:
        limits = OwnerLimits(
            tuple(body.rate_limits),
            body.credits,
            body.refill.interval if body.refill else None,
            body.refill.amount if body.refill else None,
            body.metadata,
        )
        stored = await owners.put(actor, owner, limits)  # the name as stored: stripped
        # The answer to a change is what it changed, as every write's (``PATCH
        # /v1/keys/{id}`` needs no keys:read either): a ``keys:read`` check here would
        # answer 403 for a change already made.
        usage = await asyncio.to_thread(store.owner_usage, stored.owner)
        assert usage is not None  # just stored
        return usage.public()

    @router.get(
        "/owners/{owner:name}",
        response_model=OwnerView,
        responses=_BY_NAME,
        tags=["owners"],
        summary="An owner's limits and usage",
    )
    async def get_owner(
        owner: OwnerName, actor: Annotated[Actor, Depends(reader)]
    ) -> dict[str, Any]:
        return (await owners.get(actor, owner)).public()

    def all_keys(verb: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        operation = getattr(owners, verb)

        async def change(
            owner: OwnerName, actor: Annotated[Actor, Depends(writer)]
        ) -> dict[str, Any]:
            changed = await operation(actor, owner)
            return {"owner": owner, "changed": [record.public() for record in changed]}

        change.__name__ = f"{verb}_owner"
        return change

    for verb, summary in (
        ("revoke", "Revoke all of an owner's keys at once"),
        ("disable", "Disable all of an owner's live keys at once"),
    ):
        router.add_api_route(
            f"/owners/{{owner:name}}/{verb}",
            all_keys(verb),
            methods=["POST"],
            response_model=OwnerKeysChanged,
            responses=_BY_NAME,
            tags=["owners"],
            summary=summary,
        )

    return router
