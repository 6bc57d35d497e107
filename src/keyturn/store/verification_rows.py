"""The SQL of the verification log (``keyturn._verifications``), shared by both engines; the
methods that run it are ``SQLStore``'s (``store/relational.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from keyturn.store import sql

if TYPE_CHECKING:
    from keyturn._verifications import Verification, VerificationFilter

# A row as the writer (``keyturn._verifications``) hands it to the store: these columns in
# this order, ``at`` in Unix seconds. Positional, so that a batch goes to the driver as it
# was built (no dict per row, no names to bind).
VERIFICATION_COLUMNS = (
    "at", "request_id", "key_id", "masked", "outcome", "client", "method", "path",
    "user_agent", "scopes",
)  # fmt: skip
VerificationRow = tuple[
    float, str, str | None, str | None, str, str | None, str, str, str, str | None
]
_COLUMNS = ", ".join(VERIFICATION_COLUMNS)
_ROW = f"({', '.join('?' * len(VERIFICATION_COLUMNS))})"
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


@lru_cache(maxsize=len(_SMALLER) + 1)
def insert_verifications(rows: int) -> str:
    """SQLite's INSERT of ``rows`` rows (``?`` placeholders, the columns in order)."""
    return f"INSERT INTO verifications ({_COLUMNS}) VALUES {', '.join([_ROW] * rows)}"


# PostgreSQL: one COPY per batch (no statement per row, no round trip per row).
COPY_VERIFICATIONS = f"COPY verifications ({_COLUMNS}) FROM STDIN"
PURGE_VERIFICATIONS = "DELETE FROM verifications WHERE at < :before"


def verifications_query(
    dialect: sql.Dialect, filters: VerificationFilter, limit: int, before: int | None
) -> tuple[str, dict[str, Any]]:
    where = ["1 = 1"]
    params: dict[str, Any] = {"limit": limit}
    for name in ("key_id", "outcome", "request_id"):
        value = getattr(filters, name)
        if value is not None:
            where.append(f"v.{name} = :{name}")
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
    query = (
        "SELECT v.id, v.at, v.request_id, v.key_id, v.masked, v.outcome, v.client, v.method, "
        f"v.path, v.user_agent, v.scopes FROM verifications v WHERE {' AND '.join(where)} "
        "ORDER BY v.id DESC LIMIT :limit"
    )
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
# index on (key_id, id) narrows the scan to the key's own entries.
KEY_CALLERS = (
    "SELECT client, method, path, COUNT(*), MAX(at) FROM verifications "
    "WHERE key_id = :key_id AND at >= :since GROUP BY client, method, path "
    "ORDER BY MAX(at) DESC LIMIT :limit"
)
# What a key's accepted requests needed, and where they came from, since a moment: one
# row per set of scopes and client address, with how many requests.
KEY_NEEDS = (
    "SELECT scopes, client, COUNT(*) FROM verifications "
    "WHERE key_id = :key_id AND at >= :since AND outcome = 'valid' "
    "GROUP BY scopes, client LIMIT :limit"
)
