"""A canary's alarm names the client as every other part of keyturn judges it: the
connection's peer, or what a trusted proxy names. An intruder trying a canary key from
anywhere else cannot blame an innocent address by sending ``X-Forwarded-For`` (the header
is kept beside it, as what was claimed). Over real HTTP, on SQLite and on PostgreSQL +
Redis."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.security.conftest import live_on
from tests.service.conftest import Live
from tests.service.receiver import Receiver

PROXY = "127.0.0.2"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def decoyed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    yield from live_on(
        request.param,
        request,
        tmp_path_factory,
        webhook_allow_private=True,
        trusted_proxies=(f"{PROXY}/32",),
    )


def alarm_of(live: Live, send: str) -> dict[str, object]:
    """The ``data.request`` of the alarm a canary's use from ``send`` raises."""
    with Receiver() as receiver:
        hook = live.root.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["key.canary_used"]}
        ).json()
        key, _ = live.make_key(name="decoy", canary=True)
        transport = httpx.HTTPTransport(local_address=send)
        with httpx.Client(base_url=live.url, transport=transport, timeout=10) as client:
            headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "198.51.100.23"}
            assert client.get("/auth", headers=headers).status_code == 401
        (event,) = receiver.wait_for(1)
        live.root.delete(f"/v1/webhooks/{hook['id']}")
    request: dict[str, object] = event.json["data"]["request"]
    return request


def test_an_untrusted_peer_cannot_name_the_client(decoyed: Live) -> None:
    request = alarm_of(decoyed, "127.0.0.1")
    assert request["client"] == "127.0.0.1"
    assert request["forwarded_for"] == "198.51.100.23"


def test_a_trusted_proxy_names_the_client(decoyed: Live) -> None:
    request = alarm_of(decoyed, PROXY)
    assert request["client"] == "198.51.100.23"
    assert request["forwarded_for"] == "198.51.100.23"
