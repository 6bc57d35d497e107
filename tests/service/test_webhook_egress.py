"""Where a webhook delivery may connect, and how long a receiver can hold it, against a
real service on loopback whose webhooks go to public addresses only (the default).

The public internet is the one thing mocked: a name that answers differently on each
lookup (DNS rebinding) is a resolver patched in this process, and "a public host" is an
address whose connections the test routes to a receiver on loopback.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.service.conftest import Live, start_live
from tests.service.receiver import Receiver

PUBLIC = "93.184.215.14"  # stands for a public host; its connections go to a loopback receiver
NAME = "rebinding.example"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("egress"))


def deliveries(live: Live, hook_id: str) -> list[dict[str, Any]]:
    answer = live.root.get(f"/v1/webhooks/{hook_id}/deliveries")
    assert answer.status_code == 200, answer.text
    return answer.json()["deliveries"]  # type: ignore[no-any-return]


def wait_for_attempt(live: Live, hook_id: str, attempts: int, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = deliveries(live, hook_id)
        if found and found[0]["attempts"] >= attempts:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {attempts} attempt(s) within {seconds} s: {found}")


def test_a_name_that_rebinds_to_loopback_never_gets_a_delivery_there(
    guarded: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each lookup of the name answers in turn a public address, then 127.0.0.1. Whatever
    the order, keyturn connects only to the address it just checked: the internal
    receiver (the one at 127.0.0.1) is never reached; the public one is."""
    real_lookup, real_connect = socket.getaddrinfo, socket.create_connection
    with Receiver() as public, Receiver() as internal:
        lookups = iter([PUBLIC, "127.0.0.1"] * 50)

        def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host != NAME:
                return real_lookup(host, port, *args, **kwargs)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(lookups), port))]

        def connect(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
            if address[0] == PUBLIC:  # the public host is served by a receiver on loopback
                address = ("127.0.0.1", public.port)
            return real_connect(address, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", lookup)
        monkeypatch.setattr(socket, "create_connection", connect)
        made = guarded.root.post(
            "/v1/webhooks", json={"url": f"http://{NAME}:{internal.port}/hook"}
        )
        assert made.status_code == 201, made.text
        hook = made.json()
        try:
            guarded.make_key("orders:read")
            public.wait_for(1, timeout=30)  # the attempt whose lookup said public
        finally:
            guarded.root.delete(f"/v1/webhooks/{hook['id']}")
        assert internal.received == []


class RawReceiver:
    """A receiver that answers however ``answer(connection)`` writes, on loopback."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        self.server.settimeout(0.2)
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            threading.Thread(target=self.talk, args=(connection,), daemon=True).start()

    def talk(self, connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)  # the request (small enough to come in one read)
            with contextlib.suppress(OSError):  # keyturn hung up: what it should do
                self.answer(connection, self.stop)

    def close(self) -> None:
        self.stop.set()
        self.server.close()


def endless_body(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
    while not stop.is_set():
        connection.sendall(b"x" * 1024)
        time.sleep(0.05)


def trickled_head(connection: socket.socket, stop: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    while not stop.is_set():
        connection.sendall(b"a")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("receivers"), webhook_allow_private=True)


def test_a_receiver_that_never_ends_its_body_is_answered_by_its_status(hooked: Live) -> None:
    receiver = RawReceiver(endless_body)
    hook = hooked.root.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver.port}/hook"}
    ).json()
    try:
        hooked.make_key("orders:read")
        sent = wait_for_attempt(hooked, hook["id"], 1, seconds=8)
    finally:
        hooked.root.delete(f"/v1/webhooks/{hook['id']}")
        receiver.close()
    assert sent["status"] == "delivered" and sent["last_status"] == 200


def test_a_receiver_that_trickles_its_answer_is_given_up_at_the_deadline(hooked: Live) -> None:
    receiver = RawReceiver(trickled_head)
    hook = hooked.root.post(
        "/v1/webhooks", json={"url": f"http://127.0.0.1:{receiver.port}/hook"}
    ).json()
    try:
        hooked.make_key("orders:read")
        started = time.monotonic()
        tried = wait_for_attempt(hooked, hook["id"], 1, seconds=20)
        took = time.monotonic() - started
    finally:
        hooked.root.delete(f"/v1/webhooks/{hook['id']}")
        receiver.close()
    assert tried["status"] == "pending" and "Timeout" in tried["last_error"]
    assert took < 15  # the attempt's deadline is 10 s, however the bytes come
