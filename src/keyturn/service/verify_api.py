"""``POST /v1/keys/verify``: for services that check keys in their own code.

Always 200 when the caller may verify: the answer is data (``valid``, the outcome ``code``,
what happened and the fix), so a client library never has to tell "your key is bad" from
"the key you asked about is bad" by status code.
"""

# No `from __future__ import annotations`: FastAPI must evaluate the route signatures,
# which refer to dependencies made inside the router factory.

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from keyturn import admin
from keyturn._redact import mask_text
from keyturn._verifications import Seen
from keyturn.actor import Actor
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import VerifyRequest, VerifyResult
from keyturn.service.problems import REQUEST_ID, problem_responses


def verify_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    manager = context.manager
    count = context.metrics.count["verify_api"]
    observe = context.metrics.observe["verify_api"]
    verifier = callers.holding(admin.VERIFY)

    @router.post(
        "/keys/verify",
        response_model=VerifyResult,
        responses=problem_responses(400, 401, 403, 422, 429, 503),
        tags=["verify"],
        summary="Check a key your service received",
    )
    async def verify_key(
        body: VerifyRequest,
        caller: Annotated[Actor, Depends(verifier)],
        request: Request,
        response: Response,
    ) -> dict[str, Any]:
        started = time.perf_counter()
        rid = request.scope[REQUEST_ID]  # the caller's authentication chose it
        response.headers["x-request-id"] = rid
        # Recorded by the core with the decision; the client is the one the caller names
        # (``ip``), not the service calling.
        agent = request.headers.get("user-agent", "")
        decision = await manager.verify_key(
            body.key,
            scopes=body.scopes,
            ip=body.ip,
            permissions=body.permissions,
            seen=Seen("POST", "/v1/keys/verify", rid, agent),
        )
        count[decision.code]()
        observe(time.perf_counter() - started)
        key = decision.key
        return {
            "valid": decision.ok,
            "code": decision.code,
            "detail": mask_text(decision.detail),  # it names the scopes asked for
            "hint": "" if decision.ok else decision.hint,
            "key": None
            if key is None
            else {
                "id": key.id,
                "name": key.name,
                "owner": key.owner,
                "scopes": sorted(key.granted),
                "roles": list(key.roles),
                "metadata": key.metadata,
                "expires_at": key.expires_at,
                "rotated_until": key.grace_until
                if decision.ok and key.replaced_by is not None
                else None,
            },
            "missing": mask_text(decision.unmet) if decision.unmet else None,
            # The hint says to wait for Retry-After; a 200 carries it as data instead.
            "retry_after": None if decision.quota is None else decision.quota.retry_after,
        }

    return router
