"""The verification log's queue and its store, on both engines."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyturn import KeyManager, _verifications
from keyturn._addresses import AddressSet, TrustedProxies
from keyturn._request_ids import request_id_of
from keyturn._verifications import (
    Entry,
    Seen,
    VerificationFilter,
    VerificationLog,
)
from keyturn.config import SettingsError, load_settings
from keyturn.errors import Unavailable
from keyturn.keys import mask
from keyturn.record import KeyRecord
from keyturn.store.verification_rows import ROWS_PER_INSERT, statement_sizes
from keyturn.verifier import Verifier


def entry(outcome: str = "valid", key: KeyRecord | None = None, **fields: Any) -> Entry:
    """An entry as the core queues it: the outcome, the key's id, the request's peer, and
    what the face saw (``Seen``: method, path, request id, user agent, headers)."""
    values: dict[str, Any] = {
        "at": time.time(), "request_id": "r1", "peer": "203.0.113.9", "headers": (),
        "method": "GET", "path": "/orders", "user_agent": "curl/8",
    }  # fmt: skip
    values.update(fields)
    seen = Seen(values["method"], values["path"], values["request_id"], values["user_agent"],
                values["headers"])  # fmt: skip
    return Entry(values["at"], outcome, key.id if key else None, values["peer"], (), None,
                 *seen)


@pytest.fixture
def manager(store_url: str) -> Iterator[KeyManager]:
    """Every test here on both engines (SQLite's batch is one ``executemany``,
    PostgreSQL's one ``COPY``)."""
    with KeyManager(store_url) as m:
        yield m


def test_a_full_queue_drops_and_counts_never_blocks(manager: KeyManager) -> None:
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600, capacity=3)
    for i in range(5):
        log.record(entry(request_id=f"r{i}"))
    assert log.dropped == 2
    assert log.flush() == 3
    found = manager.store.verifications(VerificationFilter())
    assert [v.request_id for v in found] == ["r2", "r1", "r0"]
    log.close()


def test_a_burst_wakes_the_writer_before_its_interval(
    manager: KeyManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries gathering faster than the interval allows are written once ``WAKE_AT`` of
    them are queued, not an interval later (here an hour), and none is dropped."""
    monkeypatch.setattr(_verifications, "WAKE_AT", 100)
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    for i in range(150):
        log.record(entry(request_id=f"b{i:03}"))
    deadline = time.monotonic() + 10
    while len(manager.store.verifications(VerificationFilter(), limit=200)) < 101:
        assert time.monotonic() < deadline, "the writer was not woken"
        time.sleep(0.02)
    log.close()
    found = manager.store.verifications(VerificationFilter(), limit=200)
    assert sorted(v.request_id for v in found) == [f"b{i:03}" for i in range(150)]
    assert log.dropped == 0


def test_entries_queued_while_the_writer_takes_the_queue_are_written_once(
    manager: KeyManager,
) -> None:
    """The writer empties the queue in one go while requests keep queueing on other
    threads: every entry is written, none twice, each whole."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    threads, each = 3, 2_000

    def serve(thread: int) -> None:
        for i in range(each):
            log.queue.extend(entry(request_id=f"t{thread}-{i}", path=f"/p/{thread}"))

    workers = [threading.Thread(target=serve, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    written = 0
    while any(worker.is_alive() for worker in workers):
        written += log.flush()
    for worker in workers:
        worker.join()
    written += log.flush()
    assert written == threads * each and log.dropped == 0
    found = manager.store.verifications(VerificationFilter(), limit=threads * each + 1)
    assert sorted(v.request_id for v in found) == sorted(
        f"t{t}-{i}" for t in range(threads) for i in range(each)
    )
    assert all(v.path == f"/p/{v.request_id[1]}" for v in found)
    log.close()


def test_entries_are_stored_filtered_and_purged(manager: KeyManager) -> None:
    key = manager.create_key("k", owner="acme")
    log = VerificationLog(manager.store, TrustedProxies(["10.0.0.0/8"]), interval=3600)
    log.record(entry(key=key.record, request_id="a"))
    log.record(entry("unknown_key", request_id="b", path="/x?api_key=secret",
                     user_agent="evil\x00agent"))  # fmt: skip
    forwarded = [(b"x-forwarded-for", b"198.51.100.7")]
    log.record(entry("key_revoked", request_id="c", peer="10.1.2.3", headers=forwarded))
    log.record(entry("key_revoked", request_id="old", at=time.time() - 7200))
    log.flush()
    store = manager.store
    by_key = store.verifications(VerificationFilter(key_id=key.record.id))
    assert [v.request_id for v in by_key] == ["a"] and by_key[0].key == key.record.masked
    assert [v.request_id for v in store.verifications(VerificationFilter(owner="acme"))] == ["a"]
    b = store.verifications(VerificationFilter(request_id="b"))[0]
    assert b.path == "/x" and "\x00" not in b.user_agent and b.client == "203.0.113.9"
    c = store.verifications(VerificationFilter(request_id="c"))[0]
    assert c.client == "198.51.100.7"  # named by a trusted proxy, worked out when written
    since = datetime.now(UTC) - timedelta(hours=1)
    recent = store.verifications(VerificationFilter(outcome="key_revoked", since=since))
    assert [v.request_id for v in recent] == ["c"]
    store.purge_verifications(since)
    assert len(store.verifications(VerificationFilter(outcome="key_revoked"))) == 1
    page = store.verifications(VerificationFilter(), limit=1)
    assert len(store.verifications(VerificationFilter(), before=page[0].id)) == 2
    log.close()


def test_the_retention_setting() -> None:
    assert load_settings(environ={}).verification_retention == 30 * 86_400
    settings = load_settings(environ={"KEYTURN_VERIFICATION_RETENTION": "12h"})
    assert settings.verification_retention == 12 * 3600
    with pytest.raises(SettingsError, match="KEYTURN_VERIFICATION_RETENTION"):
        load_settings(environ={"KEYTURN_VERIFICATION_RETENTION": "5s"})
    with pytest.raises(SettingsError):
        load_settings(environ={"KEYTURN_VERIFICATION_RETENTION": "forever"})


def test_the_log_can_be_turned_off(db_url: str) -> None:
    with KeyManager(db_url, verification_log=False) as manager:
        manager.verifications.record(entry())
        assert manager.verifications.flush() == 0
    assert load_settings(environ={"KEYTURN_VERIFICATION_LOG": "off"}).verification_log is False


def test_a_batch_tells_each_request_apart(manager: KeyManager) -> None:
    """What a batch works out once (a peer's client, a path's and a user agent's masked
    form) is still each request's own: requests of one proxy name different clients, and
    the same text is masked alike wherever it stands."""
    key = manager.create_key("k").key
    log = VerificationLog(manager.store, TrustedProxies(["10.0.0.0/8"]), interval=3600)
    for i, client in enumerate(["198.51.100.7", "198.51.100.8", "198.51.100.7"]):
        log.record(entry(request_id=f"p{i}", peer="10.0.0.1", path=f"/k/{key}",
                          headers=[(b"x-forwarded-for", client.encode())]))  # fmt: skip
    log.record(entry(request_id="d", peer="203.0.113.9", path=f"/k/{key}", user_agent=key))
    log.record(entry(request_id="e", peer="10.0.0.1", path="/other?api_key=x"))
    log.record(entry(request_id="f", peer="203.0.113.9", user_agent="curl/8"))
    log.flush()
    rows = {v.request_id: v for v in manager.store.verifications(VerificationFilter())}
    assert [rows[f"p{i}"].client for i in range(3)] == [
        "198.51.100.7", "198.51.100.8", "198.51.100.7",
    ]  # fmt: skip
    assert rows["e"].client == "10.0.0.1" and rows["f"].client == "203.0.113.9"
    assert rows["d"].path == rows["p0"].path == f"/k/{mask(key)}" and rows["e"].path == "/other"
    assert rows["d"].user_agent == mask(key) and rows["f"].user_agent == "curl/8"
    log.close()


def test_a_user_agent_not_sent_as_bytes_is_written_not_a_batch_failing_for_ever(
    manager: KeyManager,
) -> None:
    """The fast path queues the user agent header's value as the scope holds it, for the
    writer to decode. A scope made by hand may hold another type (a ``str``, a
    ``bytearray``: two of them, which no dict can hold): each is written as its text. An
    entry the writer cannot write would fail its batch at every retry, and every entry
    queued behind it would be dropped."""
    key = manager.create_key("k").key
    log = manager.verifications
    log._writer.interval = 3600  # nothing written behind the test's back
    auth = (b"authorization", f"Bearer {key}".encode())
    assert manager.verify_asgi([auth]).code == "valid"  # the key cached: the fast path next
    log.flush()  # a batch of the fast path's entries only, each with the user agent it found
    for rid, agent in (("a", bytearray(b"one")), ("b", bytearray(b"two")), ("c", "three")):
        seen = Seen("GET", "/", rid, None, ())  # the user agent left to the core
        assert manager.verify_asgi([auth, (b"user-agent", agent)], b"", (), None, seen).ok
    log.flush()
    rows = {v.request_id: v.user_agent for v in manager.store.verifications(VerificationFilter())}
    assert (rows["a"], rows["b"], rows["c"]) == ("one", "two", "three")


def test_an_entry_the_writer_cannot_take_is_dropped_alone_not_its_batch(
    manager: KeyManager, caplog: pytest.LogCaptureFixture
) -> None:
    """An entry no face should queue (here a path that is not text: a bug, or a value a
    face let through) fails its batch whatever the store. Retried as it is, it would fail at
    every flush, and the log would keep nothing from then on: the writer finds it by halving
    the batch, drops and counts it alone, says so, and writes every entry around it."""
    key = manager.create_key("k").key
    log = manager.verifications
    log._writer.interval = 3600  # nothing written behind the test's back
    auth = [(b"authorization", f"Bearer {key}".encode())]
    rids = [f"req-{n}" for n in range(9)]
    for n, rid in enumerate(rids):
        if n == 5:
            log.record(Entry(time.time(), "valid", None, None, (), None, "GET", 404, "bad",
                             None, ()))  # fmt: skip
        assert manager.verify_asgi(auth, b"", (), None, Seen("GET", f"/{n}", rid)).ok
    dropped = log.dropped
    with caplog.at_level("ERROR", logger="keyturn.verifications"):
        assert log.flush() == len(rids)
    assert log.dropped == dropped + 1
    assert "1 verification log entries could not be written" in caplog.text
    stored = manager.store.verifications(VerificationFilter())
    assert sorted(v.request_id for v in stored) == sorted(rids)
    assert log.queue == []  # nothing left to fail the next flush


def test_an_entry_dropped_alone_is_counted_when_the_store_then_fails(
    manager: KeyManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer halves a batch to find an entry it cannot take; when the store then fails
    on a later piece, that piece and the rest go back to the queue (written at the next
    flush) and the entry found is still counted as dropped."""
    log = manager.verifications
    log._writer.interval = 3600  # nothing written behind the test's back
    for n in range(8):
        path: Any = 404 if n == 1 else f"/{n}"  # entry 1: a path that is not text
        log.record(Entry(time.time(), "valid", None, None, (), None, "GET", path, f"r-{n}",
                         "ua", ()))  # fmt: skip
    write = manager.store.record_verifications

    def down_for_the_second_half(values: list[Any], late: Any = None) -> None:
        if any(isinstance(v, str) and "/6" in v for v in values):  # entry 6's path
            raise Unavailable("database is locked")
        write(values, late)

    monkeypatch.setattr(manager.store, "record_verifications", down_for_the_second_half)
    dropped = log.dropped
    with pytest.raises(Unavailable):
        log.flush()
    assert log.dropped == dropped + 1
    monkeypatch.setattr(manager.store, "record_verifications", write)
    log.flush()
    stored = manager.store.verifications(VerificationFilter())
    assert sorted(v.request_id for v in stored) == [f"r-{n}" for n in range(8) if n != 1]


def test_a_request_id_made_by_keyturn_begins_with_the_time() -> None:
    """32 hex digits, the first 12 the time in milliseconds (when the id's run of 256
    began, so never after it was made): ids sort as they were made (what keeps the log's
    index on them cheap to grow)."""
    before = time.time_ns() // 1_000_000
    made = [request_id_of([], "203.0.113.9", AddressSet(())) for _ in range(300)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == 300
    assert made == sorted(made)
    for rid in made:
        assert len(rid) == 32 and int(rid, 16) >= 0
        assert int(rid[:12], 16) <= after
    assert int(made[-1][:12], 16) >= before  # 300 ids began a run here


def test_the_core_keeps_the_queue_bound_on_every_path(manager: KeyManager) -> None:
    """The hot path appends entries itself while the queue has room: past the capacity
    they are dropped and counted there too, and the request is still answered."""
    key = manager.create_key("k").key
    log = manager.verifications
    log.capacity = 2
    log._writer.interval = 3600  # nothing written behind the test's back
    headers = [(b"authorization", f"Bearer {key}".encode())]
    answers = [manager.verify_asgi(headers).code for _ in range(4)]  # cached after the first
    answers.append(manager.verify_key(key).code)
    assert answers == ["valid"] * 5
    assert log.dropped == 3
    assert log.flush() == 2
    manager.verify_asgi(headers)
    assert log.dropped == 3 and log.flush() == 1


def test_the_hot_path_counts_entries_again_once_the_writer_took_the_queue(
    manager: KeyManager,
) -> None:
    """The hot path queues without counting for a moment after an entry found the queue
    roomy; the writer's take ends that moment, so entries are counted against the capacity
    (here none) from the next one on."""
    key = manager.create_key("k").key
    log = manager.verifications
    log._writer.interval = 3600  # nothing written behind the test's back
    headers = [(b"authorization", f"Bearer {key}".encode())]
    assert [manager.verify_asgi(headers).code for _ in range(3)] == ["valid"] * 3
    assert log.dropped == 0 and log.flush() == 3
    log.capacity = 0
    assert manager.verify_asgi(headers).code == "valid"
    assert log.dropped == 1 and log.flush() == 0


def test_a_batch_of_many_entries_is_written_whole(manager: KeyManager) -> None:
    """A big batch goes to the database in several statements (SQLite) or one COPY
    (PostgreSQL): every entry arrives once, as recorded."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    count = 2 * ROWS_PER_INSERT + 7
    for i in range(count):
        log.record(entry(request_id=f"r{i}", path=f"/n/{i}"))
    assert log.flush() == count
    found = manager.store.verifications(VerificationFilter(), limit=count + 10)
    assert sorted((v.request_id, v.path) for v in found) == sorted(
        (f"r{i}", f"/n/{i}") for i in range(count)
    )
    log.close()


def test_a_scope_holding_a_nul_does_not_stop_the_log(manager: KeyManager) -> None:
    """PostgreSQL refuses a NUL in text, and a refused batch would be retried for ever
    while every later entry waited behind it: what a request needed is stored cleaned."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    log.record(entry(request_id="n")._replace(scopes=("orders:read", "bad\x00scope")))
    log.record(entry(request_id="p"))
    assert log.flush() == 2
    rows = {v.request_id: v for v in manager.store.verifications(VerificationFilter())}
    assert rows["n"].scopes == ("orders:read", "bad\ufffdscope") and rows["p"].scopes == ()
    log.close()


@given(count=st.integers(0, 5_000), largest=st.sampled_from([ROWS_PER_INSERT, 99, 3]))
def test_a_batch_is_written_in_statements_of_a_few_sizes(count: int, largest: int) -> None:
    """Every row of any batch is in exactly one INSERT, and the INSERTs come in a few
    sizes (what SQLite prepares once per connection), whatever the batch's size."""
    sizes = list(statement_sizes(count, largest))
    assert sum(sizes) == count
    assert set(sizes) <= {largest, 100, 20, 4, 1}
    assert len(sizes) <= count // largest + 15


@pytest.mark.parametrize("trusted", [False, True])
def test_a_direct_call_of_the_core_is_logged_with_its_agent_and_client(
    db_url: str, trusted: bool
) -> None:
    """Without a face's ``Seen`` the core reads the user agent from the headers; behind a
    trusted proxy the client is the one it forwarded, else the peer (a client's own
    ``X-Forwarded-For`` is not believed)."""
    verifier = Verifier(trusted_proxies=["10.0.0.0/8"] if trusted else [])
    with KeyManager(db_url, verifier=verifier) as manager:
        key = manager.create_key("k").key
        headers = [(b"authorization", f"Bearer {key}".encode()), (b"user-agent", b"cron/2"),
                   (b"x-forwarded-for", b"198.51.100.7")]  # fmt: skip
        for _ in range(2):  # a cache miss, then the cached fast path
            assert manager.verify_asgi(headers, peer="10.0.0.5").code == "valid"
        manager.verifications.flush()
        rows = manager.store.verifications(VerificationFilter())
    client = "198.51.100.7" if trusted else "10.0.0.5"
    assert [(v.user_agent, v.client) for v in rows] == [("cron/2", client)] * 2


def test_direct_calls_from_different_clients_each_log_their_own_agent(db_url: str) -> None:
    """The core reuses the text of the last user agent it read for the next request that
    sends the same one: a request with another agent, or none, still logs its own."""
    with KeyManager(db_url) as manager:
        key = manager.create_key("k").key
        bearer = (b"authorization", f"Bearer {key}".encode())
        agents = [b"cron/2", b"cron/2", b"curl/8", None, b"cron/2", b"cron/3"]
        for agent in agents:
            headers = [bearer] if agent is None else [(b"user-agent", agent), bearer]
            assert manager.verify_asgi(headers).code == "valid"
        manager.verifications.flush()
        rows = manager.store.verifications(VerificationFilter())
    assert sorted(v.user_agent for v in rows) == ["", "cron/2", "cron/2", "cron/2", "cron/3",
                                                  "curl/8"]


def test_an_entry_of_a_key_the_store_no_longer_holds_is_written_without_its_mask(
    manager: KeyManager,
) -> None:
    """The writer reads a mask the core did not note from the store; a key gone by then
    leaves the entry its id, and the batch is written (not retried for ever)."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    for rid in ("g1", "g2"):
        log.record(entry(request_id=rid)._replace(key_id="key_gone"))
    assert log.flush() == 2
    rows = manager.store.verifications(VerificationFilter(key_id="key_gone"))
    assert sorted((v.request_id, v.key) for v in rows) == [("g1", None), ("g2", None)]
    log.close()


def test_a_mixed_batch_keeps_every_entry_its_own_fields(manager: KeyManager) -> None:
    """A batch is read by column, and a column that holds one value is written as one: in a
    batch where each field varies somewhere (two keys, outcomes, methods, user agents, a
    shape the writer named in an earlier batch beside new ones, clients, paths, an entry
    without a request id and one whose id must be cleaned), each entry reads back with its
    own values, in order."""
    a = manager.create_key("a")
    b = manager.create_key("b")
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    log.note_mask(a.record.id, a.record.masked)
    log.record(entry(key=a.record, request_id="earlier"))
    log.flush()  # the shape (valid, a, GET, curl/8) is named now
    sent = []
    for i in range(12):
        key = (a.record, b.record, None)[i % 3]
        fields = {
            "request_id": f"m{i}", "peer": f"198.51.100.{i % 4}", "path": f"/orders/{i % 5}",
            "method": ("GET", "POST")[i % 2], "user_agent": ("curl/8", "httpx/1")[i % 4 // 3],
        }  # fmt: skip
        outcome = "valid" if key is not None else "key_not_found"
        sent.append((outcome, key.id if key else None, fields))
        log.record(entry(outcome, key, **fields))
    log.record(entry(key=a.record, request_id=None))
    log.record(entry(key=a.record, request_id="x" * 200 + "\x00"))
    assert log.flush() == 14
    rows = manager.store.verifications(VerificationFilter(), limit=20)
    by_id = {v.request_id: v for v in rows}
    for outcome, key_id, fields in sent:
        got = by_id[fields["request_id"]]
        assert (got.outcome, got.key_id, got.client, got.path, got.method, got.user_agent) == (
            outcome, key_id, fields["peer"], fields["path"], fields["method"],
            fields["user_agent"],
        )  # fmt: skip
        assert got.key == (None if key_id is None else {a.record.id: a.record.masked,
                                                        b.record.id: b.record.masked}[key_id])
    (made,) = [v for v in rows[:14] if len(v.request_id) == 32]
    (cleaned,) = [v for v in rows[:14] if v.request_id.startswith("x")]
    assert made.key_id == a.record.id and cleaned.request_id == "x" * 128
    # Each entry's request id is alone in its head (loose): ids in queue order among the
    # entries of a key and shape, which share blocks.
    queued = [*(f"m{i}" for i in range(12)), made.request_id, cleaned.request_id]
    shapes: dict[tuple[Any, ...], list[str]] = {}
    for v in sorted(rows[:14], key=lambda v: v.id):
        shapes.setdefault((v.key_id, v.outcome, v.method, v.user_agent), []).append(v.request_id)
    assert sorted(rid for rids in shapes.values() for rid in rids) == sorted(queued)
    assert all(rids == sorted(rids, key=queued.index) for rids in shapes.values())
    log.close()


def test_paths_are_stored_without_query_nul_or_key_short_or_long(manager: KeyManager) -> None:
    """A path shorter than any key is stored as sent but for a NUL (which PostgreSQL
    refuses); a longer one has the key in it masked; neither keeps its query."""
    key = manager.create_key("k")
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    sent = {"short": "/orders/7?api_key=x", "nul": "/a\x00b", "key": f"/keys/{key.key}/x"}
    for rid, path in sent.items():
        log.record(entry(request_id=rid, path=path))
    assert log.flush() == 3
    stored = {v.request_id: v.path for v in manager.store.verifications(VerificationFilter())}
    assert stored == {"short": "/orders/7", "nul": "/a\ufffdb", "key": f"/keys/{mask(key.key)}/x"}


@pytest.mark.parametrize("sent", ["x" * 129, "r\x00id"])
def test_a_batch_with_one_irregular_request_id_and_no_missing_one_is_cleaned(
    manager: KeyManager, sent: str
) -> None:
    """The writer tells a batch whose ids all stand as sent from one it must clean without
    a missing id among them: an id too long, or holding a NUL, is cut and cleaned."""
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600)
    log.record(entry(request_id="plain"))
    log.record(entry(request_id=sent))
    assert log.flush() == 2
    stored = [v.request_id for v in manager.store.verifications(VerificationFilter())]
    assert stored == [sent[:128].replace("\x00", "\ufffd"), "plain"]
    log.close()


def test_a_clock_stepped_back_does_not_keep_the_queue_open(
    manager: KeyManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The moment the hot path queues without counting is a span of the wall clock: a
    clock stepped back (an NTP correction) leaves it, so entries are counted against the
    capacity again even while the writer has not taken the queue (a store that hangs)."""
    key = manager.create_key("k").key
    log = manager.verifications
    log._writer.interval = 3600  # the writer takes nothing: as while the store hangs
    headers = [(b"authorization", f"Bearer {key}".encode())]
    assert manager.verify_asgi(headers).code == "valid"  # the queue is roomy: it opens
    log.capacity = 0
    stepped = time.time() - 10
    monkeypatch.setattr(time, "time", lambda: stepped)
    assert [manager.verify_asgi(headers).code for _ in range(3)] == ["valid"] * 3
    assert log.dropped == 3
    monkeypatch.undo()
    assert log.flush() == 1
