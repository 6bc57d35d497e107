"""``GET /v1/verifications``: the verification log (``keyturn._verifications``), filtered.

Needs the scope ``verifications:read``. Entries are newest first and paged by id; an
entry is here within about half a second of its decision (the log's write interval).
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to dependencies made inside the router factory.

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from keyturn._verifications import READ_SCOPE, VerificationFilter
from keyturn.actor import Actor
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import Timestamp, VerificationPage
from keyturn.service.problems import problem_responses

_BEFORE = "The `next` of the previous page: the id of its last entry."


def verifications_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    store = context.sync.store
    reader = callers.holding(READ_SCOPE)

    @router.get(
        "/verifications",
        response_model=VerificationPage,
        responses=problem_responses(400, 401, 403, 422, 429, 503),
        tags=["verifications"],
        summary="The verification log, newest first",
    )
    async def verifications(
        actor: Annotated[Actor, Depends(reader)],
        key_id: Annotated[str | None, Query(max_length=64)] = None,
        owner: Annotated[str | None, Query(max_length=200)] = None,
        outcome: Annotated[str | None, Query(max_length=64)] = None,
        request_id: Annotated[str | None, Query(max_length=128)] = None,
        since: Annotated[Timestamp | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description=_BEFORE)] = None,
    ) -> dict[str, Any]:
        actor.require(READ_SCOPE)
        filters = VerificationFilter(key_id, owner, outcome, request_id, since)
        found = await asyncio.to_thread(store.verifications, filters, limit=limit, before=before)
        return {
            "verifications": [v.public() for v in found],
            "next": found[-1].id if len(found) == limit else None,
        }

    return router
