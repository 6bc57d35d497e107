"""``/v1/webhooks``: subscribe to key lifecycle events, over HTTP.

A translator like ``admin_api``: JSON becomes a ``NewWebhook`` and the admin operations
of ``keyturn._webhooks`` decide (scopes ``webhooks:read`` / ``webhooks:write``, the URL
rules, the events known); their errors become problem documents in the one handler.
"""

# No `from __future__ import annotations`: FastAPI evaluates the route signatures.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from keyturn import _webhooks as webhooks
from keyturn.actor import Actor
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import (
    CreatedWebhookView,
    CreateWebhook,
    DeliveryPage,
    WebhookPage,
)
from keyturn.service.problems import problem_responses

WebhookId = Annotated[str, Path(max_length=64, description="A webhook id, e.g. `wh_0123...`.")]
_AUTH = problem_responses(400, 401, 403, 429, 503)
_BY_ID = problem_responses(400, 401, 403, 404, 422, 429, 503)


def webhooks_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    hooks = context.manager.webhooks
    reader = callers.holding(webhooks.READ)
    writer = callers.holding(webhooks.WRITE)

    @router.post(
        "/webhooks",
        status_code=201,
        response_model=CreatedWebhookView,
        responses={**_AUTH, **problem_responses(422)},
        tags=["webhooks"],
        summary="Subscribe a URL to key events (the signing secret is shown once)",
    )
    async def create_webhook(
        body: CreateWebhook, actor: Annotated[Actor, Depends(writer)]
    ) -> dict[str, Any]:
        new = webhooks.NewWebhook(body.url, body.events, body.description)
        created = await hooks.create(actor, new)
        if context.deliverer is not None:
            context.deliverer.wake()
        return created.public()

    @router.get(
        "/webhooks",
        response_model=WebhookPage,
        responses=_AUTH,
        tags=["webhooks"],
        summary="List webhooks",
    )
    async def list_webhooks(actor: Annotated[Actor, Depends(reader)]) -> dict[str, Any]:
        return {"webhooks": [w.public() for w in await hooks.list(actor)]}

    @router.delete(
        "/webhooks/{webhook_id}",
        status_code=204,
        response_class=Response,
        responses=_BY_ID,
        tags=["webhooks"],
        summary="Delete a webhook and its deliveries log",
    )
    async def delete_webhook(
        webhook_id: WebhookId, actor: Annotated[Actor, Depends(writer)]
    ) -> Response:
        await hooks.delete(actor, webhook_id)
        return Response(status_code=204)

    @router.get(
        "/webhooks/{webhook_id}/deliveries",
        response_model=DeliveryPage,
        responses=_BY_ID,
        tags=["webhooks"],
        summary="A webhook's deliveries, newest first: pending, delivered and failed",
    )
    async def deliveries(
        webhook_id: WebhookId,
        actor: Annotated[Actor, Depends(reader)],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> dict[str, Any]:
        found = await hooks.deliveries(actor, webhook_id, limit=limit, before=before)
        return {
            "deliveries": [d.public() for d in found],
            "next": found[-1].id if len(found) == limit else None,
        }

    return router
