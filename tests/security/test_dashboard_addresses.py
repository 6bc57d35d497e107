"""The dashboard is a face like the others for a key restricted by address: signing in
judges the client's address (the peer, or what a trusted proxy names), and a session
stands only while its requests come from an address the key may be used from. Signing in
asked with no address at all, so a restricted admin key could never sign in (the address
unknown: refused), and nothing bound a session to the list. Over real HTTP, on SQLite
and on PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.security.conftest import live_on
from tests.service.conftest import Live
from tests.ui.test_http import token

OFFICE = "127.0.0.7"
PROXY = "127.0.0.2"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    yield from live_on(request.param, request, tmp_path_factory, trusted_proxies=(PROXY,))


def browser(live: Live, address: str, cookies: httpx.Cookies | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(
        base_url=live.url, transport=transport, cookies=cookies, timeout=10,
        follow_redirects=False,
    )  # fmt: skip


def sign_in(client: httpx.Client, key: str, **headers: str) -> httpx.Response:
    form = client.get("/ui/login")
    return client.post("/ui/login", data={"csrf": token(form), "key": key}, headers=headers)


def test_a_restricted_key_signs_in_from_its_address_only(live: Live) -> None:
    key, _ = live.make_key("keys:read", allowed_ips=[OFFICE])
    with browser(live, OFFICE) as office:
        assert sign_in(office, key).status_code == 303
        assert office.get("/ui/keys").status_code == 200
    with browser(live, "127.0.0.1") as elsewhere:
        refused = sign_in(elsewhere, key)
        assert refused.status_code == 403, refused.text
        assert "127.0.0.1" in refused.text
    # Behind the trusted proxy, the address it names.
    with browser(live, PROXY) as proxy:
        assert sign_in(proxy, key, **{"X-Forwarded-For": OFFICE}).status_code == 303
    with browser(live, PROXY) as proxy:
        assert sign_in(proxy, key, **{"X-Forwarded-For": "203.0.113.9"}).status_code == 403


def test_a_session_does_not_travel_beyond_the_keys_addresses(live: Live) -> None:
    key, _ = live.make_key("keys:read", allowed_ips=[OFFICE])
    with browser(live, OFFICE) as office:
        assert sign_in(office, key).status_code == 303
        cookies = office.cookies
        with browser(live, "127.0.0.1", cookies) as thief:
            answer = thief.get("/ui/keys")
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/ui/login")
        assert office.get("/ui/keys").status_code == 200
