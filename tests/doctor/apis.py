"""Loopback HTTP servers that answer like real APIs do, for the doctor to probe.

Each server is a real ``http.server`` bound to 127.0.0.1 on port 0, in a thread, and records
every request it gets, so a test can assert what reached which origin (and that the key did
not reach any other). The answers follow the providers' documented behaviour: OpenAI's error
body, Anthropic's x-api-key and anthropic-version, Slack's 200 with "ok": false, RFC 6750
challenges, a keyturn service rendering its own outcomes.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from keyturn import KeyManager
from keyturn.answer import render


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class Reply:
    status: int
    body: object = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


Respond = Callable[[Seen], Reply]


class Api:
    """A loopback server; ``respond`` decides each answer from the request seen."""

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.seen: list[Seen] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                request = Seen(self.command, self.path, list(self.headers.items()))
                api.seen.append(request)
                reply = api.respond(request)
                body = reply.encoded()
                self.send_response(reply.status)
                names = {n.lower() for n, _ in reply.headers}
                if "content-type" not in names and reply.body is not None:
                    self.send_header("Content-Type", "application/json")
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def received(self, text: str) -> bool:
        """Whether ``text`` appeared in any request line or header this server got."""
        return any(text in s.path or any(text in v for _, v in s.headers) for s in self.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- how real APIs answer -----------------------------------------------------------------


def openai_like(valid_key: str) -> Respond:
    """Bearer only; OpenAI's error body; no WWW-Authenticate (as OpenAI does)."""

    def respond(req: Seen) -> Reply:
        auth = req.header("authorization")
        if auth is None:
            return Reply(401, {"error": {
                "message": "You didn't provide an API key. You need to provide your API key "
                           "in an Authorization header using Bearer auth.",
                "type": "invalid_request_error", "param": None, "code": None}})
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or token != valid_key:
            shown = token[:8] + "*" * 10 + token[-4:] if len(token) > 12 else "***"
            return Reply(401, {"error": {
                "message": f"Incorrect API key provided: {shown}.",
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        return Reply(200, {"object": "list", "data": []})

    return respond


def rfc6750_bearer(valid_key: str, *, case_sensitive: bool = False) -> Respond:
    """Bearer only, with RFC 6750 challenges; optionally matching 'Bearer ' byte for byte,
    as some gateways do."""

    def respond(req: Seen) -> Reply:
        auth = req.header("authorization") or ""
        prefix_ok = auth.startswith("Bearer ") if case_sensitive else (
            auth[:7].lower() == "bearer ")
        if not prefix_ok:
            return Reply(401, {"error": "missing bearer token"},
                         [("WWW-Authenticate", 'Bearer realm="api"')])
        if auth[7:] != valid_key:
            return Reply(401, {"error": "invalid_token"}, [(
                "WWW-Authenticate",
                'Bearer realm="api", error="invalid_token", error_description="unknown key"')])
        return Reply(200, {"ok": True})

    return respond


ANTHROPIC_VERSION = "2023-06-01"


def anthropic_like(valid_key: str) -> Respond:
    """x-api-key only, and anthropic-version required, with Anthropic's error bodies."""

    def error(status: int, kind: str, message: str) -> Reply:
        return Reply(status, {"type": "error", "error": {"type": kind, "message": message}})

    def respond(req: Seen) -> Reply:
        key = req.header("x-api-key")
        if key is None:
            return error(401, "authentication_error", "x-api-key header is required")
        if req.header("anthropic-version") is None:
            return error(400, "invalid_request_error", "anthropic-version: header is required")
        if key != valid_key:
            return error(401, "authentication_error", "invalid x-api-key")
        return Reply(200, {"data": [], "has_more": False})

    return respond


def scope_403(valid_key: str, scope: str) -> Respond:
    """A valid key without the scope the endpoint needs: 403, RFC 6750 insufficient_scope."""

    def respond(req: Seen) -> Reply:
        if req.header("authorization") != f"Bearer {valid_key}":
            return Reply(401, None, [("WWW-Authenticate", 'Bearer realm="api"')])
        return Reply(403, {"message": "Resource not accessible by this token"}, [(
            "WWW-Authenticate",
            f'Bearer realm="api", error="insufficient_scope", scope="{scope}"')])

    return respond


def slack_like(valid_key: str, *, error: str = "invalid_auth") -> Respond:
    """HTTP 200 always; "ok": false with Slack's error codes."""

    def respond(req: Seen) -> Reply:
        if req.header("authorization") == f"Bearer {valid_key}" and error != "missing_scope":
            return Reply(200, {"ok": True, "url": "https://example.slack.com/"})
        if req.header("authorization") is None:
            return Reply(200, {"ok": False, "error": "not_authed"})
        if error == "missing_scope":
            return Reply(200, {"ok": False, "error": "missing_scope", "needed": "chat:write"})
        return Reply(200, {"ok": False, "error": error})

    return respond


def redirect_to(target: str, status: int = 301) -> Respond:
    def respond(req: Seen) -> Reply:
        return Reply(status, None, [("Location", target)])

    return respond


def same_origin_redirect(valid_key: str) -> Respond:
    """/old moves to /new on the same origin; /new checks the key."""
    inner = rfc6750_bearer(valid_key)

    def respond(req: Seen) -> Reply:
        if req.path.startswith("/old"):
            return Reply(308, None, [("Location", "/new")])
        return inner(req)

    return respond


def keyturn_service(manager: KeyManager, scopes: dict[str, tuple[str, ...]]) -> Respond:
    """A keyturn-protected API: the manager decides, ``answer.render`` writes the answer."""

    def respond(req: Seen) -> Reply:
        path, _, query = req.path.partition("?")
        decision = manager.verify(req.headers, query, scopes=scopes.get(path, ()))
        answer = render(decision)
        return Reply(answer.status, answer.body_bytes(), list(answer.headers))

    return respond


# -- servers that misbehave below HTTP: raw bytes, trickles ----------------------------------


@dataclass
class RawSeen:
    head: bytes

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None


RawRespond = Callable[[RawSeen, Callable[[bytes], None]], None]


class RawApi:
    """A loopback TCP server that reads a request head and lets ``respond`` write any bytes
    (with any pauses) back: answers no well-behaved HTTP server would give."""

    def __init__(self, respond: RawRespond, host: str = "127.0.0.1", port: int = 0) -> None:
        import socketserver

        self.seen: list[RawSeen] = []
        self.respond = respond
        api = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(65536)
                    if not chunk:
                        return
                    head += chunk
                seen = RawSeen(head.partition(b"\r\n\r\n")[0])
                api.seen.append(seen)
                with contextlib.suppress(OSError):  # the client hung up, as a probe may
                    api.respond(seen, self.wfile.write)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server((host, port), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def received(self, text: str) -> bool:
        return any(text.encode() in s.head for s in self.seen)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def raw_answer(status: int, headers: list[tuple[str, bytes | str]], body: bytes) -> bytes:
    """An HTTP/1.1 answer as bytes, header values written exactly as given."""
    lines = [f"HTTP/1.1 {status} X".encode()]
    for name, value in [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]:
        lines.append(name.encode() + b": " + (value if isinstance(value, bytes) else
                                               value.encode("utf-8")))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
