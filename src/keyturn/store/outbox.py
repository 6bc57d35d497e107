"""The transactional outbox and the webhook tables, over SQL, for both engines.

``record`` writes events on a connection that is already inside a change's transaction
(the key store calls it beside the audit entry), so an event exists exactly when its
change committed: a crash after the commit loses nothing, a rollback leaves nothing.
Delivery is then two steps any instance may run: ``dispatch`` turns each recorded event
into one delivery row per subscribed webhook, and ``claim`` takes due deliveries for a
lease, so with several instances each delivery is sent by one of them at a time
(PostgreSQL: ``FOR UPDATE SKIP LOCKED``; SQLite: one writer at a time anyway). A worker
that dies holding a lease only delays the delivery until the lease ends: at least once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from keyturn._events import ANY, CANARY_USED, Event
from keyturn.store.base import Claim, Delivery, RecordedEvent, Webhook

if TYPE_CHECKING:
    from keyturn.store.relational import Connection
    from keyturn.store.sql import Dialect

INSERT_EVENT = (
    "INSERT INTO outbox (event_id, type, at, key_id, body, once, dispatched) "
    "VALUES (:event_id, :type, :at, :key_id, :body, :once, :no) ON CONFLICT DO NOTHING"
)
_DELIVERY_COLUMNS = (
    "d.id, d.webhook_id, d.event_id, d.type, d.status, d.attempts, d.created_at, d.next_at, "
    "d.last_at, d.last_status, d.last_error"
)
KEEP_DISPATCHED = timedelta(days=7)  # events already fanned out, kept for inspection
KEEP_SETTLED = timedelta(days=30)  # the deliveries log of delivered and failed ones


class Outbox:
    """Mixed into ``SQLStore``: the engine's connections and dialect do the rest."""

    dialect: Dialect

    def _reading(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _log(
        self, conn: Connection, actor: str, action: str, key_id: str | None, details: Any
    ) -> None:
        raise NotImplementedError

    def _executemany(self, conn: Connection, query: str, rows: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    # -- recording -------------------------------------------------------------------

    def _event_rows(self, events: Iterable[Event]) -> list[dict[str, Any]]:
        time_in = self.dialect.time_in
        return [
            {
                "event_id": event.id,
                "type": event.type,
                "at": time_in(event.at),
                "key_id": event.key_id,
                "body": event.body(),
                "once": event.once,
                "no": False,
            }
            for event in events
        ]

    def _write_events(self, conn: Connection, events: Iterable[Event]) -> int:
        """Write events in the caller's transaction; how many were new."""
        query = self.dialect.params(INSERT_EVENT)
        return sum(max(conn.execute(query, row).rowcount, 0) for row in self._event_rows(events))

    def _write_all_events(self, conn: Connection, events: Iterable[Event]) -> None:
        """Many events at once (a bulk creation), in the caller's transaction."""
        self._executemany(conn, self.dialect.params(INSERT_EVENT), self._event_rows(events))

    def record_events(self, events: Iterable[Event]) -> int:
        with self._writing() as conn:
            return self._write_events(conn, events)

    def recorded(
        self, type: str, *, key_id: str | None = None, limit: int = 100
    ) -> Sequence[RecordedEvent]:
        """Events of ``type`` (about ``key_id``) still in the outbox, newest first: the
        dashboard's record of a canary's uses, kept as long as the outbox keeps events."""
        query = "SELECT event_id, type, at, key_id, body FROM outbox WHERE type = :type"
        params: dict[str, Any] = {"type": type, "limit": limit}
        if key_id is not None:
            query += " AND key_id = :key_id"
            params["key_id"] = key_id
        with self._reading() as conn:
            rows = conn.execute(
                self.dialect.params(query + " ORDER BY id DESC LIMIT :limit"), params
            ).fetchall()
        found = []
        for row in rows:
            at = self.dialect.time_out(row[2])
            assert at is not None
            found.append(RecordedEvent(row[0], row[1], at, row[3], json.loads(row[4])["data"]))
        return found

    # -- webhooks ----------------------------------------------------------------------

    def create_webhook(self, webhook: Webhook, actor: str) -> None:
        with self._writing() as conn:
            conn.execute(
                self.dialect.params(
                    "INSERT INTO webhooks (id, url, events, description, secret, created_at) "
                    "VALUES (:id, :url, :events, :description, :secret, :created_at)"
                ),
                {
                    "id": webhook.id,
                    "url": webhook.url,
                    "events": " ".join(webhook.events),
                    "description": webhook.description,
                    "secret": webhook.secret,
                    "created_at": self.dialect.time_in(webhook.created_at),
                },
            )
            details = {"url": webhook.url, "events": list(webhook.events)}
            self._log(conn, actor, "webhook.create", None, {"webhook": webhook.id, **details})

    def webhooks(self) -> Sequence[Webhook]:
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT id, url, events, description, created_at, secret FROM webhooks "
                "ORDER BY created_at, id"
            ).fetchall()
        return [self._webhook(row) for row in rows]

    def _webhook(self, row: Any) -> Webhook:
        created = self.dialect.time_out(row[4])
        assert created is not None
        return Webhook(row[0], row[1], tuple(row[2].split()), row[3], created, row[5])

    def delete_webhook(self, webhook_id: str, actor: str) -> bool:
        """Remove a webhook and its deliveries log; ``False`` if there was none."""
        with self._writing() as conn:
            cursor = conn.execute(
                self.dialect.params("DELETE FROM webhooks WHERE id = :id"), {"id": webhook_id}
            )
            if cursor.rowcount < 1:
                return False
            self._log(conn, actor, "webhook.delete", None, {"webhook": webhook_id})
        return True

    def deliveries(
        self, webhook_id: str, *, limit: int = 100, before: int | None = None
    ) -> Sequence[Delivery]:
        """The deliveries log of a webhook, newest first."""
        query = (
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries d WHERE d.webhook_id = :id"
            + (" AND d.id < :before" if before is not None else "")
            + " ORDER BY d.id DESC LIMIT :limit"
        )
        params = {"id": webhook_id, "before": before, "limit": limit}
        with self._reading() as conn:
            rows = conn.execute(self.dialect.params(query), params).fetchall()
        return [self._delivery(row) for row in rows]

    def _delivery(self, row: Any) -> Delivery:
        moment = self.dialect.time_out
        created, next_at = moment(row[6]), moment(row[7])
        assert created is not None and next_at is not None
        return Delivery(
            int(row[0]),
            row[1],
            row[2],
            row[3],
            row[4],
            int(row[5]),
            created,
            next_at,
            moment(row[8]),
            row[9],
            row[10],
        )

    def delivery_counts(self) -> dict[str, int]:
        """Deliveries by status (``pending``, ``delivered``, ``failed``), canary alarms
        left out: the counts are on ``/metrics``, which needs no key, and one more delivery
        after trying a key would tell its user that the key is a canary (the deliveries
        API and the dashboard show them)."""
        with self._reading() as conn:
            rows = conn.execute(
                self.dialect.params(
                    "SELECT status, COUNT(*) FROM deliveries WHERE type <> :alarm GROUP BY status"
                ),
                {"alarm": CANARY_USED},
            ).fetchall()
        return {status: int(count) for status, count in rows}

    # -- delivering ------------------------------------------------------------------------

    def dispatch(self, limit: int = 100) -> int:
        """One delivery per webhook subscribed to each recorded event (webhooks made after
        the event do not get it); then the event is marked dispatched. Old dispatched
        events and settled deliveries are dropped on the way."""
        d = self.dialect
        now = datetime.now(UTC)
        if not self._any("SELECT 1 FROM outbox WHERE NOT dispatched LIMIT 1", {}):
            return 0  # the common case, read without taking the write lock
        with self._writing() as conn:
            rows = conn.execute(
                d.params(
                    "SELECT id, event_id, type, at FROM outbox WHERE NOT dispatched "
                    f"ORDER BY id LIMIT :limit{_skip_locked(d, 'outbox')}"
                ),
                {"limit": limit},
            ).fetchall()
            if not rows:
                return 0
            hooks = [
                self._webhook(row)
                for row in conn.execute(
                    "SELECT id, url, events, description, created_at, secret FROM webhooks"
                ).fetchall()
            ]
            insert = d.params(
                "INSERT INTO deliveries (webhook_id, event_id, type, created_at, next_at) "
                "VALUES (:webhook_id, :event_id, :type, :now, :now) ON CONFLICT DO NOTHING"
            )
            for _, event_id, kind, at in rows:
                moment = d.time_out(at)
                for hook in _subscribed(hooks, kind, moment):
                    conn.execute(
                        insert,
                        {
                            "webhook_id": hook.id,
                            "event_id": event_id,
                            "type": kind,
                            "now": d.time_in(now),
                        },
                    )
            done = d.params("UPDATE outbox SET dispatched = :yes WHERE id = :id")
            for row in rows:
                conn.execute(done, {"yes": True, "id": row[0]})
            conn.execute(
                d.params("DELETE FROM outbox WHERE dispatched AND at < :old"),
                {"old": d.time_in(now - KEEP_DISPATCHED)},
            )
            conn.execute(
                d.params("DELETE FROM deliveries WHERE status <> 'pending' AND created_at < :old"),
                {"old": d.time_in(now - KEEP_SETTLED)},
            )
        return len(rows)

    def claim(self, now: datetime, lease: float, limit: int = 20) -> Sequence[Claim]:
        d = self.dialect
        params = {
            "now": d.time_in(now),
            "until": d.time_in(now + timedelta(seconds=lease)),
            "limit": limit,
        }
        due = "SELECT 1 FROM deliveries WHERE status = 'pending' AND next_at <= :now LIMIT 1"
        if not self._any(due, {"now": params["now"]}):
            return []
        with self._writing() as conn:
            rows = conn.execute(
                d.params(
                    f"SELECT {_DELIVERY_COLUMNS}, w.url, w.secret, o.body "
                    "FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
                    "JOIN outbox o ON o.event_id = d.event_id "
                    "WHERE d.status = 'pending' AND d.next_at <= :now "
                    "AND (d.locked_until IS NULL OR d.locked_until <= :now) "
                    f"ORDER BY d.next_at, d.id LIMIT :limit{_skip_locked(d, 'd')}"
                ),
                params,
            ).fetchall()
            lock = d.params("UPDATE deliveries SET locked_until = :until WHERE id = :id")
            for row in rows:
                conn.execute(lock, {"until": params["until"], "id": row[0]})
        return [Claim(self._delivery(row[:11]), row[11], row[12], row[13]) for row in rows]

    def _any(self, query: str, params: dict[str, Any]) -> bool:
        with self._reading() as conn:
            return conn.execute(self.dialect.params(query), params).fetchone() is not None

    def settle(
        self,
        delivery_id: int,
        *,
        status: str,
        attempts: int,
        at: datetime,
        next_at: datetime,
        last_status: int | None,
        last_error: str | None,
    ) -> None:
        d = self.dialect
        with self._writing() as conn:
            conn.execute(
                d.params(
                    "UPDATE deliveries SET status = :status, attempts = :attempts, "
                    "last_at = :at, next_at = :next_at, last_status = :last_status, "
                    "last_error = :last_error, locked_until = NULL WHERE id = :id"
                ),
                {
                    "status": status,
                    "attempts": attempts,
                    "at": d.time_in(at),
                    "next_at": d.time_in(next_at),
                    "last_status": last_status,
                    "last_error": last_error,
                    "id": delivery_id,
                },
            )


def _skip_locked(dialect: Dialect, table: str) -> str:
    """Rows another instance holds are skipped, not waited for (PostgreSQL); SQLite has
    one writer at a time, so there is nothing to skip."""
    return f" FOR UPDATE OF {table} SKIP LOCKED" if dialect.lock else ""


def _subscribed(hooks: Sequence[Webhook], kind: str, at: datetime | None) -> Iterator[Webhook]:
    for hook in hooks:
        if at is not None and hook.created_at > at:
            continue
        if ANY in hook.events or kind in hook.events:
            yield hook
