"""The embedded default store: SQLite from the standard library, in WAL mode.

One connection per thread (SQLite connections must not be shared across threads while a
transaction is open); WAL lets those readers proceed while a writer commits.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keyturn.record import KeyRecord
from keyturn.store.base import AuditEvent, KeyFilter, KeyNotFound, StoreError
from keyturn.store.migrate import migrations

_COLUMNS = (
    'id, key_hash, prefix, start, "end", name, owner, scopes, metadata, created_at, '
    "expires_at, revoked_at, disabled, last_used_at, replaced_by, replaces, grace_until"
)
_TIME_FIELDS = frozenset({"created_at", "expires_at", "revoked_at", "last_used_at", "grace_until"})
_UPDATABLE = frozenset(
    {
        "name",
        "owner",
        "scopes",
        "metadata",
        "expires_at",
        "revoked_at",
        "disabled",
        "replaced_by",
        "grace_until",
        "last_used_at",
    }
)


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _dt(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _row_to_record(row: tuple[Any, ...]) -> KeyRecord:
    # On every cache miss: scopes are space-separated (a scope token has no spaces, RFC 6750
    # §3) and empty metadata skips the JSON parser, because this runs inside the 15 µs budget.
    return KeyRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        frozenset(row[7].split()),
        json.loads(row[8]) if row[8] != "{}" else {},
        datetime.fromtimestamp(row[9], UTC),
        _dt(row[10]),
        _dt(row[11]),
        bool(row[12]),
        _dt(row[13]),
        row[14],
        row[15],
        _dt(row[16]),
    )


def _record_to_row(record: KeyRecord) -> tuple[Any, ...]:
    return (
        record.id,
        record.key_hash,
        record.prefix,
        record.start,
        record.end,
        record.name,
        record.owner,
        " ".join(sorted(record.scopes)),
        json.dumps(record.metadata),
        record.created_at.timestamp(),
        _ts(record.expires_at),
        _ts(record.revoked_at),
        int(record.disabled),
        _ts(record.last_used_at),
        record.replaced_by,
        record.replaces,
        _ts(record.grace_until),
    )


def _column_value(name: str, value: Any) -> Any:
    if name in _TIME_FIELDS:
        return _ts(value)
    if name == "scopes":
        return " ".join(sorted(value))
    if name == "metadata":
        return json.dumps(value)
    if name == "disabled":
        return int(value)
    return value


def _audit_details(changes: Mapping[str, Any]) -> str:
    def show(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, frozenset | set):
            return sorted(value)
        return value

    return json.dumps({k: show(v) for k, v in changes.items()})


_NO_FILTER = KeyFilter()
_STATUS_SQL = {
    "revoked": "revoked_at IS NOT NULL",
    "disabled": "revoked_at IS NULL AND disabled = 1",
    "rotated": "revoked_at IS NULL AND disabled = 0 AND grace_until IS NOT NULL "
    "AND grace_until <= :now",
    "expired": "revoked_at IS NULL AND disabled = 0 "
    "AND (grace_until IS NULL OR grace_until > :now) "
    "AND expires_at IS NOT NULL AND expires_at <= :now",
    "active": "revoked_at IS NULL AND disabled = 0 "
    "AND (grace_until IS NULL OR grace_until > :now) "
    "AND (expires_at IS NULL OR expires_at > :now)",
}


class SQLiteStore:
    """``sqlite:///path/to/file.db`` (or ``sqlite:///:memory:`` for a throwaway store)."""

    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = url.removeprefix("sqlite://").removeprefix("/") if url != "sqlite://" else ""
        if not self.path or self.path == ":memory:":
            # A shared in-memory database, so every thread sees the same data.
            self._target = f"file:keyturn-{id(self)}?mode=memory&cache=shared"
            self._uri = True
        else:
            parent = Path(self.path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StoreError(
                    f"cannot open database {self.path!r}: folder {str(parent)!r} does not exist"
                )
            self._target = str(Path(self.path).expanduser())
            self._uri = False
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
            raise StoreError(f"cannot open database {self.path!r}: {exc}") from exc
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
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations(self.dialect):
                if migration.version in done:
                    continue
                for statement in migration.sql.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(f"cannot prepare database {self.path!r}: {exc}") from exc

    def schema_version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # -- reads -------------------------------------------------------------------------

    def find_by_hash(self, key_hash: str) -> KeyRecord | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM keys WHERE key_hash = ?", (key_hash,)
        ).fetchone()
        return _row_to_record(row) if row else None

    def get(self, key_id: str) -> KeyRecord | None:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM keys WHERE id = ?", (key_id,)).fetchone()
        return _row_to_record(row) if row else None

    def list_keys(
        self,
        filters: KeyFilter = _NO_FILTER,
        *,
        limit: int = 50,
        after: str | None = None,
    ) -> Sequence[KeyRecord]:
        where: list[str] = ["1 = 1"]
        params: dict[str, Any] = {"now": time.time(), "limit": limit}
        if filters.owner is not None:
            where.append("owner = :owner")
            params["owner"] = filters.owner
        if filters.prefix is not None:
            where.append("prefix = :prefix")
            params["prefix"] = filters.prefix
        if filters.status is not None:
            where.append(f"({_STATUS_SQL[filters.status]})")
        if filters.search:
            where.append(
                "(name LIKE :search ESCAPE '\\' OR owner LIKE :search ESCAPE '\\' OR id = :exact)"
            )
            escaped = filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            params["search"] = f"%{escaped}%"
            params["exact"] = filters.search
        if filters.expiring_before is not None:
            where.append("expires_at IS NOT NULL AND expires_at <= :expiring")
            params["expiring"] = filters.expiring_before.timestamp()
        if after is not None:
            where.append("(created_at, id) < (SELECT created_at, id FROM keys WHERE id = :after)")
            params["after"] = after
        sql = (
            f"SELECT {_COLUMNS} FROM keys WHERE {' AND '.join(where)} "
            "ORDER BY created_at DESC, id DESC LIMIT :limit"
        )
        return [_row_to_record(r) for r in self._conn.execute(sql, params)]

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM keys").fetchone()[0])

    def audit(
        self,
        *,
        key_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[AuditEvent]:
        where: list[str] = ["1 = 1"]
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("key_id", key_id), ("actor", actor), ("action", action)):
            if value is not None:
                where.append(f"{name} = :{name}")
                params[name] = value
        if before is not None:
            where.append("id < :before")
            params["before"] = before
        rows = self._conn.execute(
            f"SELECT id, at, actor, action, key_id, details FROM audit "
            f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit",
            params,
        )
        return [
            AuditEvent(r[0], datetime.fromtimestamp(r[1], UTC), r[2], r[3], r[4], json.loads(r[5]))
            for r in rows
        ]

    # -- writes (each in one transaction with its audit entry) --------------------------

    def _write(self) -> _Transaction:
        return _Transaction(self._conn, self.path)

    def _log(
        self, conn: sqlite3.Connection, actor: str, action: str, key_id: str | None, details: str
    ) -> None:
        conn.execute(
            "INSERT INTO audit (at, actor, action, key_id, details) VALUES (?, ?, ?, ?, ?)",
            (time.time(), actor, action, key_id, details),
        )

    def create(self, record: KeyRecord, actor: str) -> None:
        self.create_many([record], actor)

    def create_many(self, records: Iterable[KeyRecord], actor: str) -> int:
        count = 0
        with self._write() as conn:
            for record in records:
                conn.execute(
                    f"INSERT INTO keys ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                    _record_to_row(record),
                )
                self._log(
                    conn,
                    actor,
                    "key.create",
                    record.id,
                    _audit_details(
                        {
                            "name": record.name,
                            "scopes": record.scopes,
                            "owner": record.owner,
                            "expires_at": record.expires_at,
                        }
                    ),
                )
                count += 1
        return count

    def update(self, key_id: str, changes: Mapping[str, Any], actor: str, action: str) -> KeyRecord:
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise StoreError(f"cannot change {', '.join(sorted(unknown))} of a key")
        with self._write() as conn:
            if changes:
                sets = ", ".join(f'"{name}" = ?' for name in changes)
                values = [_column_value(n, v) for n, v in changes.items()]
                found = (
                    conn.execute(f"UPDATE keys SET {sets} WHERE id = ?", (*values, key_id)).rowcount
                    > 0
                )
            else:
                found = (
                    conn.execute("SELECT 1 FROM keys WHERE id = ?", (key_id,)).fetchone()
                    is not None
                )
            if not found:
                raise KeyNotFound(key_id)
            self._log(conn, actor, action, key_id, _audit_details(changes))
        record = self.get(key_id)
        assert record is not None
        return record

    def rotate(self, old_id: str, new: KeyRecord, grace_until: datetime, actor: str) -> KeyRecord:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE keys SET replaced_by = ?, grace_until = ? WHERE id = ?",
                (new.id, grace_until.timestamp(), old_id),
            )
            if cur.rowcount == 0:
                raise KeyNotFound(old_id)
            conn.execute(
                f"INSERT INTO keys ({_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                _record_to_row(new),
            )
            self._log(
                conn,
                actor,
                "key.rotate",
                old_id,
                _audit_details({"replaced_by": new.id, "grace_until": grace_until}),
            )
            self._log(conn, actor, "key.create", new.id, _audit_details({"replaces": old_id}))
        record = self.get(old_id)
        assert record is not None
        return record

    def touch(self, last_used: Mapping[str, datetime]) -> None:
        """Batched last-used times; not audited (they are usage, not changes)."""
        if not last_used:
            return
        with self._write() as conn:
            conn.executemany(
                "UPDATE keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
                [(at.timestamp(), key_id) for key_id, at in last_used.items()],
            )

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any error, errors made readable."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write to database {self.path!r}: {exc}") from exc
        return self.conn

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if kind is None:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.Error as error:
                self.conn.execute("ROLLBACK")
                raise StoreError(f"cannot write to database {self.path!r}: {error}") from error
            return
        self.conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.IntegrityError):
            raise StoreError(f"the change conflicts with a stored key: {exc}") from exc
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot write to database {self.path!r}: {exc}") from exc
