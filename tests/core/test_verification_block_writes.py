"""The verification log's writer in blocks (migration 0100), on both engines: what it
stores is read here from the tables themselves (``verification_blocks.unpack``), so each
test says what a row holds: the entries sharing a key, shape and request-id head in one
block, in queue order, ids consecutive and never given twice, late blocks purged."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyturn import KeyManager
from keyturn._addresses import TrustedProxies
from keyturn._request_ids import new_id
from keyturn._verifications import Entry, VerificationFilter, VerificationLog
from keyturn.errors import Unavailable
from keyturn.store import migrate
from keyturn.store.verification_blocks import (
    pack_each,
    pack_texts,
    split_request_id,
    unpack,
    unpack_texts,
)

from .test_verification_shapes import entry, raw

Stored = tuple[int, float, str, str, str | None, int, str | None]  # id, at, rid, path, ...


def _seconds(at: Any) -> float:
    return at if isinstance(at, float) else at.timestamp()


def blocks(url: str) -> list[tuple[Any, ...]]:
    """Every block as stored, in id order: id, at (Unix seconds), count, key id, shape,
    clients, head, tails, times, paths."""
    rows = raw(url, "SELECT id, at, count, key_id, shape, clients, head, tails, times, paths "
                    "FROM verifications ORDER BY id")  # fmt: skip
    return [(r[0], _seconds(r[1]), *r[2:8], None if r[8] is None else bytes(r[8]), r[9])
            for r in rows]  # fmt: skip


def stored(url: str) -> list[Stored]:
    """Every entry as stored, in id order: id, time, request id, path, key id, shape,
    client."""
    found: list[Stored] = []
    for id_, at, count, key_id, shape, clients, head, tails, times, paths in blocks(url):
        found.extend((id_, at, rid, path, key_id, shape, client)
                     for id_, at, rid, path, client
                     in unpack(id_, count, at, head, tails, times, paths, clients))  # fmt: skip
    return found


@pytest.fixture
def manager(store_url: str) -> Iterator[KeyManager]:
    with KeyManager(store_url, verification_log=False) as m:
        yield m


def log_of(manager: KeyManager) -> VerificationLog:
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    log._purged = float("inf")  # no purge in a flush unless a test asks
    return log


def test_a_uniform_batch_is_a_block_per_run_of_request_ids(
    manager: KeyManager, store_url: str
) -> None:
    """One key, shape and client: a block per request-id head (keyturn's ids come in runs
    of 256 sharing a head), each entry read back with its own time, id and path."""
    key = manager.create_key("k", owner="acme")
    log = log_of(manager)
    start = time.time()
    queued = [entry(key_id=key.record.id, request_id=new_id()[0], at=start + n / 1000,
                    path=f"/orders/{n % 3}") for n in range(600)]  # fmt: skip
    for e in queued:
        log.record(e)
    assert log.flush() == 600
    heads = list(dict.fromkeys(split_request_id(e.request_id)[0] for e in queued))
    rows = blocks(store_url)
    assert [r[6] for r in rows] == heads and 3 <= len(rows) <= 4
    assert sum(r[2] for r in rows) == 600
    assert [r[1] for r in rows] == pytest.approx(  # PostgreSQL: to the microsecond
        [max(e.at for e in queued if e.request_id.startswith(h)) for h in heads], abs=1e-5)
    entries = stored(store_url)
    assert [e[0] for e in entries] == list(range(1, 601))
    assert [(e[1], e[2], e[3]) for e in entries] == [(e.at, e.request_id, e.path) for e in queued]
    assert {(e[4], e[6]) for e in entries} == {(key.record.id, "203.0.113.9")}
    log.close()


def test_a_mixed_batch_is_grouped_by_key_shape_and_head(
    manager: KeyManager, store_url: str
) -> None:
    """Entries of two keys, two user agents (shapes), two clients and three heads (one of
    them an id of two characters, all head), interleaved: each block holds one key, shape
    and head, its entries (of either client, each keeping its own) in queue order; the
    blocks are in the order of their first entries, and the ids run on without a gap."""
    a = manager.create_key("a", owner="acme")
    b = manager.create_key("b", owner="acme")
    log = log_of(manager)
    start = time.time()
    queued: list[Entry] = []
    for n in range(200):
        queued.append(entry(
            key_id=(a, b)[n % 2].record.id, user_agent=("curl/8", "httpx")[n % 3 == 0],
            peer=("203.0.113.9", "198.51.100.7")[n % 5 == 0],
            request_id=(f"run-one-{n % 100:02d}", f"run-two-{n % 100:02d}", "xy")[n % 7 % 3],
            at=start + n, path=f'/p/"{n}"\\' if n == 13 else f"/p/{n}",
        ))  # fmt: skip
    for e in queued:
        log.record(e)
    log.flush()
    entries = stored(store_url)
    assert [e[0] for e in entries] == list(range(1, 201))
    shape_of = {e[2] + e[3]: e[5] for e in entries}  # a request id and path are unique
    grouping = [(e.key_id, e.user_agent, split_request_id(e.request_id)[0])
                for e in queued]  # fmt: skip
    expected = []
    for group in dict.fromkeys(grouping):  # blocks in the order of their first entries
        expected += [e for e, g in zip(queued, grouping, strict=True) if g == group]
    assert [(e[1], e[2], e[3], e[4], e[6]) for e in entries] == [
        (e.at, e.request_id, e.path, e.key_id, e.peer) for e in expected]
    # One shape per key and user agent; each block one key, shape and head.
    shapes = {(e.key_id, e.user_agent): shape_of[e.request_id + e.path] for e in queued}
    assert len(set(shapes.values())) == 4
    rows = blocks(store_url)
    assert len(rows) == len(set(grouping))
    assert [r[2] for r in rows] == [grouping.count(g) for g in dict.fromkeys(grouping)]
    assert all(r[8] is None for r in rows if r[2] == 1)  # a block of one: no packed times
    # Blocks holding both clients' entries: a client is an entry's own, not the block's.
    assert any(len(set(unpack_texts(r[5], r[2]))) == 2 for r in rows)
    log.close()


def test_a_block_holds_at_most_a_run_of_entries(manager: KeyManager, store_url: str) -> None:
    """A trusted proxy passing one request id on every request: a batch of 600 entries of
    one key is blocks of 256, 256 and 88 (in queue order, ids one run), not one block of
    600; two keys interleaved, 300 each, are 256 and 44 each. The entries queued late (the
    first ten) are noted by the block holding them, the first, and the id reads back all
    its entries."""
    a, b = (manager.create_key(name, owner="acme").record.id for name in ("a", "b"))
    log = log_of(manager)
    now = time.time()
    for n in range(600):
        log.record(entry(key_id=a, request_id="one-id-from-the-proxy", path=f"/p/{n}",
                         at=now - (120 if n < 10 else 0) + n / 1000))  # fmt: skip
    log.flush()
    rows = blocks(store_url)
    assert [(r[0], r[2]) for r in rows] == [(1, 256), (257, 256), (513, 88)]
    assert [e[3] for e in stored(store_url)] == [f"/p/{n}" for n in range(600)]
    assert raw(store_url, "SELECT block FROM verification_late") == [(1,)]
    found = manager.store.verifications(
        VerificationFilter(request_id="one-id-from-the-proxy"), limit=1000)
    assert [v.id for v in found] == list(range(600, 0, -1))
    for n in range(600):
        log.record(entry(key_id=(a, b)[n % 2], request_id="one-id-from-the-proxy",
                         path=f"/q/{n}", at=now + n / 1000))  # fmt: skip
    log.flush()
    rows = blocks(store_url)[3:]
    assert [(r[3], r[2]) for r in rows] == [(a, 256), (a, 44), (b, 256), (b, 44)]
    assert [e[3] for e in stored(store_url)[600:]] == \
        [f"/q/{n}" for n in range(0, 600, 2)] + [f"/q/{n}" for n in range(1, 600, 2)]
    log.close()


def test_ids_are_never_given_twice_across_purges_and_restarts(store_url: str) -> None:
    with KeyManager(store_url, verification_log=False) as m:
        log = log_of(m)
        for n in range(30):
            log.record(entry(request_id=f"first-{n}"))
        log.flush()
        first = [e[0] for e in stored(store_url)]
        m.store.purge_verifications(datetime.fromtimestamp(time.time() + 3600, UTC))
        assert stored(store_url) == []
        log.close()
    with KeyManager(store_url, verification_log=False) as m:
        log = log_of(m)
        log.record(entry(request_id="second-1"))
        log.record(entry(request_id="other"))
        log.flush()
        assert [e[0] for e in stored(store_url)] == [max(first) + 1, max(first) + 2]
        log.close()


def test_a_refused_batch_goes_back_whole_and_is_written_once(
    manager: KeyManager, store_url: str
) -> None:
    """The store refuses the batch inside its transaction, after taking the ids and
    inserting the blocks: nothing of it stays, and the retry writes every entry once, on
    the ids the refused write had taken (never committed, so never given)."""
    log = log_of(manager)
    insert = manager.store._insert_verifications  # type: ignore[attr-defined]
    refused = []

    def refuse_once(conn: Any, values: list[Any]) -> None:
        insert(conn, values)
        if not refused:
            refused.append(values[0])
            raise Unavailable("store busy")  # as a store says it

    manager.store._insert_verifications = refuse_once  # type: ignore[attr-defined]
    for n in range(10):
        log.record(entry(request_id=f"r-{n}", at=time.time() - 120))  # late: noted too
    with pytest.raises(Unavailable):
        log.flush()
    assert stored(store_url) == [] and len(log.queue) // len(Entry._fields) == 10
    assert log.flush() == 10
    entries = stored(store_url)
    assert [e[2] for e in entries] == [f"r-{n}" for n in range(10)]
    assert [e[0] for e in entries] == list(range(refused[0], refused[0] + 10))
    assert [r[0] for r in raw(store_url, "SELECT block FROM verification_late")] == [refused[0]]
    log.close()


def test_late_blocks_are_purged_by_their_id(manager: KeyManager, store_url: str) -> None:
    """A block written long after its entries' time (the store was down) comes after
    blocks to keep: the purge finds it by its note, and deletes the note with it."""
    log = log_of(manager)
    now = time.time()
    log.record(entry(request_id="fresh-1", at=now))
    log.record(entry(request_id="stale-1", at=now - 3 * 86_400))
    log.record(entry(request_id="stale-2", at=now - 3 * 86_400 + 1))
    log.record(entry(request_id="fresh-2", at=now))
    log.flush()
    (noted,) = raw(store_url, "SELECT block FROM verification_late")
    assert noted[0] == 3  # "fresh-" holds 1 and 2, "stale-" 3 and 4
    manager.store.purge_verifications(datetime.fromtimestamp(now - 86_400, UTC))
    assert [e[2] for e in stored(store_url)] == ["fresh-1", "fresh-2"]
    assert raw(store_url, "SELECT COUNT(*) FROM verification_late")[0][0] == 0
    log.close()


def test_a_block_dated_ahead_does_not_hold_back_the_purge(
    manager: KeyManager, store_url: str
) -> None:
    log = log_of(manager)
    now = time.time()
    log.record(entry(request_id="before", at=now))
    log.record(entry(request_id="ahead", at=now + 7 * 86_400))
    log.flush()
    log.record(entry(request_id="after", at=now))  # a later batch: a block after "ahead"
    log.flush()
    manager.store.purge_verifications(datetime.fromtimestamp(now + 3600, UTC))
    assert [e[2] for e in stored(store_url)] == ["ahead"]
    log.close()


def test_two_postgresql_writers_never_share_an_id(pg_url: str) -> None:
    """Two instances' writers flushing at once: every entry stored once, and no two
    blocks overlap (the row of ``verification_ids`` serialises the id taking)."""
    managers = [KeyManager(pg_url, verification_log=False) for _ in range(2)]
    errors: list[BaseException] = []

    def write(m: KeyManager, name: str) -> None:
        log = log_of(m)
        try:
            for batch in range(20):
                for n in range(50):
                    log.record(entry(request_id=f"{name}-{batch}-{n:02d}", path=f"/{name}"))
                log.flush()
        except BaseException as exc:
            errors.append(exc)
        finally:
            log.close()

    threads = [threading.Thread(target=write, args=(m, name))
               for m, name in zip(managers, ("one", "two"), strict=True)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for m in managers:
        m.close()
    assert errors == []
    entries = stored(pg_url)
    ids = [e[0] for e in entries]
    assert len(ids) == len(set(ids)) == 2000 and ids == list(range(1, 2001))
    assert sorted(e[2] for e in entries) == sorted(
        f"{name}-{batch}-{n:02d}" for name in ("one", "two") for batch in range(20)
        for n in range(50))  # fmt: skip
    assert all(e[3] == "/" + e[2].split("-")[0] for e in entries)


def test_a_log_of_the_0090_schema_migrates_whole(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries written by the 0090 schema become blocks of one entry: the same ids, times,
    request ids (an id of two characters or fewer is all head), key ids, shapes, clients
    and paths; the late notes name their blocks; new ids go on after every id ever given
    (the newest entry deleted before the migration)."""
    sqlite = store_url.startswith("sqlite")
    every = migrate.migrations
    monkeypatch.setattr(migrate, "migrations",
                        lambda dialect: [m for m in every(dialect) if m.version < 100])
    with KeyManager(store_url, verification_log=False) as m:
        key = m.create_key("k", owner="acme")
    monkeypatch.undo()
    start = time.time() - 7200
    when = (lambda n: start + n) if sqlite else \
        (lambda n: datetime.fromtimestamp(start + n, UTC))  # fmt: skip
    raw(store_url, "INSERT INTO verification_shapes (created, outcome, masked, method, "
        "user_agent, scopes) VALUES (?, ?, ?, ?, ?, ?)",
        (when(0), "valid", key.record.masked, "GET", "curl/8", "read"),
        (when(0), "unknown_key", None, "POST", "", None))  # fmt: skip
    assert [r[0] for r in raw(store_url, "SELECT id FROM verification_shapes ORDER BY id")] \
        == [1, 2]
    rows = [  # at, request_id, key_id, shape, path, client
        (0, "run-of-ids-00", key.record.id, 1, "/orders/1", "203.0.113.9"),
        (1, "xy", None, 2, "/", None),
        (2, "q", key.record.id, 1, "/ünï/côdé", "2001:db8::1"),
        (3, "", None, 2, "/empty-id", "198.51.100.1"),
        (4, "réquête-ïd-✓✓", key.record.id, 1, '/quote"and\\slash', "203.0.113.9"),
        (-3600, "late-one-7f", key.record.id, 1, "/late", "203.0.113.9"),
        (6, "gone-newest", None, 2, "/gone", None),
    ]  # fmt: skip
    raw(store_url, "INSERT INTO verifications (at, request_id, key_id, shape, path, client) "
        "VALUES (?, ?, ?, ?, ?, ?)", *[(when(r[0]), *r[1:]) for r in rows])  # fmt: skip
    raw(store_url, "INSERT INTO verification_late (request_id, at) VALUES (?, ?)",
        ("late-one-7f", when(-3600)))  # fmt: skip
    raw(store_url, "DELETE FROM verifications WHERE request_id = 'gone-newest'")
    with KeyManager(store_url, verification_log=False) as m:
        assert m.store.schema_version() >= 100
        entries = stored(store_url)
        assert [(e[0], e[2], e[3], e[4], e[5], e[6]) for e in entries] == [
            (n + 1, r[1], r[4], r[2], r[3], r[5]) for n, r in enumerate(rows[:-1])]
        assert [e[1] for e in entries] == pytest.approx([start + r[0] for r in rows[:-1]],
                                                        abs=1e-5)  # fmt: skip
        assert [r[6] for r in blocks(store_url)] == [split_request_id(r[1])[0]
                                                     for r in rows[:-1]]  # fmt: skip
        assert all(r[2] == 1 and r[8] is None for r in blocks(store_url))
        assert raw(store_url, "SELECT block FROM verification_late") == [(6,)]
        log = log_of(m)
        log.record(entry(request_id="new"))
        log.flush()
        log.close()
        assert stored(store_url)[-1][:1] == (8,)  # "gone-newest" had 7



@given(st.lists(st.none() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
                min_size=1, max_size=20))  # fmt: skip
def test_texts_pack_as_the_json_encoder_writes_them(texts: list[str | None]) -> None:
    """Texts needing no escape are joined as they are: the same JSON the encoder writes;
    an address not known (``None``) is ``null``, and reads back as ``None``."""
    uniform = texts.count(texts[0]) == len(texts)
    expected = json.dumps(texts[:1] if uniform else texts, ensure_ascii=False,
                          separators=(",", ":"))  # fmt: skip
    assert pack_texts(texts) == expected
    assert pack_each(texts) == [json.dumps([t], ensure_ascii=False) for t in texts]
    assert unpack_texts(pack_texts(texts), len(texts)) == texts

