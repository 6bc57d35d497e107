"""The manager: issue, change and verify, with the cache in front of the store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyturn import AsyncKeyManager, Conflict, KeyCache, KeyManager
from keyturn.cache import MISSING


def bearer(key: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}")]


def test_changes_through_the_same_process_are_seen_at_once(manager: KeyManager) -> None:
    issued = manager.create_key("a", scopes=["read"])
    assert manager.verify(bearer(issued.key)).code == "valid"  # now cached
    manager.disable(issued.record.id)
    assert manager.verify(bearer(issued.key)).code == "key_disabled"
    manager.enable(issued.record.id)
    assert manager.verify(bearer(issued.key), scopes=["read"]).code == "valid"
    manager.update(issued.record.id, scopes=["other"])
    assert manager.verify(bearer(issued.key), scopes=["read"]).code == "insufficient_scope"
    manager.revoke(issued.record.id)
    assert manager.verify(bearer(issued.key)).code == "key_revoked"


def test_changes_by_another_process_are_seen_after_the_cache_ttl(db_url: str) -> None:
    reader = KeyManager(db_url, cache=KeyCache(ttl=0.2))
    writer = KeyManager(db_url)
    issued = writer.create_key("a")
    assert reader.verify(bearer(issued.key)).code == "valid"
    writer.revoke(issued.record.id)
    time.sleep(0.25)
    assert reader.verify(bearer(issued.key)).code == "key_revoked"
    reader.close()
    writer.close()


def test_rotation_keeps_the_old_key_during_grace(manager: KeyManager) -> None:
    old = manager.create_key("svc", scopes=["read"], owner="ada", expires_in=timedelta(days=30))
    new = manager.rotate(old.record.id, grace=timedelta(seconds=1))
    assert new.record.replaces == old.record.id
    assert new.record.scopes == old.record.scopes and new.record.owner == "ada"
    assert new.record.expires_at is not None
    assert manager.get(old.record.id).replaced_by == new.record.id
    assert manager.verify(bearer(old.key)).code == "valid"
    assert manager.verify(bearer(new.key)).code == "valid"
    later = time.time() + 2
    assert manager.verify(bearer(old.key), now=later).code == "key_rotated"
    assert manager.verify(bearer(new.key), now=later).code == "valid"
    with pytest.raises(Conflict, match="already rotated"):
        manager.rotate(old.record.id)


def test_expired_key(manager: KeyManager) -> None:
    issued = manager.create_key("short", expires_in=timedelta(seconds=30))
    assert manager.verify(bearer(issued.key)).code == "valid"
    decision = manager.verify(bearer(issued.key), now=time.time() + 31)
    assert decision.code == "key_expired"
    assert "expired on" in decision.detail


def test_revoked_keys_stay_revoked(manager: KeyManager) -> None:
    key_id = manager.create_key("x").record.id
    manager.revoke(key_id)
    with pytest.raises(Conflict, match="revoked"):
        manager.enable(key_id)
    with pytest.raises(Conflict, match="revoked"):
        manager.rotate(key_id)
    first = manager.get(key_id).revoked_at
    assert manager.revoke(key_id).revoked_at == first  # idempotent


def test_last_used_is_recorded_off_the_hot_path(db_url: str) -> None:
    m = KeyManager(db_url, usage_interval=60)
    issued = m.create_key("x")
    m.verify(bearer(issued.key))
    assert m.get(issued.record.id).last_used_at is None  # not written by the verify itself
    m.close()  # flushes
    with KeyManager(db_url) as again:
        assert again.get(issued.record.id).last_used_at is not None


def test_unknown_keys_are_cached_negatively(manager: KeyManager) -> None:
    from keyturn.keys import generate_key

    stranger = generate_key()
    assert manager.verify(bearer(stranger)).code == "unknown_key"
    assert len(manager.cache) == 1
    assert manager.verify(bearer(stranger)).code == "unknown_key"


def test_a_flood_of_forged_keys_cannot_push_out_the_keys_in_use(db_url: str) -> None:
    """The checksum is public: fresh well-formed keys are free to make, each one a cache
    miss. They are cached apart from the records, in a bound of their own, so the keys
    clients use stay cached (answered without the store) however many forgeries come."""
    from keyturn.keys import generate_key

    with KeyManager(db_url, cache=KeyCache(maxsize=200, ttl=60)) as manager:
        if manager.feed is not None:  # its start empties the cache: wait for it first
            assert manager.feed.connected.wait(10)
        issued = manager.create_key("real")
        headers = [(b"authorization", f"Bearer {issued.key}".encode())]
        assert manager.verify_asgi(headers).ok
        for _ in range(1_000):
            forged = [(b"authorization", f"Bearer {generate_key()}".encode())]
            assert manager.verify_asgi(forged).code == "unknown_key"
        assert len(manager.cache.unknown) == manager.cache.unknown_maxsize == 20
        assert list(manager.cache.entries) == [issued.record.key_hash]
        assert manager.verify_asgi(headers).ok


def test_repr_of_an_issued_key_is_masked(manager: KeyManager) -> None:
    issued = manager.create_key("x")
    assert issued.key not in repr(issued)
    assert issued.key not in repr(issued.record)


def test_async_manager_matches_the_sync_one(db_url: str) -> None:
    async def scenario() -> list[str]:
        am = AsyncKeyManager(db_url)
        issued = await am.create_key("a", scopes=["read"])
        raw = [(b"authorization", f"Bearer {issued.key}".encode())]
        codes = [
            (await am.verify_asgi(raw)).code,  # miss: store read in a thread
            (await am.verify_asgi(raw, scopes=["read"])).code,  # hit: fast path
            (await am.verify_asgi(raw, scopes=["write"])).code,
            (await am.verify_key(issued.key)).code,
        ]
        await am.revoke(issued.record.id)
        codes.append((await am.verify(bearer(issued.key))).code)
        await am.aclose()
        return codes

    assert asyncio.run(scenario()) == [
        "valid",
        "valid",
        "insufficient_scope",
        "valid",
        "key_revoked",
    ]


_shared = KeyManager("sqlite:///:memory:")
_live = _shared.create_key("live", scopes=["read"])
_gone = _shared.create_key("gone")
_shared.revoke(_gone.record.id)
# Metered: never on the fast path, and the same answers on both paths.
_metered = _shared.create_key(
    "metered", scopes=["read"], rate_limits=["1000000/second"], credits=10**9
)
_spent = _shared.create_key("spent", credits=0)
_uncached = KeyManager(_shared.store, cache=KeyCache(maxsize=0))

header_values = st.sampled_from(
    [
        f"Bearer {_live.key}",
        f"bearer {_live.key}",
        f"Bearer  {_live.key}",
        f"Bearer {_live.key} ",
        f"Bearer {_gone.key}",
        f"Bearer {_metered.key}",
        f"Bearer {_spent.key}",
        _live.key,
        f"Token {_live.key}",
        "Bearer junk",
        "",
    ]
)
names = st.sampled_from(["authorization", "x-api-key", "host"])


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(names, header_values), max_size=4),
    st.sampled_from([b"", b"page=1", b"api_key=" + _live.key.encode()]),
    st.sampled_from([(), ("read",), ("write",)]),
)
def test_fast_path_and_general_path_always_agree(
    headers: list[tuple[str, str]], query: bytes, scopes: tuple[str, ...]
) -> None:
    raw = [(n.encode(), v.encode()) for n, v in headers]
    for manager in (_shared, _uncached):  # the cache-hit and the cache-miss branches
        fast = manager.verify_asgi(raw, query, scopes=scopes)
        general = manager.verify(headers, query.decode(), scopes=scopes)
        assert (fast.code, fast.detail) == (general.code, general.detail)


def last_stale_start(check: Callable[[], object], stale: object) -> float:
    """When the last ``check`` that still answered ``stale`` started (``-inf``: none did).
    A check started after a propagation bound must see the change; one started before it
    may be slowed past it by a loaded machine without anything being wrong, so the bound is
    held to the checks' starts, not their ends. Gives up after 10 s."""
    last, deadline = float("-inf"), time.monotonic() + 10
    while time.monotonic() < deadline:
        started = time.monotonic()
        if check() != stale:
            break
        last = started
        time.sleep(0.001)
    return last


def test_changes_through_another_manager_are_seen_within_the_bound(db_url: str) -> None:
    bound = 0.5
    reader = KeyManager(db_url, cache=KeyCache(ttl=bound))
    writer = KeyManager(db_url)
    if reader.feed is not None:
        assert reader.feed.connected.wait(10)
    issued = writer.create_key("a", scopes=["read"])
    for change in (
        lambda: writer.update(issued.record.id, scopes=["other"]),
        lambda: writer.disable(issued.record.id),
        lambda: writer.enable(issued.record.id),
        lambda: writer.revoke(issued.record.id),
    ):
        before = reader.verify(bearer(issued.key), scopes=["read"]).code
        change()
        changed = time.monotonic()
        check = lambda: reader.verify(bearer(issued.key), scopes=["read"]).code  # noqa: E731
        assert last_stale_start(check, before) - changed <= bound
    reader.close()
    writer.close()


def test_postgresql_instances_hear_of_changes_at_once_and_fall_back_when_deaf(
    pg_url: str,
) -> None:
    import psycopg

    reader = KeyManager(pg_url)  # the default bound: 1 s
    writer = KeyManager(pg_url)
    assert reader.feed is not None and reader.feed.connected.wait(10)
    assert reader.cache.lifetime > reader.cache.ttl  # the live feed keeps the bound
    issued = writer.create_key("a")
    assert reader.verify(bearer(issued.key)).code == "valid"
    writer.disable(issued.record.id)
    started = time.monotonic()
    check = lambda: reader.verify(bearer(issued.key)).code  # noqa: E731
    assert last_stale_start(check, "valid") - started < 0.5  # NOTIFY, not expiry
    # Cut the listener's connection: the cache falls back to expiry within the bound, then
    # the listener reconnects and extends it again.
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND query = 'SELECT 1' AND pid <> pg_backend_pid()"
        )
    deadline = time.monotonic() + 1.0
    while reader.cache.lifetime != reader.cache.ttl and time.monotonic() < deadline:
        time.sleep(0.005)
    assert reader.cache.lifetime == reader.cache.ttl or reader.feed.connected.is_set()
    assert reader.feed.connected.wait(10)
    deadline = time.monotonic() + 10
    while reader.cache.lifetime == reader.cache.ttl and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.cache.lifetime > reader.cache.ttl
    writer.enable(issued.record.id)
    started = time.monotonic()
    usable = lambda: reader.verify(bearer(issued.key)).ok  # noqa: E731
    assert last_stale_start(usable, False) - started < 0.5
    reader.close()
    writer.close()


def test_an_entry_lives_from_the_start_of_its_store_read() -> None:
    clock = [0.0]
    cache = KeyCache(ttl=1.0, clock=lambda: clock[0])
    since = cache.mark()
    clock[0] = 0.4  # a slow read: a change committed meanwhile must show once 1 s has passed
    cache.put("h", None, since)
    clock[0] = 1.001
    assert cache.get("h") is MISSING


def test_a_store_read_racing_an_invalidation_is_cached_for_the_ttl_only() -> None:
    clock = [0.0]
    cache = KeyCache(ttl=1.0, clock=lambda: clock[0])
    cache.extend(300.0)
    since = cache.mark()
    cache.invalidate("h")  # a change announced while the read was under way
    cache.put("h", None, since)
    clock[0] = 1.5
    assert cache.get("h") is MISSING  # expired after the ttl, not the lifetime
    since = cache.mark()
    cache.put("h", None, since)
    clock[0] = 200.0
    assert cache.get("h") is None  # cached (as unknown) for the long lifetime


def test_a_flood_evicts_a_canary_exactly_as_it_evicts_an_unknown_key(db_url: str) -> None:
    """Whether a suspect key is still cached after a flood is visible from outside (the
    per-client bound on store reads counts only lookups that reach the store), so a flood
    must push a canary out of the cache in the same turn as an unknown key tried at the same
    moment, and never keep it longer; the keys in use stay."""
    from keyturn.actor import Actor
    from keyturn.admin import NewKey
    from keyturn.keys import generate_key

    def header(key: str) -> list[tuple[bytes, bytes]]:
        return [(b"authorization", f"Bearer {key}".encode())]

    with KeyManager(db_url, cache=KeyCache(maxsize=200, ttl=60)) as manager:
        if manager.feed is not None:  # its start empties the cache: wait for it first
            assert manager.feed.connected.wait(10)
        canary = manager.admin.create(Actor.operator(), NewKey("decoy", canary=True)).key
        real = manager.create_key("real").key
        for suspect in (canary, generate_key()):  # the canary first, then an unknown key
            assert manager.verify_asgi(header(suspect)).code == "unknown_key"
        assert manager.verify_asgi(header(real)).ok
        room = manager.cache.unknown_maxsize - 2
        for _ in range(room):  # fills the unknown hashes' bound, both suspects kept
            assert manager.verify_asgi(header(generate_key())).code == "unknown_key"
        assert len(manager.cache.entries) == 2  # the real key and the canary
        assert manager.verify_asgi(header(generate_key())).code == "unknown_key"
        assert len(manager.cache.entries) == 1  # the oldest suspect, the canary, is gone
        assert len(manager.cache) == manager.cache.unknown_maxsize + 1
        assert manager.verify_asgi(header(real)).ok


def test_a_prefix_this_verifier_refuses_stays_refused_after_a_shared_store_read_it(
    tmp_path: Path,
) -> None:
    """A miss on a key whose row the store has read before skips the checksum (its hash is
    an issued key's), never the shape: a manager that does not accept ``acme`` keys refuses
    one even when another manager, on the same store, has just read it."""
    from keyturn.store import open_store
    from keyturn.verifier import Verifier

    store = open_store(f"sqlite:///{tmp_path / 'shared.db'}")  # the read memo: SQLStore's
    wide = KeyManager(store, verifier=Verifier(("kt", "acme")), prefix="acme")
    narrow = KeyManager(store, verifier=Verifier(("kt",)), cache=KeyCache(maxsize=0))
    try:
        key = wide.create_key("partner", scopes=["orders:read"]).key
        assert wide.verify(bearer(key)).ok
        assert key.startswith("acme_")
        for _ in range(2):  # the second: its row read before, by this manager too
            refused = narrow.verify_asgi([(b"authorization", f"Bearer {key}".encode())])
            assert not refused.ok and refused.code == "malformed_key", refused.code
    finally:
        narrow.close()
        wide.close()
