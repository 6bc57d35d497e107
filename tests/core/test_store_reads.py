"""Store reads behind cache misses: a forged-key flood from one client is throttled, by the
client's address as the trusted proxies tell it, while other clients' keys pass; and no more
than a few reads run at once, however many misses arrive together."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn import AsyncKeyManager, KeyCache, KeyManager
from keyturn._store_reads import BURST, CONCURRENCY, RATE, StoreReads
from keyturn.actor import Actor
from keyturn.admin import NewKey
from keyturn.keys import generate_key
from keyturn.verifier import Verifier

PROXY = "10.0.0.1"
FLOODER = "203.0.113.9"
HONEST = "198.51.100.7"


def through_proxy(key: str, client: str) -> list[tuple[bytes, bytes]]:
    """The headers a request has behind the proxy, which names its client."""
    return [
        (b"authorization", f"Bearer {key}".encode()),
        (b"x-forwarded-for", client.encode()),
    ]


class Clock:
    """The throttle's clock, standing still until a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def with_clock(manager: KeyManager, clock: Clock) -> KeyManager:
    manager.reads = StoreReads(manager.store, manager.verifier, clock=clock)
    return manager


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def proxied(db_url: str, clock: Clock) -> Any:
    verifier = Verifier(trusted_proxies=[PROXY])
    with KeyManager(db_url, verifier=verifier, cache=KeyCache(ttl=60)) as manager:
        if manager.feed is not None:  # its start empties the cache: wait for it first
            assert manager.feed.connected.wait(10)
        yield with_clock(manager, clock)


def test_a_flood_from_one_client_is_throttled_while_another_clients_keys_pass(
    proxied: KeyManager,
) -> None:
    known = proxied.create_key("in use").key
    fresh = proxied.create_key("not asked for yet").key
    assert proxied.verify_asgi(through_proxy(known, FLOODER), peer=PROXY).ok  # cached now
    codes = [
        proxied.verify_asgi(through_proxy(generate_key(), FLOODER), peer=PROXY).code
        for _ in range(BURST + 20)
    ]
    assert codes == ["unknown_key"] * BURST + ["lookups_throttled"] * 20

    refused = proxied.verify(through_proxy(generate_key(), FLOODER), peer=PROXY)
    assert refused.code == "lookups_throttled"  # the sync path too
    assert refused.quota is not None and refused.quota.retry_after == 1
    # The flooding client's key in the cache still passes; so does another client's key that
    # is not cached yet, and another client's unknown key is looked up and refused as such.
    assert proxied.verify_asgi(through_proxy(known, FLOODER), peer=PROXY).ok
    assert proxied.verify_asgi(through_proxy(fresh, HONEST), peer=PROXY).ok
    stranger = through_proxy(generate_key(), HONEST)
    assert proxied.verify_asgi(stranger, peer=PROXY).code == "unknown_key"


def test_a_throttled_client_is_let_back_in_as_its_bucket_refills(
    proxied: KeyManager, clock: Clock
) -> None:
    def code() -> str:
        return proxied.verify_asgi(through_proxy(generate_key(), FLOODER), peer=PROXY).code

    for _ in range(BURST):
        assert code() == "unknown_key"
    assert code() == "lookups_throttled"
    clock.now += 1 / RATE  # one unknown key's worth, sustained
    assert code() == "unknown_key"
    assert code() == "lookups_throttled"


def test_the_async_manager_and_the_verify_api_path_are_throttled_alike(
    proxied: KeyManager,
) -> None:
    manager = AsyncKeyManager(proxied)

    async def flood() -> list[str]:
        codes = []
        for _ in range(BURST + 5):
            headers = through_proxy(generate_key(), FLOODER)
            codes.append((await manager.verify(headers, peer=PROXY)).code)
        return codes

    codes = asyncio.run(flood())
    assert codes == ["unknown_key"] * BURST + ["lookups_throttled"] * 5
    # The verify API names the client itself (``ip``): the same client, the same bucket.
    assert proxied.verify_key(generate_key(), ip=FLOODER).code == "lookups_throttled"
    assert proxied.verify_key(generate_key(), ip=HONEST).code == "unknown_key"


def test_without_trusted_proxies_each_connection_address_is_a_client(
    db_url: str, clock: Clock
) -> None:
    with KeyManager(db_url, cache=KeyCache(ttl=60)) as manager:
        with_clock(manager, clock)
        for _ in range(BURST):
            manager.verify_asgi(through_proxy(generate_key(), "192.0.2.1"), peer="192.0.2.1")
        forged = through_proxy(generate_key(), "192.0.2.1")
        assert manager.verify_asgi(forged, peer="192.0.2.1").code == "lookups_throttled"
        # X-Forwarded-For from an untrusted peer names nobody: it cannot dodge the bucket.
        dodging = through_proxy(generate_key(), "192.0.2.99")
        assert manager.verify_asgi(dodging, peer="192.0.2.1").code == "lookups_throttled"
        assert manager.verify_asgi(forged, peer="192.0.2.2").code == "unknown_key"


def test_no_more_than_a_few_store_reads_run_at_once(db_url: str) -> None:
    with KeyManager(db_url, cache=KeyCache(ttl=60)) as manager:
        find = manager.store.find_by_hash
        running = peak = 0
        lock = threading.Lock()

        def slow_find(key_hash: str) -> Any:
            nonlocal running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            time.sleep(0.05)
            with lock:
                running -= 1
            return find(key_hash)

        manager.store.find_by_hash = slow_find  # type: ignore[method-assign]
        async_manager = AsyncKeyManager(manager)

        async def burst() -> list[str]:
            checks = [
                async_manager.verify_asgi(
                    through_proxy(generate_key(), f"192.0.2.{n}"), peer=f"192.0.2.{n}"
                )
                for n in range(1, 25)
            ]
            return [decision.code for decision in await asyncio.gather(*checks)]

        assert asyncio.run(burst()) == ["unknown_key"] * 24
        assert peak == CONCURRENCY


def test_a_canary_costs_a_client_what_an_unknown_key_costs(proxied: KeyManager) -> None:
    """The bucket must not tell a canary from an unknown key: after its burst less one
    forged key, a client that then tries a canary is throttled exactly as one that tried
    an unknown key (a found record that did not count would leave it a lookup)."""
    decoy = proxied.admin.create(Actor.operator(), NewKey("decoy", canary=True)).key
    outcomes = []
    for client, suspect in ((FLOODER, decoy), (HONEST, generate_key())):
        for _ in range(BURST - 1):
            proxied.verify_asgi(through_proxy(generate_key(), client), peer=PROXY)
        tried = proxied.verify_asgi(through_proxy(suspect, client), peer=PROXY).code
        after = proxied.verify_asgi(through_proxy(generate_key(), client), peer=PROXY).code
        outcomes.append((tried, after))
    assert outcomes[0] == outcomes[1] == ("unknown_key", "lookups_throttled")


@pytest.mark.parametrize(
    "name", ["odd\x1fname", "odd\x1ename", "a\x1f\x1f\x1f\x1f\x1f\x1f\x1f\x1ename"]
)
def test_a_row_holding_the_packed_reads_separator_is_read_whole(tmp_path: Any, name: str) -> None:
    """A name written by other means than the admin layer (which refuses control
    characters) may hold a character the SQLite miss read joins values with (between
    values, or between the row's head and tail; with as many of the first before the second
    as put the second where the tail starts): the key is still judged on its own row,
    every field in its place."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'k.db'}"
    maker = KeyManager(url, cache=KeyCache(maxsize=0))
    issued = maker.create_key("plain", scopes=["read"], metadata={"team": "a"})
    maker.close()
    raw = sqlite3.connect(tmp_path / "k.db")
    raw.execute("UPDATE keys SET name = ?, revoked_at = ?", (name, time.time() - 5))
    raw.commit()
    raw.close()
    reader = KeyManager(url, cache=KeyCache(maxsize=0))
    found = reader.store.find_by_hash(issued.record.key_hash)
    assert found is not None
    assert (found.name, found.metadata, found.scopes) == (name, {"team": "a"}, {"read"})
    assert reader.verify([("authorization", f"Bearer {issued.key}")]).code == "key_revoked"
    reader.close()


def _change_rows(url: str, revoked_id: str, paid_id: str) -> None:
    """What another process writes: one key revoked five seconds ago, another given credits."""
    if url.startswith("sqlite:"):
        import sqlite3

        raw = sqlite3.connect(url.removeprefix("sqlite:///"))
        revoke = "UPDATE keys SET revoked_at = ? WHERE id = ?"
        raw.execute(revoke, (time.time() - 5, revoked_id))
        raw.execute("UPDATE keys SET credits = 7 WHERE id = ?", (paid_id,))
        raw.commit()
        raw.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        revoke = "UPDATE keys SET revoked_at = now() - interval '5 seconds' WHERE id = %s"
        conn.execute(revoke, (revoked_id,))
        conn.execute("UPDATE keys SET credits = 7 WHERE id = %s", (paid_id,))


def test_keys_whose_rows_end_alike_are_each_judged_on_their_own_row(store_url: str) -> None:
    """Each miss read works out the end of a row (rotation, metering, revocation...) once
    for all the rows that end alike (on SQLite by the row's text, on PostgreSQL by its
    values): a key revoked by another process while another key's row still ends as its
    did is refused, the other accepted, and a key given credits reads them."""
    maker = KeyManager(store_url, cache=KeyCache(maxsize=0))
    keep, drop, paid = (maker.create_key(n, scopes=["read"]) for n in ("keep", "drop", "paid"))
    reader = KeyManager(store_url, cache=KeyCache(maxsize=0))
    reader.store.rows_kept = 0  # type: ignore[attr-defined]
    for key in (keep, drop, paid):
        assert reader.verify([("authorization", f"Bearer {key.key}")]).code == "valid"
    _change_rows(store_url, drop.record.id, paid.record.id)
    codes = [reader.verify([("authorization", f"Bearer {k.key}")]).code for k in (keep, drop)]
    assert codes == ["valid", "key_revoked"]
    found = reader.store.find_by_hash(paid.record.key_hash)
    assert found is not None and (found.credits, found.metered) == (7, True)
    maker.close()
    reader.close()


def test_the_sqlite_miss_read_gives_every_time_to_the_microsecond(tmp_path: Any) -> None:
    """The SQLite miss read carries times as whole numbers of 2**-22 seconds, exact for a
    time from 2004 on; an earlier one with finer bits (a last use in 2001 that this
    scale would move from .093860 to .093859) still reads as stored, as do the times after
    2004 beside it, and the key is judged on them."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'k.db'}"
    maker = KeyManager(url, cache=KeyCache(maxsize=0))
    issued = maker.create_key("timed", scopes=["read"], expires_in=timedelta(days=3))
    maker.close()
    times = {"last_used_at": 1_000_000_000.0938596, "refilled_at": 1_700_000_000.0000005}
    raw = sqlite3.connect(tmp_path / "k.db")
    raw.execute("UPDATE keys SET last_used_at = ?, refilled_at = ?", tuple(times.values()))
    raw.commit()
    raw.close()
    reader = KeyManager(url, cache=KeyCache(maxsize=0))
    found = reader.store.find_by_hash(issued.record.key_hash)
    assert found is not None
    stored = reader.get(issued.record.id)  # every column read as itself
    assert found == stored and found.public() == stored.public()
    assert found.last_used_at == datetime.fromtimestamp(times["last_used_at"], UTC)
    assert found.last_used_at.microsecond == 93860
    assert found.expires_at == issued.record.expires_at
    assert reader.verify([("authorization", f"Bearer {issued.key}")]).code == "valid"
    reader.close()


def test_a_key_deleted_between_the_two_sqlite_reads_is_unknown(tmp_path: Any) -> None:
    """When the packed miss read cannot hold a row (here an early time), the row is read a
    second time; a key deleted in between is an unknown key, not a server error."""
    import sqlite3

    url = f"sqlite:///{tmp_path / 'k.db'}"
    maker = KeyManager(url, cache=KeyCache(maxsize=0))
    issued = maker.create_key("doomed")
    maker.close()
    raw = sqlite3.connect(tmp_path / "k.db", isolation_level=None)
    raw.execute("UPDATE keys SET last_used_at = ?", (1_000_000_000.0938596,))
    reader = KeyManager(url, cache=KeyCache(maxsize=0))
    second_read = reader.store._reading

    def deleted_first() -> Any:
        raw.execute("DELETE FROM keys")
        return second_read()

    reader.store._reading = deleted_first  # type: ignore[method-assign]
    assert reader.verify([("authorization", f"Bearer {issued.key}")]).code == "unknown_key"
    raw.close()
    reader.close()


def test_the_memo_of_row_tails_keeps_taking_new_ones_when_full(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A miss converts each row tail (rotation, metering, revocation...) once and keeps it,
    at most ``TAILS_KEPT`` of them: a metered key makes a new tail at every spend, so when
    the memo is full it is forgotten and starts again (it does not stop taking tails and
    keep the old ones forever), and a key read after that is still judged on its own row."""
    from keyturn.store import sql

    monkeypatch.setattr(sql, "TAILS_KEPT", 3)
    maker = KeyManager(store_url, cache=KeyCache(maxsize=0))
    keys = [maker.create_key(f"k{n}", scopes=["read"], credits=10 + n) for n in range(5)]
    reader = KeyManager(store_url, cache=KeyCache(maxsize=0))
    reader.store.rows_kept = 0  # type: ignore[attr-defined]
    # The memo of the reader a miss uses (the packed one on SQLite, the general one else).
    read = getattr(reader.store, "_unpack", None) or reader.store._build  # type: ignore[attr-defined]
    tails = dict(zip(read.__code__.co_freevars, read.__closure__, strict=True))["tails"]
    for key in keys:
        found = reader.store.find_by_hash(key.record.key_hash)
        assert found is not None and found.credits == key.record.credits
        assert 1 <= len(tails.cell_contents) <= 3
    newest = reader.store.find_by_hash(keys[-1].record.key_hash)
    assert newest is not None and newest.credits == 14
    assert len(tails.cell_contents) in (1, 2)  # cleared after the third tail, two kept since
    maker.close()
    reader.close()
