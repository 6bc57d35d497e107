"""Revoking or disabling all of an owner's keys (``POST /v1/owners/{owner}/revoke``,
``/disable``) stops every working key the acting key manages. A key already revoked never
changes again, so it is left alone and no longer stands in the way: one revoked key with
scopes beyond the acting key (say, a root key of the owner's, revoked years ago) made the
owner-wide stop a 403 that changed nothing, the moment a leak needed it. Over real HTTP,
on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import pytest

from tests.service.conftest import Live


@pytest.mark.parametrize("verb", ["revoke", "disable"])
def test_a_revoked_key_beyond_the_actor_does_not_block(engine_live: Live, verb: str) -> None:
    live = engine_live
    owner = f"leaky-{verb}"
    _, old = live.make_key("*", owner=owner)
    assert live.root.post(f"/v1/keys/{old['id']}/revoke").is_success
    working, _ = live.make_key("orders:read", owner=owner)
    stopper, _ = live.make_key("keys:write", "orders:read")
    answer = live.client(stopper).post(f"/v1/owners/{owner}/{verb}")
    assert answer.status_code == 200, answer.text
    code = live.root.post("/v1/keys/verify", json={"key": working}).json()["code"]
    assert code == {"revoke": "key_revoked", "disable": "key_disabled"}[verb]


def test_a_working_key_beyond_the_actor_still_blocks(engine_live: Live) -> None:
    live = engine_live
    live.make_key("*", owner="guarded")
    working, _ = live.make_key("orders:read", owner="guarded")
    stopper, _ = live.make_key("keys:write", "orders:read")
    answer = live.client(stopper).post("/v1/owners/guarded/revoke")
    assert answer.status_code == 403, answer.text
    assert live.root.post("/v1/keys/verify", json={"key": working}).json()["valid"] is True
