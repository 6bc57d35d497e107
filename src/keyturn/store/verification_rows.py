"""The SQL of the verification log (``keyturn._verifications``), shared by both engines; the
methods that run it are ``SQLStore``'s (``store/relational.py``).

Entries are stored in blocks (migration 0100, ``verification_blocks``): a batch's entries
sharing a key id, shape and request-id head are one row, holding its entries' times,
request-id tails, paths and client addresses packed. The shape is the id of a row of
``verification_shapes`` holding what repeats from request to request (outcome, mask,
method, user agent, scopes), stored once per shape the writer has not seen (migration
0080). Binding an entry's texts and keeping
the indexes on them was most of what the log cost; a block pays its row and index entries
once for all its entries."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import compress, islice
from operator import not_
from typing import TYPE_CHECKING, Any

from keyturn.store import sql
from keyturn.store.verification_blocks import (
    pack_texts,
    split_request_id,
    uniform,
    unpack,
    unpack_texts,
    unpack_times,
)

if TYPE_CHECKING:
    from keyturn._suggestions import Need
    from keyturn._verifications import Caller, Verification, VerificationFilter

# A batch as the writer (``keyturn._verifications``) hands it to the store: one flat list
# of values, these columns in this order for each block, ``at`` (the newest entry's time)
# in Unix seconds, ``id`` left ``None`` for the store, which fills the column in (one slice
# assignment) from the ids it takes in the writing transaction (``TAKE_IDS``). Positional
# and flat, so that a batch goes to the driver as it was built (no tuple or dict per
# block, no names to bind).
BLOCK_COLUMNS = ("id", "at", "count", "key_id", "shape", "head", "tails", "times", "paths",
                 "clients")  # fmt: skip
# A new shape as the writer hands it to the store (``created`` in Unix seconds); the store
# numbers it in the transaction that adds it.
SHAPE_COLUMNS = ("created", "outcome", "masked", "method", "user_agent", "scopes")
ShapeRow = tuple[float, str, str | None, str, str, str | None]
# How long the writer names a shape it made (then it makes it anew), and how long past the
# retention a shape is kept: an entry is written at most ``SHAPE_REUSE`` after its shape,
# so once the purge has deleted every entry written before a moment, no entry left names
# a shape made a day before it (a day: for clocks of several instances that disagree).
SHAPE_REUSE = 3600.0
SHAPES_OUTLIVE = SHAPE_REUSE + 86_400.0
# SQLite: rows per INSERT. One statement per row (``executemany``) costs its own bind,
# step and reset, and the driver lets the GIL go around every step: under load, each row
# became a hand-off with the serving thread. A statement of many rows is one step.
ROWS_PER_INSERT = 500
# The smaller statements a batch's remainder goes in. The driver keeps a prepared statement
# per SQL text, so a few sizes are prepared once per connection; a statement of exactly the
# remainder's size was new at nearly every write, and preparing it cost about as much as
# inserting its rows (a flush of a few hundred entries took twice the time per entry).
_SMALLER = (100, 20, 4, 1)


def statement_sizes(count: int, largest: int) -> Iterator[int]:
    """The rows of each INSERT for a batch of ``count`` rows: ``largest`` (what the
    parameter limit allows, at most ``ROWS_PER_INSERT``) while it fits, then the smaller
    sizes, largest first."""
    for size in (largest, *(s for s in _SMALLER if s < largest)):
        while count >= size:
            count -= size
            yield size


@lru_cache(maxsize=4 * (len(_SMALLER) + 1))  # blocks, blocks of one, shapes, requests
def insert_rows(
    table: str, columns: tuple[str, ...], rows: int, marks: tuple[str, ...] | None = None
) -> str:
    """SQLite's INSERT of ``rows`` rows (``marks``, a placeholder or a literal a column,
    default ``?``, the columns in order)."""
    row = f"({', '.join(marks or '?' * len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"


# SQLite: the blocks of one entry (every block, when entries share no request-id head: a
# proxy's random ids) are written by a statement of their own, their count and times the
# literals ``1`` and ``NULL``, not bound: each value bound cost the driver and SQLite
# hundreds of instructions, and ``None`` more (the driver looks for an adapter for it)
# (``bench/log_rows.py``). Their values go to the store without those two columns.
ONE_MARKS = tuple({"count": "1", "times": "NULL"}.get(c, "?") for c in BLOCK_COLUMNS)


# Ids for a batch's entries, ``:count`` of them, taken in the transaction that writes the
# batch: the one row of ``verification_ids`` holds the next id to give, and its lock (a
# row's on PostgreSQL, the database's on SQLite: ``BEGIN IMMEDIATE``) keeps another
# writer from taking the same ids until the batch commits. What it returns is the next id
# after the batch's: the batch's first is that less ``:count``. An id given is never given
# again, whatever the purge deletes.
TAKE_IDS = "UPDATE verification_ids SET next = next + :count RETURNING next"
# New shapes are written as entries are, in as few statements, numbered by the store.
SHAPE_TABLE_COLUMNS = ("id", *SHAPE_COLUMNS)
# SQLite numbers new shapes after the highest, in the writing transaction (``BEGIN
# IMMEDIATE``: no other writer can take the same numbers).
NEXT_SHAPE = "SELECT COALESCE(MAX(id), 0) + 1 FROM verification_shapes"
# PostgreSQL: one COPY per batch (no statement per row, no round trip per row).
COPY_VERIFICATIONS = f"COPY verifications ({', '.join(BLOCK_COLUMNS)}) FROM STDIN"
COPY_SHAPES = f"COPY verification_shapes ({', '.join(SHAPE_TABLE_COLUMNS)}) FROM STDIN"
# A loose entry's id by its request id (``keyturn._verifications._loosened``): the store
# writes one row for each entry of a block of head "", whose tails are whole request ids.
REQUEST_COLUMNS = ("id", "request_id")
COPY_REQUESTS = f"COPY verification_requests ({', '.join(REQUEST_COLUMNS)}) FROM STDIN"

def loose_requests(values: list[Any], firsts: list[int], heads: list[str]) -> list[Any]:
    """The rows of ``verification_requests`` for a batch's blocks (``values``, flat,
    ``firsts``: their ids, ``heads``: their heads): each entry of a loose block (head "")
    with its id and its whole request id (the block's tails), flat."""
    width = len(BLOCK_COLUMNS)
    rows: list[Any] = []
    for place in compress(range(len(heads)), map(not_, heads)):
        first, count = firsts[place], values[place * width + 2]
        block: list[Any] = [None] * (2 * count)
        block[0::2] = range(first, first + count)
        block[1::2] = unpack_texts(values[place * width + 6], count)
        rows += block
    return rows


# A block holding an entry written ``LATE`` seconds or more after its time (the store was
# down) is noted in ``verification_late``, where the purge finds it: the writer gives the
# block's place in its batch and the block's time, and the store its id.
LATE = 60.0
LateRow = tuple[int, float]
INSERT_LATE = "INSERT INTO verification_late (block, at) VALUES (:block, :at)"

_NEVER = 2**63 - 1
# The purge walks a table in id order, which is the order blocks (and shapes) were written
# in, up to the first one to keep: it reads only what it deletes, with no index on the
# time. A block is deleted whole, once its newest entry (its ``at``) is due. A block it does
# not reach then was written after one it keeps, so less than ``LATE`` before it, or it
# holds an entry written late, was noted so, and is deleted by its id.
PURGE_VERIFICATIONS = (
    "DELETE FROM verifications WHERE id < COALESCE((SELECT id FROM verifications "
    f"WHERE at >= :before ORDER BY id LIMIT 1), {_NEVER})"
)
PURGE_LATE_VERIFICATIONS = (
    "DELETE FROM verifications WHERE at < :before AND id IN "
    "(SELECT block FROM verification_late WHERE at < :before)"
)
PURGE_LATE = "DELETE FROM verification_late WHERE at < :before"
# Loose entries' request ids go once the blocks below the first block kept are gone: an
# entry's id is at least its block's. Those of a block deleted out of the walk (noted late,
# or by time) stay until the walk passes them; meanwhile a lookup reaching one reads the
# block before it, which does not hold its request id.
PURGE_REQUESTS = (
    "DELETE FROM verification_requests WHERE id < COALESCE((SELECT MIN(id) FROM "
    f"verifications), {_NEVER})"
)
# A block dated ahead (an instance whose clock runs ahead, or a clock stepped back) stops
# the walk, and every block written after it would outlive the retention: when the walk
# stopped at a block dated ``LATE`` or more ahead of now, the purge also deletes by time,
# reading the whole table (no index on ``at``), each time until that block is due.
STOPPED_AHEAD = (
    "SELECT 1 FROM verifications WHERE id = (SELECT MIN(id) FROM verifications) "
    "AND at > :ahead"
)
PURGE_BY_TIME = "DELETE FROM verifications WHERE at < :before"
# The highest-numbered shape is never deleted: SQLite numbers new shapes after it
# (``NEXT_SHAPE``), and a number given again could name another shape to an entry left.
PURGE_SHAPES = (
    "DELETE FROM verification_shapes WHERE id < COALESCE((SELECT id FROM "
    f"verification_shapes WHERE created >= :before ORDER BY id LIMIT 1), {_NEVER}) "
    "AND id < (SELECT MAX(id) FROM verification_shapes)"
)

# -- reading ----------------------------------------------------------------------------
# The SQL narrows blocks by what their entries share (key, shape, request-id head) and by
# their newest entry's time, through an index where a filter has one; the entries of the
# blocks it finds are unpacked here (``verification_blocks.unpack``) and filtered by what
# is each entry's own (id, time, request-id tail).

# A block as read: its own columns, then its shape's.
_READ = (
    "SELECT v.id, v.at, v.count, v.head, v.tails, v.times, v.paths, v.clients, v.key_id, "
    "s.masked, s.outcome, s.method, s.user_agent, s.scopes FROM verifications v "
    "JOIN verification_shapes s ON s.id = v.shape"
)
# The blocks holding the loose entries of a request id: each the block of the greatest
# id up to the entry's (a block's entries have its id and the ids after it).
LOOSE_BLOCKS = (
    "SELECT (SELECT MAX(b.id) FROM verifications b WHERE b.id <= r.id) "
    "FROM verification_requests r WHERE r.request_id = :request_id"
)
# Blocks a page reads first, and at most in one read: each further read takes twice as
# many as the last, as long as the page is not full. Most blocks hold several entries
# that pass the filters, so a page is one read of a few blocks; a filter on an entry's own
# values (a request-id tail, ``since``) may pass one entry of many, and the reads grow.
FIRST_BLOCKS = 16
MOST_BLOCKS = 1024
# An entry is shown at its time rounded to the microsecond (a ``datetime``), and is
# "since" a moment when what is shown is: its time (Unix seconds, as written) is at most
# half a microsecond before it.
_HALF_MICROSECOND = 0.5e-6
_MICROSECOND = timedelta(microseconds=1)


def _seconds(at: Any) -> float:
    """A block's ``at`` as Unix seconds: SQLite stores them, PostgreSQL a ``timestamptz``."""
    return at.timestamp() if isinstance(at, datetime) else float(at)


def _cut(since: datetime) -> float:
    """The earliest time (Unix seconds) of an entry at or after ``since`` as shown."""
    return since.timestamp() - _HALF_MICROSECOND


def since_param(dialect: sql.Dialect, since: datetime) -> Any:
    """``:since`` for the blocks holding an entry at or after ``since``: a block's ``at``
    is its newest entry's time, which PostgreSQL rounds to the microsecond."""
    with suppress(OverflowError):  # the first moment a datetime holds: none is before it
        since -= _MICROSECOND
    return dialect.time_in(since)


def blocks_query(
    dialect: sql.Dialect, filters: VerificationFilter
) -> tuple[str, dict[str, Any]]:
    """The blocks that may hold entries passing ``filters``, below the block id
    ``:below``, newest first, ``:blocks`` of them."""
    where = ["v.id < :below"]
    params: dict[str, Any] = {}
    if filters.key_id is not None:
        where.append("v.key_id = :key_id")  # the index on (key_id, id)
        params["key_id"] = filters.key_id
    if filters.outcome is not None:
        where.append("s.outcome = :outcome")
        params["outcome"] = filters.outcome
    if filters.request_id is not None:
        # The index on the head, then the blocks whose tails hold the tail (as the JSON
        # array spells it): a head names a run of up to 256 ids, mostly in other blocks,
        # which the SQL leaves out without unpacking them here. And the blocks of the loose
        # entries of that id (``LOOSE_BLOCKS``); the id "" is only ever loose.
        head, tail = split_request_id(filters.request_id)
        params["request_id"] = filters.request_id
        if head:
            where.append(f"(v.head = :head AND {dialect.find}(v.tails, :tail) > 0 "
                         f"OR v.id {dialect.among.format(LOOSE_BLOCKS)})")  # fmt: skip
            params.update(head=head, tail=pack_texts([tail])[1:-1])
        else:
            where.append(f"v.id {dialect.among.format(LOOSE_BLOCKS)}")
    if filters.owner is not None:
        where.append("v.key_id IN (SELECT id FROM keys WHERE owner = :owner)")
        params["owner"] = filters.owner
    if filters.since is not None:
        where.append("v.at >= :since")
        params["since"] = since_param(dialect, filters.since)
    query = f"{_READ} WHERE {' AND '.join(where)} ORDER BY v.id DESC LIMIT :blocks"
    return dialect.params(query), params


def _entries(
    row: Any, before: int, cut: float, request_id: str | None, entry: type[Verification]
) -> Iterator[Verification]:
    """A block's entries that pass the filters on an entry's own values, newest first:
    ids below ``before``, times from ``cut``, the request id ``request_id`` (``None``:
    any); ``entry``: ``Verification``, imported once a page."""
    first, at, count, head, tails, times, paths, clients, key_id, masked, outcome, method, \
        user_agent, scopes = row
    needed = None if scopes is None else tuple(scopes.split())
    unpacked = list(unpack(first, count, _seconds(at), head, tails, times, paths, clients))
    for id_, moment, rid, path, client in reversed(unpacked):
        if id_ < before and moment >= cut and (request_id is None or rid == request_id):
            yield entry(
                id_, datetime.fromtimestamp(moment, UTC), rid, key_id, masked, outcome,
                client, method, path, user_agent, needed,
            )  # fmt: skip


def read_page(
    dialect: sql.Dialect,
    filters: VerificationFilter,
    limit: int,
    before: int | None,
    fetch: Callable[[str, dict[str, Any]], Sequence[Any]],
) -> list[Verification]:
    """Entries newest first (by id), filtered, at most ``limit``; ``before``: an entry id,
    the page after it. ``fetch`` runs a query and returns its rows. Blocks are read newest
    first, a few at a time (``FIRST_BLOCKS``), until the page is full or none is left:
    the ids of a block's entries follow its own and come before the next block's, so
    blocks newest first hold entries newest first."""
    from keyturn._verifications import Verification

    if limit < 1:
        return []
    query, params = blocks_query(dialect, filters)
    below = under = _NEVER if before is None else max(0, min(before, _NEVER))
    cut = -math.inf if filters.since is None else _cut(filters.since)
    found: list[Verification] = []
    blocks = min(limit, FIRST_BLOCKS)
    while True:
        rows = fetch(query, {**params, "below": below, "blocks": blocks})
        for row in rows:
            entries = _entries(row, under, cut, filters.request_id, Verification)
            found.extend(islice(entries, limit - len(found)))
            if len(found) == limit:
                return found
        if len(rows) < blocks:
            return found
        below = rows[-1][0]
        blocks = min(2 * blocks, MOST_BLOCKS)


# A key's blocks since a moment (the index on (key_id, id) narrows them to the key's),
# for who used it (``callers``) and what its accepted requests needed (``needs``), newest
# first, ``KEY_BLOCKS`` a read below the block id ``:below`` (``key_blocks``), each row
# ending with its block's id.
KEY_CALLERS = (
    "SELECT v.clients, s.method, v.count, v.at, v.times, v.paths, v.id FROM verifications v "
    "JOIN verification_shapes s ON s.id = v.shape "
    "WHERE v.key_id = :key_id AND v.at >= :since AND v.id < :below "
    "ORDER BY v.id DESC LIMIT :blocks"
)
KEY_NEEDS = (
    "SELECT s.scopes, v.clients, v.count, v.at, v.times, v.id FROM verifications v "
    "JOIN verification_shapes s ON s.id = v.shape "
    "WHERE v.key_id = :key_id AND v.at >= :since AND s.outcome = 'valid' "
    "AND v.id < :below ORDER BY v.id DESC LIMIT :blocks"
)
# A busy key has millions of blocks in a month (the row-per-entry log counted them in a
# GROUP BY, returning a few rows): they are read a few thousand at a time, each read a
# short use of a connection of its own, so that neither a list of them all (hundreds of
# bytes a block) nor one read of them all (the PostgreSQL watchdog cuts a use of a
# connection past ``STATEMENT_TIMEOUT``) grows with the key's traffic.
KEY_BLOCKS = 4096


def key_blocks(
    query: str, params: dict[str, Any], read: Callable[[str, dict[str, Any]], Sequence[Any]]
) -> Iterator[Any]:
    """The rows of ``KEY_CALLERS`` or ``KEY_NEEDS`` (``params``: the key and the moment),
    read ``KEY_BLOCKS`` at a time by ``read`` (which runs a query and returns its rows)."""
    params = {**params, "below": _NEVER, "blocks": KEY_BLOCKS}
    while True:
        rows = read(query, params)
        yield from rows
        if len(rows) < KEY_BLOCKS:
            return
        params["below"] = rows[-1][-1]


def callers(rows: Iterable[Any], since: datetime, limit: int) -> list[Caller]:
    """``KEY_CALLERS``' blocks as callers: per client, method and path, the entries at or
    after ``since`` and the latest one's time, the latest first, ``limit`` of them. A
    block wholly after ``since`` of one client and path (most are) is counted whole."""
    from keyturn._verifications import Caller

    cut = _cut(since)
    seen: dict[tuple[str | None, str, str], list[Any]] = {}

    def tally(group: tuple[str | None, str, str], requests: int, last: float) -> None:
        counted = seen.get(group)
        if counted is None:
            seen[group] = [requests, last]
        else:
            counted[0] += requests
            counted[1] = max(counted[1], last)

    for packed_clients, method, count, at, times, packed_paths, _ in rows:
        moments = unpack_times(times, _seconds(at))
        paths = unpack_texts(packed_paths, count)
        clients = unpack_texts(packed_clients, count)
        if min(moments) >= cut and uniform(paths) and uniform(clients):
            tally((clients[0], method, paths[0]), count, max(moments))
            continue
        for moment, path, client in zip(moments, paths, clients, strict=True):
            if moment >= cut:
                tally((client, method, path), 1, moment)
    latest = sorted(seen.items(), key=lambda item: item[1][1], reverse=True)[:limit]
    return [
        Caller(client, method, path, requests, datetime.fromtimestamp(last, UTC))
        for (client, method, path), (requests, last) in latest
    ]


def needs(rows: Iterable[Any], since: datetime, limit: int) -> list[Need]:
    """``KEY_NEEDS``' blocks as needs: per set of scopes and client, the entries at or
    after ``since`` (``limit`` sets at most). A block wholly after ``since`` of one client
    (most are) is counted whole."""
    from keyturn._suggestions import Need

    cut = _cut(since)
    counted: dict[tuple[str | None, str | None], int] = {}
    for scopes, packed_clients, count, at, times, _ in rows:
        moments = unpack_times(times, _seconds(at))
        clients = unpack_texts(packed_clients, count)
        if min(moments) >= cut and uniform(clients):
            counted[scopes, clients[0]] = counted.get((scopes, clients[0]), 0) + count
            continue
        for moment, client in zip(moments, clients, strict=True):
            if moment >= cut:
                counted[scopes, client] = counted.get((scopes, client), 0) + 1
    return [
        Need(None if scopes is None else tuple(scopes.split()), client, requests)
        for (scopes, client), requests in islice(counted.items(), limit)
    ]
