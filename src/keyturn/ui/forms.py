"""Read an HTML form post: URL-encoded only, size-capped, strict UTF-8.

The dashboard's forms are all ``application/x-www-form-urlencoded`` (no uploads), so the
standard library parses them and no multipart parser is needed. Anything else — another
content type, a body over the cap, bytes that are not UTF-8, thousands of fields — is a
``FormError`` carrying the 4xx status to answer with, never a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request

MAX_BODY = 64 * 1024
MAX_FIELDS = 100
URLENCODED = "application/x-www-form-urlencoded"


class FormError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Form:
    fields: Mapping[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        """The first value of a field, stripped of surrounding whitespace."""
        values = self.fields.get(name)
        return values[0].strip() if values else default

    def raw(self, name: str) -> str:
        """The first value exactly as sent (for pasted text whose spacing matters)."""
        values = self.fields.get(name)
        return values[0] if values else ""

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self.fields.get(name, [])]

    def checked(self, name: str) -> bool:
        return name in self.fields


async def read_form(request: Request, limit: int = MAX_BODY, timeout: float = 10.0) -> Form:
    """The form, read only up to ``limit`` bytes and within ``timeout`` seconds (a client
    that drips its body would otherwise hold its connection for good)."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise FormError(413, f"the form is larger than {limit // 1024} KiB")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise FormError(413, f"the form is larger than {limit // 1024} KiB")
    except TimeoutError:
        raise FormError(408, f"the form did not arrive within {timeout:g} seconds") from None
    if content_type != URLENCODED:
        if not body and not content_type:
            return Form({})  # a bare POST: an empty form (which then lacks its CSRF token)
        raise FormError(415, f"forms are sent as {URLENCODED}")
    try:
        text = body.decode("ascii")
        fields = parse_qs(
            text,
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            encoding="utf-8",
            errors="strict",
        )
    except UnicodeDecodeError:
        raise FormError(400, "the form is not valid UTF-8") from None
    except ValueError:
        raise FormError(400, f"the form has more than {MAX_FIELDS} fields") from None
    for values in fields.values():
        for value in values:
            if "\x00" in value:
                raise FormError(400, "the form holds a NUL character")
    return Form(fields)
