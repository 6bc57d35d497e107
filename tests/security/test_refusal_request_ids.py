"""Every answer of the verify API carries ``X-Request-Id``, a refusal too, and the id finds
the decision in the verification log ("why was it rejected?"): a caller without a key,
with a key lacking ``keys:verify``, or with a body that is no verify request got no id,
and the log held the caller's refusal under an id nobody was told. The same holds for
every refusal of the admin API. A trusted proxy's id is kept, as on ``/auth``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.service.conftest import Live, start_live

OWN_ID = re.compile(r"[0-9a-f]{32}")
PROXY = "127.0.0.2"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("rid-refusals"), trusted_proxies=(PROXY,))


def logged(live: Live, rid: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        found: list[dict[str, Any]] = live.root.get(
            "/v1/verifications", params={"request_id": rid}
        ).json()["verifications"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_verify_api_refusals_carry_the_id_they_are_logged_under(live: Live) -> None:
    key, _ = live.make_key()
    reader, _ = live.make_key("keys:read")
    verifier, _ = live.make_key("keys:verify")
    for client, body, status, outcome in [
        (live.client(), {"key": key}, 401, "missing_credentials"),
        (live.client(reader), {"key": key}, 403, "insufficient_scope"),
        (live.client(verifier), {"nokey": 1}, 422, "valid"),  # the caller was fine
    ]:
        answer = client.post("/v1/keys/verify", json=body)
        assert answer.status_code == status, answer.text
        rid = answer.headers["x-request-id"]
        assert OWN_ID.fullmatch(rid)
        (entry,) = logged(live, rid)
        assert entry["outcome"] == outcome


def test_admin_api_refusals_carry_an_id_and_a_proxys_is_kept(live: Live) -> None:
    answer = live.client().get("/v1/keys")
    assert answer.status_code == 401
    assert OWN_ID.fullmatch(answer.headers["x-request-id"])
    transport = httpx.HTTPTransport(local_address=PROXY)
    with httpx.Client(base_url=live.url, transport=transport, timeout=10) as proxy:
        refused = proxy.get("/v1/keys", headers={"X-Request-Id": "edge-42"})
    assert refused.status_code == 401
    assert refused.headers["x-request-id"] == "edge-42"
    assert logged(live, "edge-42")[0]["outcome"] == "missing_credentials"
