"""``/v1/keys/{id}/callers``, ``/suggestions`` and ``/narrow``: a key's traffic, and the
least privilege it needs.

A translator, as ``admin_api`` is: who still uses a key (for a rotated key, since its
rotation) and what its requests needed come from the verification log through the admin
layer (``KeyAdmin.callers``, ``KeyAdmin.suggest``, ``keyturn._suggestions``), and narrowing
is the admin layer's one audited change (``KeyAdmin.narrow``), which only ever narrows.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to dependencies made inside the router factory.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from keyturn import admin
from keyturn._suggestions import MAX_DAYS
from keyturn.actor import Actor
from keyturn.service.admin_api import KeyId
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import (
    CallerList,
    KeyView,
    NarrowKey,
    SuggestionView,
    Timestamp,
)
from keyturn.service.problems import problem_responses

_BY_ID = problem_responses(400, 401, 403, 404, 422, 429, 503)


def traffic_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    keys = context.admin
    reader = callers.holding(admin.READ)
    writer = callers.holding(admin.WRITE)

    @router.get(
        "/keys/{key_id:keyturn_key_id}/callers",
        response_model=CallerList,
        responses=_BY_ID,
        tags=["keys"],
        summary="Who uses a key: client addresses, paths, last seen",
    )
    async def key_callers(
        key_id: KeyId,
        actor: Annotated[Actor, Depends(reader)],
        since: Annotated[Timestamp | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    ) -> dict[str, Any]:
        return (await keys.callers(actor, key_id, since, limit)).public()

    @router.get(
        "/keys/{key_id:keyturn_key_id}/suggestions",
        response_model=SuggestionView,
        responses=_BY_ID,
        tags=["keys"],
        summary="The least privilege a key's traffic needed: scopes and address ranges",
    )
    async def key_suggestions(
        key_id: KeyId,
        actor: Annotated[Actor, Depends(reader)],
        days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 30,
    ) -> dict[str, Any]:
        return (await keys.suggest(actor, key_id, days)).public()

    @router.post(
        "/keys/{key_id:keyturn_key_id}/narrow",
        response_model=KeyView,
        responses=_BY_ID,
        tags=["keys"],
        summary="Take scopes away from a key or confine it to fewer addresses",
    )
    async def narrow_key(
        key_id: KeyId, body: NarrowKey, actor: Annotated[Actor, Depends(writer)]
    ) -> dict[str, Any]:
        narrowed = await keys.narrow(
            actor, key_id, scopes=body.scopes, allowed_ips=body.allowed_ips
        )
        return narrowed.public()

    return router
