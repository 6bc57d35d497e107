"""Connections against a real ``keyturn serve`` over real sockets: a deadline for request
heads, a ceiling on open connections, and ``/auth`` answering through a half-open flood."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import KEY_RE, ServeProcess
from tests.service.rawhttp import closed_by_server, connect, head, read_answer, wait_until


@contextlib.contextmanager
def serving(tmp: Path, soft_limit: int = 1024, **env: str) -> Iterator[tuple[ServeProcess, str]]:
    db = f"sqlite:///{tmp / 'keyturn.db'}"
    env = {"KEYTURN_ACCESS_LOG": "false", **env}
    with ServeProcess("--db", db, env=env, cwd=tmp, open_files=soft_limit) as process:
        keys = KEY_RE.findall(process.stderr)
        assert len(keys) == 1, process.stderr
        yield process, keys[0]
        assert process.stop() == 0


def auth(url: str, key: str) -> int:
    answer = httpx.get(f"{url}/auth", headers={"authorization": f"Bearer {key}"}, timeout=10)
    return answer.status_code


def half_open(url: str, count: int) -> list[socket.socket]:
    """``count`` connections that start a request and never finish its headers."""
    socks = []
    for _ in range(count):
        sock = connect(url)
        sock.sendall(b"GET /auth HTTP/1.1\r\nhost: x\r\nx-slow: ")
        socks.append(sock)
    return socks


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_thousand_half_open_connections_do_not_take_auth_down(tmp_path: Path) -> None:
    """The issue's attack at the usual 1,024-descriptor limit, with room to spare."""
    with serving(tmp_path, soft_limit=1024) as (server, root):
        assert auth(server.url, root) == 204
        socks = half_open(server.url, 1100)
        try:
            for _ in range(5):
                assert auth(server.url, root) == 204
            pid = server.process.pid
            assert open_descriptors(pid) <= 1000 + 128
        finally:
            for sock in socks:
                sock.close()
        assert auth(server.url, root) == 204
        assert "refused" not in server.stderr  # nothing was busy: the half-open made room


def test_the_ceiling_holds_under_a_small_descriptor_limit(tmp_path: Path) -> None:
    env = {"KEYTURN_MAX_CONNECTIONS": "100", "KEYTURN_READ_TIMEOUT": "60"}
    with serving(tmp_path, soft_limit=256, **env) as (server, root):
        limits = Path(f"/proc/{server.process.pid}/limits").read_text()
        assert re.search(r"Max open files\s+256\s", limits), limits
        socks = half_open(server.url, 300)
        try:
            assert auth(server.url, root) == 204
            assert open_descriptors(server.process.pid) <= 100 + 128
        finally:
            for sock in socks:
                sock.close()


def test_late_request_heads_get_a_408_and_are_closed(tmp_path: Path) -> None:
    with serving(tmp_path, KEYTURN_READ_TIMEOUT="1") as (server, root):
        silent = connect(server.url)
        partial = connect(server.url)
        partial.sendall(b"GET /auth HTTP/1.1\r\nhost: x\r\n")
        dripping = connect(server.url)
        dripping.sendall(b"GET /auth HTTP/1.1\r\nhost: x\r\nx-drip: ")
        started = time.monotonic()
        with contextlib.suppress(OSError):  # until the server closes it
            while time.monotonic() - started < 4:
                dripping.sendall(b"x")  # keeps sending, but the head is still late
                time.sleep(0.05)
        for sock in (silent, partial):
            answer = read_answer(sock)
            assert answer is not None and answer.status == 408
            assert answer.json()["code"] == "request_timeout"
            assert closed_by_server(sock, within=5)
        assert closed_by_server(dripping, within=5)
        assert auth(server.url, root) == 204


def test_a_keep_alive_connection_has_the_deadline_for_each_request(tmp_path: Path) -> None:
    with serving(tmp_path, KEYTURN_READ_TIMEOUT="1") as (server, _), connect(server.url) as sock:
        for _ in range(3):
            sock.sendall(head("GET", "/healthz"))
            answer = read_answer(sock)
            assert answer is not None and answer.status == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # and nothing more
        late = read_answer(sock)
        assert late is not None and late.status == 408


def test_beyond_the_ceiling_with_every_connection_busy_a_503(tmp_path: Path) -> None:
    env = {"KEYTURN_MAX_CONNECTIONS": "4", "KEYTURN_READ_TIMEOUT": "2"}
    with serving(tmp_path, **env) as (server, root):
        busy = []
        for _ in range(4):  # each sends a request head and then its body, slowly
            sock = connect(server.url)
            sock.sendall(head("POST", "/v1/keys", {"authorization": f"Bearer {root}",
                                                   "content-type": "application/json",
                                                   "content-length": "100"}) + b"{")
            busy.append(sock)
        time.sleep(0.3)
        with connect(server.url) as extra:
            answer = read_answer(extra)
        assert answer is not None and answer.status == 503
        assert answer.json()["code"] == "server_busy"
        assert answer.headers["retry-after"] == "1"
        # The slow bodies run out of time (408), and the service is back.
        for sock in busy:
            late = read_answer(sock)
            assert late is not None and late.status == 408
            sock.close()
        assert wait_until(lambda: auth(server.url, root) == 204)
        assert "refused a connection" in server.stderr


def answered(sock: socket.socket, request: bytes) -> int | None:
    """The status of the answer to ``request`` on ``sock``; ``None`` if it was closed."""
    try:
        sock.sendall(request)
    except OSError:
        return None
    answer = read_answer(sock)
    return None if answer is None else answer.status


@pytest.mark.parametrize("protocol", ["h11", "httptools"])
@pytest.mark.parametrize("path", ["/auth", "/healthz"])  # answered in the protocol, through ASGI
def test_at_the_ceiling_the_connection_idle_longest_makes_room(
    tmp_path: Path, protocol: str, path: str
) -> None:
    """The connection pushed out is the one idle longest, not the one opened first: a proxy's
    busiest keep-alive connection is not cut while one it left alone stays open."""
    env = {"KEYTURN_MAX_CONNECTIONS": "3", "KEYTURN_HTTP": protocol}
    with serving(tmp_path, **env) as (server, root):
        request = head("GET", path, {"authorization": f"Bearer {root}"})
        ok = 204 if path == "/auth" else 200
        first, second, third = (connect(server.url) for _ in range(3))
        try:
            for sock in (first, second, third, first):  # the first used again, just now
                assert answered(sock, request) == ok
            with connect(server.url) as newcomer:
                assert answered(newcomer, request) == ok  # admitted: one idle was closed
                assert answered(first, request) == ok
                assert answered(third, request) == ok
                # Idle since its only request, and closed already (well within uvicorn's
                # 5 s keep-alive timeout, which would close it too).
                assert closed_by_server(second, within=1)
        finally:
            for sock in (first, second, third):
                sock.close()


def test_an_unread_body_is_drained_only_so_far(tmp_path: Path) -> None:
    """``/auth`` never reads a body; what a client keeps sending is not read for ever."""
    with serving(tmp_path, KEYTURN_MAX_BODY_SIZE="65536") as (server, root):
        with connect(server.url) as sock:
            sock.sendall(head("POST", "/auth", {"authorization": f"Bearer {root}",
                                                "content-length": str(1 << 30)}))
            answer = read_answer(sock)
            assert answer is not None and answer.status == 204
            sent = 0
            with contextlib.suppress(OSError):
                while sent < 64 << 20:
                    sock.sendall(b"x" * 65536)
                    sent += 65536
            assert sent < 32 << 20  # cut off after the drain, not at 1 GiB
        # A small unread body is drained, and the connection is reused.
        with connect(server.url) as sock:
            body = b"x" * 1000
            request = head("POST", "/auth", {"authorization": f"Bearer {root}",
                                             "content-length": str(len(body))})
            sock.sendall(request + body)
            first = read_answer(sock)
            sock.sendall(head("GET", "/auth", {"authorization": f"Bearer {root}"}))
            second = read_answer(sock)
        assert first is not None and first.status == 204
        assert second is not None and second.status == 204


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_bad_limits_stop_the_server_with_a_clear_message(tmp_path: Path, value: str) -> None:
    from tests.service.conftest import run_cli

    result = run_cli("serve", "--port", "0", "--db", f"sqlite:///{tmp_path / 'k.db'}",
                     env={"KEYTURN_MAX_CONNECTIONS": value})
    assert result.returncode == 2
    assert "KEYTURN_MAX_CONNECTIONS" in result.stderr


def test_an_endless_request_head_is_cut_off(tmp_path: Path) -> None:
    with serving(tmp_path) as (server, root), connect(server.url) as sock:
        sock.sendall(b"GET /auth HTTP/1.1\r\nhost: x\r\n")
        with contextlib.suppress(OSError):
            for _ in range(64):  # 1 MiB of headers, never ending
                sock.sendall(b"x-pad: " + b"p" * 16_000 + b"\r\n")
        answer = read_answer(sock)
        assert answer is None or answer.status in (400, 431)  # h11 stops at 16 KiB itself
        assert closed_by_server(sock)
        assert auth(server.url, root) == 204
