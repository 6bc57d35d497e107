"""The verification log as stored since migration 0080: an entry names its shape (what
repeats from request to request, stored once), on both engines. Whatever the storage, the
log reads as it did."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn import KeyManager
from keyturn._addresses import TrustedProxies
from keyturn._verifications import (
    SHAPES_KEPT,
    Entry,
    Seen,
    VerificationFilter,
    VerificationLog,
)
from keyturn.errors import Unavailable
from keyturn.store.migrate import migrations


def entry(outcome: str = "valid", key_id: str | None = None, **fields: Any) -> Entry:
    values: dict[str, Any] = {
        "at": time.time(), "request_id": "r1", "peer": "203.0.113.9", "headers": (),
        "method": "GET", "path": "/orders", "user_agent": "curl/8", "scopes": ("read",),
    }  # fmt: skip
    values.update(fields)
    seen = Seen(values["method"], values["path"], values["request_id"], values["user_agent"],
                values["headers"])  # fmt: skip
    return Entry(values["at"], outcome, key_id, values["peer"], values["scopes"], None,
                 *seen)


@pytest.fixture
def manager(store_url: str) -> Iterator[KeyManager]:
    with KeyManager(store_url) as m:
        yield m


def raw(url: str, query: str, *rows: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Run ``query`` on the database itself, past keyturn (for each of ``rows`` if given,
    ``?`` placeholders); what it returns."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn, conn:
            if rows:
                conn.executemany(query, rows)
                return []
            return list(conn.execute(query))
    import psycopg

    with psycopg.connect(url) as conn:
        if rows:
            with conn.cursor() as cur:
                cur.executemany(query.replace("?", "%s"), list(rows))
            return []
        cur = conn.execute(query)
        return list(cur) if cur.description else []


def test_entries_alike_share_one_shape_and_read_whole(manager: KeyManager, store_url: str) -> None:
    key = manager.create_key("k", owner="acme")
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    for i in range(300):
        log.record(entry(key_id=key.record.id, request_id=f"same-{i}"))
    log.record(entry("unknown_key", request_id="other", peer=None, path="/p?api_key=x",
                     user_agent="", scopes=None))  # fmt: skip
    log.flush()
    for i in range(5):  # the next batch names the shape the writer already stored
        log.record(entry(key_id=key.record.id, request_id=f"later-{i}"))
    log.flush()
    assert raw(store_url, "SELECT COUNT(*) FROM verification_shapes")[0][0] == 2
    found = manager.store.verifications(VerificationFilter(key_id=key.record.id), limit=1000)
    assert len(found) == 305 and found[0].request_id == "later-4"
    assert {(v.key, v.outcome, v.client, v.method, v.path, v.user_agent, v.scopes)
            for v in found} == {(key.record.masked, "valid", "203.0.113.9", "GET", "/orders",
                                 "curl/8", ("read",))}  # fmt: skip
    other = manager.store.verifications(VerificationFilter(request_id="other"))[0]
    assert (other.key_id, other.key, other.client, other.path, other.user_agent,
            other.scopes) == (None, None, None, "/p", "", None)  # fmt: skip
    assert [v.request_id for v in
            manager.store.verifications(VerificationFilter(outcome="unknown_key"))] == ["other"]
    log.close()


def test_entries_of_many_clients_share_one_shape_and_keep_their_clients(
    manager: KeyManager, store_url: str
) -> None:
    """A client's address is an entry's own (migration 0090): the entries of more clients
    than the writer remembers shapes for are of one shape, each read with its client."""
    key = manager.create_key("k", owner="acme")
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    peers = [f"10.0.{n >> 8}.{n & 255}" for n in range(SHAPES_KEPT + 500)]
    for n, peer in enumerate(peers):
        log.record(entry(key_id=key.record.id, request_id=f"c-{n}", peer=peer))
    log.record(entry(key_id=key.record.id, request_id="mapped", peer="::ffff:10.9.9.9"))
    log.record(entry(key_id=key.record.id, request_id="none", peer=None))
    log.flush()
    assert raw(store_url, "SELECT COUNT(*) FROM verification_shapes")[0][0] == 1
    found = manager.store.verifications(VerificationFilter(key_id=key.record.id), limit=5000)
    clients = {v.request_id: v.client for v in found}
    assert clients == {**{f"c-{n}": peer for n, peer in enumerate(peers)},
                       "mapped": "10.9.9.9", "none": None}  # fmt: skip
    callers = manager.store.key_callers(key.record.id, datetime.now(UTC) - timedelta(hours=1),
                                        limit=5000)  # fmt: skip
    assert sorted(c.client or "" for c in callers) == sorted(["", "10.9.9.9", *peers])
    log.close()


def test_a_shape_the_store_refused_is_not_named(manager: KeyManager) -> None:
    """A batch the store refuses goes back to the queue; its new shapes were stored in a
    transaction of their own, so the retried batch names shapes that are there."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    write = manager.store.record_verifications
    calls = []

    def refuse_once(values: list[Any], late: Any = None) -> None:
        calls.append(len(values))
        if len(calls) == 1:
            raise Unavailable("store busy")  # as a store says it
        write(values, late)

    manager.store.record_verifications = refuse_once  # type: ignore[method-assign]
    log.record(entry(request_id="a", path="/first"))
    with pytest.raises(Unavailable):
        log.flush()
    assert log.flush() == 1
    (found,) = manager.store.verifications(VerificationFilter(request_id="a"))
    assert found.path == "/first"
    log.close()


def test_shapes_with_long_user_agents_are_written_but_not_remembered(
    manager: KeyManager,
) -> None:
    """The writer remembers the shapes it stored, keyed by what the client sent: clients
    sending long user agents (no key needed) must not fill that memory; their entries are
    still written, masked and cut."""
    key = manager.create_key("k", owner="acme")
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    long_agents = [f"bot-{i}/" + "x" * 16_000 + key.key for i in range(50)]
    for i, agent in enumerate(long_agents):
        log.record(entry("unknown_key", request_id=f"long-{i}", user_agent=agent))
    log.record(entry(request_id="short", user_agent="curl/8"))
    log.flush()
    assert len(log._shapes) == 1  # only the short one
    found = manager.store.verifications(VerificationFilter(request_id="long-7"))[0]
    assert found.user_agent == ("bot-7/" + "x" * 16_000)[:512]
    assert key.key not in found.user_agent
    log.close()


def test_an_entry_without_a_user_agent_or_headers_is_written(manager: KeyManager) -> None:
    """``Seen``'s user agent ``None`` means "read it from the headers"; with none to read,
    the entry is written with an empty one (it must not stop the log)."""
    key = manager.create_key("k", owner="acme")
    headers = [("authorization", f"Bearer {key.key}")]
    assert manager.verify(headers, seen=Seen("GET", "/x", "no-agent")).ok
    manager.verifications.flush()
    (found,) = manager.store.verifications(VerificationFilter(request_id="no-agent"))
    assert (found.path, found.user_agent, found.key_id) == ("/x", "", key.record.id)
    assert not manager.verifications.queue


def test_entries_written_late_are_purged_by_their_time(manager: KeyManager) -> None:
    """The purge walks entries in the order they were written; one written long after its
    time (the store was down) is found by its request id."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    now = time.time()
    log.record(entry(request_id="fresh-1", at=now))
    log.record(entry(request_id="stale", at=now - 3 * 86_400))  # queued while the store was down
    log.record(entry(request_id="fresh-2", at=now))
    log.flush()
    manager.store.purge_verifications(datetime.fromtimestamp(now - 86_400, UTC))
    kept = manager.store.verifications(VerificationFilter())
    assert [v.request_id for v in kept] == ["fresh-2", "fresh-1"]
    log.record(entry(request_id="fresh-3"))  # the writer's shape is still there
    log.flush()
    assert manager.store.verifications(VerificationFilter(), limit=1)[0].path == "/orders"
    log.close()


def test_an_entry_dated_ahead_does_not_hold_back_the_purge(manager: KeyManager) -> None:
    """The purge walks entries in id order up to the first one to keep; an entry dated
    ahead (an instance whose clock runs ahead) must not keep the old ones written after it
    past the retention."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    now = time.time()
    log.record(entry(request_id="before", at=now))
    log.record(entry(request_id="ahead", at=now + 7 * 86_400))
    log.record(entry(request_id="after", at=now))  # written on time: not noted as late
    log.flush()
    # A day on, with a day's retention: only the entry dated ahead is not due.
    manager.store.purge_verifications(datetime.fromtimestamp(now + 3600, UTC))
    kept = [v.request_id for v in manager.store.verifications(VerificationFilter())]
    assert kept == ["ahead"]
    log.close()


def test_shape_ids_are_not_given_again_after_every_shape_is_purged(
    manager: KeyManager, store_url: str
) -> None:
    """Once the purge has deleted every entry and shape, a new shape takes a number never
    given before: an entry left over (dated ahead) still reads as its own shape."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    now = time.time()
    log.record(entry(request_id="first", user_agent="first/1"))
    log.record(entry(request_id="second", user_agent="second/1"))
    log.flush()
    first_ids = {row[0] for row in raw(store_url, "SELECT id FROM verification_shapes")}
    manager.store.purge_verifications(datetime.fromtimestamp(now + 3 * 86_400, UTC))
    assert manager.store.verifications(VerificationFilter()) == []
    log.close()
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)  # remembers none
    log.record(entry(request_id="third", user_agent="third/1"))
    log.flush()
    ids = {row[0] for row in raw(store_url, "SELECT id FROM verification_shapes")}
    assert min(ids - first_ids) > max(first_ids)
    (found,) = manager.store.verifications(VerificationFilter(request_id="third"))
    assert found.user_agent == "third/1"
    log.close()


def test_entries_written_before_the_shapes_read_as_before(store_url: str) -> None:
    """Migrations 0080, 0090 and 0100 move every entry to the new tables (0090: each takes
    its shape's client; 0100: a block of its own): each reads as it did, keeps its id, and
    ids go on after the highest ever given (also a deleted one)."""
    engine = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    with KeyManager(store_url) as m:
        key = m.create_key("k", owner="acme")
        other = m.create_key("o", owner="globex")
    old_schema = [x.sql for x in migrations(engine) if x.name in ("verifications",
                                                                  "verification_scopes")]
    drop = "DROP TABLE verifications; DROP TABLE verification_shapes; " \
           "DROP TABLE verification_late; DROP TABLE verification_ids; " \
           "DROP TABLE verification_requests; " \
           "DELETE FROM schema_migrations WHERE version >= 80"
    for statement in [*drop.split("; "), *";\n".join(old_schema).split(";\n")]:
        if any(line.strip() and not line.startswith("--") for line in statement.splitlines()):
            raw(store_url, statement)
    start = datetime.now(UTC) - timedelta(hours=2)
    rows = [  # at, request_id, key_id, masked, outcome, client, method, path, agent, scopes
        (0, "a", key.record.id, key.record.masked, "valid", "203.0.113.9", "GET", "/x",
         "curl/8", "read"),
        (1, "b", key.record.id, key.record.masked, "valid", "203.0.113.9", "GET", "/x",
         "curl/8", "read"),
        (2, "c", key.record.id, key.record.masked, "insufficient_scope", None, "POST", "/y",
         "", None),
        (3, "d", None, None, "unknown_key", "198.51.100.1", "GET", "/x", "curl/8", None),
        (4, "e", other.record.id, None, "valid", "203.0.113.9", "GET", "/x", "curl/8", ""),
        (5, "gone", key.record.id, key.record.masked, "valid", "203.0.113.9", "GET", "/x",
         "curl/8", "read"),
    ]  # fmt: skip
    when = (lambda n: (start + timedelta(minutes=n)).timestamp()) if engine == "sqlite" \
        else (lambda n: start + timedelta(minutes=n))  # fmt: skip
    raw(store_url, "INSERT INTO verifications (at, request_id, key_id, masked, outcome, client, "
        "method, path, user_agent, scopes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        *[(when(r[0]), *r[1:]) for r in rows])  # fmt: skip
    raw(store_url, "DELETE FROM verifications WHERE request_id = 'gone'")
    with KeyManager(store_url) as m:
        found = m.store.verifications(VerificationFilter())
        assert [(v.request_id, v.key_id, v.key, v.outcome, v.client, v.method, v.path,
                 v.user_agent, v.scopes) for v in found] == [
            ("e", other.record.id, None, "valid", "203.0.113.9", "GET", "/x", "curl/8", ()),
            ("d", None, None, "unknown_key", "198.51.100.1", "GET", "/x", "curl/8", None),
            ("c", key.record.id, key.record.masked, "insufficient_scope", None, "POST", "/y",
             "", None),
            ("b", key.record.id, key.record.masked, "valid", "203.0.113.9", "GET", "/x",
             "curl/8", ("read",)),
            ("a", key.record.id, key.record.masked, "valid", "203.0.113.9", "GET", "/x",
             "curl/8", ("read",)),
        ]  # fmt: skip
        assert [v.at for v in found] == [start + timedelta(minutes=n) for n in (4, 3, 2, 1, 0)]
        assert [v.id for v in found] == [5, 4, 3, 2, 1]
        by = m.store.verifications
        assert [v.request_id for v in by(VerificationFilter(owner="acme"))] == ["c", "b", "a"]
        assert [v.request_id for v in by(VerificationFilter(outcome="valid"))] == ["e", "b", "a"]
        assert [v.request_id for v in by(VerificationFilter(request_id="d"))] == ["d"]
        since = start + timedelta(minutes=1)
        assert [v.request_id for v in by(VerificationFilter(key_id=key.record.id,
                                                            since=since))] == ["c", "b"]
        callers = m.store.key_callers(key.record.id, start - timedelta(hours=1))
        assert [(c.client, c.method, c.path, c.requests) for c in callers] == [
            (None, "POST", "/y", 1), ("203.0.113.9", "GET", "/x", 2)]
        needs = m.store.key_needs(key.record.id, start - timedelta(hours=1))
        assert [(n.scopes, n.client, n.requests) for n in needs] == [
            (("read",), "203.0.113.9", 2)]
        log = VerificationLog(m.store, TrustedProxies(), interval=3600)
        log.record(entry(key_id=key.record.id, request_id="new"))
        log.flush()
        log.close()
        newest = m.store.verifications(VerificationFilter(), limit=1)[0]
        assert newest.request_id == "new" and newest.id > 6  # "gone" had 6
