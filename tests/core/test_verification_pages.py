"""Reading the verification log stored in blocks (migration 0100), on both engines: pages,
a key's callers and its needs agree with the entries the blocks hold, one by one.

Blocks are put in the table here as the writer makes them (``verification_blocks``), with
what the writer does not make on purpose: blocks straddling a ``since``, ids with gaps,
request ids sharing a head in blocks of other keys."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyturn import KeyManager
from keyturn._addresses import TrustedProxies
from keyturn._suggestions import Need
from keyturn._verifications import Caller, Entry, Verification, VerificationFilter, VerificationLog
from keyturn.store.verification_blocks import pack_texts, pack_times, split_request_id

BASE = 1_700_000_000.0  # the entries' times: BASE plus whole milliseconds, give or take
# Request ids by head: "zz" is all head, and "zzab" shares it (its tail "ab").
RIDS = ("ab12cd00", "ab12cd01", "ab12cdff", "ab12ce00", "zz", "zzab", "xyz")
OWNERS = {"k1": "acme", "k2": "acme", "k3": "other"}  # test names -> the keys' owners


@dataclass(frozen=True)
class Block:
    """What a block's entries share, and each entry's own request id, time, path and client
    address."""

    key: str | None  # a name of ``OWNERS``, "gone" (a key deleted since) or None
    outcome: str
    method: str
    scopes: str | None
    entries: tuple[tuple[str, float, str, str | None], ...]
    gap: int  # ids left unused before the block (ids are never reused: the purge)


def _entries(head: str) -> st.SearchStrategy[tuple[tuple[str, float, str, str | None], ...]]:
    rids = [rid for rid in RIDS if split_request_id(rid)[0] == head]
    entry = st.tuples(
        st.sampled_from(rids),
        st.builds(lambda ms, off: BASE + ms / 1000 + off, st.integers(0, 40),
                  st.sampled_from([0.0, 3e-7, -3e-7])),
        st.sampled_from(["/a", "/b"]),
        st.sampled_from([None, "203.0.113.9", "2001:db8::1"]),
    )
    return st.lists(entry, min_size=1, max_size=6).map(tuple)


blocks = st.lists(
    st.builds(
        lambda shared, entries, gap: Block(*shared, entries, gap),
        st.tuples(
            st.sampled_from([None, "k1", "k2", "k3", "gone"]),
            st.sampled_from(["valid", "revoked"]),
            st.sampled_from(["GET", "POST"]),
            st.sampled_from([None, "read", "read write"]),
        ),
        st.sampled_from(sorted({split_request_id(rid)[0] for rid in RIDS})).flatmap(_entries),
        st.integers(0, 2),
    ),
    max_size=10,
)


@pytest.fixture
def manager(store_url: str) -> Iterator[KeyManager]:
    with KeyManager(store_url) as m:
        yield m


@pytest.fixture
def key_ids(manager: KeyManager) -> dict[str, str]:
    """The keys' ids by test name ("gone": an id no key has)."""
    ids = {name: manager.create_key(name, owner=owner).record.id for name, owner in OWNERS.items()}
    return {**ids, "gone": "kt_gone"}


def put_blocks(manager: KeyManager, key_ids: dict[str, str], put: list[Block]) -> list[Any]:
    """``put`` in the table (after emptying it), as the writer stores blocks; the entries
    they hold as the log shows them, newest first."""
    store: Any = manager.store
    time_in = store.dialect.time_in
    made = [(BASE, b.outcome, None if b.key is None else f"mask-{b.key}", b.method, "ua",
             b.scopes) for b in put]  # fmt: skip
    shapes = store.add_verification_shapes(made) if made else []
    insert = store.dialect.params(
        "INSERT INTO verifications (id, at, count, key_id, shape, head, tails, times, paths, "
        "clients) VALUES (:id, :at, :count, :key_id, :shape, :head, :tails, :times, :paths, "
        ":clients)"
    )
    shown: list[Verification] = []
    first = 1
    with store._writing() as conn:
        conn.execute("DELETE FROM verifications")
        for block, shape in zip(put, shapes, strict=True):
            first += block.gap
            rids, times, paths, clients = zip(*block.entries, strict=True)
            key_id = None if block.key is None else key_ids[block.key]
            conn.execute(insert, {
                "id": first, "at": time_in(datetime.fromtimestamp(max(times), UTC)),
                "count": len(rids), "key_id": key_id, "shape": shape,
                "head": split_request_id(rids[0])[0],
                "tails": pack_texts([split_request_id(rid)[1] for rid in rids]),
                "times": pack_times(times), "paths": pack_texts(paths),
                "clients": pack_texts(clients),
            })  # fmt: skip
            for i, (rid, at, path, client) in enumerate(block.entries):
                if len(block.entries) == 1:  # its time is the block's, as the engine keeps it
                    at = datetime.fromtimestamp(at, UTC).timestamp()
                scopes = None if block.scopes is None else tuple(block.scopes.split())
                shown.append(Verification(
                    first + i, datetime.fromtimestamp(at, UTC), rid, key_id,
                    None if block.key is None else f"mask-{block.key}", block.outcome,
                    client, block.method, path, "ua", scopes,
                ))  # fmt: skip
            first += len(rids)
    return sorted(shown, key=lambda v: v.id, reverse=True)


def passes(entry: Verification, f: VerificationFilter, owners: dict[str | None, str]) -> bool:
    return (
        (f.key_id is None or entry.key_id == f.key_id)
        and (f.owner is None or owners.get(entry.key_id) == f.owner)
        and (f.outcome is None or entry.outcome == f.outcome)
        and (f.request_id is None or entry.request_id == f.request_id)
        and (f.since is None or entry.at >= f.since)
    )


moments = st.none() | st.integers(-1, 41).map(
    lambda ms: datetime.fromtimestamp(BASE + ms / 1000, UTC)
)
filters = st.builds(
    VerificationFilter,
    st.none() | st.sampled_from(["k1", "k3", "gone", "kt_nobody"]),
    st.none() | st.sampled_from(["acme", "other", "nobody"]),
    st.none() | st.sampled_from(["valid", "revoked"]),
    st.none() | st.sampled_from([*RIDS, "ab12cd02", "z", "ab12cd"]),
    moments,
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(put=blocks, wanted=filters, limit=st.integers(1, 5), start=st.none() | st.integers(0, 90))
def test_pages_through_random_blocks_show_each_entry_once_newest_first(
    manager: KeyManager, key_ids: dict[str, str], put: list[Block], wanted: VerificationFilter,
    limit: int, start: int | None,
) -> None:  # fmt: skip
    """Paging as ``GET /v1/verifications`` does (``before``: the last id of a full page),
    from the newest entry or from ``start``: every entry passing the filters exactly once,
    newest first, and no other."""
    shown = put_blocks(manager, key_ids, put)
    if wanted.key_id in key_ids:
        wanted = replace(wanted, key_id=key_ids[wanted.key_id])
    owners: dict[str | None, str] = {key_ids[name]: owner for name, owner in OWNERS.items()}
    expected = [v for v in shown if passes(v, wanted, owners)
                and (start is None or v.id < start)]  # fmt: skip
    read: list[Verification] = []
    before = start
    for _ in range(len(shown) + 2):  # a page that repeats its entries would go on for ever
        page = manager.store.verifications(wanted, limit=limit, before=before)
        assert len(page) <= limit
        read.extend(page)
        if len(page) < limit:
            break
        before = page[-1].id
    assert read == expected


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(put=blocks, since=st.integers(-1, 41), name=st.sampled_from(["k1", "k3", "gone"]))
def test_callers_and_needs_count_each_entry_since_the_moment(
    manager: KeyManager, key_ids: dict[str, str], put: list[Block], since: int, name: str
) -> None:
    """A key's callers (per client, method and path: requests, last seen) and needs (its
    accepted requests per scopes and client) count exactly the entries at or after the
    moment, also in a block holding entries before it."""
    shown = put_blocks(manager, key_ids, put)
    moment = datetime.fromtimestamp(BASE + since / 1000, UTC)
    mine = [v for v in shown if v.key_id == key_ids[name] and v.at >= moment]
    requests = Counter((v.client, v.method, v.path) for v in mine)
    last: dict[tuple[Any, ...], datetime] = {}
    for v in mine:
        group = (v.client, v.method, v.path)
        last[group] = max(last.get(group, v.at), v.at)
    callers = manager.store.key_callers(key_ids[name], moment, limit=100)
    assert set(callers) == {Caller(*group, n, last[group]) for group, n in requests.items()}
    assert [c.last_seen for c in callers] == sorted(last.values(), reverse=True)
    needed = Counter((v.scopes, v.client) for v in mine if v.outcome == "valid")
    assert set(manager.store.key_needs(key_ids[name], moment)) == {
        Need(scopes, client, n) for (scopes, client), n in needed.items()
    }


def test_a_page_reads_blocks_a_few_at_a_time(
    manager: KeyManager, key_ids: dict[str, str]
) -> None:
    """A page of the newest entries reads the newest blocks only, and a filter that few
    entries pass reads on until the page is full: 300 blocks of 3 entries, one entry in
    each from a request id, then the page of 40 entries of that id."""
    put = [Block("k1", "valid", "GET", None,
                 (("ab12cd00", BASE + i, "/a", None), ("ab12cd01", BASE + i, "/a", None),
                  ("ab12cdff", BASE + i, "/b", None)), 0)
           for i in range(300)]  # fmt: skip
    shown = put_blocks(manager, key_ids, put)
    assert manager.store.verifications(VerificationFilter(), limit=5) == shown[:5]
    wanted = VerificationFilter(request_id="ab12cd01")
    page = manager.store.verifications(wanted, limit=40)
    assert page == [v for v in shown if v.request_id == "ab12cd01"][:40]
    assert [v.id for v in page] == list(range(899, 899 - 3 * 40, -3))


@pytest.mark.parametrize("before", [0, -5, 2**63 - 1, 2**70])
def test_a_page_before_any_id_is_an_answer(
    manager: KeyManager, key_ids: dict[str, str], before: int
) -> None:
    """Ids past what an engine holds (and none at all) are pages too, never an error."""
    shown = put_blocks(manager, key_ids, [Block(None, "valid", "GET", None,
                                                (("zz", BASE, "/a", None),), 0)])  # fmt: skip
    found = manager.store.verifications(VerificationFilter(), before=before)
    assert found == (shown if before > 1 else [])


def test_a_since_between_two_entries_of_a_block(
    manager: KeyManager, key_ids: dict[str, str]
) -> None:
    entries = tuple(("ab12cd00", BASE + s, "/a", None) for s in (0, 10, 20))
    shown = put_blocks(manager, key_ids, [Block("k1", "valid", "GET", "read", entries, 0)])
    since = datetime.fromtimestamp(BASE + 10, UTC)
    assert manager.store.verifications(VerificationFilter(since=since)) == shown[:2]
    assert manager.store.key_needs(key_ids["k1"], since) == [Need(("read",), None, 2)]
    later = since + timedelta(seconds=11)
    assert manager.store.key_callers(key_ids["k1"], later) == []


written = st.lists(
    st.tuples(
        st.sampled_from([None, "k1", "k3"]),
        st.sampled_from(["valid", "revoked"]),
        st.sampled_from(["203.0.113.9", "2001:db8::1"]),
        st.sampled_from(RIDS),
        st.integers(0, 40),  # milliseconds before the moment written
        st.sampled_from(["/a", "/b"]),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(queued=written, wanted=filters, limit=st.integers(1, 5))
def test_pages_through_what_the_writer_wrote_show_each_entry_once(
    manager: KeyManager, key_ids: dict[str, str], queued: list[tuple[Any, ...]],
    wanted: VerificationFilter, limit: int,
) -> None:  # fmt: skip
    """The same through the log's own writer (entries queued as the core queues them, a
    flush): every entry passing the filters once, ids newest first."""
    store: Any = manager.store
    with store._writing() as conn:
        conn.execute("DELETE FROM verifications")
    log = VerificationLog(store, TrustedProxies(), interval=3600)
    now = time.time()
    for name, outcome, peer, rid, ago, path in queued:
        key_id = None if name is None else key_ids[name]
        log.record(Entry(now - ago / 1000, outcome, key_id, peer, ("read",), None, "GET", path,
                         rid, "ua", ()))  # fmt: skip
    log.flush()
    if wanted.key_id in key_ids:
        wanted = replace(wanted, key_id=key_ids[wanted.key_id])
    if wanted.since is not None:  # half a millisecond off every entry's time: ``now`` is
        # any float, and an entry a microsecond's rounding from ``since`` is on either side
        wanted = replace(wanted, since=wanted.since + timedelta(seconds=now - BASE - 0.0405))
    owners: dict[str | None, str] = {key_ids[name]: owner for name, owner in OWNERS.items()}
    every = manager.store.verifications(VerificationFilter(), limit=1000)
    assert [v.id for v in every] == sorted({v.id for v in every}, reverse=True)
    assert sorted((v.request_id, v.at, v.key_id or "", v.path, v.client) for v in every) == \
        sorted((rid, datetime.fromtimestamp(now - ago / 1000, UTC),
                "" if n is None else key_ids[n], path, peer)
               for n, _, peer, rid, ago, path in queued)  # fmt: skip
    read: list[Verification] = []
    before = None
    for _ in range(len(queued) + 2):
        page = manager.store.verifications(wanted, limit=limit, before=before)
        read.extend(page)
        if len(page) < limit:
            break
        before = page[-1].id
    assert read == [v for v in every if passes(v, wanted, owners)]
    log.close()
