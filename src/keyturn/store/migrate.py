"""Versioned schema migrations: numbered SQL files applied once, in order, in a transaction.

A hand-rolled runner (a few lines) instead of alembic, because keyturn's stores do not use
SQLAlchemy and pulling it in for two tables would cost every install and import.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keyturn.store.relational import Connection
    from keyturn.store.sql import Dialect

_NAME = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(dialect: str) -> list[Migration]:
    """Every migration shipped for ``dialect``, oldest first."""
    folder = resources.files(__package__).joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        match = _NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def apply(conn: Connection, dialect: Dialect, run_script: Callable[[str], Any]) -> list[int]:
    """Apply the migrations ``conn`` lacks, in order; the versions applied.

    The caller holds the transaction (and, where several instances may start at once, a
    lock), so a failed migration leaves the schema as it was.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
    )
    done = {int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations").fetchall()}
    record = dialect.params("INSERT INTO schema_migrations VALUES (:version, :name, :at)")
    applied = []
    for migration in migrations(dialect.name):
        if migration.version in done:
            continue
        run_script(migration.sql)
        conn.execute(
            record, {"version": migration.version, "name": migration.name, "at": time.time()}
        )
        applied.append(migration.version)
    return applied
