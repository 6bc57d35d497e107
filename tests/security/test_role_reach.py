"""A role is a grant to every key holding it, so changing a role changes those keys: an
actor may change a role only if it could change each of them itself (it holds every scope
they hold). Otherwise a ``roles:write`` key could strip scopes from, or hand scopes to, a
key beyond its power (the root key's team, a payment service), which ``PATCH /v1/keys``
refuses it. Over real HTTP, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import httpx

from tests.service.conftest import Live


def verify(live: Live, key: str, *scopes: str) -> dict[str, object]:
    answer = live.root.post("/v1/keys/verify", json={"key": key, "scopes": list(scopes)})
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def refused(answer: httpx.Response, *missing: str) -> None:
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "insufficient_scope"
    assert answer.json()["required_scopes"] == list(missing)


def test_a_role_held_by_a_key_beyond_the_actor_is_not_changed(engine_live: Live) -> None:
    live = engine_live
    root = live.root
    assert root.put("/v1/roles/ops", json={"scopes": ["orders:read", "orders:write"]}).is_success
    # A payment service: its own scope is beyond the role administrator below.
    service, service_record = live.make_key("payments:refund", roles=["ops"])
    admin, admin_record = live.make_key("roles:*", "orders:*")
    acting = live.client(admin)

    # Narrowing the role would take orders:write from the service...
    narrow = acting.put("/v1/roles/ops", json={"scopes": ["orders:read"]})
    refused(narrow, "payments:refund")
    assert f"held by key {service_record['id']}" in narrow.json()["detail"]
    # ... and widening it would hand the service orders:delete.
    widen = {"scopes": ["orders:read", "orders:write", "orders:delete"]}
    refused(acting.put("/v1/roles/ops", json=widen), "payments:refund")

    assert root.get("/v1/roles/ops").json()["scopes"] == ["orders:read", "orders:write"]
    assert verify(live, service, "orders:write")["valid"] is True
    assert verify(live, service, "orders:delete")["valid"] is False
    changes = root.get("/v1/audit", params={"actor": admin_record["id"]}).json()["events"]
    assert changes == []
    assert service_record["id"] not in str(changes)


def test_a_role_held_only_by_keys_the_actor_manages_changes(engine_live: Live) -> None:
    live = engine_live
    root = live.root
    assert root.put("/v1/roles/clerks", json={"scopes": ["orders:read"]}).is_success
    clerk, _ = live.make_key("orders:read", roles=["clerks"])
    beyond, beyond_record = live.make_key("payments:refund", roles=["clerks"])
    admin, _ = live.make_key("roles:*", "orders:*")
    acting = live.client(admin)
    refused(acting.put("/v1/roles/clerks", json={"scopes": ["orders:*"]}), "payments:refund")
    # Once the key beyond it is revoked, the role is the administrator's to change.
    assert root.post(f"/v1/keys/{beyond_record['id']}/revoke").is_success
    changed = acting.put("/v1/roles/clerks", json={"scopes": ["orders:read", "orders:write"]})
    assert changed.status_code == 200, changed.text
    assert verify(live, clerk, "orders:write")["valid"] is True
    assert verify(live, beyond, "orders:read")["code"] == "key_revoked"


def test_an_unheld_role_is_the_actors_to_define(engine_live: Live) -> None:
    admin, _ = engine_live.make_key("roles:*", "orders:read")
    acting = engine_live.client(admin)
    made = acting.put("/v1/roles/readers", json={"scopes": ["orders:read"]})
    assert made.status_code == 200, made.text
    assert acting.put("/v1/roles/readers", json={"scopes": []}).status_code == 200
    assert acting.delete("/v1/roles/readers").status_code == 200
