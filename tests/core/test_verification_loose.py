"""The verification log's loose entries, on both engines: request ids a trusted proxy
passed on (random, as nginx's ``$request_id`` or UUIDs), each alone in its head, are
stored in blocks of their key and shape (head "", whole request ids as tails) and found
by their request id through ``verification_requests``; pages, lookups, a key's callers
and the purge see each entry once, as it was queued."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyturn import KeyManager
from keyturn._request_ids import new_id
from keyturn._verifications import Entry, VerificationFilter
from keyturn.store.verification_blocks import MOST_ENTRIES

from .test_verification_block_writes import blocks, log_of, stored
from .test_verification_shapes import entry, raw


@pytest.fixture
def manager(store_url: str) -> Iterator[KeyManager]:
    with KeyManager(store_url, verification_log=False) as m:
        yield m


def _proxy_id(rng: random.Random) -> str:
    """A request id as nginx's ``$request_id`` makes it: 32 random hex digits."""
    return f"{rng.getrandbits(128):032x}"


def _requests(url: str) -> list[tuple[int, str]]:
    return [(int(i), r) for i, r in raw(url, "SELECT id, request_id FROM verification_requests "
                                             "ORDER BY id")]  # fmt: skip


def test_a_proxys_random_ids_share_a_block_and_each_is_found(
    manager: KeyManager, store_url: str
) -> None:
    """600 entries of one key, each a proxy's random id: a few blocks of head "" (at most
    ``MOST_ENTRIES`` entries each) holding them in queue order, one side row an entry; every
    id found by a lookup (also with the key's filter), an id never stored not."""
    key = manager.create_key("k", owner="acme")
    log = log_of(manager)
    rng = random.Random(7)
    start = time.time() // 60 * 60  # the batch within one minute (a loose block's)
    queued = [entry(key_id=key.record.id, request_id=_proxy_id(rng), at=start + n / 1000,
                    path=f"/p/{n % 3}") for n in range(600)]  # fmt: skip
    for e in queued:
        log.record(e)
    assert log.flush() == 600
    rows = blocks(store_url)
    assert [r[6] for r in rows] == [""] * 3 and [r[2] for r in rows] == [MOST_ENTRIES, 256, 88]
    entries = stored(store_url)
    assert [(e[2], e[3]) for e in entries] == [(e.request_id, e.path) for e in queued]
    assert _requests(store_url) == [(e[0], e[2]) for e in entries]
    for e, (id_, at, *_) in zip(queued[::37], entries[::37], strict=True):
        for wanted in (VerificationFilter(request_id=e.request_id),
                       VerificationFilter(request_id=e.request_id, key_id=key.record.id,
                                          outcome="valid", owner="acme")):  # fmt: skip
            (found,) = manager.store.verifications(wanted)
            assert (found.id, found.request_id, found.path, found.key_id) == (
                id_, e.request_id, e.path, key.record.id)
            assert found.at.timestamp() == pytest.approx(at, abs=1e-6)
    assert manager.store.verifications(VerificationFilter(request_id=_proxy_id(rng))) == []
    assert manager.store.verifications(
        VerificationFilter(request_id=queued[0].request_id, key_id="kt_other")) == []
    log.close()


def test_a_lone_proxy_id_keeps_its_head_and_the_empty_id_is_loose(
    manager: KeyManager, store_url: str
) -> None:
    """An entry alone in its key and shape too is a block of its own head (no side row);
    an empty request id (head "", a loose block's) is always loose, and found."""
    a = manager.create_key("a")
    b = manager.create_key("b")
    log = log_of(manager)
    log.record(entry(key_id=a.record.id, request_id="lone-proxy-id"))
    log.record(entry(key_id=b.record.id, request_id=""))
    log.record(entry(key_id=b.record.id, request_id="", path="/second"))
    assert log.flush() == 3
    rows = blocks(store_url)
    assert [(r[6], r[2]) for r in rows] == [("lone-proxy-", 1), ("", 2)]
    assert [r for _, r in _requests(store_url)] == ["", ""]
    (lone,) = manager.store.verifications(VerificationFilter(request_id="lone-proxy-id"))
    assert lone.key_id == a.record.id
    empty = manager.store.verifications(VerificationFilter(request_id=""))
    assert [(v.request_id, v.path) for v in empty] == [("", "/second"), ("", "/orders")]
    log.close()


def test_loose_entries_of_another_minute_are_a_block_of_their_own(
    manager: KeyManager, store_url: str
) -> None:
    """A batch spanning minutes (written after an outage) keeps each minute's loose entries
    apart: the purge deletes a block whole once its newest entry is due, so the older
    minute goes at its own time, its side rows with it, and the newer is still found."""
    key = manager.create_key("k")
    log = log_of(manager)
    rng = random.Random(3)
    now = time.time() // 60 * 60  # each minute's entries within it
    old = [entry(key_id=key.record.id, request_id=_proxy_id(rng), at=now - 7200 + n)
           for n in range(5)]  # fmt: skip
    new = [entry(key_id=key.record.id, request_id=_proxy_id(rng), at=now + n / 100)
           for n in range(5)]  # fmt: skip
    for e in old + new:
        log.record(e)
    log.flush()
    assert [(r[6], r[2]) for r in blocks(store_url)] == [("", 5), ("", 5)]
    manager.store.purge_verifications(datetime.fromtimestamp(now - 3600, UTC))
    assert [e[2] for e in stored(store_url)] == [e.request_id for e in new]
    assert [r for _, r in _requests(store_url)] == [e.request_id for e in new]
    assert manager.store.verifications(VerificationFilter(request_id=old[0].request_id)) == []
    (found,) = manager.store.verifications(VerificationFilter(request_id=new[4].request_id))
    assert found.at.timestamp() == pytest.approx(new[4].at, abs=1e-6)
    log.close()


def test_the_purge_deletes_side_rows_below_the_first_block_kept(
    manager: KeyManager, store_url: str
) -> None:
    """Three batches of a proxy's ids: the purge of the first two deletes their blocks and
    side rows, keeps the third's; a late batch's block, deleted by its note out of the
    walk, leaves side rows naming no block of theirs, which a lookup does not show."""
    key = manager.create_key("k")
    log = log_of(manager)
    rng = random.Random(11)
    now = time.time() // 60 * 60  # each batch within a minute (a loose block's)
    batches: list[list[Entry]] = []
    for ago in (5000, 4000, 10):
        batch = [entry(key_id=key.record.id, request_id=_proxy_id(rng), at=now - ago + n / 100)
                 for n in range(4)]  # fmt: skip
        batches.append(batch)
        for e in batch:
            log.record(e)
        log.flush()
    late = [entry(key_id=key.record.id, request_id=_proxy_id(rng), at=now - 4500 + n)
            for n in range(3)]  # fmt: skip
    for e in late:
        log.record(e)
    log.flush()  # written after the third batch: a block the walk stops before
    manager.store.purge_verifications(datetime.fromtimestamp(now - 3600, UTC))
    kept = [e.request_id for e in batches[2]]
    assert [e[2] for e in stored(store_url)] == kept
    left = [r for _, r in _requests(store_url)]
    assert left == kept + [e.request_id for e in late]  # the late block's: past the walk
    for e in late + batches[0]:
        assert manager.store.verifications(VerificationFilter(request_id=e.request_id)) == []
    shown = manager.store.verifications(VerificationFilter(), limit=100)
    assert [v.request_id for v in shown] == kept[::-1]
    log.close()


_kinds = st.sampled_from(["proxy", "uuid", "run", "lone", "empty"])
written = st.lists(
    st.tuples(_kinds, st.sampled_from([0, 1]), st.sampled_from(["curl/8", "httpx"]),
              st.integers(0, 30), st.sampled_from(["/a", "/b"])),
    max_size=40,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(queued=written, limit=st.integers(1, 7), seed=st.integers(0, 2**32))
def test_pages_lookups_and_callers_through_random_proxy_ids(
    manager: KeyManager, store_url: str, queued: list[tuple[Any, ...]], limit: int, seed: int,
) -> None:  # fmt: skip
    """A writer's batch of a proxy's random ids and UUIDs among keyturn's runs, ids that
    share a head with no other, empty ids, two keys and two shapes: pages show every entry
    once, newest first; a lookup by each request id shows exactly its entries; a key's
    callers count each of its entries once."""
    store: Any = manager.store
    with store._writing() as conn:
        conn.execute("DELETE FROM verifications")
    keys = [manager.create_key(f"k{seed}-{n}").record.id for n in range(2)]
    log = log_of(manager)
    rng = random.Random(seed)
    now = time.time()
    made: list[Entry] = []
    for kind, key, agent, ago, path in queued:
        rid = {"proxy": _proxy_id(rng), "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
               "run": new_id()[0], "lone": f"lone-{rng.getrandbits(16)}", "empty": ""}[kind]
        made.append(entry(key_id=keys[key], request_id=rid, user_agent=agent, path=path,
                          at=now - ago / 1000))  # fmt: skip
    for e in made:
        log.record(e)
    log.flush()
    every = manager.store.verifications(VerificationFilter(), limit=1000)
    assert [v.id for v in every] == sorted({v.id for v in every}, reverse=True)
    assert sorted((v.request_id, v.key_id, v.path, v.user_agent, v.at) for v in every) == \
        sorted((e.request_id, e.key_id, e.path, e.user_agent,
                datetime.fromtimestamp(e.at, UTC)) for e in made)  # fmt: skip
    read: list[Any] = []
    before = None
    for _ in range(len(made) + 2):
        page = manager.store.verifications(VerificationFilter(), limit=limit, before=before)
        read.extend(page)
        if len(page) < limit:
            break
        before = page[-1].id
    assert read == every
    for rid in {e.request_id for e in made}:
        found = manager.store.verifications(VerificationFilter(request_id=rid), limit=limit)
        assert found == [v for v in every if v.request_id == rid][:limit]
    since = datetime.fromtimestamp(now - 1, UTC)
    for key_id in keys:
        counted = sum(c.requests for c in manager.store.key_callers(key_id, since))
        assert counted == sum(e.key_id == key_id for e in made)
    log.close()


def test_a_lookup_reads_the_side_table_through_its_index(tmp_path: Any) -> None:
    """SQLite's plan for a lookup by request id: the head's index and the side table's,
    each block then by its id; no scan of a table. (SQLite's only: PostgreSQL's planner
    scans a table as small as a test's whatever its indexes.)"""
    from keyturn.store.verification_rows import blocks_query

    with KeyManager(f"sqlite:///{tmp_path / 'plan.db'}") as manager:
        store: Any = manager.store
        query, params = blocks_query(store.dialect, VerificationFilter(request_id="ab" * 16))
        plan = " ".join(str(r[3]) for r in store._conn.execute(
            "EXPLAIN QUERY PLAN " + query, {**params, "below": 2**62, "blocks": 16}))
    assert "verification_requests_request" in plan and "verifications_request" in plan
    assert "SCAN" not in plan
