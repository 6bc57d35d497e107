"""The access log's lines, without a server: always valid JSON, keys masked."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

from keyturn.credentials import DEFAULT_QUERY_PARAMS
from keyturn.keys import generate_key, mask
from keyturn.service.access_log import LOG_KEY, AccessLog
from keyturn.service.asgi import Message, Receive, Scope, Send
from keyturn.service.redact import Redactor


def logged(scope: Scope, status: int = 200) -> dict[str, Any]:
    """The line written for one request to an app that answers ``status``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        pass

    stream = io.StringIO()
    log = AccessLog(app, Redactor(DEFAULT_QUERY_PARAMS), stream)

    async def run() -> None:
        await log({"type": "http", "method": "GET", "query_string": b"", **scope}, receive, send)
        log._buffer.flush()

    asyncio.run(run())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry: dict[str, Any] = json.loads(lines[0])
    return entry


def test_awkward_text_stays_valid_json() -> None:
    nasty = '/a"b\\c\x00\x1f\u2028é/🔑'
    entry = logged({"path": nasty, "client": None, LOG_KEY: {"outcome": "x", "key_id": None,
                                                             "forwarded": nasty, "n": 3}})
    assert entry["path"] == nasty and entry["forwarded"] == nasty
    assert entry["client"] is None and entry["key_id"] is None and entry["n"] == 3


def test_fields() -> None:
    key = generate_key()
    entry = logged({"path": "/x", "query_string": f"api_key={key}".encode(),
                    "client": ("10.0.0.1", 5000), "method": "POST"}, status=418)
    assert entry["path"] == f"/x?api_key={mask(key)}"
    assert (entry["client"], entry["method"], entry["status"]) == ("10.0.0.1", "POST", 418)
    assert entry["duration_ms"] >= 0
    assert entry["time"].endswith("Z") and entry["time"][10] == "T"
