"""Owners with shared limits, through the library, on both engines."""

from __future__ import annotations

import threading
import time

import pytest

from keyturn import (
    Actor,
    InvalidValue,
    IssuedKey,
    KeyCache,
    KeyManager,
    KeyRecord,
    NotFound,
    ScopeNotHeld,
)
from keyturn._owners import Owner, OwnerLimits
from tests.core.test_store import raw_execute


def bearer(key: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}")]


OPERATOR = Actor.operator("test")


def test_credits_are_shared_and_exact_across_keys(manager: KeyManager) -> None:
    keys = [manager.create_key(f"k{i}", owner="acme").key for i in range(3)]
    manager.owners.put(OPERATOR, "acme", OwnerLimits(credits=10))
    codes: list[str] = []
    lock = threading.Lock()

    def hammer(key: str) -> None:
        for _ in range(8):
            code = manager.verify(bearer(key)).code
            with lock:
                codes.append(code)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count("valid") == 10 and codes.count("usage_exceeded") == 14
    # A key minted afterwards does not escape the limit.
    fresh = manager.create_key("new", owner="acme").key
    refused = manager.verify(bearer(fresh))
    assert refused.code == "usage_exceeded" and "acme" in refused.detail
    usage = manager.owners.get(OPERATOR, "acme")
    assert usage.credits_left == 0 and usage.keys["active"] == 4
    # Another owner's keys, and keys without an owner, are not limited.
    assert manager.verify(bearer(manager.create_key("other", owner="globex").key)).ok
    assert manager.verify(bearer(manager.create_key("alone").key)).ok


def test_rate_limits_are_shared(manager: KeyManager) -> None:
    manager.owners.put(OPERATOR, "acme", OwnerLimits(rate_limits=("3/minute",)))
    a = manager.create_key("a", owner="acme").key
    b = manager.create_key("b", owner="acme").key
    codes = [manager.verify(bearer(k)).code for k in (a, b, a, b, a)]
    assert codes == ["valid", "valid", "valid", "rate_limited", "rate_limited"]
    refused = manager.verify(bearer(b))
    assert "owner" in refused.detail and refused.quota is not None
    # A check is not a use: it counts nothing.
    assert manager.check(bearer(a)).code == "rate_limited"


def test_changes_reach_cached_keys_and_are_audited(manager: KeyManager) -> None:
    key = manager.create_key("a", owner="acme").key
    for _ in range(3):
        assert manager.verify_asgi([(b"authorization", f"Bearer {key}".encode())]).ok
    manager.owners.put(OPERATOR, "acme", OwnerLimits(credits=0, metadata={"plan": "free"}))
    assert manager.verify_asgi([(b"authorization", f"Bearer {key}".encode())]).code == (
        "usage_exceeded"
    )
    manager.owners.put(OPERATOR, "acme", OwnerLimits())
    assert manager.verify(bearer(key)).ok
    events = manager.audit(action="owner.update")
    assert [e.details["owner"] for e in events] == ["acme", "acme"]
    assert events[1].details["metadata"] == {"plan": "free"}
    shown = manager.owners.get(OPERATOR, "acme").public()
    assert shown["owner"] == "acme" and shown["credits"] is None


def test_revoke_and_disable_all_keys(manager: KeyManager) -> None:
    keys = [manager.create_key(f"k{i}", owner="acme") for i in range(3)]
    other = manager.create_key("x", owner="globex")
    manager.revoke(keys[0].record.id)
    disabled = manager.owners.disable(OPERATOR, "acme")
    assert sorted(r.id for r in disabled) == sorted(k.record.id for k in keys[1:])
    assert manager.verify(bearer(keys[1].key)).code == "key_disabled"
    revoked = manager.owners.revoke(OPERATOR, "acme")
    assert len(revoked) == 2
    assert all(manager.verify(bearer(k.key)).code == "key_revoked" for k in keys)
    assert manager.verify(bearer(other.key)).ok
    assert manager.audit(action="owner.revoke")[0].details["keys"] == [r.id for r in revoked]
    assert len(manager.audit(action="key.revoke")) == 3
    assert manager.owners.get(OPERATOR, "acme").keys["revoked"] == 3


def test_rules(manager: KeyManager) -> None:
    writer = manager.create_key("w", scopes=["keys:write", "keys:read"])
    actor = Actor.of_key(writer.record)
    manager.create_key("root-ish", owner="acme", scopes=["admin"])
    with pytest.raises(ScopeNotHeld):
        manager.owners.revoke(actor, "acme")
    with pytest.raises(ScopeNotHeld):
        manager.owners.put(actor, "acme", OwnerLimits(credits=5))
    assert manager.owners.get(OPERATOR, "acme").owner.credits is None  # nothing changed
    reader = Actor.of_key(manager.create_key("r", scopes=["keys:read"]).record)
    with pytest.raises(ScopeNotHeld):
        manager.owners.put(reader, "globex", OwnerLimits())
    with pytest.raises(NotFound):
        manager.owners.get(OPERATOR, "nobody")
    with pytest.raises(InvalidValue):
        manager.owners.put(OPERATOR, "acme", OwnerLimits(rate_limits=("lots",)))
    with pytest.raises(InvalidValue):
        manager.owners.put(OPERATOR, "\x00", OwnerLimits())


def test_a_change_to_an_owners_limits_reaches_another_instance_within_the_bound(
    db_url: str,
) -> None:
    """The limits are kept on the owner's keys' rows: a change made through one instance is
    seen by another sharing the store once its cached record is past the bound."""
    now = [1000.0]
    other_cache = KeyCache(ttl=1.0, clock=lambda: now[0])
    with (
        KeyManager(db_url) as one,
        KeyManager(db_url, cache=other_cache, feed_lifetime=1.0) as other,
    ):
        key = one.create_key("k", owner="acme").key
        assert other.verify(bearer(key)).ok  # cached there, unmetered
        one.owners.put(OPERATOR, "acme", OwnerLimits(credits=1))
        now[0] += 1.01
        assert other.verify(bearer(key)).ok  # the owner's one credit
        assert other.verify(bearer(key)).code == "usage_exceeded"
        one.owners.put(OPERATOR, "acme", OwnerLimits(rate_limits=("1/minute",)))
        now[0] += 1.01
        codes = [other.verify(bearer(key)).code for _ in range(2)]
        assert codes == ["valid", "rate_limited"]


def test_a_key_given_another_owner_takes_that_owners_limits(manager: KeyManager) -> None:
    manager.owners.put(OPERATOR, "acme", OwnerLimits(credits=1))
    made = manager.create_key("k", owner="globex")
    key = bearer(made.key)
    assert manager.verify(key).ok and manager.verify(key).ok
    manager.update(made.record.id, owner="acme")
    assert [manager.verify(key).code for _ in range(2)] == ["valid", "usage_exceeded"]
    manager.update(made.record.id, owner=None)
    assert manager.verify(key).ok
    # Every read of the key says so, not only the verifier's.
    assert not manager.get(made.record.id).metered


def test_a_key_made_while_its_owners_limits_change_gets_the_new_limits(
    manager: KeyManager,
) -> None:
    """The change holds the owner until it commits: a key created meanwhile under that
    owner waits, then takes the new limits (whichever instance made it)."""
    manager.create_key("old", owner="acme")
    inside, release = threading.Event(), threading.Event()

    def check(record: KeyRecord) -> None:
        inside.set()
        assert release.wait(10)

    change = threading.Thread(
        target=manager.store.put_owner, args=(Owner("acme", credits=1), check, "test")
    )
    change.start()
    assert inside.wait(10)
    made: list[IssuedKey] = []
    create = threading.Thread(target=lambda: made.append(manager.create_key("new", owner="acme")))
    create.start()
    time.sleep(0.3)  # let the creation reach the owner before the change commits
    release.set()
    change.join(10)
    create.join(10)
    key = bearer(made[0].key)
    assert [manager.verify(key).code for _ in range(2)] == ["valid", "usage_exceeded"]


def test_a_store_upgraded_from_before_keeps_its_owners_limits(db_url: str) -> None:
    """Migration 0070 writes each owner's limits to its keys' rows as it adds them."""
    with KeyManager(db_url) as m:
        key = m.create_key("k", owner="acme").key
        other = m.create_key("other", owner="globex").key
        m.owners.put(OPERATOR, "acme", OwnerLimits(credits=1, rate_limits=("5/minute",)))
    raw_execute(
        db_url,
        "ALTER TABLE keys DROP COLUMN owner_rate_limits",
        "ALTER TABLE keys DROP COLUMN owner_credits",
        "DELETE FROM schema_migrations WHERE version = 70",
    )
    with KeyManager(db_url) as m:
        assert [m.verify(bearer(key)).code for _ in range(2)] == ["valid", "usage_exceeded"]
        assert all(m.verify(bearer(other)).ok for _ in range(6))
