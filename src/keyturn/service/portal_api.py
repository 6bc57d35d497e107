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
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StringConstraints

from keyturn import portal
from keyturn.actor import Actor
from keyturn.admin import MAX_LIFETIME
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import Owner, Scopes
from keyturn.service.models import _whole_number as whole_number
from keyturn.service.problems import problem_responses

# The schema states exactly what the core accepts (schemathesis holds it to that): a link
# waits 10 seconds to 24 hours; a key lives at most a century, which every duration with
# these many digits stays under.
_TTL_TEXT = (
    r"^(([1-9][0-9]|[1-9][0-9]{2,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)s"
    r"|([1-9]|[1-9][0-9]|[1-9][0-9]{2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)m"
    r"|([1-9]|1[0-9]|2[0-4])h|1d)$"
)
_LIFETIME_TEXT = (
    r"^([1-9][0-9]{0,8}s|[1-9][0-9]{0,6}m|[1-9][0-9]{0,4}h|[1-9][0-9]{0,3}d|[1-9][0-9]{0,2}w)$"
)
Ttl = Annotated[
    Annotated[str, StringConstraints(pattern=_TTL_TEXT)]
    | Annotated[
        int, Field(ge=10, le=int(portal.MAX_TTL.total_seconds())), BeforeValidator(whole_number)
    ],
    Field(description="10 seconds to 24 hours: `15m`, `12h`, `1d`, or a number of seconds."),
]
Lifetime = Annotated[
    Annotated[str, StringConstraints(pattern=_LIFETIME_TEXT)]
    | Annotated[
        int, Field(ge=1, le=int(MAX_LIFETIME.total_seconds())), BeforeValidator(whole_number)
    ],
    Field(description="A duration like `90d`, `12h` or `2w`, or a number of seconds."),
]
_RETURN_URL = r"^https?://[A-Za-z0-9\-._~%!$&'()*+,;=:@]+([/?#][!-~]*)?$"


class PortalPolicy(BaseModel):
    """What the owner may do; left-out fields take the defaults."""

    model_config = ConfigDict(extra="forbid")
    scopes: Scopes = Field(
        default_factory=list, description="The scopes its keys may hold (a subset, each time)."
    )
    max_keys: Annotated[
        int, Field(ge=0, le=portal.MAX_MAX_KEYS), BeforeValidator(whole_number)
    ] = Field(
        default=portal.DEFAULT_MAX_KEYS, description="Working keys (active or disabled) at most."
    )
    max_lifetime: Lifetime | None = Field(
        default="90d",
        description="The longest life of a key; with one, every key expires (`null` and "
        "`require_expiry: false`: keys may live for ever).",
    )
    require_expiry: StrictBool = Field(default=True, description="Every key must expire.")


class OpenPortal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    owner: Owner = Field(description="The owner whose keys the visitor manages.")
    return_url: (
        Annotated[str, StringConstraints(max_length=portal.MAX_URL_LENGTH, pattern=_RETURN_URL)]
        | None
    ) = Field(default=None, description="Where the portal's back link goes (http or https).")
    ttl: Ttl = Field(default="15m", description="How long the link may wait to be opened.")
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
            "url": f"{base.rstrip('/')}{portal.PATH}/enter?token={token}",
            "owner": link.owner,
            "expires_at": link.expires_at,
            "policy": policy.public(),
        }

    return router
