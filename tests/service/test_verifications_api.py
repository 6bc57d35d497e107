"""The verification log over real HTTP: every ``/auth`` and verify API answer carries
``X-Request-Id``, and its entry is queryable by it within 2 s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyturn.keys import generate_key, mask
from tests.service.conftest import Live, start_live

PROXY = "127.0.0.2"


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("log"), trusted_proxies=(PROXY,))


def entries(live: Live, count: int = 1, **params: str) -> list[dict[str, Any]]:
    """Polls for up to 2 s, until ``count`` entries are found: the promise is that an entry
    is queryable within 2 s (the entries of one request may come in two writes)."""
    deadline = time.monotonic() + 2.0
    while True:
        found = live.root.get("/v1/verifications", params=params)
        assert found.status_code == 200, found.text
        rows: list[dict[str, Any]] = found.json()["verifications"]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_auth_answers_are_logged_by_request_id(logged: Live) -> None:
    key, record = logged.make_key(owner="acme")
    client = logged.client(**{"user-agent": "probe/1"})
    ok = client.get("/auth", headers={"Authorization": f"Bearer {key}",
                                      "X-Forwarded-Uri": "/orders/7?page=2"})  # fmt: skip
    assert ok.status_code == 204
    rid = ok.headers["x-request-id"]
    (row,) = entries(logged, request_id=rid)
    assert row["key_id"] == record["id"] and row["key"] == mask(key)
    assert row["outcome"] == "valid" and row["client"] == "127.0.0.1"
    assert row["method"] == "GET" and row["path"] == "/orders/7"
    assert row["user_agent"] == "probe/1"
    refused = client.get("/auth", headers={"Authorization": "Bearer kt_live_nope"})
    assert refused.status_code == 401
    (bad,) = entries(logged, request_id=refused.headers["x-request-id"])
    assert bad["outcome"] == "malformed_key" and bad["key_id"] is None
    # A key sent in the query is refused, and neither it nor the query is logged.
    leaked = client.get("/auth", headers={"X-Forwarded-Uri": f"/orders/{key}?api_key={key}"})
    assert leaked.status_code == 400
    (shown,) = entries(logged, request_id=leaked.headers["x-request-id"])
    assert shown["path"].startswith("/orders/kt_live_") and key not in shown["path"]
    text = logged.root.get("/v1/verifications", params={"owner": "acme"}).text
    assert key not in text and key[8:38] not in text


def test_a_request_id_is_believed_from_a_trusted_proxy_only(logged: Live) -> None:
    key, _ = logged.make_key()
    headers = {"Authorization": f"Bearer {key}", "X-Request-Id": "from-the-proxy-1"}
    proxy = httpx.Client(transport=httpx.HTTPTransport(local_address=PROXY), timeout=10)
    direct = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.1"), timeout=10)
    with proxy, direct:
        assert proxy.get(f"{logged.url}/auth", headers=headers).headers["x-request-id"] == (
            "from-the-proxy-1"
        )
        spoofed = direct.get(f"{logged.url}/auth", headers=headers).headers["x-request-id"]
    assert spoofed != "from-the-proxy-1"
    assert len(entries(logged, request_id="from-the-proxy-1")) == 1


def test_the_verify_api_is_logged_with_the_named_client(logged: Live) -> None:
    key, record = logged.make_key()
    verifier, _ = logged.make_key("keys:verify")
    answer = logged.client(verifier).post("/v1/keys/verify",
                                          json={"key": key, "ip": "203.0.113.5"})  # fmt: skip
    # One request, two uses of keys under its id: the calling service's, and the key it
    # checked (whose client is the one the service named).
    rows = entries(logged, 2, request_id=answer.headers["x-request-id"])
    assert len(rows) == 2
    row = next(r for r in rows if r["key_id"] == record["id"])
    assert row["client"] == "203.0.113.5"
    assert row["path"] == "/v1/keys/verify"


def test_reading_the_log_needs_its_scope(logged: Live) -> None:
    plain, _ = logged.make_key("keys:read")
    assert logged.client(plain).get("/v1/verifications").status_code == 403
    reader, _ = logged.make_key("verifications:read")
    assert logged.client(reader).get("/v1/verifications").status_code == 200
    bad = logged.root.get("/v1/verifications", params={"since": "yesterday"})
    assert bad.status_code == 422


def test_dropped_entries_are_on_metrics(logged: Live) -> None:
    body = logged.client().get("/metrics").text
    assert "keyturn_verifications_dropped" in body


def test_each_entry_says_what_its_request_needed_and_an_expression_is_no_such_set(
    logged: Live,
) -> None:
    """The scopes logged are what least-privilege suggestions are made of; a permission
    expression (which may say ``not``) is logged as unknown, and so no narrowing is
    suggested from it."""
    key, record = logged.make_key("orders:read", "admin")
    verifier, _ = logged.make_key("keys:verify")
    service = logged.client(verifier)
    plain = {"key": key, "scopes": ["orders:read"], "ip": "203.0.113.7"}
    asked = service.post("/v1/keys/verify", json=plain)
    by_expression = service.post(
        "/v1/keys/verify",
        json={"key": key, "permissions": "orders:read and admin", "ip": "203.0.113.7"},
    )
    assert asked.json()["valid"] and by_expression.json()["valid"]
    rows = entries(logged, key_id=record["id"])
    deadline = time.monotonic() + 2
    while len(rows) < 2 and time.monotonic() < deadline:
        rows = entries(logged, key_id=record["id"])
    assert sorted(map(str, (r["scopes"] for r in rows))) == ["None", "['orders:read']"]
    deadline = time.monotonic() + 15  # the usage counts are written every 5 s here
    while True:
        found = logged.root.get(f"/v1/keys/{record['id']}/suggestions", params={"days": 1})
        suggestion = found.json()
        if suggestion["requests"]["counted"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert suggestion["requests"] == {"logged": 2, "counted": 2}
    assert not suggestion["complete"] and suggestion["scopes"] is None
    assert "permission expression" in suggestion["reasons"][0]


def test_a_verify_request_without_ip_leaves_the_addresses_unknown_and_says_to_send_it(
    logged: Live,
) -> None:
    """The verify API is asked by the application, not the client: without the client's
    address in 'ip' the log cannot say where the key was used from, and the suggestion
    says which field to send rather than only that something is unknown."""
    key, record = logged.make_key("orders:read", "admin")
    verifier, _ = logged.make_key("keys:verify")
    answer = logged.client(verifier).post(
        "/v1/keys/verify", json={"key": key, "scopes": ["orders:read"]}
    )
    assert answer.json()["valid"]
    deadline = time.monotonic() + 15  # the usage counts are written every 5 s here
    while True:
        found = logged.root.get(f"/v1/keys/{record['id']}/suggestions", params={"days": 1})
        suggestion = found.json()
        if suggestion["requests"] == {"logged": 1, "counted": 1} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert suggestion["requests"] == {"logged": 1, "counted": 1}
    assert suggestion["scopes"] == ["orders:read"] and suggestion["allowed_ips"] is None
    assert not suggestion["complete"]
    assert "send the client's address as 'ip'" in suggestion["reasons"][0]


def test_a_verify_refusal_that_waiting_ends_says_how_long(logged: Live) -> None:
    """The hint of rate_limited and lookups_throttled says to wait for Retry-After: the
    verify API's 200 answer carries that as retry_after, or its caller could not."""
    verifier, _ = logged.make_key("keys:verify")
    service = logged.client(verifier)
    metered, _ = logged.make_key(rate_limits=["1/minute"])
    first = service.post("/v1/keys/verify", json={"key": metered, "ip": "203.0.113.8"}).json()
    assert first["valid"] and first["retry_after"] is None
    limited = service.post("/v1/keys/verify", json={"key": metered, "ip": "203.0.113.8"})
    assert limited.json()["code"] == "rate_limited"
    assert 0 < limited.json()["retry_after"] <= 60
    for _ in range(80):
        forged = service.post("/v1/keys/verify", json={"key": generate_key(), "ip": "198.51.100.9"})
        if forged.json()["code"] == "lookups_throttled":
            break
    assert forged.json()["code"] == "lookups_throttled", forged.text
    assert forged.json()["retry_after"] >= 1


def test_pages_go_through_a_block_entry_by_entry(logged: Live) -> None:
    """Five requests of one key and client, made together, are stored as one block (one
    run of request ids): pages of two, each from the last one's ``next``, show all five
    once, newest first, as they were entries of their own."""
    key, record = logged.make_key()
    client = logged.client()
    rids = [client.get("/auth", headers={"Authorization": f"Bearer {key}"})
            .headers["x-request-id"] for _ in range(5)]  # fmt: skip
    entries(logged, 5, key_id=record["id"])
    shown: list[dict[str, Any]] = []
    params: dict[str, Any] = {"key_id": record["id"], "limit": 2}
    while True:
        page = logged.root.get("/v1/verifications", params=params).json()
        shown.extend(page["verifications"])
        if page["next"] is None:
            break
        params["before"] = page["next"]
    assert [e["request_id"] for e in shown] == rids[::-1]
    assert [e["id"] for e in shown] == sorted((e["id"] for e in shown), reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"request_id": 'a"\\b'}, {"request_id": '""'}, {"request_id": "x"},
        {"request_id": "\u00e9\u4e2d\U0001f600"}, {"request_id": "f" * 128},
        {"request_id": "ab\x00cd"}, {"key_id": "\x00"}, {"owner": "\x00"},
        {"request_id": "%", "key_id": "_"}, {"before": 1}, {"before": 2**63 - 1},
    ],
)
def test_odd_filters_are_answers(logged: Live, params: dict[str, Any]) -> None:
    """Filters no entry matches (quotes and backslashes that JSON escapes in a block's
    tails, a NUL, the largest id) are an empty page or a page, never an error."""
    found = logged.root.get("/v1/verifications", params=params)
    assert found.status_code == 200, found.text
    if "before" not in params:
        assert found.json() == {"verifications": [], "next": None}


@pytest.mark.parametrize("before", ["x", "1.5", "0", str(2**63), "-1"])
def test_a_before_that_is_no_id_is_a_clear_422(logged: Live, before: str) -> None:
    found = logged.root.get("/v1/verifications", params={"before": before})
    assert found.status_code == 422
    assert "before" in found.text
