"""``/auth`` answered in the protocol (``keyturn.service.direct_auth``) answers exactly as
through ASGI, on h11 and on httptools (``protocol``): the same request sent whole (taken in
the protocol) and in two writes (which only uvicorn and the ASGI app answer) gets the same
status, headers and body, on every account of the original request, and leaves the same
verification log entry and access log line; what the protocol does not take reaches the
app; and with a uvicorn release it is not tested with, every request goes through ASGI."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import h11
import httptools
import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st

from keyturn._bootstrap import ensure_root_key
from keyturn.app import create_app
from keyturn.compose import build_manager
from keyturn.config import ScopeRule, Settings
from keyturn.service.direct_auth import (
    UVICORN_TESTED,
    H11Seam,
    HttpToolsSeam,
    release,
    request_scope,
)
from tests.service.conftest import Live, ServerThread, start_live
from tests.service.rawhttp import Answer, closed_by_server, connect, read_answer, wait_until

# Values that differ between two answers by design: the clock and each request's own id.
_OWN = {"date", "x-request-id"}


PROXY = "127.0.0.1"  # the tests' own address, trusted to name the client


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Live]:
    rules = (
        ScopeRule("/orders", ("orders:read",)),
        ScopeRule("/orders", ("orders:write",), "POST"),
    )
    yield from start_live(tmp_path_factory.mktemp("direct"), http=protocol, rules=rules)


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
        b"GET /auth?a#b HTTP/1.1\r\nHost: a\r\n\r\n",  # a fragment: httptools drops it
        b"GET /auth HTTP/1.1\r\nHost: a\r\n\r\nGET /auth HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-A: 1\rX-B: 2\r\n\r\n",  # a lone CR
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-A: 1\nX-B: 2\r\n\r\n",  # a lone LF
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-A: 1\r\r\n\r\n",
        b"GET /auth HTTP/1.1\nHost: a\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-A: 1\x00\r\n\r\n",  # control characters
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-A: \x7f\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX A: 1\r\n\r\n",  # names that are not tokens
        b"GET /auth HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\n: 1\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-(A): 1\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-Api-Key\r\n\r\n",  # no colon
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-Api-Key: 12345\r\n",  # a head not yet whole
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX-Api-Key: 12345",
        b"GET /auth HTTP/1.1\r\nHost: a\r\n\r\nX-A: 1\r\n\r\n",  # an empty line before
    ],
)
def test_anything_else_is_left_to_the_server(request_bytes: bytes) -> None:
    # Each name of a header taken before is known (they are read once per spelling): a line
    # that is only such a name, or such a name beside a bad value, is still not taken.
    known = b"GET /auth HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B: 2\r\nX-Api-Key: k\r\n\r\n"
    assert request_scope(known, 16 * 1024) is not None
    assert request_scope(request_bytes, 16 * 1024) is None


def test_a_flood_of_new_header_names_leaves_the_memo_of_names_bounded() -> None:
    """Header names are read once per spelling, and a client chooses them: a head after
    head of names never seen before, or of very long ones, costs the server no memory that
    grows with them, and each head is still read."""
    from keyturn.service import direct_auth

    for n in range(5_000):
        head = f"GET /auth HTTP/1.1\r\nHost: a\r\nX-{n:x}: 1\r\nX-{'L' * 200}{n}: 2\r\n\r\n"
        scope = request_scope(head.encode(), 16 * 1024)
        assert scope is not None and scope["headers"][1] == (f"x-{n:x}".encode(), b"1")
    assert 0 < len(direct_auth._NAMES) <= 1024
    assert not any(len(name) > 64 for name in direct_auth._NAMES)


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


def test_an_answer_in_the_protocol_has_the_date_of_its_second(gated: Live) -> None:
    """The server's Date header, which uvicorn makes anew each second, on each answer."""
    key = gated.make_key("orders:read")[0]
    request = f"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    assert request_scope(request, 16 * 1024) is not None  # the protocol takes it whole
    exchange(gated, request, split=False)  # the key cached
    dates = []
    with connect(gated.url) as sock:
        for _ in range(2):
            sock.sendall(request)
            answer = read_answer(sock)
            assert answer is not None and answer.status == 204
            dates.append(answer.headers["date"])
            assert abs(parsedate_to_datetime(dates[-1]).timestamp() - time.time()) < 2.5
            time.sleep(2.1)
    assert dates[0] != dates[1]


def test_an_idle_connection_answered_in_the_protocol_is_closed_after_keep_alive(
    tmp_path: Path, protocol: str
) -> None:
    """Once idle for uvicorn's keep-alive timeout, as one answered through ASGI is, and not
    before."""
    chosen = Settings(database_url=f"sqlite:///{tmp_path / 'keyturn.db'}",
                      log_level="warning", http=protocol, cache_ttl=60.0)
    manager = build_manager(chosen)
    issued = ensure_root_key(manager)
    assert issued is not None
    server = ServerThread(create_app(chosen, manager), chosen)
    server.server.config.timeout_keep_alive = 2
    request = f"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {issued.key}\r\n\r\n"
    with server as url:
        for _ in range(2):  # the first answer caches the key; the second is the protocol's
            with connect(url) as sock:
                sock.sendall(request.encode())
                answer = read_answer(sock)
                assert answer is not None and answer.status == 204
                # The sweep closes it within a tick (a second) after the timeout.
                assert not closed_by_server(sock, within=1.0)
                assert closed_by_server(sock, within=6)
        # After an answer through ASGI (uvicorn's timer set), requests in the protocol keep
        # the connection open for as long as they come.
        with connect(url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
            answer = read_answer(sock)
            assert answer is not None and answer.status == 200
            for _ in range(4):
                time.sleep(0.5)
                sock.sendall(request.encode())
                answer = read_answer(sock)
                assert answer is not None and answer.status == 204
            assert closed_by_server(sock, within=5)


# -- what the protocol reads is what each parser reads ------------------------------------

_TARGETS = st.sampled_from(["/auth", "/auth/", "/auth?", "/auth/orders", "/auth?a=1&b"]).flatmap(
    lambda start: st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12)
    .map(lambda tail: start + tail)
)
_VALUES = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16)
_NAMES = st.sampled_from(["Host", "x-forwarded-uri", "X-Request-Id", "authorization", "A"])


def _httptools_reading(data: bytes) -> tuple[Any, ...]:
    """The scope's parts as uvicorn builds them from httptools' callbacks."""

    class Reader:
        def __init__(self) -> None:
            self.url = b""
            self.headers: list[tuple[bytes, bytes]] = []

        def on_url(self, url: bytes) -> None:
            self.url += url

        def on_header(self, name: bytes, value: bytes) -> None:
            self.headers.append((name.lower(), value.rstrip(b" \t")))

    reader = Reader()
    parser = httptools.HttpRequestParser(reader)
    parser.feed_data(data)
    url = httptools.parse_url(reader.url)
    return (parser.get_method().decode(), unquote(url.path.decode("ascii")), url.path,
            url.query or b"", reader.headers)


def _h11_reading(data: bytes) -> tuple[Any, ...]:
    """The scope's parts as uvicorn builds them from h11's event."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, h11.Request)
    raw_path, _, query = event.target.partition(b"?")
    return (event.method.decode(), unquote(raw_path.decode("ascii")), raw_path, query,
            [(name.lower(), value) for name, value in event.headers])


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["GET", "POST", "DELETE", "OPTIONS"]),
    _TARGETS,
    st.lists(st.tuples(_NAMES, st.sampled_from(["", " ", "\t"]), _VALUES), max_size=4),
)
def test_what_the_protocol_reads_is_what_h11_and_httptools_read(
    method: str, target: str, extra: list[tuple[str, str, str]]
) -> None:
    lines = [f"{method} {target} HTTP/1.1", "Host: keyturn.test"]
    lines += [f"{name}:{space}{value}" for name, space, value in extra]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
    scope = request_scope(data, 16 * 1024)
    if scope is None:
        return
    ours = (scope["method"], scope["path"], scope["raw_path"], scope["query_string"],
            scope["headers"])
    assert ours == _httptools_reading(data)
    assert ours == _h11_reading(data)


# -- logs, client addresses, pipelining, garbage ------------------------------------------


@pytest.fixture(scope="module")
def proxied(
    tmp_path_factory: pytest.TempPathFactory, protocol: str
) -> Iterator[tuple[Live, io.StringIO]]:
    """Behind a trusted proxy (this test), with its access log."""
    stream = io.StringIO()
    for live in start_live(tmp_path_factory.mktemp("proxied"), stream, http=protocol,
                           trusted_proxies=(PROXY,)):
        yield live, stream


def verification(live: Live, request_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def logged() -> bool:
        answer = live.root.get("/v1/verifications", params={"request_id": request_id})
        found[:] = answer.json()["verifications"]
        return bool(found)

    assert wait_until(logged, timeout=5)
    return found[0]


def access_line(stream: io.StringIO, path: str) -> dict[str, Any]:
    """The access log's line for the ``/auth`` request whose forwarded path is ``path``."""
    found: list[dict[str, Any]] = []

    def written() -> bool:
        text = stream.getvalue()
        found[:] = [line for line in map(json.loads, text.splitlines())
                    if line.get("forwarded", "").endswith(path)]
        return bool(found)

    assert wait_until(written, timeout=5)
    assert len(found) == 1, path
    return found[0]


@pytest.mark.parametrize("holder", ["reader", "garbage"])
def test_the_same_log_entries_and_client_either_way(
    proxied: tuple[Live, io.StringIO], holder: str
) -> None:
    """The verification log entry (the client the proxy named, the request id it sent) and
    the access log line are the same for a request taken in the protocol and one that
    went through ASGI."""
    proxied, stream = proxied
    key = proxied.make_key("orders:read")[0] if holder == "reader" else "kt_live_nope"
    exchange(proxied, b"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
             + key.encode() + b"\r\n\r\n", split=False)  # cached, as a proxy's traffic has it
    entries, lines = [], []
    for split in (False, True):
        rid = f"proxy-{holder}-{split}-{time.monotonic_ns()}"
        path = f"/orders/{rid}"
        request = (f"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {key}\r\n"
                   f"X-Forwarded-For: 203.0.113.7\r\nX-Request-Id: {rid}\r\n"
                   f"X-Forwarded-Uri: {path}\r\nUser-Agent: probe/1\r\n\r\n").encode()
        answer = exchange(proxied, request, split=split)
        assert answer.headers["x-request-id"] == rid
        entry = verification(proxied, rid)
        assert entry["client"] == "203.0.113.7" and entry["path"] == path
        own = {"id", "at", "request_id", "path"}
        entries.append({k: v for k, v in entry.items() if k not in own})
        line = access_line(stream, path)
        lines.append({k: v for k, v in line.items() if k not in {"time", "duration_ms",
                                                                  "forwarded"}})
    assert entries[0] == entries[1]
    assert lines[0] == lines[1]


def test_pipelined_requests_are_answered_in_order(gated: Live) -> None:
    """Requests sent together (pipelined) are answered one after the other, in order,
    whether each would be taken in the protocol or not; the connection then goes on."""
    key = gated.make_key("orders:read")[0]
    one = f"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    missing = b"GET /auth HTTP/1.1\r\nHost: a\r\n\r\n"
    health = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
    with connect(gated.url) as sock:
        sock.sendall(one + missing + health + one)
        assert statuses(sock, 4) == [204, 401, 200, 204]
        sock.sendall(one)
        assert statuses(sock, 1) == [204]


@pytest.mark.parametrize("part", ["head", "body"])
def test_the_rest_of_a_request_is_never_taken_for_a_request(gated: Live, part: str) -> None:
    """The rest of a request, sent apart from its beginning, is never taken for a request
    of its own, however much it looks like one: the parser is inside a request."""
    key = gated.make_key("orders:read")[0]
    smuggled = f"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {key}\r\n\r\n"
    assert exchange(gated, smuggled.encode(), split=False).status == 204  # the key cached
    if part == "head":  # the rest is a header's value, then the end of the head
        start = "GET /healthz HTTP/1.1\r\nX-Note: "
    else:
        start = (f"POST /v1/keys HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer "
                 f"{gated.root_key}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(smuggled)}\r\n\r\n")
    with connect(gated.url) as sock:
        sock.sendall(start.encode())
        time.sleep(0.05)  # two reads
        sock.sendall(smuggled.encode())
        answer = read_answer(sock)
        assert answer is not None
        if part == "head":
            assert answer.status == 200 and answer.json()["status"] == "ok"
        else:
            assert 400 <= answer.status < 500 and answer.json()["code"] != "valid"
        sock.settimeout(0.5)
        with contextlib.suppress(TimeoutError):
            assert sock.recv(65536) == b""  # nothing more: no second answer


def statuses(sock: socket.socket, count: int) -> list[int]:
    """The statuses of the next ``count`` answers on ``sock``, read as they stream in."""
    data, found = b"", []
    while len(found) < count:
        head, sep, rest = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length: *(\d+)", head)
        size = int(length[1]) if length else 0
        if sep and len(rest) >= size:
            found.append(int(head.split(b" ", 2)[1]))
            data = rest[size:]
            continue
        chunk = sock.recv(65536)
        assert chunk, f"closed after {found}"
        data += chunk
    return found


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /auth HTTP/1.1\r\nHost: a\r\nNo colon here\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nContent-Length: nope\r\n\r\n",
        b"GET /auth HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 70_000 + b"\r\n\r\n",
        b"GET /au\x00th HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 /auth garbage\r\n\r\n",
    ],
)
def test_broken_requests_get_a_4xx(gated: Live, request_bytes: bytes) -> None:
    """A broken request that looks like ``/auth`` is refused with a 4xx (or the
    connection closed), never a 500, and the server goes on answering."""
    with connect(gated.url) as sock:
        with contextlib.suppress(OSError):  # refused and closed before it was all sent
            sock.sendall(request_bytes)
        try:
            answer = read_answer(sock)
        except (TimeoutError, ValueError):
            answer = None
        assert answer is None or 400 <= answer.status < 500
    key = gated.make_key("orders:read")[0]
    request = f"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {key}\r\n\r\n".encode()
    assert exchange(gated, request, split=False).status == 204


# -- which uvicorn -------------------------------------------------------------------------


def test_each_protocol_answers_auth_inside_it_with_this_uvicorn(gated: Live, protocol: str) -> None:
    """This uvicorn is one the seams are tested with, and each protocol class has its own."""
    assert UVICORN_TESTED[0] <= release(uvicorn.__version__) <= UVICORN_TESTED[1]
    assert gated.protocol is not None
    assert issubclass(gated.protocol, H11Seam if protocol == "h11" else HttpToolsSeam)


def test_another_uvicorn_release_answers_auth_through_asgi(
    tmp_path: Path, protocol: str, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """uvicorn's internals may change in any release: with one the protocol is not tested
    with, ``/auth`` is answered through ASGI, as well, and the server says so."""
    monkeypatch.setattr(uvicorn, "__version__", "0.99.0")
    with caplog.at_level("INFO", logger="keyturn.service"):
        for live in start_live(tmp_path, http=protocol):
            assert live.protocol is not None
            assert not issubclass(live.protocol, (H11Seam, HttpToolsSeam))
            key, record = live.make_key("a")
            request = f"GET /auth HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {key}\r\n\r\n"
            with connect(live.url) as sock:
                for _ in range(2):  # keep-alive
                    sock.sendall(request.encode())
                    answer = read_answer(sock)
                    assert answer is not None and answer.status == 204
                    assert answer.headers["x-keyturn-key-id"] == record["id"]
    assert "/auth is answered through ASGI" in caplog.text
    assert "(this is 0.99.0)" in caplog.text


@pytest.mark.parametrize(
    ("version", "read"),
    [("0.55.0", (0, 55)), ("0.30.6", (0, 30)), ("1.0.0rc1", (1, 0)), ("0.56", (0, 56)),
     ("0.30.0.post1", (0, 30)), ("dev", (0, 0)), ("", (0, 0))],
)
def test_a_release_is_read_from_its_version(version: str, read: tuple[int, int]) -> None:
    assert release(version) == read
