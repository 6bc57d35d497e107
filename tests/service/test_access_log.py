"""The access log's lines, without a server: always valid JSON, keys masked."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import httpx

from keyturn._asgi import Message, Receive, Scope, Send
from keyturn._redact import Redactor
from keyturn.credentials import DEFAULT_QUERY_PARAMS
from keyturn.keys import generate_key, mask
from keyturn.service.access_log import LOG_KEY, AccessLines, AccessLog
from tests.service.conftest import KEY_RE, ServeProcess


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
    log = AccessLog(app, AccessLines(Redactor(DEFAULT_QUERY_PARAMS), stream))

    async def run() -> None:
        await log({"type": "http", "method": "GET", "query_string": b"", **scope}, receive, send)
        log.lines.flush()

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


def test_the_duration_in_milliseconds_to_three_places() -> None:
    stream = io.StringIO()
    lines = AccessLines(Redactor(DEFAULT_QUERY_PARAMS), stream)
    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "client": None}
    seconds = (0.0, 0.0000004, 0.0000006, 0.000001, 0.000999, 0.0012345, 0.0203, 1.5, 62.0)

    async def run() -> None:  # lines are buffered on the event loop
        for elapsed in seconds:
            lines.write(scope, 200, elapsed)
        lines.flush()

    asyncio.run(run())
    written = [re.search(r'"duration_ms":([^,}]*)', line)[1]  # type: ignore[index]
               for line in stream.getvalue().splitlines()]
    assert written == ["0.000", "0.000", "0.001", "0.001", "0.999", "1.234", "20.300",
                       "1500.000", "62000.000"]


# -- a real `keyturn serve`: what reaches stdout and stderr -----------------------------------


def test_no_form_of_a_key_reaches_the_logs_of_a_real_server(tmp_path: Path) -> None:
    """Keys sent every way a request can carry them, to every face; then the process's
    whole output is searched for the key in each form a reader could decode."""
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    with ServeProcess("--db", db, cwd=tmp_path) as server:
        root = KEY_RE.findall(server.stderr)[0]
        victim = generate_key()
        secret = victim.rpartition("_")[2]
        encoded = quote(victim, safe="")
        some = "".join(f"%{ord(c):02X}" if i % 3 == 0 else c for i, c in enumerate(victim))
        basic = base64.b64encode(f"user:{victim}".encode()).decode()
        json_escaped = victim.replace("_", "\\u005f")
        uris = [
            f"/orders?q={encoded}",
            f"/orders?q={quote(some, safe='')}",
            f"/orders/{some}?page=1",
            f"/cb?next=%2Flogin%3Fapi_key%3D{encoded}",
            f"/cb?token={quote_plus('Bearer ' + victim)}",
            f"/x?data={quote(json_escaped, safe='')}",
        ]
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for uri in uris:
                for header in ("x-forwarded-uri", "x-original-uri"):
                    client.get("/auth", headers={header: uri, "authorization": f"Bearer {root}"})
                client.get(uri)  # the API: 404, still logged
                client.get("/auth" + uri)  # Envoy's way
                client.get("/ui/login", params={"next": uri})  # the dashboard
            client.get("/auth", headers={"authorization": f"Basic {basic}",
                                         "referer": f"https://app/?k={encoded}",
                                         "cookie": f"s={victim}"})
            client.get(f"/v1/keys?search={encoded}", headers={"authorization": f"Bearer {root}"})
            client.get(f"/v1/keys/{encoded}", headers={"authorization": f"Bearer {root}"})
        assert server.stop() == 0
        output = server.stdout + server.stderr
    assert len(server.stdout.splitlines()) >= 6 * 5
    for text in (output, unquote(output), unquote(unquote(output)), unquote_plus(output),
                 output.replace("\\u005f", "_")):
        assert secret not in text
    assert basic not in output
