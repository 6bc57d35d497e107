"""``/v1/roles`` and keys with roles over real HTTP: the admin API, ``/auth`` path rules and
the verify API's permission expressions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyturn.config import ScopeRule
from tests.service.conftest import Live, start_live


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    rules = (
        ScopeRule("/orders", ("orders:read",)),
        ScopeRule("/orders", ("orders:write",), "POST"),
    )
    yield from start_live(tmp_path_factory.mktemp("roles"), rules=rules)


def auth(live: Live, key: str, uri: str, method: str = "GET") -> int:
    headers = {
        "Authorization": f"Bearer {key}",
        "X-Forwarded-Uri": uri,
        "X-Forwarded-Method": method,
    }
    return live.client().get("/auth", headers=headers).status_code


def test_roles_crud_and_audit(gated: Live) -> None:
    root = gated.root
    put = root.put("/v1/roles/support", json={"scopes": ["orders:read"], "description": "help"})
    assert put.status_code == 200, put.text
    assert put.json()["scopes"] == ["orders:read"] and put.json()["keys"] == 0
    assert root.get("/v1/roles/support").json()["description"] == "help"
    assert "support" in [r["name"] for r in root.get("/v1/roles").json()["roles"]]
    missing = root.get("/v1/roles/nobody")
    assert missing.status_code == 404 and missing.json()["code"] == "no_such_role"
    bad = root.put("/v1/roles/bad%20name", json={"scopes": []})
    assert bad.status_code == 422
    events = root.get("/v1/audit", params={"action": "role.update"}).json()["events"]
    assert events[0]["details"]["name"] == "support"
    assert root.delete("/v1/roles/support").status_code == 200
    assert root.get("/v1/roles/support").status_code == 404


def test_keys_carry_roles_and_auth_honours_them(gated: Live) -> None:
    root = gated.root
    root.put("/v1/roles/clerk", json={"scopes": ["orders:read"]})
    key, record = gated.make_key("profile", roles=["clerk"])
    assert record["roles"] == ["clerk"]
    assert record["effective_scopes"] == ["orders:read", "profile"]
    assert auth(gated, key, "/orders/1") == 204
    assert auth(gated, key, "/orders", "POST") == 403
    # The upstream is told the effective scopes.
    passed = gated.client().get("/auth", headers={"Authorization": f"Bearer {key}"})
    assert passed.headers["x-keyturn-scopes"] == "orders:read profile"
    # Changing the role changes the key, within the propagation bound.
    assert root.put("/v1/roles/clerk", json={"scopes": ["orders:read", "orders:write"]}).is_success
    assert auth(gated, key, "/orders", "POST") == 204
    listed = root.get("/v1/keys", params={"role": "clerk"}).json()["keys"]
    assert [k["id"] for k in listed] == [record["id"]]
    # Held: not deleted, and the answer says by how many.
    refused = root.delete("/v1/roles/clerk")
    assert refused.status_code == 409 and refused.json()["code"] == "role_in_use"
    assert "1 key" in refused.json()["detail"]
    changed = root.patch(f"/v1/keys/{record['id']}", json={"roles": []})
    assert changed.status_code == 200 and changed.json()["roles"] == []
    assert auth(gated, key, "/orders/1") == 403
    assert root.delete("/v1/roles/clerk").status_code == 200


def test_unknown_roles_are_a_422_naming_them(gated: Live) -> None:
    answer = gated.root.post("/v1/keys", json={"name": "k", "roles": ["ghost"]})
    assert answer.status_code == 422 and answer.json()["code"] == "unknown_role"
    assert "'ghost'" in answer.json()["detail"]
    assert answer.json()["errors"][0]["field"] == "body.roles"
    _, record = gated.make_key()
    patched = gated.root.patch(f"/v1/keys/{record['id']}", json={"roles": ["ghost"]})
    assert patched.status_code == 422 and "'ghost'" in patched.json()["detail"]
    assert gated.root.patch(f"/v1/keys/{record['id']}", json={"roles": None}).status_code == 422


def test_role_scopes_are_admin_scopes(gated: Live) -> None:
    root = gated.root
    root.put("/v1/roles/role-reader", json={"scopes": ["roles:read"]})
    key, _ = gated.make_key(roles=["role-reader"])
    caller = gated.client(key)
    assert caller.get("/v1/roles").status_code == 200
    refused = caller.put("/v1/roles/x", json={"scopes": []})
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    # A roles:write key cannot define a role beyond its own scopes.
    writer, _ = gated.make_key("roles:write", "orders:read")
    beyond = gated.client(writer).put("/v1/roles/wide", json={"scopes": ["orders:write"]})
    assert beyond.status_code == 403


def test_verify_api_permission_expressions(gated: Live) -> None:
    root = gated.root
    root.put("/v1/roles/writer", json={"scopes": ["orders:write"]})
    reader, _ = gated.make_key("orders:read")
    writer, _ = gated.make_key("orders:read", roles=["writer"])
    expression = "orders:read and (orders:write or admin)"
    answer = root.post("/v1/keys/verify", json={"key": reader, "permissions": expression})
    assert answer.status_code == 200
    body = answer.json()
    assert body["valid"] is False and body["code"] == "insufficient_scope"
    assert body["missing"] == "orders:write or admin"
    assert "orders:write or admin" in body["detail"]
    ok = root.post("/v1/keys/verify", json={"key": writer, "permissions": expression}).json()
    assert ok["valid"] is True and ok["missing"] is None
    assert ok["key"]["scopes"] == ["orders:read", "orders:write"] and ok["key"]["roles"] == [
        "writer"
    ]
    plain = root.post("/v1/keys/verify", json={"key": reader, "scopes": ["a", "b"]}).json()
    assert plain["missing"] == "a and b"
    for bad in ("orders:read and", "(a or b", "a b", ""):
        refused = root.post("/v1/keys/verify", json={"key": reader, "permissions": bad})
        assert refused.status_code == 422, bad
        assert refused.json()["code"] == "invalid_permissions"
        assert refused.json()["errors"][0]["field"] == "body.permissions"


def test_openapi_documents_roles(gated: Live) -> None:
    document = gated.client().get("/openapi.json").json()
    assert {"put", "get", "delete"} <= set(document["paths"]["/v1/roles/{name}"])
    assert "get" in document["paths"]["/v1/roles"]
    verify = document["components"]["schemas"]["VerifyRequest"]["properties"]
    assert "permissions" in verify
    assert "roles" in document["components"]["schemas"]["CreateKey"]["properties"]
