"""Upgrading a deployment's verification log to blocks (migration 0100), on both engines:
a log the 0090 schema holds, written as its writer wrote it, reads back entry for entry
through the store after the upgrade (the readers the API and dashboard use), its late
entries are still purged on time, and ids go on after every id it ever gave."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn import KeyManager
from keyturn._verifications import Verification, VerificationFilter
from keyturn.store import migrate

from .test_verification_block_writes import log_of, stored
from .test_verification_shapes import entry, raw

# Request ids of every length and what JSON escapes (written through the Python API
# before ids were checked where taken), paths of the same.
REQUEST_IDS = ["a", "ab", "abc", "abcd", 'q"\\', 'x\n\x1fy"', "é", "✓✓✓", "f" * 128,
               "0190f3a2b4c5d6e7f8a9b0c1d2e3f4a5", "0190f3a2b4c5d6e7f8a9b0c1d2e3f4a6"]  # fmt: skip
PATHS = ["/orders/1", '/ü"\\\u2028', "/a\tb", "/", "/x/✓"]
OUTCOMES = [  # outcome, masked, method, user agent, scopes
    ("valid", "kt_live_ab…cd", "GET", "curl/8", "orders:read orders:write"),
    ("unknown_key", None, "POST", "", None),
    ("insufficient_scope", "kt_live_ab…cd", "DELETE", 'agent "quoted" \\', "admin"),
]
CLIENTS = ["203.0.113.9", None, "2001:db8::1", "198.51.100.7"]


def _old_log(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database at migration 0090 holding one key (its id returned)."""
    every = migrate.migrations
    monkeypatch.setattr(migrate, "migrations",
                        lambda dialect: [m for m in every(dialect) if m.version < 100])
    with KeyManager(store_url, verification_log=False) as m:
        key_id = m.create_key("k", owner="acme").record.id
        assert m.store.schema_version() == 90
    monkeypatch.undo()
    return key_id


def _stored_time(store_url: str) -> Callable[[float], Any]:
    """A time as the 0090 writer stored an entry's: SQLite the Unix seconds as given,
    PostgreSQL a ``timestamptz``."""
    if store_url.startswith("sqlite"):
        return lambda at: at
    return lambda at: datetime.fromtimestamp(at, UTC)


def _late_time(store_url: str) -> Callable[[float], Any]:
    """A late note's time as the 0090 store wrote it: through ``dialect.time_in`` of the
    entry's time as a ``datetime`` (SQLite: seconds again, rounded to the microsecond)."""
    if store_url.startswith("sqlite"):
        return lambda at: datetime.fromtimestamp(at, UTC).timestamp()
    return lambda at: datetime.fromtimestamp(at, UTC)


def test_a_0090_log_reads_back_entry_for_entry(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every entry (ids, times to the microsecond, request ids of 1 to 128 characters and
    with what JSON escapes, keys, outcomes, clients, paths, scopes) reads back as the 0090
    store showed it, in pages and by each filter; a key's callers and needs count each."""
    key_id = _old_log(store_url, monkeypatch)
    when = _stored_time(store_url)
    raw(store_url, "INSERT INTO verification_shapes (created, outcome, masked, method, "
        "user_agent, scopes) VALUES (?, ?, ?, ?, ?, ?)",
        *[(when(time.time()), *shape) for shape in OUTCOMES])  # fmt: skip
    start = time.time() - 7200.0
    rows = []  # at, request id, key id, shape, path, client
    for n in range(40):
        rows.append((
            start + n * 1.000000123 + 0.3333333, REQUEST_IDS[n % len(REQUEST_IDS)],
            key_id if n % 3 else None, 1 + n % 3, PATHS[n % len(PATHS)],
            CLIENTS[n % len(CLIENTS)],
        ))  # fmt: skip
    raw(store_url, "INSERT INTO verifications (at, request_id, key_id, shape, path, client) "
        "VALUES (?, ?, ?, ?, ?, ?)", *[(when(r[0]), *r[1:]) for r in rows])  # fmt: skip
    ids = [r[0] for r in raw(store_url, "SELECT id FROM verifications ORDER BY id")]
    expected = []
    for id_, (at, rid, key, shape, path, client) in zip(ids, rows, strict=True):
        outcome, masked, method, agent, scopes = OUTCOMES[shape - 1]
        expected.append(Verification(
            id_, datetime.fromtimestamp(at, UTC), rid, key, masked, outcome, client, method,
            path, agent, None if scopes is None else tuple(scopes.split()),
        ))  # fmt: skip
    expected.reverse()  # newest first
    with KeyManager(store_url, verification_log=False) as m:
        store = m.store
        assert store.schema_version() >= 100
        assert store.verifications(VerificationFilter(), limit=1000) == expected
        pages: list[Verification] = []
        before = None
        while True:
            page = store.verifications(VerificationFilter(), limit=7, before=before)
            pages += page
            if len(page) < 7:
                break
            before = page[-1].id
        assert pages == expected
        for rid in REQUEST_IDS:
            assert store.verifications(VerificationFilter(request_id=rid)) == [
                v for v in expected if v.request_id == rid], rid
        for outcome, *_ in OUTCOMES:
            assert store.verifications(VerificationFilter(outcome=outcome)) == [
                v for v in expected if v.outcome == outcome]
        for filters in (VerificationFilter(key_id=key_id), VerificationFilter(owner="acme")):
            assert store.verifications(filters) == [v for v in expected if v.key_id == key_id]
        middle = expected[20].at
        assert store.verifications(VerificationFilter(since=middle)) == expected[:21]
        mine = [v for v in expected if v.key_id == key_id and v.at >= middle]
        callers = store.key_callers(key_id, middle, limit=100)
        assert sum(c.requests for c in callers) == len(mine)
        for c in callers:
            group = [v for v in mine if (v.client, v.method, v.path) == (c.client, c.method,
                                                                            c.path)]  # fmt: skip
            assert (c.requests, c.last_seen) == (len(group), max(v.at for v in group))
        needs = store.key_needs(key_id, middle)
        assert sorted((n.scopes or (), n.client or "", n.requests) for n in needs) == sorted(
            (v.scopes or (), v.client or "",
             sum(1 for w in mine if w.outcome == "valid" and (w.scopes, w.client)
                 == (v.scopes, v.client)))
            for v in {(w.scopes, w.client): w for w in mine if w.outcome == "valid"}.values()
        )  # fmt: skip


def test_late_notes_of_the_0090_writer_still_purge_their_entries(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An entry the 0090 writer wrote late (after a fresh one: the purge's walk stops
    before it) and noted so, with the note's time as that store wrote it, is still purged
    once past the retention after the upgrade; the fresh one stays."""
    _old_log(store_url, monkeypatch)
    when, noted = _stored_time(store_url), _late_time(store_url)
    raw(store_url, "INSERT INTO verification_shapes (created, outcome, masked, method, "
        "user_agent, scopes) VALUES (?, ?, ?, ?, ?, ?)",
        (when(time.time()), *OUTCOMES[1]))  # fmt: skip
    now = time.time()
    fresh, late = now - 10.0, int(now) - 3 * 86_400 + 0.1234567  # not to a microsecond
    assert noted(late) != when(late) or not store_url.startswith("sqlite")
    raw(store_url, "INSERT INTO verifications (at, request_id, key_id, shape, path, client) "
        "VALUES (?, ?, ?, ?, ?, ?)", (when(fresh), "fresh-01", None, 1, "/", None),
        (when(late), "stale-01", None, 1, "/", None))  # fmt: skip
    raw(store_url, "INSERT INTO verification_late (request_id, at) VALUES (?, ?)",
        ("stale-01", noted(late)))
    with KeyManager(store_url, verification_log=False) as m:
        assert len(raw(store_url, "SELECT block FROM verification_late")) == 1
        m.store.purge_verifications(datetime.fromtimestamp(now - 86_400, UTC))
        assert [e[2] for e in stored(store_url)] == ["fresh-01"]


def test_ids_go_on_after_the_upgrade_a_purge_of_everything_and_a_restart(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 0090 log's newest entries deleted before the upgrade, then everything purged
    after it, and the store opened again: a new entry's id comes after every id given."""
    _old_log(store_url, monkeypatch)
    when = _stored_time(store_url)
    raw(store_url, "INSERT INTO verification_shapes (created, outcome, masked, method, "
        "user_agent, scopes) VALUES (?, ?, ?, ?, ?, ?)",
        (when(time.time()), *OUTCOMES[1]))  # fmt: skip
    raw(store_url, "INSERT INTO verifications (at, request_id, key_id, shape, path, client) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        *[(when(time.time()), f"old-{n}", None, 1, "/", None) for n in range(5)])  # fmt: skip
    given = max(r[0] for r in raw(store_url, "SELECT id FROM verifications"))
    raw(store_url, "DELETE FROM verifications WHERE id >= 3")
    with KeyManager(store_url, verification_log=False) as m:
        m.store.purge_verifications(datetime.now(UTC) + timedelta(hours=1))
        assert stored(store_url) == []
    with KeyManager(store_url, verification_log=False) as m:
        log = log_of(m)
        log.record(entry(request_id="new-01"))
        log.record(entry(request_id="new-02", peer="198.51.100.7"))  # another block
        log.flush()
        log.close()
    assert [e[0] for e in stored(store_url)] == [given + 1, given + 2]
