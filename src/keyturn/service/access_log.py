"""Structured access logs: one JSON object per request, keys masked, headers never.

``AccessLines`` writes the lines; ``AccessLog`` is the pure ASGI middleware (no framework)
that times a request and notes its status for them. Handlers deeper in the stack add facts
(the outcome code, the key id) to ``scope["keyturn.log"]``; they are merged into the line.
``/auth`` runs once per proxied request, so it is not wrapped: it knows its own status and
facts, and hands them to ``AccessLines.write`` itself (no closure, no wrapped ``send``).

Lines are written in batches, at most ``FLUSH_DELAY`` seconds after they happen, and at
shutdown: a write and a flush per request (what a ``logging`` handler does) cost several
times what answering ``/auth`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
from typing import Any, TextIO

from keyturn._asgi import ASGIApp, Message, Receive, Scope, Send
from keyturn._redact import Redactor, mask_text

LOG_KEY = "keyturn.log"
FLUSH_DELAY = 0.2
FLUSH_LINES = 512
# Parts of lines kept for reuse: a busy server logs the same client, path, status, key and
# outcome over and over, so each is escaped and masked once (see ``Parts``).
PARTS = 4096
LONGEST_PART = 1024

_encode = json.JSONEncoder(check_circular=False).encode
# The C escaper, ASCII-only: beside quotes, backslashes and control characters it escapes
# U+2028 and the like, which line-splitting readers (Python's splitlines) take for newlines.
_quote = encode_basestring_ascii


# "000" to "999", looked up: the thousandths of a duration and the milliseconds of a time
# (a number formatted with a width or a precision cost more than the rest of a line's).
_THOUSANDTHS = [f"{n:03d}" for n in range(1000)]


def _json(value: Any) -> str:
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    return _encode(value)


class _Clock:
    """RFC 3339 UTC timestamps with milliseconds, formatted once per millisecond (the date
    and time part once per second): a busy server writes several lines in each, and
    formatting one costs more than the rest of its line."""

    __slots__ = ("_milli", "_prefix", "_second", "_stamp")

    def __init__(self) -> None:
        self._milli = -1
        self._second = -1
        self._prefix = ""
        self._stamp = ""

    def now(self) -> str:
        milli = time.time_ns() // 1_000_000
        if milli != self._milli:
            self._milli = milli
            second, part = divmod(milli, 1000)
            if second != self._second:
                self._second = second
                stamp = datetime.fromtimestamp(second, UTC)
                self._prefix = stamp.strftime("%Y-%m-%dT%H:%M:%S")
            self._stamp = f"{self._prefix}.{_THOUSANDTHS[part]}Z"
        return self._stamp


class LineBuffer:
    """Lines for ``stream``, written together: when ``FLUSH_LINES`` have gathered, or
    ``FLUSH_DELAY`` seconds after the first one. Used from the event loop's thread only."""

    __slots__ = ("_lines", "_stream", "_timer")

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, line: str) -> None:
        self._lines.append(line)
        if len(self._lines) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            lines, self._lines = self._lines, []
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()


class Parts(dict[Any, str]):
    """What a part of a line becomes once escaped and masked, kept for the next line with
    the same values. Only parts that masking left unchanged are kept: the memo never holds
    a key (nor anything a key was masked out of). Bounded: ``PARTS`` of them, each at most
    ``LONGEST_PART`` characters long, all forgotten together when full."""

    def keep(self, values: Any, raw: str, part: str) -> str:
        if len(raw) <= LONGEST_PART:
            if len(self) >= PARTS:
                self.clear()
            self[values] = part
        return part


def remembering(mask: Callable[[str], str]) -> Callable[[str], str]:
    """``mask`` for values that repeat (a proxy's forwarded URIs): a value it left unchanged
    is passed through the next time without being searched again (``Parts``: never a value
    that held a key)."""
    parts = Parts()

    def masked(value: str) -> str:
        if value in parts:
            return value
        shown = mask(value)
        if shown == value:
            parts.keep(value, value, value)
        return shown

    return masked


Noted = tuple[tuple[str, Any], ...]


class AccessLines:
    """The access log of one server: each request's line, assembled and buffered."""

    __slots__ = ("_buffer", "_clock", "_heads", "_redact", "_tails")

    def __init__(self, redactor: Redactor, stream: TextIO) -> None:
        self._redact = redactor.uri
        self._buffer = LineBuffer(stream)
        self._clock = _Clock()
        self._heads = Parts()  # (client, method, path, status) -> their fields
        self._tails = Parts()  # what handlers noted (items) -> their fields

    def flush(self) -> None:
        self._buffer.flush()

    def write(self, scope: Scope, status: int, elapsed: float, fields: str = "") -> None:
        """One JSON object, assembled by hand: three times cheaper than encoding a dict,
        and every value that is not a number passes through the JSON string escaper.
        ``fields``: what handlers noted, as ``fields`` wrote them, after the request's own."""
        query = scope.get("query_string", b"")
        path = scope["path"] + ("?" + query.decode("latin-1") if query else "")
        client = scope.get("client")
        values = (client[0] if client else None, scope["method"], path, status)
        head = self._heads.get(values)
        if head is None:
            shown = self._redact(path)
            head = (
                f'"client":{_json(values[0])},"method":{_quote(values[1])},'
                f'"path":{_quote(shown)},"status":{int(status)}'
            )
            if shown == path:
                self._heads.keep(values, path, head)
        micros = round(elapsed * 1_000_000)  # the duration in milliseconds, to three places
        self._buffer.add(
            f'{{"time":"{self._clock.now()}",{head},'
            f'"duration_ms":{micros // 1000}.{_THOUSANDTHS[micros % 1000]}{fields}}}'
        )

    def fields(self, noted: Noted) -> str:
        """What handlers noted, as fields of a line: every string masked too (kept for the
        next line that notes the same, if masking changed none)."""
        try:
            found = self._tails.get(noted)
        except TypeError:  # a noted value that cannot be a dictionary key: never kept
            found = None
        if found is not None:
            return found
        tail = ""
        clean = True
        for name, value in noted:
            if isinstance(value, str):
                shown = mask_text(value)
                clean = clean and shown == value
                value = shown
            tail += f",{_quote(name)}:{_json(value)}"
        if clean:
            with contextlib.suppress(TypeError):  # unhashable: not kept
                self._tails.keep(noted, tail, tail)
        return tail


class AccessLog:
    """The middleware: a line per HTTP request to ``app``, with what it noted in
    ``scope[LOG_KEY]``; the lines are flushed before the lifespan's shutdown completes."""

    __slots__ = ("_app", "lines")

    def __init__(self, app: ASGIApp, lines: AccessLines) -> None:
        self._app = app
        self.lines = lines

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._app(scope, receive, self._flushing(send))
            return
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, observed)
        finally:
            extra: dict[str, Any] | None = scope.get(LOG_KEY)
            fields = self.lines.fields(tuple(extra.items())) if extra else ""
            self.lines.write(scope, status, time.perf_counter() - started, fields)

    def _flushing(self, send: Send) -> Send:
        """``send`` for the lifespan: the last lines are written before shutdown completes."""

        async def flush_then_send(message: Message) -> None:
            if message["type"].startswith("lifespan.shutdown"):
                self.lines.flush()
            await send(message)

        return flush_then_send
