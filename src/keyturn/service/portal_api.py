"""``POST /v1/portal/sessions``: a single-use link into the customer portal for one owner.

A translator, like the admin API: JSON into ``keyturn.portal`` (the owner's policy, checked
there), in the calling key's name (it needs ``portal:write`` and can put only scopes it
holds into the policy). The link is built on ``public_url`` when it is set, else on the
address the request came to; the portal itself is ``keyturn.ui.portal``, composed by
``keyturn.app``.
"""

# No `from __future__ import annotations`: FastAPI evaluates the route signatures.

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from keyturn import portal
from keyturn.actor import Actor
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import Owner, Scopes
from keyturn.service.problems import problem_responses

PORTAL_MOUNT = "/portal"
Duration = Annotated[
    str | Annotated[int, Field(ge=1)],
    Field(description="A duration like `15m`, `12h` or `90d`, or a number of seconds."),
]


class PortalPolicy(BaseModel):
    """What the owner may do; left-out fields take the defaults."""

    model_config = ConfigDict(extra="forbid")
    scopes: Scopes = Field(
        default_factory=list, description="The scopes its keys may hold (a subset, each time)."
    )
    max_keys: Annotated[int, Field(ge=0, le=portal.MAX_MAX_KEYS)] = Field(
        default=portal.DEFAULT_MAX_KEYS, description="Working keys (active or disabled) at most."
    )
    max_lifetime: Duration | None = Field(
        default="90d", description="The longest life of a key (`null`: no bound)."
    )
    require_expiry: bool = Field(default=True, description="Every key must expire.")


class OpenPortal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Owner = Field(description="The owner whose keys the visitor manages.")
    return_url: Annotated[str, StringConstraints(max_length=portal.MAX_URL_LENGTH)] | None = (
        Field(default=None, description="Where the portal's back link goes (http or https).")
    )
    ttl: Duration = Field(default="15m", description="How long the link may wait to be opened.")
    policy: PortalPolicy = Field(default_factory=PortalPolicy)


class PortalSession(BaseModel):
    url: str = Field(description="The link: it works once, until `expires_at`.")
    owner: str
    expires_at: datetime
    policy: dict[str, Any]


def portal_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    links = portal.AsyncPortalLinks(portal.PortalLinks(context.sync.store))
    opener = callers.holding(portal.PORTAL_WRITE)

    @router.post(
        "/portal/sessions",
        status_code=201,
        response_model=PortalSession,
        responses=problem_responses(400, 401, 403, 422, 429, 503),
        tags=["portal"],
        summary="A single-use link into the customer portal for one owner",
    )
    async def open_portal(
        body: OpenPortal, request: Request, actor: Annotated[Actor, Depends(opener)]
    ) -> dict[str, Any]:
        policy = portal.OwnerPolicy.of(body.policy.model_dump(exclude_unset=True))
        token, link = await links.open(
            actor, body.owner, policy, portal.checked_ttl(body.ttl), body.return_url
        )
        base = context.settings.public_url or str(request.base_url)
        return {
            "url": f"{base.rstrip('/')}{PORTAL_MOUNT}/enter?token={token}",
            "owner": link.owner,
            "expires_at": link.expires_at,
            "policy": policy.public(),
        }

    return router
