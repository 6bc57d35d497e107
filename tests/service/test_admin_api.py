"""The admin API over real HTTP: each endpoint's success and failure paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from tests.service.conftest import KEY_RE, Live


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == code
    assert body["status"] == status
    return body


def field_error(answer: httpx.Response, field: str) -> None:
    body = problem(answer, 422, "invalid_request")
    assert field in body["detail"]
    assert field in [e["field"] for e in body["errors"]]


# -- authentication, the same on every endpoint -------------------------------------------

ENDPOINTS = [
    ("POST", "/v1/keys", {"name": "x"}),
    ("GET", "/v1/keys", None),
    ("GET", "/v1/keys/key_0000000000000000", None),
    ("PATCH", "/v1/keys/key_0000000000000000", {}),
    ("POST", "/v1/keys/key_0000000000000000/revoke", None),
    ("POST", "/v1/keys/key_0000000000000000/disable", None),
    ("POST", "/v1/keys/key_0000000000000000/enable", None),
    ("POST", "/v1/keys/key_0000000000000000/rotate", None),
    ("GET", "/v1/audit", None),
    ("POST", "/v1/keys/verify", {"key": "x"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_a_key(live: Live, method: str, path: str, body: object) -> None:
    answer = live.client().request(method, path, json=body)
    problem(answer, 401, "missing_credentials")
    assert answer.headers["www-authenticate"] == 'Bearer realm="api"'
    answer = live.client("kt_live_nope").request(method, path, json=body)
    problem(answer, 401, "malformed_key")
    answer = live.client(**{"authorization": "Bearer"}).request(method, path, json=body)
    problem(answer, 400, "malformed_credentials")


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_its_scope(live: Live, method: str, path: str, body: object) -> None:
    key, _ = live.make_key("api")
    answer = live.client(key).request(method, path, json=body)
    body_ = problem(answer, 403, "insufficient_scope")
    assert len(body_["required_scopes"]) == 1
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]


def test_unknown_endpoint_and_method_are_problems(live: Live) -> None:
    problem(live.root.get("/v1/nothing"), 404, "not_found")
    answer = live.root.delete("/v1/keys")
    problem(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "GET, POST"
    assert live.root.delete("/v1/keys/key_0").headers["allow"] == "GET, PATCH"
    assert live.root.get("/v1/keys/verify").headers["allow"] == "POST"


def test_openapi_document(live: Live) -> None:
    document = live.client().get("/openapi.json").json()
    assert document["info"]["title"] == "keyturn"
    assert {"/v1/keys", "/v1/keys/{key_id}", "/v1/keys/verify", "/v1/audit"} <= set(
        document["paths"]
    )
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schemes["APIKeyHeader"]["name"] == "x-api-key"
    created = document["paths"]["/v1/keys"]["post"]["responses"]
    assert "application/problem+json" in created["422"]["content"]
    assert "Problem" in document["components"]["schemas"]


# -- create -------------------------------------------------------------------------------


def test_create_shows_the_key_once(live: Live) -> None:
    answer = live.root.post(
        "/v1/keys",
        json={"name": "billing", "scopes": ["orders:read"], "owner": "team-b",
              "metadata": {"tier": "gold", "n": [1, 2.5, None]}},
    )
    assert answer.status_code == 201
    created = answer.json()
    assert KEY_RE.fullmatch(created["key"])
    assert created["name"] == "billing"
    assert created["owner"] == "team-b"
    assert created["scopes"] == ["orders:read"]
    assert created["metadata"] == {"tier": "gold", "n": [1, 2.5, None]}
    assert created["status"] == "active"
    lifetime = datetime.fromisoformat(created["expires_at"]) - datetime.fromisoformat(
        created["created_at"]
    )
    assert lifetime == timedelta(days=90)
    shown = live.root.get(f"/v1/keys/{created['id']}").json()
    assert shown["key"] != created["key"]
    assert shown["key"].endswith(created["key"][-4:]) and "…" in shown["key"]
    assert created["key"] not in live.root.get("/v1/keys").text
    assert live.client(created["key"]).get("/auth").status_code == 204


def test_create_options(live: Live) -> None:
    _, never = live.make_key(expires_in=None)
    assert never["expires_at"] is None
    _, short = live.make_key(expires_in=60)
    assert short["expires_at"] is not None
    key, test = live.make_key(prefix="kt_test")
    assert key.startswith("kt_test_") and test["prefix"] == "kt_test"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body.name"),
        ({"name": ""}, "body.name"),
        ({"name": "   "}, "body.name"),
        ({"name": "a\nb"}, "body.name"),
        ({"name": "x" * 201}, "body.name"),
        ({"name": 5}, "body.name"),
        ({"name": "x", "scopes": ["has space"]}, "body.scopes.0"),
        ({"name": "x", "scopes": "admin"}, "body.scopes"),
        ({"name": "x", "scope": ["admin"]}, "body.scope"),
        ({"name": "x", "expires_in": 0}, "body.expires_in"),
        ({"name": "x", "expires_in": 10**12}, "body.expires_in"),
        ({"name": "x", "prefix": "BAD"}, "body.prefix"),
        ({"name": "x", "prefix": "acme_live"}, "body.prefix"),
        ({"name": "x", "owner": ""}, "body.owner"),
        ({"name": "x", "metadata": []}, "body.metadata"),
        ({"name": "x", "metadata": {"big": "x" * 9000}}, "body.metadata"),
    ],
)
def test_create_names_the_bad_field(live: Live, body: dict[str, Any], field: str) -> None:
    field_error(live.root.post("/v1/keys", json=body), field)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"name": "x", "metadata": {"a": NaN}}', "body.metadata"),
        ('{"name": "x", "metadata": {"a": Infinity}}', "body.metadata"),
        ('{"name": "\\ud800"}', "body.name"),
        ('{"name": "x", "metadata": {"a": "\\udfff"}}', "body.metadata"),
        ('{"name": "x", "metadata": ' + '{"a": ' * 12 + "1" + "}" * 12 + "}", "body.metadata"),
        ('{"name": "x",', "body"),
        ("[]", "body"),
        ("", "body"),
    ],
)
def test_garbage_bodies_are_422_not_500(live: Live, raw: str, field: str) -> None:
    answer = live.root.post("/v1/keys", content=raw, headers={"content-type": "application/json"})
    body = problem(answer, 422, "invalid_request")
    assert body["errors"][0]["field"].startswith(field)


def test_validation_error_never_echoes_the_input(live: Live) -> None:
    secret = "kt_live_" + "A" * 36
    answer = live.root.post("/v1/keys/verify", json={"key": secret, "scopes": "x y"})
    problem(answer, 422, "invalid_request")
    assert secret not in answer.text


# -- list and get ---------------------------------------------------------------------------


def test_list_pages_and_filters(live: Live) -> None:
    made = [live.make_key(owner="pager", name=f"page {i}")[1]["id"] for i in range(5)]
    seen: list[str] = []
    after = None
    while True:
        params = {"owner": "pager", "limit": 2, **({"after": after} if after else {})}
        page = live.root.get("/v1/keys", params=params).json()
        seen += [k["id"] for k in page["keys"]]
        after = page["next"]
        if after is None:
            break
    assert seen == list(reversed(made))  # newest first
    assert all("…" in k["key"] for k in live.root.get("/v1/keys").json()["keys"])

    live.root.post(f"/v1/keys/{made[0]}/revoke")
    revoked = live.root.get("/v1/keys", params={"owner": "pager", "status": "revoked"}).json()
    assert [k["id"] for k in revoked["keys"]] == [made[0]]
    found = live.root.get("/v1/keys", params={"search": "page 3"}).json()
    assert [k["id"] for k in found["keys"]] == [made[3]]
    _, test_key = live.make_key(prefix="kt_test", owner="pager")
    only_test = live.root.get("/v1/keys", params={"prefix": "kt_test", "owner": "pager"}).json()
    assert [k["id"] for k in only_test["keys"]] == [test_key["id"]]
    soon = (datetime.now(UTC) + timedelta(days=91)).isoformat()
    expiring = live.root.get("/v1/keys", params={"owner": "pager", "expiring_before": soon})
    assert len(expiring.json()["keys"]) == 6


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 1001}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"status": "gone"}, "query.status"),
        ({"expiring_before": "tomorrow"}, "query.expiring_before"),
        ({"expiring_before": "2030-01-01T00:00:00"}, "query.expiring_before"),
    ],
)
def test_list_names_the_bad_parameter(live: Live, params: dict[str, Any], field: str) -> None:
    field_error(live.root.get("/v1/keys", params=params), field)


def test_get_and_not_found(live: Live) -> None:
    _, record = live.make_key("a", name="shown")
    shown = live.root.get(f"/v1/keys/{record['id']}").json()
    assert shown == {**record, "key": shown["key"]}
    body = problem(live.root.get("/v1/keys/key_ffffffffffffffff"), 404, "key_not_found")
    assert "key_ffffffffffffffff" in body["detail"]
    field_error(live.root.get("/v1/keys/" + "k" * 65), "path.key_id")


# -- update ---------------------------------------------------------------------------------


def test_update_changes_only_what_is_given(live: Live) -> None:
    _, record = live.make_key("a", owner="o", metadata={"x": 1})
    path = f"/v1/keys/{record['id']}"
    changed = live.root.patch(path, json={"name": "renamed"}).json()
    assert changed["name"] == "renamed"
    assert (changed["owner"], changed["scopes"], changed["metadata"]) == ("o", ["a"], {"x": 1})
    changed = live.root.patch(path, json={"owner": None, "scopes": ["b", "c"], "metadata": {}})
    assert changed.json()["owner"] is None
    assert changed.json()["scopes"] == ["b", "c"]
    assert changed.json()["metadata"] == {}
    later = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    changed = live.root.patch(path, json={"expires_at": later.isoformat()}).json()
    assert datetime.fromisoformat(changed["expires_at"]) == later
    assert live.root.patch(path, json={"expires_at": None}).json()["expires_at"] is None
    assert live.root.patch(path, json={}).json()["name"] == "renamed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "body.name"),
        ({"scopes": None}, "body.scopes"),
        ({"metadata": None}, "body.metadata"),
        ({"expires_at": "2031-01-01T00:00:00"}, "body.expires_at"),
        ({"expires_at": "soon"}, "body.expires_at"),
        ({"revoked_at": None}, "body.revoked_at"),
    ],
)
def test_update_names_the_bad_field(live: Live, body: dict[str, Any], field: str) -> None:
    _, record = live.make_key()
    field_error(live.root.patch(f"/v1/keys/{record['id']}", json=body), field)


def test_update_unknown_key(live: Live) -> None:
    problem(live.root.patch("/v1/keys/key_ffffffffffffffff", json={"name": "x"}), 404,
            "key_not_found")


# -- revoke, disable, enable, rotate ---------------------------------------------------------


def test_revoke_disable_enable(live: Live) -> None:
    key, record = live.make_key()
    path = f"/v1/keys/{record['id']}"
    assert live.root.post(f"{path}/disable").json()["status"] == "disabled"
    assert live.client(key).get("/auth").json()["code"] == "key_disabled"
    assert live.root.post(f"{path}/enable").json()["status"] == "active"
    assert live.client(key).get("/auth").status_code == 204
    revoked = live.root.post(f"{path}/revoke").json()
    assert revoked["status"] == "revoked" and revoked["revoked_at"]
    assert live.root.post(f"{path}/revoke").json()["revoked_at"] == revoked["revoked_at"]
    body = problem(live.root.post(f"{path}/enable"), 409, "conflict")
    assert "revoked" in body["detail"]
    problem(live.root.post(f"{path}/disable"), 409, "conflict")
    for verb in ("revoke", "disable", "enable"):
        problem(live.root.post(f"/v1/keys/key_ffffffffffffffff/{verb}"), 404, "key_not_found")


def test_rotate_with_grace(live: Live) -> None:
    old_key, old = live.make_key("a", owner="rot", metadata={"m": 1})
    answer = live.root.post(f"/v1/keys/{old['id']}/rotate", json={"grace_seconds": 3600})
    assert answer.status_code == 201
    new = answer.json()
    assert KEY_RE.fullmatch(new["key"]) and new["key"] != old_key
    assert (new["name"], new["owner"], new["scopes"], new["metadata"]) == (
        old["name"], "rot", ["a"], {"m": 1},
    )
    assert new["replaces"] == old["id"]
    old_now = live.root.get(f"/v1/keys/{old['id']}").json()
    assert old_now["replaced_by"] == new["id"] and old_now["grace_until"]
    assert live.client(old_key).get("/auth").status_code == 204  # within grace
    assert live.client(new["key"]).get("/auth").status_code == 204
    body = problem(live.root.post(f"/v1/keys/{old['id']}/rotate"), 409, "conflict")
    assert "already rotated" in body["detail"]


@pytest.mark.parametrize(
    "body",
    [{"grace_seconds": 7 * 86400},
     {"grace_until_quiet_seconds": 900, "grace_max_seconds": 7 * 86400}],
    ids=["fixed", "quiet"],
)  # fmt: skip
def test_rotation_says_the_old_key_stops_at_its_expiry(live: Live, body: dict[str, int]) -> None:
    """A key expiring in 12 hours, rotated with a week's grace: the API answer and the
    client's Rotated-Until header named a week, though the key stops in 12 hours."""
    old_key, old = live.make_key("a", expires_in=12 * 3600)
    assert live.root.post(f"/v1/keys/{old['id']}/rotate", json=body).status_code == 201
    now = live.root.get(f"/v1/keys/{old['id']}").json()
    latest = now["grace_max"] or now["grace_until"]
    assert latest == now["expires_at"] == old["expires_at"]
    answer = live.client(old_key).get("/auth")
    assert answer.status_code == 204
    until = parsedate_to_datetime(answer.headers["keyturn-key-rotated-until"])
    assert until <= datetime.fromisoformat(old["expires_at"])


def test_rotate_default_body_and_failures(live: Live) -> None:
    _, record = live.make_key()
    answer = live.root.post(f"/v1/keys/{record['id']}/rotate")  # no body: 24 h grace
    assert answer.status_code == 201
    grace = datetime.fromisoformat(live.root.get(f"/v1/keys/{record['id']}").json()["grace_until"])
    assert timedelta(hours=23) < grace - datetime.now(UTC) <= timedelta(hours=24)
    problem(live.root.post("/v1/keys/key_ffffffffffffffff/rotate"), 404, "key_not_found")
    _, revoked = live.make_key()
    live.root.post(f"/v1/keys/{revoked['id']}/revoke")
    problem(live.root.post(f"/v1/keys/{revoked['id']}/rotate"), 409, "conflict")
    field_error(
        live.root.post(f"/v1/keys/{revoked['id']}/rotate", json={"grace_seconds": -1}),
        "body.grace_seconds",
    )


# -- audit ----------------------------------------------------------------------------------


def test_audit_records_the_acting_key(live: Live) -> None:
    admin_key, admin = live.make_key("keys:write", "keys:read", "audit:read", name="admin")
    admin_client = live.client(admin_key)
    made = admin_client.post("/v1/keys", json={"name": "by admin"}).json()
    admin_client.patch(f"/v1/keys/{made['id']}", json={"name": "renamed"})
    admin_client.post(f"/v1/keys/{made['id']}/revoke")
    events = admin_client.get("/v1/audit", params={"key_id": made["id"]}).json()["events"]
    assert [e["action"] for e in events] == ["key.revoke", "key.update", "key.create"]
    assert {e["actor"] for e in events} == {admin["id"]}
    by_actor = admin_client.get("/v1/audit", params={"actor": admin["id"]}).json()["events"]
    assert len(by_actor) == 3
    updates = admin_client.get(
        "/v1/audit", params={"actor": admin["id"], "action": "key.update"}
    ).json()["events"]
    assert updates[0]["details"] == {"name": "renamed"}
    assert made["key"] not in admin_client.get("/v1/audit").text


def test_audit_pages(live: Live) -> None:
    for _ in range(3):
        live.make_key(owner="audit-pages")
    first = live.root.get("/v1/audit", params={"limit": 2}).json()
    assert len(first["events"]) == 2 and first["next"] == first["events"][-1]["id"]
    second = live.root.get("/v1/audit", params={"limit": 2, "before": first["next"]}).json()
    assert second["events"][0]["id"] < first["next"]
    field_error(live.root.get("/v1/audit", params={"before": 0}), "query.before")
    field_error(live.root.get("/v1/audit", params={"before": 2**63}), "query.before")


# -- verify API -----------------------------------------------------------------------------


def test_verify_api(live: Live) -> None:
    checker_key, _ = live.make_key("keys:verify")
    checker = live.client(checker_key)
    key, record = live.make_key("orders:read", owner="shop", metadata={"plan": "pro"})
    answer = checker.post("/v1/keys/verify", json={"key": key, "scopes": ["orders:read"]})
    assert answer.status_code == 200
    assert answer.json() == {
        "valid": True,
        "code": "valid",
        "detail": "",
        "hint": "",
        "key": {
            "id": record["id"],
            "name": "test key",
            "owner": "shop",
            "scopes": ["orders:read"],
            "roles": [],
            "metadata": {"plan": "pro"},
            "expires_at": record["expires_at"],
            "rotated_until": None,
        },
        "missing": None,
        "retry_after": None,
    }
    denied = checker.post("/v1/keys/verify", json={"key": key, "scopes": ["orders:write"]}).json()
    assert (denied["valid"], denied["code"]) == (False, "insufficient_scope")
    assert denied["key"]["id"] == record["id"] and "orders:write" in denied["detail"]
    unknown = checker.post("/v1/keys/verify", json={"key": "kt_live_" + "0" * 36}).json()
    assert unknown["code"] in ("checksum_mismatch", "unknown_key") and unknown["key"] is None
    for garbage in ("", "nonsense", "Bearer x", '"quoted"', "kt_live_short", "ü" * 50):
        result = checker.post("/v1/keys/verify", json={"key": garbage})
        assert result.status_code == 200
        assert result.json()["valid"] is False and result.json()["hint"]
    field_error(checker.post("/v1/keys/verify", json={}), "body.key")
    field_error(checker.post("/v1/keys/verify", json={"key": "x" * 1025}), "body.key")


@pytest.mark.parametrize(
    ("moment", "finds"),
    [
        ("0434-11-09T15:11:45Z", False),
        ("0001-01-01T00:00:00+05:00", False),  # before what datetime holds, in UTC
        ("1969-12-31T23:59:59Z", False),
        ("9999-12-31T23:59:59-14:00", True),  # after it
        ("9500-01-01T00:00:00Z", True),
    ],
)
def test_a_time_filter_outside_the_stored_range_is_a_filter(
    live: Live, moment: str, finds: bool
) -> None:
    """Any date-time the schema allows is a filter: before 1970 it selects nothing, after
    9998 everything that expires (every stored time lies between)."""
    _, record = live.make_key(owner="filter-range")  # expires in 90 days, the default
    answer = live.root.get(
        "/v1/keys", params={"expiring_before": moment, "owner": "filter-range"}
    )
    assert answer.status_code == 200, answer.text
    assert (record["id"] in answer.text) is finds
    assert live.root.get("/v1/verifications", params={"since": moment}).status_code == 200
