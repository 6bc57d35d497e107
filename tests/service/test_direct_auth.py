"""``/auth`` answered in the protocol (``keyturn.service.direct_auth``) answers exactly as
through ASGI: the same request sent whole (taken in the protocol) and in two writes (which
only uvicorn and the ASGI app answer) gets the same status, headers and body, on every
account of the original request; and what the protocol does not take reaches the app."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from keyturn.config import ScopeRule
from keyturn.service.direct_auth import request_scope
from tests.service.conftest import Live, start_live
from tests.service.rawhttp import Answer, connect, read_answer

# Values that differ between two answers by design: the clock and each request's own id.
_OWN = {"date", "x-request-id"}


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    rules = (
        ScopeRule("/orders", ("orders:read",)),
        ScopeRule("/orders", ("orders:write",), "POST"),
    )
    yield from start_live(tmp_path_factory.mktemp("direct"), rules=rules)


def exchange(live: Live, request: bytes, split: bool) -> Answer:
    """The answer to ``request`` (sent in two writes if ``split``)."""
    with connect(live.url) as sock:
        if split:
            sock.sendall(request[:7])
            time.sleep(0.05)  # two reads on the server's side: no whole head in either
            sock.sendall(request[7:])
        else:
            sock.sendall(request)
        answer = read_answer(sock)
    assert answer is not None
    return answer


def comparable(answer: Answer) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(name, "" if name in _OWN else value) for name, value in answer.headers.items()]
    return answer.status, headers, answer.body


ACCOUNTS = [
    ("GET", "/auth", {}),
    ("GET", "/auth", {"x-forwarded-uri": "/orders", "x-forwarded-method": "POST"}),
    ("GET", "/auth", {"x-original-uri": "/orders/1", "x-original-method": "GET"}),
    ("POST", "/auth", {"x-forwarded-uri": "/orders?_method=POST"}),
    ("GET", "/auth", {"x-forwarded-uri": "/orders", "x-http-method-override": "POST"}),
    ("GET", "/auth", {"x-forwarded-uri": "/elsewhere", "x-original-url": "/orders"}),
    ("DELETE", "/auth/orders?page=2", {}),
    ("GET", "/auth?api_key=KEY", {}),
    ("GET", "/auth", {"x-forwarded-uri": "/%6Frders", "x-request-id": "from-a-client"}),
]


@pytest.mark.parametrize("holder", ["reader", "writer", "nobody", "garbage"])
@pytest.mark.parametrize(("method", "target", "extra"), ACCOUNTS)
def test_the_same_answer_taken_in_the_protocol_or_through_asgi(
    gated: Live, holder: str, method: str, target: str, extra: dict[str, str]
) -> None:
    keys = {"reader": gated.make_key("orders:read")[0],
            "writer": gated.make_key("orders:read", "orders:write")[0],
            "garbage": "kt_not_a_key"}
    key = keys.get(holder)
    lines = [f"{method} {target.replace('KEY', key or '')} HTTP/1.1", "Host: keyturn.test"]
    lines += [f"{name}: {value}" for name, value in extra.items()]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    assert request_scope(request, 16 * 1024) is not None  # the protocol takes it whole
    exchange(gated, request, split=False)  # the key cached, as a proxy's traffic has it
    whole = exchange(gated, request, split=False)
    apart = exchange(gated, request, split=True)
    assert comparable(whole) == comparable(apart)
    assert whole.headers["x-request-id"] != apart.headers["x-request-id"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /auth HTTP/1.0\r\nHost: a\r\n\r\n",  # not HTTP/1.1
        b"HEAD /auth HTTP/1.1\r\nHost: a\r\n\r\n",  # an answer without a body
        b"GET /auth HTTP/1.1\r\n\r\n",  # no Host
        b"GET /auth HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        b"POST /auth HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
        b"GET /auth HTTP/1.1\r\nHost: a\r\n Folded: x\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-Owner: Zo\xc3\xab\r\n\r\n",
        b"GET /authority HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\n\r\nGET /auth HTTP/1.1\r\nHost: a\r\n\r\n",
    ],
)
def test_anything_else_is_left_to_the_server(request_bytes: bytes) -> None:
    assert request_scope(request_bytes, 16 * 1024) is None


def test_what_the_protocol_leaves_is_answered_as_before(gated: Live) -> None:
    """HTTP/1.0, HEAD and Connection: close reach the app (and the connection closes)."""
    key = gated.make_key("orders:read")[0]
    for first in (b"GET /auth HTTP/1.0", b"HEAD /auth HTTP/1.1"):
        request = first + b"\r\nHost: a\r\nAuthorization: Bearer " + key.encode() + b"\r\n\r\n"
        answer = exchange(gated, request, split=False)
        assert answer.status == 204 and answer.headers["x-keyturn-scopes"] == "orders:read"
    request = (b"GET /auth HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
               b"Authorization: Bearer " + key.encode() + b"\r\n\r\n")
    answer = exchange(gated, request, split=False)
    assert answer.status == 204 and answer.headers["connection"] == "close"


def test_keep_alive_serves_request_after_request(gated: Live) -> None:
    """A connection answered in the protocol stays open for the next request, which may be
    one the protocol leaves to the app (the API)."""
    key = gated.make_key("orders:read")[0]
    request = f"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    with connect(gated.url) as sock:
        for _ in range(3):
            sock.sendall(request)
            answer = read_answer(sock)
            assert answer is not None and answer.status == 204
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        answer = read_answer(sock)
        assert answer is not None and answer.status == 200
        sock.sendall(request)
        answer = read_answer(sock)
        assert answer is not None and answer.status == 204
