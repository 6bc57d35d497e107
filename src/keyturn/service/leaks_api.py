"""``/v1/leaks``: a leaked key is reported, and the deployment's ``leak_action`` applies.

Two doors to one operation of the admin layer (``KeyAdmin.leaked``: revoke, disable or
notify, an audit entry and the event ``key.leaked``, in one transaction):

- ``POST /v1/leaks/github`` is GitHub's secret scanning partner endpoint. A report counts
  only with a valid signature by one of GitHub's published keys (``GitHubKeys``); a
  missing or bad one is a 401 and changes nothing. The answer is GitHub's feedback array,
  one label per token, each named by its SHA-256 (the token is never echoed).
- ``POST /v1/leaks`` takes a report from anyone (``keyturn scan --report``, a person who
  found a key in a paste). It answers 202 whatever the key - known, unknown, malformed -
  and acts after the answer is sent, so neither the answer nor its timing says whether a
  key exists. Reports are throttled per client address.
"""

# No `from __future__ import annotations`: FastAPI evaluates the route signatures.

import hashlib
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse

from keyturn._github_scanning import GitHubKeys, parse_report
from keyturn._throttle import Throttle
from keyturn.actor import Actor
from keyturn.answer import PROBLEM_JSON, problem
from keyturn.service.body_limit import gated_route
from keyturn.service.callers import Callers
from keyturn.service.context import ServiceContext
from keyturn.service.models import GitHubFeedback, LeakReceived, ReportLeak
from keyturn.service.problems import (
    PROBLEM_REF,
    ApiProblem,
    problem_response,
    problem_responses,
)

GITHUB_ACTOR = "github-secret-scanning"
REPORT_ACTOR = "leak-report"
KEY_ID_HEADER = "github-public-key-identifier"
SIGNATURE_HEADER = "github-public-key-signature"
REPORTS_BURST = 20
REPORTS_REFILL = 3.0  # seconds per report forgiven: 20 a minute, sustained


def leaks_router(context: ServiceContext, callers: Callers) -> APIRouter:
    router = APIRouter(prefix="/v1", route_class=gated_route(callers, context.settings))
    admin = context.admin
    action = context.settings.leak_action
    github = GitHubKeys(context.settings.github_keys_url)
    throttle = Throttle(
        burst=REPORTS_BURST, refill=REPORTS_REFILL, proxies=context.sync.verifier.proxies
    )

    @router.post(
        "/leaks/github",
        response_model=list[GitHubFeedback],
        responses={
            **problem_responses(422, 503),
            **_documented(401, "No valid signature by GitHub (`signature_invalid`)"),
        },
        tags=["leaks"],
        summary="GitHub secret scanning partner endpoint (signed by GitHub)",
    )
    async def github_report(request: Request) -> list[dict[str, str]]:
        body = await request.body()
        identifier = request.headers.get(KEY_ID_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not identifier or not signature:
            raise _unsigned(f"the {KEY_ID_HEADER} and {SIGNATURE_HEADER} headers are required")
        if len(identifier) > 256 or not await github.verify(identifier, signature, body):
            raise _unsigned("the signature does not verify with GitHub's published key")
        findings = parse_report(body)
        if findings is None:
            raise ApiProblem(
                "invalid_request", 'expected a JSON array of {"token", "type", "url", "source"}'
            )
        actor = Actor.operator(GITHUB_ACTOR)
        feedback = []
        for finding in findings:
            record = await admin.leaked(
                actor, finding.token, action=action, url=finding.url, source=finding.source
            )
            feedback.append(
                {
                    "token_hash": hashlib.sha256(finding.token.encode()).hexdigest(),
                    "token_type": finding.type,
                    "label": "true_positive" if record is not None else "false_positive",
                }
            )
        return feedback

    @router.post(
        "/leaks",
        status_code=202,
        response_model=LeakReceived,
        responses={
            **problem_responses(422),
            **_documented(429, "Too many reports from this client (`reports_throttled`)"),
        },
        tags=["leaks"],
        summary="Report a leaked key (anyone may; the answer is the same for every key)",
    )
    async def report(
        body: ReportLeak, request: Request, background: BackgroundTasks
    ) -> Any:
        client = throttle.client(
            request.client.host if request.client else None, request.headers.raw
        )
        wait = throttle.wait(client)
        if wait:
            answer = problem(
                "reports_throttled",
                f"too many reports; retry in {wait} s",
                public_url=context.settings.public_url,
            )
            return problem_response(answer, {"retry-after": str(wait)})
        throttle.failed(client)
        background.add_task(_apply, body.key, body.url)
        return JSONResponse({"status": "received"}, status_code=202)

    async def _apply(key: str, url: str | None) -> None:
        await admin.leaked(Actor.operator(REPORT_ACTOR), key, action=action, url=url,
                           source="report")

    return router


def _documented(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}
    }


def _unsigned(detail: str) -> ApiProblem:
    return ApiProblem("signature_invalid", detail)
