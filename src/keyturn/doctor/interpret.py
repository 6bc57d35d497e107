"""Read an API's answer: challenges, RFC 9457 problems, keyturn codes, provider errors.

Sans-I/O: an ``Answer`` is plain data (status, headers, body), built from whatever client
made the request, so the same reading serves the doctor's own probe, a ``requests`` or
``httpx`` response a user already has, and the tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from keyturn._providers import Provider
from keyturn.doctor.challenge import Challenge, parse_challenges
from keyturn.outcomes import CATALOGUE

KEYTURN_TYPE_BASE = "urn:keyturn:outcome:"
# A keyturn deployment with a public address types its problems with the catalogue page
# of the code (keyturn.answer.problem_type): https://auth.example.com/outcomes/key_expired.
_PAGE = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?/outcomes/([a-z_]+)")

# Where APIs that are not catalogued tend to put their message and error code.
GENERIC_MESSAGE_PATHS = (
    "error.message", "error_description", "message", "detail.message", "detail", "title",
    "errors.0.message", "errors.0.detail", "error", "errors.0", "errors", "msg",
)
GENERIC_CODE_PATHS = ("error.code", "error.type", "code", "error", "errors.0.code")


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP response as plain data; ``headers`` keeps repeats and order."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    url: str = ""

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def header_all(self, name: str) -> list[str]:
        lowered = name.lower()
        return [v for k, v in self.headers if k.lower() == lowered]

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def text(self, limit: int = 300) -> str:
        text = self.body[: limit * 4].decode("utf-8", errors="replace")
        text = " ".join(text.split())
        return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class Interpretation:
    """What the answer says about the key, from every place an API may say it."""

    status: int
    challenges: list[Challenge] = field(default_factory=list)
    bearer_error: str | None = None
    error_description: str | None = None
    scope: str | None = None
    problem: dict[str, Any] | None = None
    keyturn_code: str | None = None
    keyturn_hint: str | None = None
    keyturn_page: str | None = None  # the problem type, when it is the code's page
    required_scopes: list[str] = field(default_factory=list)
    message: str | None = None
    code: str | None = None
    declared_failure: bool = False  # 2xx with "ok": false / "success": false
    retry_after: str | None = None
    rate_limit_exhausted: bool = False

    @property
    def is_keyturn(self) -> bool:
        return self.keyturn_code is not None

    def reason(self) -> str:
        """The server's own words, most specific first, for a finding's detail."""
        parts = []
        if self.keyturn_code:
            parts.append(f"keyturn outcome {self.keyturn_code}")
        if self.bearer_error:
            parts.append(f'WWW-Authenticate error="{self.bearer_error}"')
        if self.error_description:
            parts.append(f"error_description: {self.error_description}")
        if self.code and self.code not in (self.bearer_error, self.keyturn_code):
            parts.append(f"code {self.code}")
        if self.message and self.message != self.error_description:
            parts.append(f"message: {self.message}")
        return "; ".join(parts)


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path ('errors.0.message') in parsed JSON, or ``None``."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


def _first_text(data: Any, paths: tuple[str, ...]) -> str | None:
    for path in paths:
        value = dig(data, path)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str | int | float) and str(value).strip():
            text = " ".join(str(value).split())
            return text if len(text) <= 300 else text[:299] + "…"
    return None


def _keyturn(
    body: Any, content_type: str
) -> tuple[str, str | None, list[str], str | None] | None:
    """(code, hint, required scopes, the code's page) of a keyturn problem body."""
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    if not isinstance(code, str) or code not in CATALOGUE:
        return None
    kind = body.get("type")
    page = _PAGE.fullmatch(kind) if isinstance(kind, str) and len(kind) <= 2048 else None
    page_url = kind if page is not None and page.group(1) == code else None
    from_keyturn = isinstance(kind, str) and kind.startswith(KEYTURN_TYPE_BASE)
    if not (from_keyturn or page_url) and "problem+json" not in content_type:
        return None
    hint = body.get("hint") if isinstance(body.get("hint"), str) else None
    scopes = body.get("required_scopes")
    scope_list = [s for s in scopes if isinstance(s, str)] if isinstance(scopes, list) else []
    return code, hint, scope_list, page_url


def interpret(answer: Answer, provider: Provider | None = None) -> Interpretation:
    reading = Interpretation(answer.status)
    for value in answer.header_all("www-authenticate"):
        reading.challenges.extend(parse_challenges(value))
    bearer = next((c for c in reading.challenges if c.is_bearer), None)
    if bearer is not None:
        reading.bearer_error = bearer.param("error")
        reading.error_description = bearer.param("error_description")
        reading.scope = bearer.param("scope")
    content_type = (answer.header("content-type") or "").lower()
    body = answer.json()
    if "problem+json" in content_type and isinstance(body, dict):
        reading.problem = {k: body[k] for k in ("type", "title", "status", "detail")
                           if k in body}
    found = _keyturn(body, content_type)
    if found is not None:
        (reading.keyturn_code, reading.keyturn_hint, reading.required_scopes,
         reading.keyturn_page) = found
    if provider is not None and provider.ok_field and isinstance(body, dict):
        reading.declared_failure = body.get(provider.ok_field) is False
    elif isinstance(body, dict):
        reading.declared_failure = body.get("ok") is False or body.get("success") is False
    message_paths = (provider.error_message if provider else ()) + GENERIC_MESSAGE_PATHS
    code_paths = (provider.error_code if provider else ()) + GENERIC_CODE_PATHS
    if body is not None:
        reading.message = _first_text(body, message_paths)
        reading.code = _first_text(body, code_paths)
    elif answer.body and answer.status >= 400:
        reading.message = answer.text()
    reading.retry_after = answer.header("retry-after")
    remaining = answer.header("x-ratelimit-remaining")
    reading.rate_limit_exhausted = remaining is not None and remaining.strip() == "0"
    return reading
