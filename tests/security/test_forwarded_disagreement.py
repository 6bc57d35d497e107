"""A trusted proxy that sets only ``X-Real-IP`` (``proxy_set_header X-Real-IP
$remote_addr``, a common nginx line) passes a client's own ``X-Forwarded-For`` on
untouched. ``X-Forwarded-For`` was read first, so that client named itself: an address-
restricted key worked from anywhere. When the two headers disagree about the client (and
the ``X-Real-IP`` address is no trusted proxy, as an earlier hop of a chain would be), the
client cannot be told, and a restricted key is refused. Where they agree, or only one is
sent, nothing changes. Through ``/auth`` on a real server behind a trusted peer."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.service.conftest import Live, start_live

PROXY = "127.0.0.2"
EDGE = "127.0.0.3"  # a trusted proxy in front of PROXY


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(
        tmp_path_factory.mktemp("disagree"), trusted_proxies=(f"{PROXY}/32", f"{EDGE}/32")
    )


def auth(live: Live, key: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=PROXY)
    with httpx.Client(base_url=live.url, transport=transport, timeout=10) as client:
        return client.get("/auth", headers={"Authorization": f"Bearer {key}", **headers})


def assert_client_unknown(answer: httpx.Response) -> None:
    """The restricted key was refused because the client could not be told."""
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "ip_not_allowed"
    assert "unknown" in answer.json()["detail"]


@pytest.fixture(scope="module")
def key(proxied: Live) -> str:
    return proxied.make_key(allowed_ips=["198.51.100.0/24"])[0]


def test_a_client_forwarded_for_against_the_proxys_real_ip(proxied: Live, key: str) -> None:
    answer = auth(proxied, key, {"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "203.0.113.9"})
    assert_client_unknown(answer)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "198.51.100.7", "X-Real-IP": "198.51.100.7"},
        {"X-Forwarded-For": "203.0.113.1, 198.51.100.7", "X-Real-IP": "198.51.100.7"},
        {"X-Forwarded-For": f"198.51.100.7, {EDGE}", "X-Real-IP": EDGE},
        {"X-Forwarded-For": "198.51.100.7"},
        {"X-Real-IP": "198.51.100.7"},
    ],
    ids=["agree", "agree-with-a-claim-on-the-left", "chain", "xff-only", "real-ip-only"],
)
def test_agreeing_or_single_headers_name_the_client(
    proxied: Live, key: str, headers: dict[str, str]
) -> None:
    answer = auth(proxied, key, headers)
    assert answer.status_code == 204, answer.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Forwarded": "for=203.0.113.9", "X-Forwarded-For": "198.51.100.7"},
        {"Forwarded": 'for="203.0.113.9:4711";proto=https', "X-Real-IP": "198.51.100.7"},
        {"Forwarded": "for=198.51.100.7, for=203.0.113.9", "X-Forwarded-For": "198.51.100.7"},
        {"Forwarded": "for=unknown", "X-Forwarded-For": "198.51.100.7"},
    ],
    ids=["forwarded-against-xff", "forwarded-against-real-ip", "forwarded-chain", "unknown"],
)
def test_a_client_header_against_the_proxys_forwarded(
    proxied: Live, key: str, headers: dict[str, str]
) -> None:
    """A proxy that sets only RFC 7239's Forwarded (HAProxy's ``option forwarded``, nginx's
    documented ``proxy_set_header Forwarded``) passes the client's own X-Forwarded-For or
    X-Real-IP on: believed, the client named itself into the allow-list."""
    answer = auth(proxied, key, headers)
    assert_client_unknown(answer)


@pytest.mark.parametrize(
    "headers",
    [
        {"Forwarded": "for=198.51.100.7;proto=https", "X-Forwarded-For": "198.51.100.7"},
        {"Forwarded": 'For="198.51.100.7:5000"', "X-Real-IP": "198.51.100.7"},
        {"Forwarded": f"for=198.51.100.7, for={EDGE}", "X-Forwarded-For": f"198.51.100.7, {EDGE}"},
        {"Forwarded": "proto=https", "X-Forwarded-For": "198.51.100.7"},
    ],
    ids=["agree", "agree-quoted-with-port", "chain", "no-for"],
)
def test_a_forwarded_that_agrees_changes_nothing(
    proxied: Live, key: str, headers: dict[str, str]
) -> None:
    answer = auth(proxied, key, headers)
    assert answer.status_code == 204, answer.text
