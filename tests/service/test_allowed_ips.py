"""Keys restricted by address, over real HTTP: ``/auth`` behind a trusted proxy and without
one, the verify API's ``ip``, the admin API and its OpenAPI document, on SQLite and
PostgreSQL.

Loopback has a whole /8, so a client can connect from 127.0.0.2 (the "proxy", trusted) or
127.0.0.1 (anyone else, not trusted) to the same server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import Live, ServeProcess, run_cli, start_live

PROXY = "127.0.0.2"
OFFICE = "203.0.113.0/24"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def proxied(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    overrides: dict[str, object] = {"trusted_proxies": (f"{PROXY}/32",)}
    if request.param == "postgresql":
        from tests.conftest import pg_schema

        database = request.getfixturevalue("pg_database")
        with pg_schema(database, "allowed_ips") as url:
            yield from start_live(tmp_path_factory.mktemp("ips"), database_url=url, **overrides)
        return
    yield from start_live(tmp_path_factory.mktemp("ips"), **overrides)


def from_address(live: Live, address: str, **headers: str) -> httpx.Client:
    """A client whose connections come from ``address`` (a loopback address)."""
    transport = httpx.HTTPTransport(local_address=address)
    client = httpx.Client(base_url=live.url, headers=headers, timeout=10, transport=transport)
    live._clients.append(client)
    return client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_the_trusted_proxy_names_the_client(proxied: Live) -> None:
    key, record = proxied.make_key(allowed_ips=[OFFICE])
    assert record["allowed_ips"] == [OFFICE]
    _, loose = proxied.make_key(allowed_ips=["203.0.113.77/24", "::ffff:c633:6400/120"])
    assert loose["allowed_ips"] == [OFFICE, "198.51.100.0/24"]
    proxy = from_address(proxied, PROXY)
    ok = proxy.get("/auth", headers={**bearer(key), "X-Forwarded-For": "203.0.113.50"})
    assert ok.status_code == 204
    assert ok.headers["x-keyturn-key-id"] == record["id"]
    # A client the proxy forwards from elsewhere is refused, and told what was seen.
    out = proxy.get("/auth", headers={**bearer(key), "X-Forwarded-For": "198.51.100.9"})
    assert out.status_code == 403
    body = out.json()
    assert body["code"] == "ip_not_allowed" and "198.51.100.9" in body["hint"]
    assert out.headers["content-type"] == "application/problem+json"
    # X-Real-IP, from the trusted proxy.
    real = proxy.get("/auth", headers={**bearer(key), "X-Real-IP": "203.0.113.51"})
    assert real.status_code == 204
    # A client that prepends a forged hop: the proxy appends the real one, which decides.
    forged = proxy.get(
        "/auth", headers={**bearer(key), "X-Forwarded-For": "203.0.113.50, 198.51.100.9"}
    )
    assert forged.status_code == 403 and "198.51.100.9" in forged.json()["detail"]


def test_a_spoofed_header_from_an_untrusted_peer_is_ignored(proxied: Live) -> None:
    key, _ = proxied.make_key(allowed_ips=[OFFICE])
    direct = from_address(proxied, "127.0.0.1")
    for header in ("X-Forwarded-For", "X-Real-IP"):
        spoofed = direct.get("/auth", headers={**bearer(key), header: "203.0.113.50"})
        assert spoofed.status_code == 403, header
        assert spoofed.json()["code"] == "ip_not_allowed"
        assert "127.0.0.1" in spoofed.json()["hint"]


def test_a_key_for_loopback_works_directly(proxied: Live) -> None:
    key, _ = proxied.make_key(allowed_ips=["127.0.0.1", "::1"])
    direct = from_address(proxied, "127.0.0.1")
    for _ in range(3):  # the second and third from the cache
        assert direct.get("/auth", headers=bearer(key)).status_code == 204
    # Through the proxy, the client named is the one judged, not the connection.
    proxy = from_address(proxied, PROXY)
    forwarded = proxy.get("/auth", headers={**bearer(key), "X-Forwarded-For": "198.51.100.9"})
    assert forwarded.status_code == 403


def test_no_credit_is_spent_on_a_refused_address(proxied: Live) -> None:
    issued = proxied.manager.create_key("metered", credits=2, allowed_ips=[OFFICE])
    direct = from_address(proxied, "127.0.0.1")
    for _ in range(5):
        assert direct.get("/auth", headers=bearer(issued.key)).status_code == 403
    assert proxied.manager.store.credits_left(issued.record.id) == 2


def test_the_verify_api_takes_the_clients_address(proxied: Live) -> None:
    key, _ = proxied.make_key(allowed_ips=[OFFICE])
    verifier, _ = proxied.make_key("keys:verify")
    api = proxied.client(verifier)
    inside = api.post("/v1/keys/verify", json={"key": key, "ip": "203.0.113.8"}).json()
    assert inside["valid"] and inside["code"] == "valid"
    outside = api.post("/v1/keys/verify", json={"key": key, "ip": "2001:db8::1"}).json()
    assert outside["code"] == "ip_not_allowed" and "2001:db8::1" in outside["hint"]
    unknown = api.post("/v1/keys/verify", json={"key": key}).json()
    assert unknown["code"] == "ip_not_allowed" and "ip" in unknown["hint"]
    bad = api.post("/v1/keys/verify", json={"key": key, "ip": "my laptop"})
    assert bad.status_code == 422 and "IP address" in bad.text


def test_the_admin_api_validates_and_updates(proxied: Live) -> None:
    root = proxied.root
    for entry in ("10.0.0.0/33", "example.com", "", "1.2.3.4.5", "::g"):
        answer = root.post("/v1/keys", json={"name": "x", "allowed_ips": [entry]})
        assert answer.status_code == 422, entry
        assert answer.json()["code"] == "invalid_request"
    assert root.post("/v1/keys", json={"name": "x", "allowed_ips": "10.0.0.0/8"}).status_code == 422
    key, record = proxied.make_key()
    changed = root.patch(f"/v1/keys/{record['id']}", json={"allowed_ips": ["192.0.2.1"]})
    assert changed.status_code == 200 and changed.json()["allowed_ips"] == ["192.0.2.1/32"]
    assert proxied.client().get("/auth", headers=bearer(key)).status_code == 403
    assert root.patch(f"/v1/keys/{record['id']}", json={"allowed_ips": None}).status_code == 422
    cleared = root.patch(f"/v1/keys/{record['id']}", json={"allowed_ips": []})
    assert cleared.json()["allowed_ips"] == []
    assert proxied.client().get("/auth", headers=bearer(key)).status_code == 204
    events = root.get("/v1/audit", params={"key_id": record["id"]}).json()["events"]
    assert any(e["details"].get("allowed_ips") == ["192.0.2.1/32"] for e in events)


def test_an_admin_key_is_held_to_its_own_addresses(proxied: Live) -> None:
    admin_key, _ = proxied.make_key("keys:write", "keys:read", allowed_ips=["127.0.0.1"])
    # From an address outside its list, it cannot even authenticate.
    proxy = from_address(proxied, PROXY, authorization=f"Bearer {admin_key}")
    refused = proxy.post("/v1/keys", json={"name": "x"})
    assert refused.status_code == 403 and refused.json()["code"] == "ip_not_allowed"
    direct = from_address(proxied, "127.0.0.1", authorization=f"Bearer {admin_key}")
    wide = direct.post("/v1/keys", json={"name": "x"})
    assert wide.status_code == 403 and "no address restriction" in wide.json()["detail"]
    narrow = direct.post("/v1/keys", json={"name": "x", "allowed_ips": ["127.0.0.1"]})
    assert narrow.status_code == 201


def test_the_openapi_document_states_the_fields(proxied: Live) -> None:
    schemas = proxied.client().get("/openapi.json").json()["components"]["schemas"]
    assert "allowed_ips" in schemas["CreateKey"]["properties"]
    assert "allowed_ips" in schemas["UpdateKey"]["properties"]
    assert "allowed_ips" in schemas["KeyView"]["properties"]
    assert "ip" in schemas["VerifyRequest"]["properties"]


def test_keyturn_serve_reads_the_trusted_proxies_setting(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    made = run_cli("keys", "create", "--name", "office", "--allow-ip", OFFICE, "--format",
                   "json", env={"KEYTURN_DATABASE_URL": db})  # fmt: skip
    assert made.returncode == 0, made.stderr
    import json

    key = json.loads(made.stdout)["key"]
    env = {"KEYTURN_DATABASE_URL": db, "KEYTURN_TRUSTED_PROXIES": f"{PROXY}, 10.0.0.0/8"}
    with ServeProcess(env=env, cwd=tmp_path) as serve:
        forwarded = {**bearer(key), "X-Forwarded-For": "203.0.113.9"}
        via_proxy = httpx.Client(transport=httpx.HTTPTransport(local_address=PROXY))
        direct = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.1"))
        with via_proxy, direct:
            assert via_proxy.get(f"{serve.url}/auth", headers=forwarded).status_code == 204
            assert direct.get(f"{serve.url}/auth", headers=forwarded).status_code == 403
    env["KEYTURN_TRUSTED_PROXIES"] = "10.0.0.0/33"
    bad = run_cli("serve", "--port", "0", env=env)
    assert bad.returncode != 0 and "KEYTURN_TRUSTED_PROXIES" in bad.stderr
