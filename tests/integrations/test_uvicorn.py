"""The ASGI middleware behind a real uvicorn on loopback, driven over TCP with httpx."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from tests.integrations.cases import CASES, Case, Keys, case_ids, check, last, observed
from tests.integrations.test_asgi import starlette_app


@pytest.fixture(scope="module")
def base_url(keys: Keys) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))  # a free port, so parallel workers never collide
    port = sock.getsockname()[1]
    config = uvicorn.Config(starlette_app(keys.manager), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        yield client


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_uvicorn_answers_every_case(case: Case, http: httpx.Client, keys: Keys) -> None:
    r = last(
        case,
        lambda: http.get(case.path, headers=keys.headers(case), params=keys.query(case) or None),
    )
    check(case, observed(r.status_code, r.headers.multi_items(), r.content), keys)


def test_duplicate_key_headers_over_the_wire(http: httpx.Client, keys: Keys) -> None:
    """Only a real server can carry one header twice; the answer names the mistake."""
    valid = keys.values["valid"]
    r = http.get("/items", headers=[("x-api-key", valid), ("x-api-key", valid)])
    assert r.status_code == 400
    assert r.json()["code"] == "conflicting_credentials"
    assert valid not in r.text


def test_keep_alive_connection_serves_rejections_and_successes(
    http: httpx.Client, keys: Keys
) -> None:
    for _ in range(3):
        assert http.get("/items").status_code == 401
        assert http.get("/items", headers={"x-api-key": keys.values["valid"]}).status_code == 200
