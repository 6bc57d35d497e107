"""``X-Request-Id``: taken only from a trusted proxy, and only when it is one id that the
log's readers can look up (at most 128 letters, digits, ``.``, ``_`` and ``-``, none of
them a key, plainly or encoded); anything else (an id with a space, a byte beyond ASCII,
``%``, ``/``, ``+`` or ``=``, an over-long one, or two ids in one request, where a client's
own could be the one read) gets an id of keyturn's own. The same rule on
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
    for given in (
        "req-7f3a.01_x",
        "0b5ad3c4e1f2a3b4c5d6e7f8a9b0c1d2",
        "01HZX3Q8J4K5M6N7P8R9S0T1V2",
    ):
        answer = through_proxy(proxied, face, key, [given.encode()])
        assert answer.is_success, answer.text
        assert answer.headers["x-request-id"] == given


@pytest.mark.parametrize("face", ["auth", "verify"])
@pytest.mark.parametrize(
    "ids",
    [
        [b"two words"],
        [b"caf\xe9"],
        [b"x" * 129],
        [b"req-7f3a:01/x"],
        [b"req%2D1"],
        [b"client-chose-this", b"proxy-set-this"],
    ],
    ids=["space", "latin-1", "129", "slash", "percent", "two"],
)
def test_other_ids_are_replaced(proxied: Live, key: str, face: str, ids: list[bytes]) -> None:
    answer = through_proxy(proxied, face, key, ids)
    assert answer.is_success, answer.text
    assert OWN_ID.fullmatch(answer.headers["x-request-id"])


@pytest.mark.parametrize("face", ["auth", "verify"])
def test_an_id_holding_a_key_is_replaced_and_never_logged(
    proxied: Live, key: str, face: str
) -> None:
    """Proxies pass a client's ``X-Request-Id`` on: one holding a key (pasted, glued to
    other text, percent-encoded or inside base64) was kept, so the verification log stored
    the key whole, for every ``verifications:read`` key and the dashboard to read. Each
    request is still logged, under keyturn's own id."""
    import base64
    import time

    secret = key.rpartition("_")[2]
    givens = [
        key,
        f"req-{key}",
        key.replace("_", "%5F"),
        key.replace("_", "%255F"),
        base64.b64encode(f"req:{key}".encode()).decode(),
        base64.urlsafe_b64encode(f"req-{key}".encode()).decode().rstrip("="),
    ]
    ours = []
    for given in givens:
        answer = through_proxy(proxied, face, key, [given.encode()])
        assert answer.is_success, answer.text
        assert OWN_ID.fullmatch(answer.headers["x-request-id"]), answer.headers["x-request-id"]
        ours.append(answer.headers["x-request-id"])
    logged: set[str] = set()
    deadline = time.monotonic() + 10
    while set(ours) - logged and time.monotonic() < deadline:  # written in batches
        time.sleep(0.2)
        for request_id in set(ours) - logged:
            entries = proxied.root.get("/v1/verifications", params={"request_id": request_id})
            assert entries.is_success, entries.text
            assert secret not in entries.text
            if entries.json()["verifications"]:
                logged.add(request_id)
    assert logged == set(ours)
    everything = proxied.root.get("/v1/verifications", params={"limit": 200}).text
    assert secret not in everything
    for given in givens:
        assert given not in everything
