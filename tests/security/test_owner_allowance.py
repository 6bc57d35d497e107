"""An owner's shared limits are an allowance like a key's own: a key that is itself
limited (credits, refill, rate limits) cannot set an owner's limits looser than its own,
as it cannot give a key looser ones. Otherwise a key holding 5 credits, managing the keys
of an owner that the root key had capped, could lift the cap (``PUT`` ``{}``) and leave
those keys unlimited. Over real HTTP, on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.conftest import Live


def verify(live: Live, key: str) -> Any:
    return live.root.post("/v1/keys/verify", json={"key": key}).json()


@pytest.mark.parametrize(
    "looser",
    [{}, {"credits": 6}, {"credits": 5, "refill": {"interval": "daily", "amount": 5}},
     {"rate_limits": ["100/second"]}],
    ids=["none", "more-credits", "a-refill", "rate-limits-only"],
)
def test_a_limited_key_cannot_loosen_an_owner(engine_live: Live, looser: dict[str, Any]) -> None:
    live = engine_live
    owner = f"capped-{len(live.root.get('/v1/keys', params={'limit': 200}).json()['keys'])}"
    capped = {"credits": 1}
    assert live.root.put(f"/v1/owners/{owner}", json=capped).status_code == 200
    customer, _ = live.make_key("orders:read", owner=owner)
    limited, _ = live.make_key("keys:read", "owners:write", "orders:read", credits=5)
    answer = live.client(limited).put(f"/v1/owners/{owner}", json=looser)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "grant_exceeded"
    assert live.root.get(f"/v1/owners/{owner}").json()["credits"] == 1
    assert verify(live, customer)["valid"] is True
    assert verify(live, customer)["code"] == "usage_exceeded"  # the owner's 1 credit held


def test_a_limited_key_may_set_limits_within_its_own(engine_live: Live) -> None:
    live = engine_live
    live.make_key("orders:read", owner="within")
    limited, _ = live.make_key("owners:write", "orders:read", credits=5)
    tighter = {"credits": 3, "rate_limits": ["1/second"]}
    answer = live.client(limited).put("/v1/owners/within", json=tighter)
    assert answer.status_code == 200, answer.text
    assert answer.json()["credits"] == 3


def test_a_change_is_answered_without_keys_read(engine_live: Live) -> None:
    """A key with ``owners:write`` alone may set an owner's limits; the answer shows what it
    set (it was a 403 for a change already made, so a client retried or gave up on a
    change that had happened)."""
    live = engine_live
    live.make_key("orders:read", owner="writer-only")
    writer, _ = live.make_key("owners:write", "orders:read")
    answer = live.client(writer).put("/v1/owners/writer-only", json={"credits": 7})
    assert answer.status_code == 200, answer.text
    assert answer.json()["credits"] == 7 and answer.json()["keys"]["active"] == 1


def test_keys_write_sets_no_limits_for_keys_made_later(engine_live: Live) -> None:
    """Owner limits bind the keys made for the owner later, by anyone, so no check of the
    owner's keys today covers them: a ``keys:write`` key (no limits of its own) could plant
    ``credits: 0`` for an owner with no keys yet, blocking the keys the root makes there
    next, or lift a cap the root set for keys to come. Setting them needs
    ``owners:write``, on the API as on the dashboard."""
    live = engine_live
    writer, _ = live.make_key("keys:read", "keys:write", "orders:read")
    planted = live.client(writer).put("/v1/owners/newcomer-co", json={"credits": 0})
    assert planted.status_code == 403 and planted.json()["code"] == "insufficient_scope"
    assert "owners:write" in planted.text
    assert live.root.put("/v1/owners/capped-ahead", json={"credits": 1}).status_code == 200
    lifted = live.client(writer).put("/v1/owners/capped-ahead", json={})
    assert lifted.status_code == 403
    customer, _ = live.make_key("orders:read", owner="newcomer-co")
    assert verify(live, customer)["code"] == "valid"
    assert live.root.get("/v1/owners/capped-ahead").json()["credits"] == 1
