"""The SQL of the ``owners`` table (``keyturn._owners``), shared by both engines; the
methods that run it are ``SQLStore``'s (``store/relational.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyturn.store import sql

if TYPE_CHECKING:
    from keyturn._owners import Owner

_OWNER_COLUMNS = (
    "owner, rate_limits, credits, refill, refill_amount, refilled_at, metadata, created_at, "
    "updated_at"
)
PUT_OWNER = (
    f"INSERT INTO owners ({_OWNER_COLUMNS}) VALUES (:owner, :rate_limits, :credits, :refill, "
    ":refill_amount, :refilled_at, :metadata, :now, :now) ON CONFLICT (owner) DO UPDATE SET "
    "rate_limits = excluded.rate_limits, credits = excluded.credits, refill = excluded.refill, "
    "refill_amount = excluded.refill_amount, refilled_at = excluded.refilled_at, "
    "metadata = excluded.metadata, updated_at = excluded.updated_at "
    f"RETURNING {_OWNER_COLUMNS}"
)
GET_OWNER = f"SELECT {_OWNER_COLUMNS} FROM owners WHERE owner = :owner"



def keep_owner_limits(dialect: sql.Dialect) -> str:
    """The owner's limits written to its keys' rows (``sql.OWNER_LIMITS``), returning the
    keys (locked until the transaction ends, as ``UPDATE`` locks rows)."""
    return (
        "UPDATE keys SET owner_rate_limits = :rate_limits, owner_credits = :has_credits "
        f"WHERE owner = :owner RETURNING {sql.selected(dialect)}"
    )


def owner_keys(dialect: sql.Dialect) -> str:
    return f"SELECT {sql.selected(dialect)} FROM keys WHERE owner = :owner ORDER BY id"


OWNER_USAGE = (
    "SELECT u.outcome, SUM(u.count) FROM usage u JOIN keys k ON k.id = u.key_id "
    "WHERE k.owner = :owner AND u.day >= :since GROUP BY u.outcome"
)


# An owner's balance is spent as a key's is (``sql.SPEND``: refill when due, then take one,
# in one statement), on its own row.
_DUE = sql._DUE
SPEND_OWNER = (
    "UPDATE owners SET "
    f"credits = CASE WHEN {_DUE} THEN refill_amount - 1 ELSE credits - 1 END, "
    f"refilled_at = CASE WHEN {_DUE} THEN :now ELSE refilled_at END "
    "WHERE owner = :id AND credits IS NOT NULL "
    f"AND (credits > 0 OR ({_DUE} AND refill_amount > 0)) "
    "RETURNING credits"
)
OWNER_CREDITS_LEFT = (
    f"SELECT CASE WHEN {_DUE} THEN refill_amount ELSE credits END FROM owners WHERE owner = :id"
)


def owner_of_row(dialect: sql.Dialect, row: Any) -> Owner:
    from keyturn._owners import Owner

    moment, loads = dialect.time_out, dialect.json_out
    return Owner(
        row[0],
        tuple(row[1].split(";")) if row[1] else (),
        row[2],
        row[3],
        row[4],
        moment(row[5]),
        loads(row[6]),
        moment(row[7]),
        moment(row[8]),
    )
