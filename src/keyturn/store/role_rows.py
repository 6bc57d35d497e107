"""The SQL of the ``roles`` table (``keyturn.roles``), shared by both engines; the methods
that run it are ``SQLStore``'s (``store/relational.py``).

A key holds roles by name in its ``roles`` column (names separated by spaces), so "the keys
holding a role" is a word search over that column: a scan, which only role changes and
deletions make (never a verification, whose read joins the roles of one key).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keyturn.store import sql

if TYPE_CHECKING:
    from keyturn.roles import Role

_ROLE_COLUMNS = "name, scopes, description, created_at, updated_at"


def holders(dialect: sql.Dialect, role: str) -> str:
    """How many keys that are not revoked hold the role ``role`` (an SQL expression)."""
    return (
        "(SELECT COUNT(*) FROM keys k WHERE k.revoked_at IS NULL AND k.roles <> '' AND "
        f"{dialect.find}(' ' || k.roles || ' ', ' ' || {role} || ' ') > 0)"
    )


PUT_ROLE = (
    f"INSERT INTO roles ({_ROLE_COLUMNS}) VALUES (:name, :scopes, :description, :now, :now) "
    "ON CONFLICT (name) DO UPDATE SET scopes = excluded.scopes, "
    "description = excluded.description, updated_at = excluded.updated_at "
    f"RETURNING {_ROLE_COLUMNS}"
)
DELETE_ROLE = "DELETE FROM roles WHERE name = :name"


def get_role(dialect: sql.Dialect) -> str:
    count = holders(dialect, "CAST(:name AS TEXT)")
    return f"SELECT {_ROLE_COLUMNS}, {count} FROM roles WHERE name = :name"


def list_roles(dialect: sql.Dialect) -> str:
    return f"SELECT {_ROLE_COLUMNS}, {holders(dialect, 'roles.name')} FROM roles ORDER BY name"


def role_of_row(dialect: sql.Dialect, row: Any) -> Role:
    from keyturn.roles import Role

    moment = dialect.time_out
    return Role(
        row[0],
        frozenset(row[1].split()),
        row[2],
        moment(row[3]),
        moment(row[4]),
        int(row[5]) if len(row) > 5 else 0,
    )
