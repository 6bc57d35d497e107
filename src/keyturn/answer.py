"""Render a decision as an HTTP answer: status, RFC 6750 challenge, RFC 9457 body.

Every framework integration and the forward-auth endpoint send exactly this, so a client
sees the same answer for the same mistake wherever keyturn runs.

A refusal by a rate limit or spent credits (429) carries no ``WWW-Authenticate`` challenge,
since the credentials are fine, but says when to come back: ``Retry-After`` (RFC 9110
§10.2.3) and ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset`` (seconds),
as in the IETF draft "RateLimit header fields for HTTP".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from keyturn._quota import Quota
from keyturn._redact import mask_text
from keyturn.errors import InvalidValue, KeyturnError, ScopeNotHeld, Unavailable
from keyturn.outcomes import CATALOGUE
from keyturn.verifier import Decision

PROBLEM_JSON = "application/problem+json"
DEFAULT_REALM = "api"
DEFAULT_TYPE_BASE = "urn:keyturn:outcome:"
PROBLEM_TYPE_BASE = "urn:keyturn:problem:"

# Where the served catalogue answers (``keyturn serve``: ``GET /outcomes/{code}``).
OUTCOMES_PATH = "/outcomes"


def problem_type(code: str, public_url: str | None = None, urn: str = DEFAULT_TYPE_BASE) -> str:
    """A problem's ``type`` (RFC 9457 §3.1.1): the catalogue page of ``code`` under
    ``public_url`` when the deployment knows its public address, so that whoever got the
    answer can open it; else ``urn`` (keyturn's URN for a key check's outcome, or
    ``PROBLEM_TYPE_BASE`` for any other problem) followed by the code."""
    if public_url and code in CATALOGUE:
        return f"{public_url.rstrip('/')}{OUTCOMES_PATH}/{code}"
    return urn + code


# RFC 6750 §3: error_description and scope use %x20-21 / %x23-5B / %x5D-7E only.
_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


def quoted_param(value: str) -> str:
    """A value safe inside an RFC 6750 quoted-string: no quotes, backslashes or non-ASCII."""
    return _UNSAFE.sub("'", value.replace("…", "...").replace('"', "'"))


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: dict[str, Any]

    def body_bytes(self) -> bytes:
        return json.dumps(self.body, separators=(",", ":")).encode()

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def challenge(decision: Decision, realm: str = DEFAULT_REALM) -> str:
    """The ``WWW-Authenticate`` value: always a realm, never a bare ``Bearer``."""
    parts = [f'realm="{quoted_param(realm)}"']
    outcome = decision.outcome
    if outcome.error:
        parts.append(f'error="{outcome.error}"')
    if decision.code != "missing_credentials" and decision.detail:
        parts.append(f'error_description="{quoted_param(mask_text(decision.detail))}"')
    if decision.required_scopes and outcome.code == "insufficient_scope":
        scopes = mask_text(" ".join(decision.required_scopes))
        parts.append(f'scope="{quoted_param(scopes)}"')
    return "Bearer " + ", ".join(parts)


def render(
    decision: Decision, realm: str = DEFAULT_REALM, public_url: str | None = None
) -> HttpAnswer:
    """The full answer. A valid decision renders as 200 with the key's public identity.
    ``public_url``: the deployment's public address, which the problem's ``type`` points
    into (``problem_type``)."""
    outcome = decision.outcome
    if decision.ok:
        key = decision.key.public() if decision.key else None
        return HttpAnswer(
            200, (("content-type", "application/json"),), {"code": "valid", "key": key}
        )
    # The scopes a request needs may be a client's words (``/auth``'s scopes header, which
    # a proxy passes on), a key pasted there among them: masked, as ``problem`` masks.
    body: dict[str, Any] = {
        "type": problem_type(outcome.code, public_url),
        "title": outcome.title,
        "status": outcome.status,
        "detail": mask_text(decision.detail),
        "code": outcome.code,
        "hint": decision.hint,
    }
    if decision.required_scopes and outcome.code == "insufficient_scope":
        body["required_scopes"] = [mask_text(scope) for scope in decision.required_scopes]
    if decision.quota is not None:
        headers = (("content-type", PROBLEM_JSON), *quota_headers(decision.quota))
        return HttpAnswer(outcome.status, (*headers, ("cache-control", "no-store")), body)
    headers = (
        ("content-type", PROBLEM_JSON),
        ("www-authenticate", challenge(decision, realm)),
        ("cache-control", "no-store"),
    )
    return HttpAnswer(outcome.status, headers, body)


def quota_headers(quota: Quota) -> tuple[tuple[str, str], ...]:
    """``Retry-After`` (when waiting helps) and the ``RateLimit-*`` fields."""
    wait = quota.retry_after
    fields = [
        ("ratelimit-limit", str(quota.limit)),
        ("ratelimit-remaining", str(max(0, quota.remaining))),
    ]
    if wait is not None:
        fields.append(("ratelimit-reset", str(wait)))
        fields.insert(0, ("retry-after", str(wait)))
    return tuple(fields)


def problem(
    code: str,
    detail: str,
    hint: str | None = None,
    *,
    status: int = 500,
    public_url: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An RFC 9457 body, the one builder of every problem keyturn sends.

    A catalogued code (``kind = "problem"``) takes its title and status from the
    catalogue, ``hint`` defaulting to the catalogue's fix; ``public_url`` points its
    ``type`` at the catalogue page. A code the catalogue does not describe (an HTTP status
    a framework raised, ``http_418``) gets a plain body with ``status``.

    What a client wrote comes back in a detail (a field's name, an id, a scope, a path) and
    may be a key pasted in the wrong place (``GET /v1/keys/kt_live_...``, a key in
    ``scopes``), so every key in ``detail`` and ``errors`` is masked here, for every face."""
    detail = mask_text(detail)
    if "errors" in extra:
        extra["errors"] = [_masked(error) for error in extra["errors"]]
    entry = CATALOGUE.get(code)
    if entry is None:
        plain: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + code,
            "title": "Request failed",
            "status": status,
            "detail": detail,
            "code": code,
        }
        plain.update(extra)
        return plain
    body: dict[str, Any] = {
        "type": problem_type(code, public_url, PROBLEM_TYPE_BASE),
        "title": entry.title,
        "status": entry.status,
        "detail": detail,
        "code": code,
        "hint": entry.fix if hint is None else hint,
    }
    body.update(extra)
    return body


def _masked(error: Any) -> Any:
    if isinstance(error, dict):
        return {k: mask_text(v) if isinstance(v, str) else v for k, v in error.items()}
    return error


def render_error(
    error: KeyturnError,
    realm: str = DEFAULT_REALM,
    where: str = "",
    public_url: str | None = None,
) -> HttpAnswer:
    """The HTTP answer for any ``KeyturnError``: every HTTP face maps errors through this.

    ``where`` prefixes the field an ``InvalidValue`` names (``"body."`` in the admin API).
    A scope refusal is the verifier's own ``insufficient_scope`` answer, challenge
    included; an outage says when to retry.
    """
    if isinstance(error, ScopeNotHeld):
        refusal = Decision(
            CATALOGUE["insufficient_scope"],
            error.message,
            CATALOGUE["insufficient_scope"].fix,
            required_scopes=error.missing,
        )
        return render(refusal, realm, public_url)
    extra: dict[str, Any] = {}
    detail = error.message
    headers: list[tuple[str, str]] = [("content-type", PROBLEM_JSON)]
    if isinstance(error, InvalidValue):
        field = f"{where}{error.field}" if error.field else (where.rstrip(".") or "request")
        extra["errors"] = [{"field": field, "message": error.message}]
        detail = f"{field}: {error.message}"
    if isinstance(error, Unavailable):
        headers.append(("retry-after", str(error.retry_after)))
    headers.append(("cache-control", "no-store"))
    body = problem(error.code, detail, public_url=public_url, **extra)
    return HttpAnswer(error.status, tuple(headers), body)
