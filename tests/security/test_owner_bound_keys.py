"""A key bound by its owner's shared limits keeps every key it hands out inside them.

An owner's credits and rate limits are shared by all of its keys, "so a client cannot
escape a limit by minting more keys". But a key of that owner holding ``keys:write`` could
mint a key for no owner (or another one), move itself to another owner, or rotate a key of
no owner it manages and take the successor: each of those keys was free of the owner's
limits, so a client whose owner had 3 credits left made unlimited requests. A key-actor is
bounded by itself on every other axis (scopes, lifetime, its own allowance, addresses);
its owner's limits are part of that allowance. Over real HTTP, SQLite and PostgreSQL +
Redis."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from tests.service.conftest import Live

_names = itertools.count()


def verify(live: Live, key: str) -> Any:
    return live.root.post("/v1/keys/verify", json={"key": key}).json()


def bound_key(live: Live, *scopes: str, **limits: Any) -> tuple[str, str, dict[str, Any]]:
    """An owner with shared limits, and a key of it holding ``scopes``."""
    owner = f"limited-{next(_names)}-{len(live.url)}"
    limits = limits or {"credits": 50, "rate_limits": ["1000/hour"]}
    assert live.root.put(f"/v1/owners/{owner}", json=limits).status_code == 200
    key, record = live.make_key(*scopes, owner=owner)
    return owner, key, record


def test_a_key_it_makes_is_its_owners(engine_live: Live) -> None:
    live = engine_live
    owner, key, _ = bound_key(live, "keys:write", "orders:read", credits=3)
    made = live.client(key).post("/v1/keys", json={"name": "x", "scopes": ["orders:read"]})
    assert made.status_code == 201, made.text
    assert made.json()["owner"] == owner
    # The owner had 3 credits; the request making the key spent one; two are left to share.
    codes = [verify(live, made.json()["key"])["code"] for _ in range(4)]
    assert codes == ["valid", "valid", "usage_exceeded", "usage_exceeded"]


@pytest.mark.parametrize("elsewhere", [None, "free-co"], ids=["no-owner", "another-owner"])
def test_it_makes_no_key_outside_its_owner(engine_live: Live, elsewhere: str | None) -> None:
    live = engine_live
    owner, key, _ = bound_key(live, "keys:write", "orders:read")
    body = {"name": "x", "scopes": ["orders:read"], "owner": elsewhere}
    made = live.client(key).post("/v1/keys", json=body)
    if elsewhere is None:  # an owner left out or null: the key is its owner's
        assert made.status_code == 201 and made.json()["owner"] == owner
        return
    assert made.status_code == 403, made.text
    assert made.json()["code"] == "grant_exceeded"
    assert owner in made.json()["detail"]


@pytest.mark.parametrize("elsewhere", [None, "free-co"], ids=["no-owner", "another-owner"])
def test_it_does_not_move_itself_out(engine_live: Live, elsewhere: str | None) -> None:
    live = engine_live
    owner, key, record = bound_key(live, "keys:write", "orders:read")
    moved = live.client(key).patch(f"/v1/keys/{record['id']}", json={"owner": elsewhere})
    assert moved.status_code in (200, 403), moved.text
    assert live.root.get(f"/v1/keys/{record['id']}").json()["owner"] == owner


def test_it_does_not_rotate_a_key_outside_its_owner(engine_live: Live) -> None:
    live = engine_live
    _, key, _ = bound_key(live, "keys:write", "orders:read")
    _, free = live.make_key("orders:read")
    rotated = live.client(key).post(f"/v1/keys/{free['id']}/rotate", json={})
    assert rotated.status_code == 403, rotated.text
    assert rotated.json()["code"] == "grant_exceeded"
    assert live.root.get(f"/v1/keys/{free['id']}").json()["status"] == "active"


def test_it_still_rotates_its_owners_keys(engine_live: Live) -> None:
    live = engine_live
    owner, key, _ = bound_key(live, "keys:write", "orders:read")
    _, sibling = live.make_key("orders:read", owner=owner)
    rotated = live.client(key).post(f"/v1/keys/{sibling['id']}/rotate", json={})
    assert rotated.status_code == 201, rotated.text
    assert rotated.json()["owner"] == owner


def test_it_does_not_loosen_its_own_owners_limits(engine_live: Live) -> None:
    """With ``owners:write`` too, it could lift the cap it is bound by (``PUT {}``)."""
    live = engine_live
    owner, key, _ = bound_key(live, "owners:write", "keys:read", "orders:read", credits=40)
    lifted = live.client(key).put(f"/v1/owners/{owner}", json={})
    assert lifted.status_code == 403, lifted.text
    assert lifted.json()["code"] == "grant_exceeded"
    assert live.root.get(f"/v1/owners/{owner}").json()["credits"] is not None
    tighter = live.client(key).put(f"/v1/owners/{owner}", json={"credits": 5})
    assert tighter.status_code == 200, tighter.text


def test_an_owner_without_limits_binds_nothing(engine_live: Live) -> None:
    live = engine_live
    key, _ = live.make_key("keys:write", "orders:read", owner="plain-label-co")
    made = live.client(key).post("/v1/keys", json={"name": "x", "scopes": ["orders:read"]})
    assert made.status_code == 201 and made.json()["owner"] is None


def test_it_opens_no_portal_for_another_owner(engine_live: Live) -> None:
    """A portal's keys are its owner's: a link for another owner would hand out keys free
    of the limits binding the key that opened it."""
    live = engine_live
    owner, key, _ = bound_key(live, "portal:write", "orders:read")
    policy = {"scopes": ["orders:read"]}
    other = live.client(key).post(
        "/v1/portal/sessions", json={"owner": "free-co", "policy": policy}
    )
    assert other.status_code == 403, other.text
    assert other.json()["code"] == "grant_exceeded"
    own = live.client(key).post("/v1/portal/sessions", json={"owner": owner, "policy": policy})
    assert own.status_code == 201, own.text


def test_the_dashboard_keeps_its_keys_inside_the_owner_too(engine_live: Live) -> None:
    """The dashboard's new-key form acts through the same admin layer: a bound admin's key
    for another owner is refused, one with the owner left empty is its owner's."""
    from tests.ui.test_http import token

    live = engine_live
    owner, key, _ = bound_key(live, "keys:read", "keys:write", "orders:read")
    with httpx.Client(base_url=live.url, timeout=10, follow_redirects=False) as browser:
        form = browser.get("/ui/login")
        signed = browser.post("/ui/login", data={"csrf": token(form), "key": key})
        assert signed.status_code == 303, signed.text
        page = browser.get("/ui/keys/new")
        fields = {"csrf": token(page), "name": "from-the-dashboard", "scopes": "orders:read"}
        refused = browser.post("/ui/keys/new", data={**fields, "owner": "free-co"})
        assert refused.status_code == 403, refused.text
        made = browser.post("/ui/keys/new", data={**fields, "owner": ""})
        assert made.status_code in (200, 201, 303), made.text
    listed = live.root.get("/v1/keys", params={"limit": 200}).json()["keys"]
    mine = [k for k in listed if k["name"] == "from-the-dashboard"]
    assert [k["owner"] for k in mine] == [owner]


def test_a_portal_it_opened_closes_once_its_owner_is_limited(engine_live: Live) -> None:
    """A link opened while the maker's owner had no limits stops working when limits bind
    the maker: its visitor would go on making keys outside them."""
    live = engine_live
    maker_owner = f"maker-{next(_names)}"
    key, _ = live.make_key("portal:write", "orders:read", owner=maker_owner)
    policy = {"scopes": ["orders:read"]}
    opened = live.client(key).post(
        "/v1/portal/sessions", json={"owner": "client-co", "policy": policy}
    )
    assert opened.status_code == 201, opened.text
    with httpx.Client(base_url=live.url, timeout=10) as browser:
        assert browser.get(opened.json()["url"]).status_code == 200
        assert browser.get("/portal").status_code == 200
        limits = {"credits": 100}
        assert live.root.put(f"/v1/owners/{maker_owner}", json=limits).status_code == 200
        assert browser.get("/portal").status_code == 401
