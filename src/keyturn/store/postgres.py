"""The scale-out store: PostgreSQL through psycopg 3 and a connection pool.

Same tables, migrations runner and SQL as SQLite (``relational.py``); what differs is the
dialect (``timestamptz``, ``jsonb``, ``%(name)s`` placeholders, case-insensitive ``ILIKE``)
and that every change to a key is announced with ``NOTIFY`` in its own transaction, so the
other instances drop their cached copy as soon as it commits (``notify.py`` listens).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from keyturn.errors import Conflict, InvalidValue, Unavailable
from keyturn.record import KeyRecord
from keyturn.store import sql
from keyturn.store.base import masked_url
from keyturn.store.migrate import apply
from keyturn.store.relational import SQLStore

CHANNEL = "keyturn_keys"
# How long opening the store may take to say that PostgreSQL is unreachable or refuses:
# with the process's start-up, a command fails within 3 s.
CONNECT_TIMEOUT = 2
# Taken (per database) while migrating, so instances starting together migrate once.
_MIGRATION_LOCK = 0x6B657974  # "keyt"
_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")


@lru_cache(maxsize=256)
def _pyformat(query: str) -> str:
    """``:name`` -> ``%(name)s`` (and a literal ``%`` doubled), once per statement text."""
    return _PARAM.sub(r"%(\1)s", query.replace("%", "%%"))


POSTGRESQL = sql.Dialect(
    "postgresql",
    time_in=lambda value: value,
    time_out=lambda value: value,
    json_in=Jsonb,
    json_out=lambda value: value,
    params=_pyformat,
    like="ILIKE",
    greatest="GREATEST",
    lock=" FOR UPDATE",
)


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


class PostgresStore(SQLStore):
    """``postgresql://user:password@host:5432/dbname`` (libpq parameters in the query)."""

    dialect = POSTGRESQL

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.url = url
        self.shown = masked_url(url)
        super().__init__()
        self._probe()
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="keyturn",
        )
        try:
            self._pool.open(wait=True, timeout=float(CONNECT_TIMEOUT))
        except PoolTimeout as exc:
            self._pool.close()
            raise self._unreachable(f"no connection within {CONNECT_TIMEOUT} s") from exc
        self._migrate()

    def _probe(self) -> None:
        """One connection attempt before the pool starts: an unreachable or refusing server
        fails here, within ``CONNECT_TIMEOUT``, with one line (the pool would retry in the
        background and log every attempt)."""
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.ProgrammingError as exc:  # a URL libpq cannot read
            raise InvalidValue(
                f"unusable database URL {self.shown!r}: {_first_line(exc)}", "database_url"
            ) from None
        except psycopg.Error as exc:
            raise self._unreachable(_first_line(exc)) from None
        conn.close()

    def _unreachable(self, why: str) -> Unavailable:
        return Unavailable(
            f"cannot connect to database {self.shown!r}: {why}; check that PostgreSQL runs "
            "there and the URL's user, password and database"
        )

    def _migrate(self) -> None:
        with self._writing() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            apply(conn, self.dialect, conn.execute)

    def schema_version(self) -> int:
        with self._reading() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0) if row else 0

    # -- connections for the shared SQL --------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure("read", exc) from exc

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure("write to", exc) from exc

    def _failure(self, verb: str, exc: Exception) -> Exception:
        """The driver's error in ``keyturn.errors`` terms (see ``store/base.py``)."""
        if isinstance(exc, errors.IntegrityError):
            return Conflict(f"the change conflicts with a stored key: {_first_line(exc)}")
        if isinstance(exc, psycopg.DataError):  # a value the database cannot hold
            return InvalidValue(f"the database refused a value: {_first_line(exc)}")
        return Unavailable(f"cannot {verb} database {self.shown!r}: {_first_line(exc)}")

    def _announce(self, conn: Any, key_hash: str) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, key_hash))

    def _executemany(self, conn: Any, query: str, rows: list[dict[str, Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(query, rows)

    def find_by_hash(self, key_hash: str) -> KeyRecord | None:
        try:
            with self._pool.connection() as conn:
                row = conn.execute(self._q_by_hash, {"key_hash": key_hash}).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure("read", exc) from exc
        return self._reread(row) if row else None

    def watch(self, listener: Any, bound: float) -> Any:
        """Start announcing changes made by any instance to ``listener`` (``notify.py``)."""
        from keyturn.store.notify import ChangeFeed

        return ChangeFeed(self.url, CHANNEL, listener, bound)

    def close(self) -> None:
        self._pool.close()


def _first_line(exc: Exception) -> str:
    """libpq's messages run over several lines (and hints); one line is enough here."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
