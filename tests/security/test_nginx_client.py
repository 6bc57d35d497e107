"""The shipped nginx configuration behind ``trusted_proxies``: the client keyturn judges is
the one nginx saw, whatever forwarding headers the client itself sends. nginx passes a
request's headers on as they came unless told otherwise, so the configuration must set
``X-Forwarded-For`` (appending the client it saw) and ``X-Real-IP`` itself: without that,
listing nginx in ``trusted_proxies`` (as docs/restrictions.md says to) made a client's own
``X-Forwarded-For: <an allowed address>`` the client, and an address-restricted key worked
from anywhere. A real nginx with docs/proxies/nginx.conf, and ``keyturn serve``."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.service.conftest import PROTOCOLS
from tests.service.test_nginx import Stack, proxy_stack

ALLOWED = "198.51.100.0/24"
CLIENT = "127.0.0.5"  # a loopback address of its own, not nginx's (trusted) 127.0.0.1


def get(stack: Stack, key: str, **claims: str) -> httpx.Response:
    """``GET /data`` through nginx from ``CLIENT``, with the forwarding headers ``claims``."""
    transport = httpx.HTTPTransport(local_address=CLIENT)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(f"{stack.url}/data", headers={"Authorization": f"Bearer {key}", **claims})


@pytest.fixture(scope="module", params=PROTOCOLS)
def stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
          ) -> Iterator[Stack]:
    """On each of uvicorn's HTTP stacks (keyturn serve answers /auth inside each)."""
    env = {**os.environ, "KEYTURN_TRUSTED_PROXIES": "127.0.0.1", "KEYTURN_HTTP": request.param}
    with proxy_stack(tmp_path_factory.mktemp("nginx-client"), env=env) as built:
        yield built


@pytest.mark.parametrize(
    "claims",
    [
        {"X-Forwarded-For": "198.51.100.7"},
        {"X-Real-IP": "198.51.100.7"},
        {"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.7"},
    ],
    ids=["xff", "x-real-ip", "both"],
)
def test_a_client_cannot_claim_an_allowed_address(stack: Stack, claims: dict[str, str]) -> None:
    key, _ = stack.make_key(allowed_ips=[ALLOWED])
    answer = get(stack, key, **claims)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "ip_not_allowed"
    assert answer.json()["detail"].endswith(CLIENT)  # the client nginx saw


def test_the_client_nginx_saw_is_the_client(stack: Stack) -> None:
    key, _ = stack.make_key(allowed_ips=[CLIENT])
    assert get(stack, key).status_code == 200
    # Its claims cannot take its own address away either: the right-most hop decides.
    claims = {"X-Forwarded-For": "203.0.113.1", "X-Real-IP": "203.0.113.1"}
    spoofed = get(stack, key, **claims)
    assert spoofed.status_code == 200, spoofed.text
