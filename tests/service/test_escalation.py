"""Privilege escalation through the admin API: every attempt is refused and leaves no trace.

The rule: a key grants only scopes it holds, and changes only keys whose scopes it holds.
"""

from __future__ import annotations

import pytest

from tests.service.conftest import Live


def refused(answer: object, *missing: str) -> None:
    import httpx

    assert isinstance(answer, httpx.Response)
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["code"] == "insufficient_scope"
    assert body["required_scopes"] == list(missing)
    assert f'scope="{" ".join(missing)}"' in answer.headers["www-authenticate"]


@pytest.mark.parametrize(
    ("held", "asked", "missing"),
    [
        (["keys:write"], ["*"], ["*"]),
        (["keys:write"], ["keys:*"], ["keys:*"]),
        (["keys:write"], ["keys:write", "keys:read"], ["keys:read"]),
        (["keys:write"], ["audit:read"], ["audit:read"]),
        (["keys:write", "orders:read"], ["orders:write"], ["orders:write"]),
        (["keys:*"], ["*"], ["*"]),
        (["keys:*"], ["audit:read"], ["audit:read"]),
    ],
)
def test_cannot_create_beyond_own_scopes(
    live: Live, held: list[str], asked: list[str], missing: list[str]
) -> None:
    key, record = live.make_key(*held)
    answer = live.client(key).post("/v1/keys", json={"name": "escalate", "scopes": asked})
    refused(answer, *missing)
    assert live.root.get("/v1/audit", params={"actor": record["id"]}).json()["events"] == []


@pytest.mark.parametrize(
    ("held", "asked"),
    [
        (["keys:write"], ["keys:write"]),
        (["keys:write", "orders:read"], ["orders:read"]),
        (["keys:*"], ["keys:read", "keys:verify"]),
        (["keys:*", "orders:*"], ["orders:write"]),
        (["*"], ["*", "anything"]),
    ],
)
def test_can_create_within_own_scopes(live: Live, held: list[str], asked: list[str]) -> None:
    key, _ = live.make_key(*held)
    answer = live.client(key).post("/v1/keys", json={"name": "fine", "scopes": asked})
    assert answer.status_code == 201, answer.text
    assert answer.json()["scopes"] == sorted(asked)


def test_cannot_add_scopes_by_update(live: Live) -> None:
    writer_key, writer = live.make_key("keys:write", "orders:read")
    writer_client = live.client(writer_key)
    child = writer_client.post("/v1/keys", json={"name": "child", "scopes": []}).json()
    refused(writer_client.patch(f"/v1/keys/{child['id']}", json={"scopes": ["*"]}), "*")
    refused(
        writer_client.patch(f"/v1/keys/{child['id']}", json={"scopes": ["orders:write"]}),
        "orders:write",
    )
    # ... nor to itself
    refused(
        writer_client.patch(f"/v1/keys/{writer['id']}", json={"scopes": ["keys:write", "*"]}),
        "*",
    )
    assert live.root.get(f"/v1/keys/{writer['id']}").json()["scopes"] == [
        "keys:write",
        "orders:read",
    ]
    # Narrowing within its own scopes is allowed.
    narrowed = writer_client.patch(f"/v1/keys/{child['id']}", json={"scopes": ["orders:read"]})
    assert narrowed.status_code == 200


@pytest.mark.parametrize("action", ["rotate", "revoke", "disable", "enable"])
def test_cannot_touch_a_stronger_key(live: Live, action: str) -> None:
    writer_key, _ = live.make_key("keys:write")
    _, strong = live.make_key("*", name="second root")
    answer = live.client(writer_key).post(f"/v1/keys/{strong['id']}/{action}")
    refused(answer, "*")
    after = live.root.get(f"/v1/keys/{strong['id']}").json()
    assert after["status"] == "active" and after["replaced_by"] is None


def test_cannot_touch_the_root_key(live: Live) -> None:
    writer_key, _ = live.make_key("keys:write")
    root_id = live.client(live.root_key).get("/auth").headers["x-keyturn-key-id"]
    writer = live.client(writer_key)
    refused(writer.post(f"/v1/keys/{root_id}/rotate"), "*")
    refused(writer.post(f"/v1/keys/{root_id}/revoke"), "*")
    refused(writer.patch(f"/v1/keys/{root_id}", json={"expires_at": "2000-01-01T00:00:00Z"}), "*")
    refused(writer.patch(f"/v1/keys/{root_id}", json={"name": "mine now"}), "*")
    assert live.client(live.root_key).get("/auth").status_code == 204


def test_cannot_change_a_key_with_other_scopes(live: Live) -> None:
    """Same breadth, different scopes: a billing admin cannot rotate an orders key."""
    billing_key, _ = live.make_key("keys:write", "billing:*")
    _, orders = live.make_key("orders:write")
    refused(live.client(billing_key).post(f"/v1/keys/{orders['id']}/rotate"), "orders:write")


def test_rotation_keeps_scopes_and_cannot_widen(live: Live) -> None:
    writer_key, _ = live.make_key("keys:write", "orders:read")
    writer = live.client(writer_key)
    child = writer.post("/v1/keys", json={"name": "c", "scopes": ["orders:read"]}).json()
    rotated = writer.post(f"/v1/keys/{child['id']}/rotate", json={"grace_seconds": 0})
    assert rotated.status_code == 201
    assert rotated.json()["scopes"] == ["orders:read"]


def test_read_only_key_cannot_write(live: Live) -> None:
    reader_key, _ = live.make_key("keys:read")
    _, target = live.make_key()
    reader = live.client(reader_key)
    assert reader.get(f"/v1/keys/{target['id']}").status_code == 200
    refused(reader.post("/v1/keys", json={"name": "x"}), "keys:write")
    refused(reader.post(f"/v1/keys/{target['id']}/revoke"), "keys:write")
    refused(reader.get("/v1/audit"), "audit:read")
    refused(reader.post("/v1/keys/verify", json={"key": "x"}), "keys:verify")


def test_a_revoked_admin_key_is_refused_at_once(live: Live) -> None:
    admin_key, admin = live.make_key("keys:write")
    admin_client = live.client(admin_key)
    assert admin_client.post("/v1/keys", json={"name": "ok"}).status_code == 201
    live.root.post(f"/v1/keys/{admin['id']}/revoke")
    answer = admin_client.post("/v1/keys", json={"name": "too late"})
    assert answer.status_code == 401 and answer.json()["code"] == "key_revoked"
