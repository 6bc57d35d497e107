"""A trusted proxy's random request ids (nginx's ``$request_id``: 32 hex digits) over real
HTTP on each engine: the log stores them as loose entries, and ``GET /v1/verifications``
finds each request by its id and pages through them all once, newest first."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import pg_schema
from tests.service.conftest import Live, start_live
from tests.service.test_verifications_api import entries

PROXY = "127.0.0.2"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def proxied(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Live]:  # fmt: skip
    tmp = tmp_path_factory.mktemp("proxy-ids")
    if request.param == "sqlite":
        yield from start_live(tmp, trusted_proxies=(PROXY,))
        return
    with pg_schema(request.getfixturevalue("pg_database"), "proxy_ids") as url:
        yield from start_live(tmp, database_url=url, trusted_proxies=(PROXY,))


def test_each_proxy_id_is_found_and_paged_once(proxied: Live) -> None:
    key, record = proxied.make_key()
    sent = [secrets.token_hex(16) for _ in range(60)]
    proxy = httpx.Client(transport=httpx.HTTPTransport(local_address=PROXY), timeout=10)
    with proxy:
        for n, rid in enumerate(sent):
            answer = proxy.get(f"{proxied.url}/auth", headers={
                "Authorization": f"Bearer {key}", "X-Request-Id": rid,
                "X-Forwarded-Uri": f"/orders/{n}"})  # fmt: skip
            assert answer.status_code == 204 and answer.headers["x-request-id"] == rid
    every = entries(proxied, 60, key_id=record["id"])
    assert sorted(e["request_id"] for e in every) == sorted(sent)
    assert [e["id"] for e in every] == sorted((e["id"] for e in every), reverse=True)
    for n, rid in enumerate(sent):
        (found,) = entries(proxied, request_id=rid)
        assert (found["key_id"], found["path"], found["outcome"]) == (
            record["id"], f"/orders/{n}", "valid")
    paged: list[int] = []
    params: dict[str, str | int] = {"key_id": record["id"], "limit": 7}
    while True:
        page = proxied.root.get("/v1/verifications", params=params).json()["verifications"]
        paged += [e["id"] for e in page]
        if len(page) < 7:
            break
        params["before"] = page[-1]["id"]
    assert paged == [e["id"] for e in every]
    missing = proxied.root.get("/v1/verifications", params={"request_id": secrets.token_hex(16)})
    assert missing.status_code == 200 and missing.json()["verifications"] == []
