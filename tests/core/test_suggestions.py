"""Least-privilege suggestions: the rules of ``keyturn._suggestions`` (pure), and the admin
layer's ``suggest`` and ``narrow`` on every engine (``store_url``)."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_address

import pytest

from keyturn import KeyManager
from keyturn._suggestions import Need, address_ranges, suggest
from keyturn.actor import Actor
from keyturn.errors import InvalidValue

SINCE = datetime(2026, 12, 1, tzinfo=UTC)


def ranges(*addresses: str, allowed: tuple[str, ...] = ()) -> tuple[str, ...]:
    return address_ranges([ip_address(a) for a in addresses], allowed)


def test_few_addresses_of_a_range_are_listed_one_by_one() -> None:
    assert ranges("203.0.113.7", "203.0.113.9", "198.51.100.1") == (
        "198.51.100.1/32", "203.0.113.7/32", "203.0.113.9/32",
    )  # fmt: skip
    assert ranges("2001:db8::1", "2001:db8:0:1::5") == ("2001:db8::1/128", "2001:db8:0:1::5/128")


def test_a_busy_range_becomes_its_24_or_48() -> None:
    five = [f"203.0.113.{i}" for i in (1, 20, 40, 60, 80)]
    assert ranges(*five, "198.51.100.1") == ("198.51.100.1/32", "203.0.113.0/24")
    six = [f"2001:db8:7:{i}::1" for i in range(5)]
    assert ranges(*six) == ("2001:db8:7::/48",)


def test_adjacent_ranges_merge_and_nothing_reaches_outside_the_current_list() -> None:
    both = [f"10.0.{n}.{i}" for n in (0, 1) for i in range(5)]
    assert ranges(*both) == ("10.0.0.0/23",)
    # The key may only be used from 10.0.0.0/25: a /24 would widen it, so addresses instead.
    inside = [f"10.0.0.{i}" for i in (1, 5, 9, 13, 17)]
    assert ranges(*inside, allowed=("10.0.0.0/25",)) == tuple(f"{a}/32" for a in inside)
    assert ranges(*inside, allowed=("10.0.0.0/8",)) == ("10.0.0.0/24",)


def test_scopes_needed_and_unused_with_wildcards_and_roles() -> None:
    needs = [Need(("orders:read",), "203.0.113.7", 5), Need((), "203.0.113.7", 2)]
    found = suggest("k", frozenset({"orders:*", "billing:write"}), (), needs, 7, days=7,
                    since=SINCE)  # fmt: skip
    assert found.complete and found.scopes == ("orders:read",)
    assert found.unused == ("billing:write", "orders:*")
    assert found.narrows(frozenset({"orders:*", "billing:write"}), ())
    # A scope its roles grant stays with the roles.
    by_role = suggest("k", frozenset({"billing:write"}), (), needs, 7, days=7, since=SINCE,
                      by_roles=frozenset({"orders:read"}))  # fmt: skip
    assert by_role.scopes == () and by_role.unused == ("billing:write",)


def test_a_suggestion_is_complete_only_when_every_request_is_accounted_for() -> None:
    held = frozenset({"orders:read"})
    seen = [Need(("orders:read",), "203.0.113.7", 3)]
    partial = suggest("k", held, (), seen, 5, days=7, since=SINCE)
    assert not partial.complete and "only 3 of the 5" in partial.reasons[0]
    assert not partial.narrows(held, ())
    expression = suggest("k", held, (), [*seen, Need(None, "203.0.113.7", 1)], 4, days=7,
                         since=SINCE)  # fmt: skip
    assert expression.scopes is None and "permission expression" in expression.reasons[0]
    unknown = suggest("k", held, (), [Need(("orders:read",), None, 3)], 3, days=7, since=SINCE)
    assert unknown.allowed_ips is None and "not known" in unknown.reasons[0]
    nothing = suggest("k", held, (), [], 0, days=7, since=SINCE)
    assert not nothing.complete and not nothing.narrows(held, ())


def test_suggest_and_narrow_through_the_admin_layer(store_url: str) -> None:
    with KeyManager(store_url) as m:
        key = m.create_key("svc", scopes=["orders:read", "orders:write"])
        actor = Actor.operator("test")
        for _ in range(3):  # each recorded in the verification log by the core
            assert m.verify_key(key.key, scopes=["orders:read"], ip="203.0.113.7").ok
        m.verifications.flush()
        m.usage.flush(final=True)
        found = m.admin.suggest(actor, key.record.id, 7)
        assert found.public()["requests"] == {"logged": 3, "counted": 3}
        assert found.complete and found.scopes == ("orders:read",)
        assert found.allowed_ips == ("203.0.113.7/32",)
        with pytest.raises(InvalidValue, match="does not hold admin"):
            m.admin.narrow(actor, key.record.id, scopes=["orders:read", "admin"])
        with pytest.raises(InvalidValue, match="anywhere"):
            m.admin.narrow(actor, key.record.id, allowed_ips=[])
        narrowed = m.admin.narrow(
            actor, key.record.id, scopes=found.scopes, allowed_ips=found.allowed_ips,
            reason={"suggested_from_days": 7},
        )  # fmt: skip
        assert narrowed.scopes == {"orders:read"} and narrowed.allowed_ips == ("203.0.113.7/32",)
        with pytest.raises(InvalidValue, match="inside its current allowed_ips"):
            m.admin.narrow(actor, key.record.id, allowed_ips=["203.0.113.0/24"])
        (entry,) = m.admin.audit(actor, key_id=key.record.id, action="key.narrow")
        assert entry.details["suggested_from_days"] == 7
        assert not m.verify_key(key.key, scopes=["orders:write"], ip="203.0.113.7").ok
        assert m.verify_key(key.key, scopes=["orders:read"], ip="198.51.100.1").code == (
            "ip_not_allowed"
        )
        with pytest.raises(InvalidValue, match="days"):
            m.admin.suggest(actor, key.record.id, 0)
