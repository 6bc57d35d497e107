"""A portal link's policy names the scopes an owner may give its keys, and the link's maker
may put in only scopes it holds. A maker holding ``*`` (the root key, the easy choice for
an application's backend) could hand an owner ``*``, ``keys:read`` or ``portal:write``: the
owner's keys then read every owner's keys, or opened any owner's portal. A policy now
refuses keyturn's own scopes and every wildcard granting one, however it is made: a link
over HTTP (both engines) or an ``OwnerPolicy`` in Python (the framework routers)."""

from __future__ import annotations

import pytest

from keyturn.errors import InvalidValue
from keyturn.portal import KEYTURN_SCOPES, OwnerPolicy
from tests.service.conftest import Live

FORBIDDEN = [["*"], ["keys:*"], ["orders:read", "portal:*"], ["verifications:*"],
             *([scope] for scope in KEYTURN_SCOPES)]


@pytest.mark.parametrize("scopes", FORBIDDEN, ids=lambda s: "+".join(s))
def test_a_link_cannot_hand_out_keyturns_own_scopes(engine_live: Live, scopes: list[str]) -> None:
    body = {"owner": "acme", "policy": {"scopes": scopes}}
    answer = engine_live.root.post("/v1/portal/sessions", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].endswith("policy.scopes")
    assert "url" not in answer.json()


def test_the_apis_own_scopes_and_wildcards_are_fine(engine_live: Live) -> None:
    body = {"owner": "acme", "policy": {"scopes": ["orders:*", "reports:read", "keysmith"]}}
    answer = engine_live.root.post("/v1/portal/sessions", json=body)
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("scopes", FORBIDDEN, ids=lambda s: "+".join(s))
def test_an_owner_policy_in_python_refuses_them_too(scopes: list[str]) -> None:
    with pytest.raises(InvalidValue):
        OwnerPolicy(frozenset(scopes))
