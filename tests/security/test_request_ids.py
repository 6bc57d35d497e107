"""``X-Request-Id``: taken only from a trusted proxy, and only when it is one id that the
log's readers can look up (at most 128 visible ASCII characters, which is what
``GET /v1/verifications`` and the dashboard's filter take); anything else (an id with a
space or a byte beyond ASCII, an over-long one, or two ids in one request, where
a client's own could be the one read) gets an id of keyturn's own. The same rule on
``/auth`` and on the verify API."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.service.conftest import Live, start_live

PROXY = "127.0.0.2"
OWN_ID = re.compile(r"[0-9a-f]{32}")  # the time in milliseconds, then 80 random bits


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("rid"), trusted_proxies=(f"{PROXY}/32",))


def through_proxy(live: Live, face: str, key: str, ids: list[bytes]) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=PROXY)
    with httpx.Client(base_url=live.url, transport=transport, timeout=10) as proxy:
        headers = [(b"x-request-id", value) for value in ids]
        if face == "auth":
            headers.append((b"authorization", f"Bearer {key}".encode()))
            return proxy.get("/auth", headers=headers)
        headers.append((b"authorization", f"Bearer {live.root_key}".encode()))
        return proxy.post("/v1/keys/verify", json={"key": key}, headers=headers)


@pytest.fixture(scope="module")
def key(proxied: Live) -> str:
    return proxied.make_key()[0]


@pytest.mark.parametrize("face", ["auth", "verify"])
def test_one_plain_id_from_the_proxy_is_kept(proxied: Live, key: str, face: str) -> None:
    answer = through_proxy(proxied, face, key, [b"req-7f3a:01/x"])
    assert answer.is_success, answer.text
    assert answer.headers["x-request-id"] == "req-7f3a:01/x"


@pytest.mark.parametrize("face", ["auth", "verify"])
@pytest.mark.parametrize(
    "ids",
    [
        [b"two words"],
        [b"caf\xe9"],
        [b"x" * 129],
        [b"client-chose-this", b"proxy-set-this"],
    ],
    ids=["space", "latin-1", "129", "two"],
)
def test_other_ids_are_replaced(proxied: Live, key: str, face: str, ids: list[bytes]) -> None:
    answer = through_proxy(proxied, face, key, ids)
    assert answer.is_success, answer.text
    assert OWN_ID.fullmatch(answer.headers["x-request-id"])


@pytest.mark.parametrize("face", ["auth", "verify"])
def test_an_id_holding_a_key_is_replaced_and_never_logged(
    proxied: Live, key: str, face: str
) -> None:
    """Proxies pass a client's ``X-Request-Id`` on: one holding a key (pasted, or glued to
    other text) was kept, so the verification log stored the key whole, for every
    ``verifications:read`` key and the dashboard to read."""
    import time

    secret = key.rpartition("_")[2]
    for given in (key, f"req-{key}"):
        answer = through_proxy(proxied, face, key, [given.encode()])
        assert answer.is_success, answer.text
        assert OWN_ID.fullmatch(answer.headers["x-request-id"]), answer.headers["x-request-id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the log is written in batches, off the request
        logged = proxied.root.get("/v1/verifications", params={"limit": 200}).text
        assert secret not in logged
        time.sleep(0.5)
