"""A method named as a list: ``X-HTTP-Method-Override: POST, GET`` is POST to Express's
method-override (it takes the first item of a comma-separated value, which is also how
Node joins a repeated header), and a proxy joining repeated ``X-Forwarded-Method``
headers makes one such value. ``/auth`` judged ``POST, GET`` as one method no rule names,
so a ``GET`` key reached a ``POST`` rule's handler. Every item of every account now
counts, on both of uvicorn's protocols and, on h11, both of keyturn serve's paths: the
request taken whole in the HTTP protocol, and in two writes through uvicorn and ASGI."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from keyturn.config import ScopeRule
from tests.service.conftest import Live, protocol, start_live
from tests.service.rawhttp import connect, read_answer

LISTS = [
    {"x-forwarded-method": "GET", "x-http-method-override": "POST, GET"},
    {"x-forwarded-method": "GET", "x-http-method-override": "POST,GET"},
    {"x-forwarded-method": "GET", "x-method-override": "GET,POST"},
    {"x-forwarded-method": "GET", "x-http-method": " post , get"},
    {"x-forwarded-method": "POST, GET"},
    {"x-original-method": "GET,POST"},
    {"x-forwarded-method": "GET", "x-forwarded-uri": "/orders?_method=POST,GET"},
]


__all__ = ["protocol"]  # each of uvicorn's HTTP protocols (h11, httptools) in turn


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    rules = (ScopeRule("/orders", ("orders:write",), "POST"),)
    yield from start_live(tmp_path_factory.mktemp("lists"), http=protocol, rules=rules)


def status(live: Live, headers: dict[str, str], split: bool) -> int:
    lines = ["GET /auth HTTP/1.1", "Host: keyturn", *(f"{k}: {v}" for k, v in headers.items())]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with connect(live.url) as sock:
        if split:
            sock.sendall(request[:7])
            time.sleep(0.05)  # two reads: no whole head in either, so uvicorn answers
            sock.sendall(request[7:])
        else:
            sock.sendall(request)
        answer = read_answer(sock)
    assert answer is not None
    return answer.status


@pytest.mark.parametrize("split", [False, True], ids=["in-protocol", "through-asgi"])
@pytest.mark.parametrize("headers", LISTS, ids=lambda h: ";".join(f"{k}={v}" for k, v in h.items()))
def test_every_method_of_a_list_counts(gated: Live, headers: dict[str, str], split: bool) -> None:
    reader, _ = gated.make_key("orders:read")
    writer, _ = gated.make_key("orders:write")
    for key in (reader, writer):  # cached, so a whole request is answered in the protocol
        assert status(gated, {"authorization": f"Bearer {key}"}, False) == 204
    base = {"x-forwarded-uri": "/orders", **headers}
    assert status(gated, {**base, "authorization": f"Bearer {reader}"}, split) == 403
    assert status(gated, {**base, "authorization": f"Bearer {writer}"}, split) == 204
