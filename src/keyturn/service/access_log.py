"""Structured access logs: one JSON object per request, keys masked, headers never.

A pure ASGI middleware (no framework) so the forward-auth hot path pays one closure and one
log call. Handlers deeper in the stack add facts (the outcome code, the key id, the URI the
proxy forwarded) to ``scope["keyturn.log"]``; they are merged into the line.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from keyturn.service.asgi import ASGIApp, Message, Receive, Scope, Send
from keyturn.service.redact import Redactor

LOGGER_NAME = "keyturn.access"
LOG_KEY = "keyturn.log"


class AccessLog:
    __slots__ = ("_app", "_info", "_logger", "_redact")

    def __init__(self, app: ASGIApp, redactor: Redactor, logger: logging.Logger | None = None):
        self._app = app
        self._redact = redactor.uri
        self._logger = logger or logging.getLogger(LOGGER_NAME)
        self._info = self._logger.info

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._logger.isEnabledFor(logging.INFO):
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
            self._write(scope, status, time.perf_counter() - started)

    def _write(self, scope: Scope, status: int, elapsed: float) -> None:
        query = scope.get("query_string", b"")
        path = scope["path"] + ("?" + query.decode("latin-1") if query else "")
        client = scope.get("client")
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "client": client[0] if client else None,
            "method": scope["method"],
            "path": self._redact(path),
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
        }
        extra = scope.get(LOG_KEY)
        if extra:
            entry.update(extra)
        self._info(json.dumps(entry, ensure_ascii=False))
