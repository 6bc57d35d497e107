"""The SQL of the verification log (``keyturn._verifications``), shared by both engines; the
methods that run it are ``SQLStore``'s (``store/relational.py``).

Entries are stored in blocks (migration 0100, ``verification_blocks``): a batch's entries
sharing a key id, shape, client and request-id head are one row, holding its entries'
times, request-id tails and paths packed. The shape is the id of a row of
``verification_shapes`` holding what repeats from request to request (outcome, mask,
method, user agent, scopes), stored once per shape the writer has not seen (migration
0080); the client's address is the block's (0090). Binding an entry's texts and keeping
the indexes on them was most of what the log cost; a block pays its row and index entries
once for all its entries."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from keyturn.store import sql

if TYPE_CHECKING:
    from keyturn._verifications import Verification, VerificationFilter

# A batch as the writer (``keyturn._verifications``) hands it to the store: one flat list
# of values, these columns in this order for each block, ``at`` (the newest entry's time)
# in Unix seconds, ``id`` left ``None`` for the store, which fills the column in (one slice
# assignment) from the ids it takes in the writing transaction (``TAKE_IDS``). Positional
# and flat, so that a batch goes to the driver as it was built (no tuple or dict per
# block, no names to bind).
BLOCK_COLUMNS = ("id", "at", "count", "key_id", "shape", "client", "head", "tails", "times",
                 "paths")  # fmt: skip
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


@lru_cache(maxsize=2 * (len(_SMALLER) + 1))
def insert_rows(
    table: str, columns: tuple[str, ...], rows: int, marks: tuple[str, ...] | None = None
) -> str:
    """SQLite's INSERT of ``rows`` rows (``marks``, a placeholder a column, default
    ``?``, the columns in order)."""
    row = f"({', '.join(marks or '?' * len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"


# SQLite: a block's packed times bound as ``''`` when it has none, made NULL by the
# statement. The driver binds a str as it is, but ``None`` (and ``bytes``) only after
# looking for an adapter for it, which for most blocks, of one entry, cost more than the
# whole of their times column (``NO_TIMES``: what the store binds for ``None``).
BLOCK_MARKS = tuple("NULLIF(?, '')" if c == "times" else "?" for c in BLOCK_COLUMNS)
NO_TIMES = {None: ""}


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

# An entry as read: its own columns, then its shape's.
_READ = (
    "SELECT v.id, v.at, v.request_id, v.key_id, s.masked, s.outcome, v.client, s.method, "
    "v.path, s.user_agent, s.scopes FROM verifications v "
    "JOIN verification_shapes s ON s.id = v.shape"
)


def verifications_query(
    dialect: sql.Dialect, filters: VerificationFilter, limit: int, before: int | None
) -> tuple[str, dict[str, Any]]:
    where = ["1 = 1"]
    params: dict[str, Any] = {"limit": limit}
    for name, column in (("key_id", "v.key_id"), ("outcome", "s.outcome"),
                         ("request_id", "v.request_id")):  # fmt: skip
        value = getattr(filters, name)
        if value is not None:
            where.append(f"{column} = :{name}")
            params[name] = value
    if filters.owner is not None:
        where.append("v.key_id IN (SELECT id FROM keys WHERE owner = :owner)")
        params["owner"] = filters.owner
    if filters.since is not None:
        where.append("v.at >= :since")
        params["since"] = dialect.time_in(filters.since)
    if before is not None:
        where.append("v.id < :before")
        params["before"] = before
    query = f"{_READ} WHERE {' AND '.join(where)} ORDER BY v.id DESC LIMIT :limit"
    return query, params


def verification_of_row(dialect: sql.Dialect, row: Any) -> Verification:
    from keyturn._verifications import Verification

    moment = dialect.time_out(row[1])
    assert moment is not None
    scopes = None if row[10] is None else tuple(row[10].split())
    return Verification(
        int(row[0]), moment, row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9],
        scopes,
    )  # fmt: skip


# Who used a key since a moment: one row per client, method and path, latest first. The
# index on (key_id, id) narrows the scan to the key's own entries; several shapes may
# share a client, method and path (they differ in the rest), hence the grouping by value.
KEY_CALLERS = (
    "SELECT v.client, s.method, v.path, COUNT(*), MAX(v.at) FROM verifications v "
    "JOIN verification_shapes s ON s.id = v.shape "
    "WHERE v.key_id = :key_id AND v.at >= :since GROUP BY v.client, s.method, v.path "
    "ORDER BY MAX(v.at) DESC LIMIT :limit"
)
# What a key's accepted requests needed, and where they came from, since a moment: one
# row per set of scopes and client address, with how many requests.
KEY_NEEDS = (
    "SELECT s.scopes, v.client, COUNT(*) FROM verifications v "
    "JOIN verification_shapes s ON s.id = v.shape "
    "WHERE v.key_id = :key_id AND v.at >= :since AND s.outcome = 'valid' "
    "GROUP BY s.scopes, v.client LIMIT :limit"
)
