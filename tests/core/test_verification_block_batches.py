"""The verification log's writer in blocks under what a deployment meets: a batch of more
blocks than SQLite's parameter limit allows in one statement, a database another process
holds locked, request ids of a trusted proxy (random: a block each) among keyturn's runs.
Every entry is stored once, whole, on ids given once."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn import KeyManager
from keyturn._request_ids import new_id
from keyturn._verifications import Entry, VerificationFilter, VerificationLog
from keyturn.store.sqlite import SQLiteStore

from .test_verification_block_writes import blocks, log_of, stored
from .test_verification_shapes import entry


def _mixed(key_id: str, count: int) -> list[Entry]:
    """Entries of one key and client: keyturn's ids (runs sharing a head), each third a
    proxy's UUID, each seventh from a client of its own, times apart."""
    start = time.time()
    return [
        entry(
            key_id=key_id, at=start + n / 10_000, path=f"/items/{n % 5}",
            request_id=str(uuid.uuid4()) if n % 3 == 0 else new_id()[0],
            peer=f"10.1.{n >> 8 & 255}.{n & 255}" if n % 7 == 0 else "203.0.113.9",
        )
        for n in range(count)
    ]  # fmt: skip


def _shown_once(manager: KeyManager, queued: list[Entry]) -> None:
    """Each queued entry read back once through the store, as it was queued."""
    shown = manager.store.verifications(VerificationFilter(), limit=len(queued) + 1)
    assert len(shown) == len(queued)
    assert sorted(v.request_id for v in shown) == sorted(e.request_id for e in queued)
    by_rid = {v.request_id: v for v in shown}
    for e in queued:
        v = by_rid[e.request_id]
        assert (v.at.timestamp(), v.path, v.client) == (pytest.approx(e.at, abs=1e-6), e.path,
                                                        e.peer)  # fmt: skip
    ids = sorted(v.id for v in shown)
    assert ids == list(range(ids[0], ids[0] + len(queued)))


def _connections(monkeypatch: pytest.MonkeyPatch, tune: Callable[[sqlite3.Connection], Any]
                 ) -> None:  # fmt: skip
    """Each connection the SQLite store opens, ``tune``d once opened."""
    connect = SQLiteStore._connect

    def connect_tuned(self: SQLiteStore) -> sqlite3.Connection:
        conn = connect(self)
        tune(conn)
        return conn

    monkeypatch.setattr(SQLiteStore, "_connect", connect_tuned)


def _queue(log: VerificationLog, key_id: str, count: int) -> list[Entry]:
    """``_mixed`` entries, queued on ``log``."""
    queued = _mixed(key_id, count)
    for e in queued:
        log.record(e)
    return queued


def _written_then_queued(m: KeyManager) -> tuple[VerificationLog, list[Entry], list[Entry]]:
    """A log on ``m`` that wrote 50 entries of a key, then queued 300 more."""
    key_id = m.create_key("k", owner="acme").record.id
    log = log_of(m)
    first = _queue(log, key_id, 50)
    assert log.flush() == 50
    return log, first, _queue(log, key_id, 300)


@pytest.fixture
def limited(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A SQLite database whose connections take at most 999 parameters a statement (the
    limit before SQLite 3.32, and what builds may still set)."""
    _connections(monkeypatch, lambda c: c.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999))
    yield f"sqlite:///{tmp_path / 'keyturn.db'}"


def test_a_batch_past_the_parameter_limit_is_written_whole(limited: str) -> None:
    """Over 1,600 of a proxy's ids in one flush (loose entries: a row of
    ``verification_requests`` each, 2 values a row), on connections of 999 parameters:
    every entry once, ids one run, each proxy's id found by a lookup."""
    with KeyManager(limited, verification_log=False) as m:
        log = log_of(m)
        queued = _queue(log, m.create_key("k", owner="acme").record.id, 5_000)
        assert log.flush() == 5_000
        with closing(sqlite3.connect(limited.removeprefix("sqlite:///"))) as conn:
            (loose,) = conn.execute("SELECT COUNT(*) FROM verification_requests").fetchone()
        assert loose > 1_600
        _shown_once(m, queued)
        for e in queued[::30]:
            (found,) = m.store.verifications(VerificationFilter(request_id=e.request_id))
            assert (found.request_id, found.at.timestamp()) == (
                e.request_id, pytest.approx(e.at, abs=1e-6))
        log.close()


def test_a_locked_database_keeps_the_batch_until_it_is_free(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the database (``BEGIN IMMEDIATE``): the flush fails and keeps
    its entries; once the lock is gone the next flush writes each of them once, on ids
    after the ones already given."""
    _connections(monkeypatch, lambda c: c.execute("PRAGMA busy_timeout = 200"))  # not 10 s
    url = f"sqlite:///{tmp_path / 'keyturn.db'}"
    with KeyManager(url, verification_log=False) as m:
        log, first, queued = _written_then_queued(m)
        given = max(e[0] for e in stored(url))
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
                     ) as other:  # fmt: skip
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(Exception, match=r"locked|busy"):
                log.flush()
            other.execute("ROLLBACK")
        assert len(stored(url)) == 50
        assert log.flush() == 300
        entries = stored(url)
        assert len(entries) == 350
        assert [e[0] for e in entries] == list(range(1, given + 301))
        _shown_once(m, first + queued)
        log.close()


def test_a_postgresql_outage_keeps_the_batch_until_the_server_is_back() -> None:
    """The server stops (connections cut, as in a crash) with entries queued: the flushes
    fail and keep them; once it is back, a flush writes each of them once, on ids after
    the ones given before the outage, none given twice."""
    from tests.dedicated import OwnPostgres

    postgres = OwnPostgres()
    try:
        postgres.start()
        with KeyManager(postgres.url, verification_log=False) as m:
            log, first, queued = _written_then_queued(m)
            postgres.stop()
            with pytest.raises(Exception):  # noqa: B017 - whichever the driver raises
                log.flush()
            postgres.start()
            deadline = time.monotonic() + 30
            while True:  # the store tries the server again once a second
                try:
                    assert log.flush() == 300
                    break
                except Exception:
                    assert time.monotonic() < deadline
                    time.sleep(0.25)
            entries = stored(postgres.url)
            assert [e[0] for e in entries] == list(range(1, 351))
            _shown_once(m, first + queued)
            log.close()
    finally:
        postgres.close()


def test_the_retention_is_exact_to_a_blocks_newest_entry(store_url: str) -> None:
    """A block of five entries over four seconds, after a block of one older entry: a
    purge a microsecond before the newest entry's time keeps the block whole, one a
    microsecond after it deletes it whole; the older block goes at its own time."""
    with KeyManager(store_url, verification_log=False) as m:
        log = log_of(m)
        start = time.time() - 7200
        log.record(entry(request_id="old-one", at=start - 10, peer="198.51.100.7"))
        run = new_id()[0][:-2]
        for n in range(5):
            log.record(entry(request_id=f"{run}{n:02x}", at=start + n))
        log.flush()
        assert [r[2] for r in blocks(store_url)] == [1, 5]
        newest = datetime.fromtimestamp(start + 4, UTC)
        m.store.purge_verifications(newest - timedelta(seconds=5))
        assert len(stored(store_url)) == 5
        m.store.purge_verifications(newest - timedelta(microseconds=1))
        assert len(stored(store_url)) == 5
        m.store.purge_verifications(newest + timedelta(microseconds=1))
        assert stored(store_url) == []
        log.close()
