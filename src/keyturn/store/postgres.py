"""The scale-out store: PostgreSQL through psycopg 3 and a connection pool.

Same tables, migrations runner and SQL as SQLite (``relational.py``); what differs is the
dialect (``timestamptz``, ``jsonb``, ``%(name)s`` placeholders, case-insensitive ``ILIKE``)
and that every change to a key is announced with ``NOTIFY`` in its own transaction, so the
other instances drop their cached copy as soon as it commits (``notify.py`` listens).
"""

from __future__ import annotations

from keyturn._extras import require

require("postgres", "keyturn.store.postgres")

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from keyturn.errors import Conflict, InvalidValue, Unavailable
from keyturn.record import KeyRecord
from keyturn.store import sql
from keyturn.store.base import masked_url, url_secrets
from keyturn.store.breaker import Breaker
from keyturn.store.migrate import apply
from keyturn.store.relational import SQLStore
from keyturn.store.verification_rows import (
    BLOCK_COLUMNS,
    COPY_REQUESTS,
    COPY_SHAPES,
    COPY_VERIFICATIONS,
)
from keyturn.store.watchdog import Watchdog

# Ids for new shapes of the verification log, from the table's own sequence.
_SHAPE_IDS = (
    "SELECT nextval(pg_get_serial_sequence('verification_shapes', 'id')) "
    "FROM generate_series(1, %s)"
)

CHANNEL = "keyturn_keys"
# How long opening the store may take to say that PostgreSQL is unreachable or refuses:
# with the process's start-up, a command fails within 3 s. Every connection the pool
# opens later has the same bound.
CONNECT_TIMEOUT = 2
# The longest a request waits for a pooled connection before it is refused (503): the
# pool's default is 30 s, which held requests through an outage. While the server is
# known to be down, requests do not wait at all (``breaker.py``).
POOL_TIMEOUT = 3.0
# How often, during an outage, one request tries the server again.
RETRY_INTERVAL = 1.0
# The longest one use of a connection (a statement, or a change's whole transaction) may
# wait for the server before its connection is cut (``watchdog.py``): a server that holds a
# connection without answering cannot hold a request.
STATEMENT_TIMEOUT = 5.0
# Failures that say the server cannot be reached (as opposed to refusing a statement).
_UNREACHABLE = (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout)
# Taken (per database) while migrating, so instances starting together migrate once.
_MIGRATION_LOCK = 0x6B657974  # "keyt"
# Per owner (``sql.Dialect.owner_share``): a pair of int4 keys, a space apart from the
# migration's bigint one.
_OWNER_LOCK = f"{_MIGRATION_LOCK}, hashtext(CAST(:owner AS text))"
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
    least="LEAST",
    plus_seconds="({} + {} * interval '1 second')",
    lock=" FOR UPDATE",
    share=" FOR SHARE",
    owner_share=f"SELECT pg_advisory_xact_lock_shared({_OWNER_LOCK})",
    owner_lock=f"SELECT pg_advisory_xact_lock({_OWNER_LOCK})",
    find="strpos",
    among="= ANY(ARRAY({}))",
    join_text="string_agg",
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
        self.breaker = Breaker(RETRY_INTERVAL)
        self.watchdog = Watchdog(STATEMENT_TIMEOUT)
        self._flushing = threading.Lock()
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            configure=_configure,
            timeout=POOL_TIMEOUT,
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
        except psycopg.ProgrammingError as exc:  # a URL libpq cannot read, which it quotes
            message = f"unusable database URL {self.shown!r}: {self._scrubbed(exc)}"
            raise InvalidValue(message, "database_url") from None
        except psycopg.Error as exc:
            raise self._unreachable(self._scrubbed(exc)) from None
        conn.close()

    def _scrubbed(self, exc: psycopg.Error) -> str:
        """libpq's first line with the URL masked and each of its passwords too, as written
        or decoded: libpq quotes a token it cannot decode alone (``invalid percent-encoded
        token: "sec%zzret"``) or a piece of a password it misread (``invalid URI query
        parameter: "x"`` for ``u:pa/ss?x=1@db``), where replacing the whole URL misses it.
        Only quoted text is masked: a short password replaced wherever it occurs garbled
        the message (``connection f***iled`` for the password ``a``)."""
        why = _first_line(exc).replace(self.url, self.shown)
        secrets = url_secrets(self.url)
        for secret in secrets:  # whole first: a password may hold a '"' itself
            why = why.replace(f'"{secret}"', '"***"')

        def scrubbed(quoted: re.Match[str]) -> str:
            token = quoted[1]
            if token and any(token in secret for secret in secrets):
                return '"***"'
            return f'"{masked_url(token)}"' if "://" in token else quoted[0]

        return _QUOTED.sub(scrubbed, why)

    def _unreachable(self, why: str) -> Unavailable:
        return Unavailable(
            f"cannot connect to database {self.shown!r}: {why}; check that PostgreSQL runs "
            "there and the URL's user, password and database"
        )

    def _migrate(self) -> None:
        # No statement deadline: a migration may take long on a large table.
        with self._guarded("migrate"), self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            apply(conn, self.dialect, conn.execute)

    def schema_version(self) -> int:
        with self._reading() as conn:
            row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0) if row else 0

    # -- connections for the shared SQL --------------------------------------------------

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[Any]]:
        with self._guarded("read"), self._pool.connection() as conn, self._deadline(conn):
            yield conn

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        with (
            self._guarded("write to"),
            self._pool.connection() as conn,
            self._deadline(conn),
            conn.transaction(),
        ):
            yield conn

    @contextmanager
    def _deadline(self, conn: psycopg.Connection[Any]) -> Iterator[None]:
        token = self.watchdog.watch(conn.fileno())
        try:
            yield
        finally:
            self.watchdog.done(token)

    @contextmanager
    def _guarded(self, verb: str) -> Iterator[None]:
        """The driver's errors in ``keyturn.errors`` terms, and the breaker kept: refused at
        once while the server is known to be down, closed by anything the server answered."""
        self._admit(verb)
        try:
            yield
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(verb, exc) from exc
        except BaseException:
            self.breaker.succeeded()  # a refusal of keyturn's own, after the server answered
            raise
        self.breaker.succeeded()

    def _admit(self, verb: str) -> None:
        """Refuse at once while the server is known to be down (``breaker.py``)."""
        if not self.breaker.allow():
            raise Unavailable(
                f"cannot {verb} database {self.shown!r}: it did not answer a moment ago "
                f"(trying again every {RETRY_INTERVAL:g} s)"
            )

    def _failure(self, verb: str, exc: Exception) -> Exception:
        """The driver's error in ``keyturn.errors`` terms (see ``store/base.py``)."""
        if isinstance(exc, _UNREACHABLE):
            self._down()
        else:
            self.breaker.succeeded()  # the server answered, if only to refuse
        if isinstance(exc, errors.IntegrityError):
            return Conflict(f"the change conflicts with a stored key: {_first_line(exc)}")
        if isinstance(exc, psycopg.DataError):  # a value the database cannot hold
            return InvalidValue(f"the database refused a value: {_first_line(exc)}")
        return Unavailable(f"cannot {verb} database {self.shown!r}: {_first_line(exc)}")

    def _down(self) -> None:
        """The server did not answer: open the breaker, and have the pool drop the idle
        connections the outage broke (in a thread, once at a time), so that the first
        requests after the server is back do not each find a dead connection."""
        self.breaker.failed()
        if self._flushing.acquire(blocking=False):

            def flush() -> None:
                try:
                    self._pool.check()
                except Exception:  # noqa: S110 - the pool logs; the next failure retries
                    pass
                finally:
                    self._flushing.release()

            threading.Thread(target=flush, name="keyturn-pool-check", daemon=True).start()

    def _announce(self, conn: Any, key_hash: str) -> None:
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, key_hash))

    def _executemany(self, conn: Any, query: str, rows: list[dict[str, Any]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(query, rows)

    def _insert_verifications(self, conn: Any, values: list[Any]) -> None:
        moment = datetime.fromtimestamp
        with conn.cursor() as cur, cur.copy(COPY_VERIFICATIONS) as copy:
            write = copy.write_row
            width = len(BLOCK_COLUMNS)
            for i in range(0, len(values), width):
                write((values[i], moment(values[i + 1], UTC), *values[i + 2 : i + width]))

    def _insert_requests(self, conn: Any, values: list[Any]) -> None:
        with conn.cursor() as cur, cur.copy(COPY_REQUESTS) as copy:
            for i in range(0, len(values), 2):
                copy.write_row(values[i : i + 2])

    def _insert_shapes(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        with conn.cursor() as cur, cur.copy(COPY_SHAPES) as copy:
            for row in rows:
                copy.write_row(row)

    def _shape_ids(self, conn: Any, count: int) -> list[int]:
        return [int(r[0]) for r in conn.execute(_SHAPE_IDS, (count,)).fetchall()]

    def find_by_hash(self, key_hash: str) -> KeyRecord | None:
        self._admit("read")
        try:
            with self._pool.connection() as conn:
                token = self.watchdog.watch(conn.fileno())
                try:
                    row = conn.execute(self._q_by_hash, {"key_hash": key_hash}).fetchone()
                finally:
                    self.watchdog.done(token)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure("read", exc) from exc
        self.breaker.succeeded()
        return self._reread(key_hash, row) if row else None

    def watch(self, listener: Any, bound: float) -> Any:
        """Start announcing changes made by any instance to ``listener`` (``notify.py``)."""
        from keyturn.store.notify import ChangeFeed

        return ChangeFeed(self.url, CHANNEL, listener, bound)

    def close(self) -> None:
        self.watchdog.close()
        self._pool.close()


_QUOTED = re.compile(r'"([^"]*)"')


def _first_line(exc: Exception) -> str:
    """libpq's messages run over several lines (and hints); one line is enough here."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
