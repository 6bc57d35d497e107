"""``/v1/owners/{owner}`` over real HTTP: limits shared by an owner's keys, its usage, and
all its keys revoked or disabled at once, with the admin layer's rules."""

from __future__ import annotations

from tests.service.conftest import Live


def auth(live: Live, key: str) -> int:
    return live.client().get("/auth", headers={"Authorization": f"Bearer {key}"}).status_code


def test_put_get_and_shared_credits(live: Live) -> None:
    keys = [live.make_key(owner="initech")[0] for _ in range(2)]
    put = live.root.put(
        "/v1/owners/initech",
        json={"credits": 3, "rate_limits": ["100/minute"], "metadata": {"plan": "pro"}},
    )
    assert put.status_code == 200, put.text
    body = put.json()
    assert body["credits"] == 3 and body["rate_limits"] == ["100/minute"]
    assert body["metadata"] == {"plan": "pro"} and body["keys"]["active"] == 2
    statuses = [auth(live, keys[i % 2]) for i in range(5)]
    assert statuses == [204, 204, 204, 429, 429]
    shown = live.root.get("/v1/owners/initech").json()
    assert shown["credits_left"] == 0
    events = live.root.get("/v1/audit", params={"action": "owner.update"}).json()["events"]
    assert events[0]["details"]["owner"] == "initech"
    # Limits removed: the keys work again.
    assert live.root.put("/v1/owners/initech", json={}).status_code == 200
    assert auth(live, keys[0]) == 204


def test_revoke_and_disable_everything_an_owner_has(live: Live) -> None:
    keys = [live.make_key(owner="hooli") for _ in range(3)]
    disabled = live.root.post("/v1/owners/hooli/disable")
    assert disabled.status_code == 200
    assert sorted(k["id"] for k in disabled.json()["changed"]) == sorted(r["id"] for _, r in keys)
    assert all(auth(live, key) == 401 for key, _ in keys)
    revoked = live.root.post("/v1/owners/hooli/revoke").json()
    assert {k["status"] for k in revoked["changed"]} == {"revoked"}
    assert live.root.get("/v1/owners/hooli").json()["keys"]["revoked"] == 3
    for _, record in keys:
        actions = [
            e["action"]
            for e in live.root.get("/v1/audit", params={"key_id": record["id"]}).json()["events"]
        ]
        assert "key.revoke" in actions and "key.disable" in actions


def test_rules_and_errors(live: Live) -> None:
    live.make_key("billing:admin", owner="umbrella")
    writer, _ = live.make_key("keys:write", "keys:read")
    weak = live.client(writer)
    refused = weak.post("/v1/owners/umbrella/revoke")
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert weak.put("/v1/owners/umbrella", json={"credits": 1}).status_code == 403
    reader, _ = live.make_key("keys:read")
    assert live.client(reader).put("/v1/owners/x", json={}).status_code == 403
    assert live.root.get("/v1/owners/nobody").status_code == 404
    assert live.root.put("/v1/owners/x", json={"credits": -1}).status_code == 422
    assert live.root.put("/v1/owners/x", json={"rate_limits": ["lots"]}).status_code == 422
    assert live.root.put("/v1/owners/x", json={"colour": "red"}).status_code == 422
    assert live.client().get("/v1/owners/umbrella").status_code == 401


def test_the_openapi_document_describes_owners(live: Live) -> None:
    paths = live.client().get("/openapi.json").json()["paths"]
    assert {"put", "get"} <= set(paths["/v1/owners/{owner}"])
    assert "post" in paths["/v1/owners/{owner}/revoke"]
    assert "post" in paths["/v1/owners/{owner}/disable"]


def test_an_owner_with_a_slash_is_one_encoded_path_segment(live: Live) -> None:
    """An owner is free text: ``team/payments`` and even ``acme/revoke`` are names, each one
    path segment with its slash as ``%2F``, never read as another route."""
    payments = live.make_key(owner="team/payments")[0]
    tricky = live.make_key(owner="acme/revoke")[0]
    plain = live.make_key(owner="acme")[0]
    for path in ("/v1/owners/team%2Fpayments", "/v1/owners/team%2fpayments"):
        put = live.root.put(path, json={"metadata": {"path": path}})
        assert put.status_code == 200, put.text
        assert put.json()["owner"] == "team/payments" and put.json()["keys"]["active"] == 1
        assert live.root.get(path).json()["metadata"] == {"path": path}
    # A slash as it is separates segments: not an owner, and no action on another owner.
    assert live.root.put("/v1/owners/team/payments", json={}).status_code in (404, 405)
    assert live.root.get("/v1/owners/acme%2Frevoke").json()["owner"] == "acme/revoke"
    revoked = live.root.post("/v1/owners/acme%2Frevoke/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["owner"] == "acme/revoke" and len(revoked.json()["changed"]) == 1
    assert auth(live, tricky) == 401
    assert auth(live, plain) == 204 and auth(live, payments) == 204  # untouched
    # A name holding the text %2F stays that text (its percent sign sent as %25).
    odd = live.make_key(owner="50%2F50")[0]
    shown = live.root.get("/v1/owners/50%252F50")
    assert shown.status_code == 200 and shown.json()["owner"] == "50%2F50"
    assert auth(live, odd) == 204


def test_every_operation_reads_an_owners_name_alike(live: Live) -> None:
    """Keys store an owner trimmed; setting limits trims the name too. Reading, disabling
    and revoking must address that same owner: `/v1/owners/%20padded%20/revoke` revoking
    nothing (`changed: []`) while the owner's keys kept working was an incident response
    that silently failed."""
    key, record = live.make_key(owner=" padded ")
    assert record["owner"] == "padded"
    root = live.root
    assert root.put("/v1/owners/%20padded", json={"rate_limits": ["50/minute"]}).json()[
        "owner"
    ] == "padded"
    shown = root.get("/v1/owners/padded%20")
    assert shown.status_code == 200 and shown.json()["owner"] == "padded"
    disabled = root.post("/v1/owners/%20padded/disable")
    assert disabled.status_code == 200
    assert [k["id"] for k in disabled.json()["changed"]] == [record["id"]]
    assert auth(live, key) == 401
    revoked = root.post("/v1/owners/%20padded%20/revoke")
    assert revoked.status_code == 200
    assert [k["id"] for k in revoked.json()["changed"]] == [record["id"]]
    assert root.get(f"/v1/keys/{record['id']}").json()["status"] == "revoked"
