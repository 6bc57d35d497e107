"""The embedded default store: SQLite from the standard library, in WAL mode.

One connection per thread (SQLite connections must not be shared across threads while a
transaction is open); WAL lets those readers proceed while a writer commits.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from itertools import chain, compress, repeat
from operator import is_, not_
from pathlib import Path
from typing import Any

from keyturn.errors import Conflict, InvalidValue, Unavailable
from keyturn.record import KeyRecord
from keyturn.store import sql
from keyturn.store.migrate import apply
from keyturn.store.relational import SQLStore
from keyturn.store.verification_rows import (
    BLOCK_COLUMNS,
    ONE_MARKS,
    REQUEST_COLUMNS,
    ROWS_PER_INSERT,
    SHAPE_TABLE_COLUMNS,
    insert_rows,
    statement_sizes,
)

_TIMES = BLOCK_COLUMNS.index("times")
_COUNT = BLOCK_COLUMNS.index("count")
_BY_HASH = sql.packed_by_hash(sql.SQLITE).replace(":key_hash", "?")


def create_private(path: str) -> None:
    """Create the database file, if it is new, readable and writable by its owner only,
    whatever the umask: it holds key hashes and the audit log. SQLite gives the ``-wal``
    and ``-shm`` files it makes later the database file's mode, so they are private too
    (and a mode an administrator set on an existing file is kept)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise InvalidValue(
            f"cannot open database {path!r}: {exc.strerror}", "database_url"
        ) from None
    try:
        os.fchmod(fd, 0o600)  # the umask may have taken more than group and others
    finally:
        os.close(fd)


def in_memory(url: str) -> bool:
    """Whether a ``sqlite://`` URL names no file (``sqlite:///:memory:``, or an empty path,
    as ``sqlite:///$DB`` gives with ``DB`` unset): a database that ends with its process."""
    return url.removeprefix("sqlite://").removeprefix("/") in ("", ":memory:")


class SQLiteStore(SQLStore):
    """``sqlite:///path/to/file.db`` (or ``sqlite:///:memory:`` for a throwaway store).

    ``create=False``: the file must exist already (see ``keyturn.store.open_store``).
    """

    dialect = sql.SQLITE

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.path = url.removeprefix("sqlite://").removeprefix("/") if url != "sqlite://" else ""
        # The file this store made (absolute), if it did: a command that makes keys says so,
        # since a server reading another file would refuse them.
        self.created: Path | None = None
        if in_memory(url):
            # A shared in-memory database, so every thread sees the same data.
            self._target = f"file:keyturn-{id(self)}?mode=memory&cache=shared"
            self._uri = True
        else:
            where = Path(self.path).expanduser().resolve()
            if not where.parent.is_dir():
                raise InvalidValue(
                    f"cannot open database {self.path!r}: folder {str(where.parent)!r} "
                    "does not exist",
                    "database_url",
                )
            if not create and not where.exists():
                raise InvalidValue(
                    f"no keyturn database at {str(where)!r}: create it with `keyturn init` "
                    "(or `keyturn serve`), or point --db / KEYTURN_DATABASE_URL at an "
                    "existing one (an absolute path: sqlite:////abs/path/keyturn.db)",
                    "database_url",
                )
            self._target = str(Path(self.path).expanduser())
            self._uri = False
            self.created = None if where.exists() else where
            create_private(self._target)
        super().__init__()
        self._unpack = sql.packed_reader(self.dialect)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._keeper = self._connect()  # keeps a shared in-memory database alive
        self._migrate(self._keeper)

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._target,
                uri=self._uri,
                isolation_level=None,
                check_same_thread=False,
                timeout=10.0,
            )
            conn.execute("PRAGMA busy_timeout = 10000")
            if not self._uri:
                conn.execute("PRAGMA journal_mode = WAL")
                # Reads through the OS page cache without a syscall per page: cache misses
                # are a handful of B-tree pages, and on a VM each pread costs microseconds.
                conn.execute("PRAGMA mmap_size = 268435456")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise InvalidValue(
                f"cannot open database {self.path!r}: {exc}", "database_url"
            ) from exc
        with self._lock:
            self._all.append(conn)
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        def script(text: str) -> None:
            for statement in text.split(";\n"):
                if statement.strip():
                    conn.execute(statement)

        try:
            conn.execute("BEGIN IMMEDIATE")
            apply(conn, self.dialect, script)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _failure(f"cannot prepare database {self.path!r}", exc) from exc

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # -- connections for the shared SQL ------------------------------------------------

    def _reading(self) -> _Reading:
        return _Reading(self._conn, self.path)

    def _writing(self) -> _Transaction:
        return _Transaction(self._conn, self.path)

    def _executemany(self, conn: Any, query: str, rows: list[dict[str, Any]]) -> None:
        conn.executemany(query, rows)

    def _insert_verifications(self, conn: Any, values: list[Any]) -> None:
        """The blocks of several entries, then those of one (``ONE_MARKS``: their count
        and times not bound), each in id order; the rows picked and their two columns
        dropped by C loops (``compress``, slice deletion)."""
        width = len(BLOCK_COLUMNS)
        times = values[_TIMES::width]
        ones = times.count(None)  # a block of one entry has no packed times
        if ones == 0:
            _insert_rows(conn, "verifications", BLOCK_COLUMNS, values)
            return
        if ones != len(times):
            alone = list(chain.from_iterable(map(repeat, map(is_, times, repeat(None)),
                                                 repeat(width))))  # fmt: skip
            _insert_rows(conn, "verifications", BLOCK_COLUMNS,
                         list(compress(values, map(not_, alone))))  # fmt: skip
            values = list(compress(values, alone))
        del values[_TIMES::width]
        del values[_COUNT :: width - 1]
        _insert_rows(conn, "verifications", BLOCK_COLUMNS, values, ONE_MARKS)

    def _insert_requests(self, conn: Any, values: list[Any]) -> None:
        _insert_rows(conn, "verification_requests", REQUEST_COLUMNS, values)

    def _insert_shapes(self, conn: Any, rows: list[tuple[Any, ...]]) -> None:
        _insert_rows(conn, "verification_shapes", SHAPE_TABLE_COLUMNS,
                     list(chain.from_iterable(rows)))

    def find_by_hash(self, key_hash: str) -> KeyRecord | None:
        # The cache-miss read, kept free of the shared path's context manager (a ``try``
        # costs nothing until something is raised), on a cursor the thread keeps: one
        # statement, whose read transaction ends as ``fetchone`` steps past its one row.
        try:
            reader = self._local.reader  # an attribute, not a call
        except AttributeError:
            reader = self._local.reader = self._conn.cursor()
        try:
            row = reader.execute(_BY_HASH, (key_hash,)).fetchone()
        except sqlite3.Error as exc:
            raise _failure(f"cannot read database {self.path!r}", exc) from exc
        return self._reread(key_hash, row) if row else None

    def _hashed(self, key_hash: str, row: Any) -> KeyRecord | None:
        record = self._unpack(key_hash, row[0])
        if record is not None:
            return record
        # A value holds a separator, or a time the text cannot hold exactly: the row read
        # again, its values one by one (gone if deleted between the two reads).
        with self._reading() as conn:
            general = conn.execute(self._q_by_hash, {"key_hash": key_hash}).fetchone()
        return self._record(general) if general else None

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class _Reading:
    """One read on the thread's connection (autocommit), errors made readable."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, sqlite3.Error):
            raise _failure(f"cannot read database {self.path!r}", exc) from exc


def _insert_rows(
    conn: Any, table: str, columns: tuple[str, ...], values: list[Any],
    marks: tuple[str, ...] | None = None,
) -> None:
    """Rows given as one flat list of ``columns`` values each, in statements of
    ROWS_PER_INSERT rows, or as many as the parameter limit allows (999 parameters before
    SQLite 3.32), then in a few smaller sizes, each prepared once (``statement_sizes``)."""
    width = len(columns) if marks is None else sum(mark.count("?") for mark in marks)
    largest = min(ROWS_PER_INSERT, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    start = 0
    for size in statement_sizes(len(values) // width, largest):
        end = start + size * width
        conn.execute(insert_rows(table, columns, size, marks), values[start:end])
        start = end


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error, errors made readable."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise _failure(f"cannot write to database {self.path!r}", exc) from exc
        return self.conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as error:
                self.conn.execute("ROLLBACK")
                raise _failure(f"cannot write to database {self.path!r}", error) from error
            return
        self.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.IntegrityError):
            raise Conflict(f"the change conflicts with a stored key: {exc}") from exc
        if isinstance(exc, sqlite3.Error):
            raise _failure(f"cannot write to database {self.path!r}", exc) from exc


def _failure(what: str, exc: sqlite3.Error) -> Exception:
    """A database that is busy or failing for now (locked, disk I/O) is ``Unavailable``;
    a file that is not a usable database (corrupt, read-only, not SQLite) is not a matter
    of waiting: ``InvalidValue`` naming the database setting."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "I/O" in text):
        return Unavailable(f"{what}: {text}")
    return InvalidValue(f"{what}: {text}", "database_url")
