"""``/v1/roles``: named sets of scopes that keys hold by name.

A translator, as ``owners_api`` is: JSON goes to the role operations of the admin layer
(``keyturn.roles``) in the calling key's name; the rules (``roles:read``, ``roles:write``,
a role only within the caller's own scopes, no deletion of a role keys hold) are there, the
errors mapped by the one handler (``keyturn.service.problems``).
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to dependencies made inside the router factory.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from keyturn.actor import Actor
from keyturn.roles import ROLES_READ, ROLES_WRITE
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import PutRole, RoleList, RoleName, RoleView
from keyturn.service.problems import problem_responses

RolePath = Annotated[RoleName, Path(description="The role's name, like `billing-admin`.")]
_BY_NAME = problem_responses(400, 401, 403, 404, 422, 429, 503)


def roles_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    roles = context.manager.roles
    reader = callers.holding(ROLES_READ)
    writer = callers.holding(ROLES_WRITE)

    @router.put(
        "/roles/{name}",
        response_model=RoleView,
        responses=problem_responses(400, 401, 403, 422, 429, 503),
        tags=["roles"],
        summary="Define a role, or replace its scopes (every key holding it changes)",
    )
    async def put_role(
        name: RolePath, body: PutRole, actor: Annotated[Actor, Depends(writer)]
    ) -> dict[str, Any]:
        return (await roles.put(actor, name, body.scopes, body.description)).public()

    @router.get(
        "/roles",
        response_model=RoleList,
        responses=problem_responses(400, 401, 403, 429, 503),
        tags=["roles"],
        summary="List roles, by name",
    )
    async def list_roles(actor: Annotated[Actor, Depends(reader)]) -> dict[str, Any]:
        return {"roles": [role.public() for role in await roles.list_roles(actor)]}

    @router.get(
        "/roles/{name}",
        response_model=RoleView,
        responses=_BY_NAME,
        tags=["roles"],
        summary="Show one role and how many keys hold it",
    )
    async def get_role(name: RolePath, actor: Annotated[Actor, Depends(reader)]) -> dict[str, Any]:
        return (await roles.get(actor, name)).public()

    @router.delete(
        "/roles/{name}",
        response_model=RoleView,
        responses={**_BY_NAME, **problem_responses(409)},
        tags=["roles"],
        summary="Delete a role no working key holds (409 role_in_use otherwise)",
    )
    async def delete_role(
        name: RolePath, actor: Annotated[Actor, Depends(writer)]
    ) -> dict[str, Any]:
        return (await roles.delete(actor, name)).public()

    return router
