"""Who a throttle counts: the client as keyturn believes it, on every throttled face (leak
reports, dashboard sign-ins, portal links, unknown keys on ``/auth``), against a real
server on loopback.

Behind a trusted proxy each client has a bucket of its own, so one client's failures do
not lock out the others; an IPv6 client counts by its /64, so stepping through the
addresses of one's own block gains nothing; and a peer that is not trusted cannot name
other clients to escape its bucket.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest

from keyturn.keys import generate_key
from tests.service.conftest import Live, start_live

Attempt = Callable[[Live, str | None], int]


def report(live: Live, client: str | None) -> int:
    headers = {"X-Forwarded-For": client} if client else {}
    return live.client(**headers).post("/v1/leaks", json={"key": generate_key()}).status_code


def sign_in(live: Live, client: str | None) -> int:
    headers = {"X-Forwarded-For": client} if client else {}
    with httpx.Client(base_url=live.url, headers=headers, timeout=20) as browser:
        form = browser.get("/ui/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token, form.text
        data = {"csrf": token.group(1), "key": "kt_live_" + "A" * 36}
        return browser.post("/ui/login", data=data).status_code


def open_link(live: Live, client: str | None) -> int:
    headers = {"X-Forwarded-For": client} if client else {}
    return live.client(**headers).get("/portal/enter", params={"token": "ktp_nope"}).status_code


_KEPT: dict[str, httpx.Client] = {}


def unknown_key(live: Live, client: str | None) -> int:
    """A fresh forged key (a store read each): one kept-alive connection, since this bucket
    refills at 5 a second and a new connection per request can be slower than that."""
    connection = _KEPT.get(live.url) or _KEPT.setdefault(live.url, live.client())
    headers = {"Authorization": f"Bearer {generate_key()}"}
    if client:
        headers["X-Forwarded-For"] = client
    return connection.get("/auth", headers=headers).status_code


FACES = {
    "leak report": (report, 20),
    "sign-in": (sign_in, 10),
    "portal link": (open_link, 10),
    "unknown keys": (unknown_key, 50),
}


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The test client (127.0.0.1) is the deployment's trusted proxy."""
    yield from start_live(tmp_path_factory.mktemp("proxied"), trusted_proxies=("127.0.0.1",))


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("direct"))


def exhaust(live: Live, attempt: Attempt, burst: int, client: str | None) -> None:
    """Attempts from ``client`` until it is throttled: after its burst, give or take what
    refills meanwhile on a loaded machine."""
    statuses = [attempt(live, client) for _ in range(burst)]
    assert 429 not in statuses[: burst // 2], statuses
    for _ in range(burst):
        if attempt(live, client) == 429:
            return
    raise AssertionError(f"{client} was never throttled")


def held(live: Live, attempt: Attempt, client: str) -> bool:
    """Whether ``client`` is held up right after another exhausted a bucket: a few tries,
    since the fastest bucket (unknown keys, 5 a second) refills between two requests."""
    return any(attempt(live, client) == 429 for _ in range(3))


@pytest.mark.parametrize("face", FACES)
def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(proxied: Live, face: str) -> None:
    attempt, burst = FACES[face]
    exhaust(proxied, attempt, burst, "203.0.113.10")
    assert held(proxied, attempt, "198.51.100.7, 203.0.113.10")  # a hop before is no way out
    assert attempt(proxied, "203.0.113.11") != 429  # another client is not held up


@pytest.mark.parametrize("face", FACES)
def test_an_ipv6_client_counts_by_its_64(proxied: Live, face: str) -> None:
    attempt, burst = FACES[face]
    exhaust(proxied, attempt, burst, "2001:db8:7:1::1")
    for neighbour in ("2001:db8:7:1::2", "2001:db8:7:1:ffff:ffff:ffff:ffff"):
        assert held(proxied, attempt, neighbour)
    assert attempt(proxied, "2001:db8:7:2::1") != 429  # the next /64 is someone else


@pytest.mark.parametrize("face", FACES)
def test_an_untrusted_peer_cannot_name_other_clients(direct: Live, face: str) -> None:
    attempt, burst = FACES[face]
    statuses = [attempt(direct, f"203.0.113.{number}") for number in range(2 * burst)]
    assert 429 in statuses  # every attempt counted as the peer's, whatever it claimed
