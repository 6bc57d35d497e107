"""The store protocol over SQL, written once for SQLite and PostgreSQL.

An engine supplies connections (``_reading`` and ``_writing``, the latter inside one
transaction), its ``Dialect`` and, if it has one, a way to announce a change to other
instances (``_announce``). Everything else, from the audit trail to spending credits, is
here, so the two engines cannot drift apart in behaviour.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Protocol

from keyturn import _events as events
from keyturn import _states as states
from keyturn._credits import period_starts
from keyturn.errors import Conflict, InvalidValue, KeyNotFound
from keyturn.record import KeyRecord
from keyturn.store import sql
from keyturn.store.base import (
    EVERY_KEY,
    AuditEvent,
    Decide,
    KeyFilter,
    PortalGrant,
    Successor,
)
from keyturn.store.outbox import Outbox
from keyturn.store.owner_rows import (
    GET_OWNER,
    OWNER_CREDITS_LEFT,
    OWNER_USAGE,
    PUT_OWNER,
    SPEND_OWNER,
    keep_owner_limits,
    owner_keys,
    owner_of_row,
)
from keyturn.store.role_rows import (
    DELETE_ROLE,
    PUT_ROLE,
    get_role,
    holders,
    list_roles,
    role_of_row,
)
from keyturn.store.verification_rows import (
    BLOCK_COLUMNS,
    INSERT_LATE,
    KEY_CALLERS,
    KEY_NEEDS,
    LATE,
    NEXT_SHAPE,
    PURGE_BY_TIME,
    PURGE_LATE,
    PURGE_LATE_VERIFICATIONS,
    PURGE_REQUESTS,
    PURGE_SHAPES,
    PURGE_VERIFICATIONS,
    SHAPES_OUTLIVE,
    STOPPED_AHEAD,
    TAKE_IDS,
    LateRow,
    ShapeRow,
    callers,
    key_blocks,
    loose_requests,
    needs,
    read_page,
    since_param,
)

if TYPE_CHECKING:
    from keyturn._owners import Owner, OwnerUsage
    from keyturn._suggestions import Need
    from keyturn._verifications import Caller, Verification, VerificationFilter
    from keyturn.roles import Role

_NO_FILTER = KeyFilter()
ROWS_KEPT = 4096  # rows (and their records) kept for re-reads by hash; ~8 MB at most


def _holds_nul(*values: object) -> bool:
    """Whether any text value holds a NUL. No stored text does (the admin layer refuses
    it), and PostgreSQL cannot even compare one, so such a lookup matches nothing, on
    every engine alike."""
    return any(isinstance(v, str) and "\x00" in v for v in values)


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...


UsageCounts = Mapping[tuple[str, str], int]
"""(key id, outcome code) -> how many times."""


class SQLStore(Outbox):
    """Shared behaviour; subclasses provide connections and the dialect. Every write to a
    key records its event in the outbox in the same transaction (``keyturn.store.outbox``)."""

    url: str
    dialect: sql.Dialect

    def __init__(self) -> None:
        self._build = sql.record_reader(self.dialect)
        # Rows read by hash, with the record made of each (see ``_reread``); how many.
        self._rows: dict[str, tuple[Any, KeyRecord]] = {}
        self.rows_kept = ROWS_KEPT
        # The hashes of those rows, live: each is a key this store issued, so a cache miss
        # on one need not check the key's checksum again (``Verifier.well_formed``).
        self.hashes_read: Collection[str] = self._rows.keys()
        q = self.dialect.params
        self._q_by_id = q(sql.by_id(self.dialect))
        self._q_by_hash = q(sql.by_hash(self.dialect))
        self._q_lock = q(sql.by_id(self.dialect) + self.dialect.lock)
        self._q_insert = q(sql.INSERT_KEY)
        self._q_audit = q(sql.INSERT_AUDIT)
        self._q_rotate = q(sql.rotate_query(self.dialect))
        self._q_touch = q(sql.touch_query(self.dialect))
        self._q_extend_grace = q(sql.extend_quiet_grace(self.dialect))
        self._q_spend = q(sql.SPEND)
        self._q_credits_left = q(sql.CREDITS_LEFT)
        self._q_usage = q(sql.COUNT_USAGE)
        self._q_usage_by_outcome = q(sql.USAGE_BY_OUTCOME)
        self._q_take_ids = q(TAKE_IDS)

    # -- what an engine provides ---------------------------------------------------------

    def _reading(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _announce(self, conn: Connection, key_hash: str) -> None:
        """Tell other instances that this key changed (inside the writing transaction)."""

    def _executemany(self, conn: Connection, query: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            conn.execute(query, row)

    def _insert_verifications(self, conn: Connection, values: list[Any]) -> None:
        """A batch of the verification log's blocks (flat: ``BLOCK_COLUMNS`` for each, ids
        given), each engine its fastest way."""
        raise NotImplementedError

    def _insert_requests(self, conn: Connection, values: list[Any]) -> None:
        """Loose entries' ids and request ids (flat: ``REQUEST_COLUMNS`` for each), each
        engine its fastest way."""
        raise NotImplementedError

    def _insert_shapes(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """New shapes of the verification log (``SHAPE_TABLE_COLUMNS``, ``created`` as the
        engine stores times), each engine its fastest way."""
        raise NotImplementedError

    def _shape_ids(self, conn: Connection, count: int) -> list[int]:
        """Ids for ``count`` new shapes of the verification log, in the transaction that
        adds them: after the highest (SQLite: ``BEGIN IMMEDIATE`` keeps other writers
        out until it commits)."""
        first = int(conn.execute(NEXT_SHAPE).fetchone()[0])
        return list(range(first, first + count))

    # -- reads ---------------------------------------------------------------------------

    def _record(self, row: Any) -> KeyRecord:
        return self._build(*row)

    def _hashed(self, key_hash: str, row: Any) -> KeyRecord | None:
        """The record of the row ``find_by_hash`` read under ``key_hash``: an engine may
        read that row its own way (and, reading it again, find it deleted meanwhile)."""
        return self._build(*row)

    def _reread(self, key_hash: str, row: Any) -> KeyRecord | None:
        """The record of a row read by hash: the one made last time if the row is the same
        (the whole row compared, in C), else a new one.

        Most cache misses are not new keys but busy keys whose cache entry ran out of time
        (``cache_ttl``): the row is read again, to see any change, and is usually what it
        was. Keeping the record then keeps what hangs on it, the verifier's accepting
        decisions among them, and costs the miss one tuple comparison instead of building
        a record of 22 fields. Bounded (``rows_kept``, first in first out; 0 keeps none); a
        changed row always makes a new record.
        """
        rows = self._rows
        kept = rows.get(key_hash)
        if kept is not None and kept[0] == row:
            return kept[1]
        record = self._hashed(key_hash, row)
        if record is not None and self.rows_kept:
            if len(rows) >= self.rows_kept and key_hash not in rows:
                rows.pop(next(iter(rows)), None)
            rows[key_hash] = (row, record)
            record.accepted = {}  # kept: its memo of accepting decisions (``KeyRecord``)
        return record

    def find_by_hash(self, key_hash: str) -> KeyRecord | None:
        with self._reading() as conn:
            row = conn.execute(self._q_by_hash, {"key_hash": key_hash}).fetchone()
        return self._reread(key_hash, row) if row else None

    def get(self, key_id: str) -> KeyRecord | None:
        if _holds_nul(key_id):
            return None
        with self._reading() as conn:
            row = conn.execute(self._q_by_id, {"id": key_id}).fetchone()
        return self._record(row) if row else None

    def list_keys(
        self,
        filters: KeyFilter = _NO_FILTER,
        *,
        limit: int = 50,
        after: str | None = None,
    ) -> Sequence[KeyRecord]:
        if _holds_nul(filters.owner, filters.search, filters.prefix, filters.role, after):
            return []
        query, params = sql.list_query(self.dialect, filters, limit, after)
        with self._reading() as conn:
            rows = conn.execute(self.dialect.params(query), params).fetchall()
        return [self._record(r) for r in rows]

    def count(self) -> int:
        with self._reading() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM keys").fetchone()[0])

    def audit(
        self,
        *,
        key_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[AuditEvent]:
        if _holds_nul(key_id, actor, action):
            return []
        query, params = sql.audit_query(key_id, actor, action, limit, before)
        with self._reading() as conn:
            rows = conn.execute(self.dialect.params(query), params).fetchall()
        moment, loads = self.dialect.time_out, self.dialect.json_out
        return [AuditEvent(r[0], moment(r[1]), r[2], r[3], r[4], loads(r[5])) for r in rows]  # type: ignore[arg-type]

    def usage(self, key_id: str, since: date | None = None) -> dict[str, int]:
        """Requests counted per outcome for one key (since a UTC day, or ever)."""
        params = {"key_id": key_id, "since": (since or date.min).isoformat()}
        with self._reading() as conn:
            rows = conn.execute(self._q_usage_by_outcome, params).fetchall()
        return {outcome: int(total) for outcome, total in rows}

    # -- writes (each in one transaction with its audit entry) ----------------------------

    def _log(
        self,
        conn: Connection,
        actor: str,
        action: str,
        key_id: str | None,
        details: Mapping[str, Any],
    ) -> None:
        conn.execute(self._q_audit, self._audit_row(actor, action, key_id, details))

    def _audit_row(
        self, actor: str, action: str, key_id: str | None, details: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "at": self.dialect.time_in(datetime.now(UTC)),
            "actor": actor,
            "action": action,
            "key_id": key_id,
            "details": self.dialect.json_in(sql.audit_details(details)),
        }

    def create(self, record: KeyRecord, actor: str) -> None:
        self.create_many([record], actor)

    def create_many(self, records: Iterable[KeyRecord], actor: str) -> int:
        """Keys, their audit entries and their ``key.created`` events, in one transaction;
        each table written with one ``executemany`` (a statement per row cost a bulk
        creation a fifth of its time)."""
        rows: list[dict[str, Any]] = []
        audits: list[dict[str, Any]] = []
        created: list[events.Event] = []
        roles: set[str] = set()  # every key's, checked once
        for record in records:
            rows.append(sql.record_params(self.dialect, record))
            details: dict[str, Any] = {
                "name": record.name,
                "scopes": record.scopes,
                "owner": record.owner,
                "expires_at": record.expires_at,
            }
            if record.metered:
                details.update(
                    rate_limits=record.rate_limits,
                    credits=record.credits,
                    refill=record.refill,
                )
            if record.allowed_ips:
                details["allowed_ips"] = record.allowed_ips
            if record.roles:
                details["roles"] = record.roles
                roles.update(record.roles)
            audits.append(self._audit_row(actor, "key.create", record.id, details))
            created.append(events.about(events.CREATED, record))
        if not rows:
            return 0
        with self._writing() as conn:
            self._hold_owners(conn, (row["owner"] for row in rows), self.dialect.owner_share)
            self._ensure_roles(conn, roles)
            self._executemany(conn, self._q_insert, rows)
            self._executemany(conn, self._q_audit, audits)
            self._write_all_events(conn, created)
        return len(rows)

    def update(self, key_id: str, changes: Mapping[str, Any], actor: str, action: str) -> KeyRecord:
        """Change fields as given and audit it, in one transaction (no rules: the admin
        layer's operations go through ``change``)."""
        return self.change(key_id, lambda _current: changes, actor, action)

    def change(
        self,
        key_id: str,
        decide: Decide,
        actor: str,
        action: str,
        *,
        emit: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> KeyRecord:
        """Read the key under a write lock, let ``decide`` say what to change, write it and
        audit it: one transaction, so no other change to the key can come between the
        state a decision was made on and its write (two enables racing a revoke, an update
        racing a rotation). ``decide`` returns the fields to change (``None``: nothing,
        and nothing is audited) or raises to refuse, which rolls everything back. The
        changed row is read back inside the transaction too, so a change whose result
        cannot be read is rolled back whole. The audit entry holds ``details`` beside the
        changes, and ``emit`` (an event type) records that event about the changed key in
        the outbox, in the same transaction."""
        if _holds_nul(key_id):
            raise KeyNotFound(key_id)
        with self._writing() as conn:
            current = self._locked(conn, key_id)
            changes = decide(current)
            if changes is None:
                return current
            unknown = set(changes) - sql.UPDATABLE
            if unknown:
                raise InvalidValue(f"cannot change {', '.join(sorted(unknown))} of a key")
            record = current
            if "roles" in changes:
                self._ensure_roles(conn, changes["roles"])
            if changes.get("owner", current.owner) != current.owner:
                self._hold_owners(conn, [changes["owner"]], self.dialect.owner_share)
            if changes:
                query, params = sql.update_query(self.dialect, key_id, changes)
                record = self._record(conn.execute(self.dialect.params(query), params).fetchone())
                self._announce(conn, record.key_hash)
                self._share_allowance(conn, record, changes)
            self._log(conn, actor, action, key_id, {**changes, **(details or {})})
            if emit is not None:
                self._write_events(conn, [events.about(emit, record, **(details or {}))])
        return record

    def _share_allowance(
        self, conn: Connection, record: KeyRecord, changes: Mapping[str, Any]
    ) -> None:
        """Make a change to ``record``'s allowance to every key of its rotation chain as
        well: they share one allowance (``KeyRecord.allowance_id``), so a rotated key in its
        grace period is metered as its successor is, whichever of them was changed."""
        chained = record.replaces is not None or record.replaced_by is not None
        if not chained or not sql.ALLOWANCE_FIELDS & set(changes):
            return
        query, params = sql.allowance_query(self.dialect, record, changes)
        for (key_hash,) in conn.execute(self.dialect.params(query), params).fetchall():
            self._announce(conn, key_hash)

    def _locked(self, conn: Connection, key_id: str) -> KeyRecord:
        """The key's row, locked until the transaction ends (PostgreSQL: ``FOR UPDATE``;
        SQLite's ``BEGIN IMMEDIATE`` holds the whole database already)."""
        row = conn.execute(self._q_lock, {"id": key_id}).fetchone()
        if row is None:
            raise KeyNotFound(key_id)
        return self._record(row)

    def rotate(self, old_id: str, successor: Successor, actor: str) -> tuple[KeyRecord, KeyRecord]:
        """Replace a key: read it under a write lock, let ``successor`` build the new key
        and the end of the old one's grace from it (or raise to refuse), then link the two
        and insert the new one, in one transaction. The link is made only if the key is
        still unreplaced and unrevoked, so concurrent rotations cannot fork a key: one
        wins, every other one gets ``Conflict``. Returns (old, new) as stored."""
        with self._writing() as conn:
            current = self._locked(conn, old_id)
            new, grace = successor(current)
            params = {
                "replaced_by": new.id,
                "grace_until": self.dialect.time_in(grace.until),
                "grace_quiet_seconds": grace.quiet_seconds,
                "grace_max": self.dialect.time_in(grace.most),
                "id": old_id,
            }
            row = conn.execute(self._q_rotate, params).fetchone()
            if row is None:  # the store's own guard, whatever ``successor`` checked
                raise Conflict(
                    f"key {old_id} is revoked or was rotated already; only a "
                    "live key that was not rotated yet can be rotated"
                )
            record = self._record(row)
            self._announce(conn, record.key_hash)
            conn.execute(self._q_insert, sql.record_params(self.dialect, new))
            details: dict[str, Any] = {"replaced_by": new.id, "grace_until": grace.until}
            if grace.quiet_seconds is not None:
                details.update(grace_until_quiet_seconds=grace.quiet_seconds,
                               grace_max=grace.most)  # fmt: skip
            self._log(conn, actor, "key.rotate", old_id, details)
            self._log(conn, actor, "key.create", new.id, {"replaces": old_id})
            self._write_events(
                conn,
                [events.about(events.ROTATED, record), events.about(events.CREATED, new)],
            )
        return record, new

    def due_for_events(
        self, now: datetime, horizon: datetime, unused_before: datetime | None
    ) -> Sequence[KeyRecord]:
        """Keys a time-driven event may be due for (``keyturn._reminders`` decides which):
        not revoked, not canaries, and expiring from a week ago to ``horizon``, or ending a
        rotation's grace within a day (a usage-aware grace: at its latest), or holding
        credits, or (``unused_before``) working but unused since before it."""
        d = self.dialect
        params = {
            "past": d.time_in(now - timedelta(days=7)),
            "horizon": d.time_in(horizon),
            "now": d.time_in(now),
            "day": d.time_in(now + timedelta(days=1)),
            "unused": d.time_in(unused_before) if unused_before is not None else None,
        }
        query = (
            f"SELECT {sql.selected(d)} FROM keys WHERE revoked_at IS NULL AND NOT canary AND ("
            "(expires_at IS NOT NULL AND expires_at >= :past AND expires_at <= :horizon) "
            "OR (grace_until IS NOT NULL AND grace_until > :now "
            "AND COALESCE(grace_max, grace_until) <= :day) "
            "OR credits IS NOT NULL"
            + (
                " OR (NOT disabled AND replaced_by IS NULL "
                "AND COALESCE(last_used_at, created_at) < :unused)"
                if unused_before is not None
                else ""
            )
            + ")"
        )
        with self._reading() as conn:
            rows = conn.execute(d.params(query), params).fetchall()
        return [self._record(row) for row in rows]

    def touch(self, last_used: Mapping[str, datetime]) -> None:
        """Batched last-used times; not audited (they are usage, not changes). In the same
        transaction, the end of every usage-aware grace these uses prolong moves later
        (``sql.extend_quiet_grace``), announced to other instances like a change, so a
        cache that keeps records for long (a live change feed) does not hold an old end."""
        if not last_used:
            return
        # In key order, as every instance does: concurrent flushes lock rows in one order
        # and so cannot deadlock.
        rows = [
            {"at": self.dialect.time_in(at), "id": key_id}
            for key_id, at in sorted(last_used.items())
        ]
        now = {"now": self.dialect.time_in(datetime.now(UTC))}
        with self._writing() as conn:
            self._executemany(conn, self._q_touch, rows)
            for (key_hash,) in conn.execute(self._q_extend_grace, now).fetchall():
                self._announce(conn, key_hash)

    def count_usage(self, counts: UsageCounts, day: date | None = None) -> None:
        """Add batched per-key counts by outcome to the day's totals (UTC)."""
        if not counts:
            return
        day_text = (day or datetime.now(UTC).date()).isoformat()
        rows = [
            {"key_id": key_id, "day": day_text, "outcome": outcome, "count": count}
            for (key_id, outcome), count in sorted(counts.items())
        ]
        with self._writing() as conn:
            self._executemany(conn, self._q_usage, rows)

    def spend(self, allowance_id: str, now: datetime | None = None) -> int | None:
        """Take one credit of an allowance (``KeyRecord.allowance_id``) from the newest key
        that shares it, refilling first if a period has begun; the credits left after it,
        or ``None`` when none was left. Not audited: it is usage, not a change."""
        params = self._period_params(allowance_id, now or datetime.now(UTC))
        # One statement in autocommit mode: its own transaction, one round trip, and the
        # row lock held for no longer than the update and its commit.
        with self._reading() as conn:
            row = conn.execute(self._q_spend, params).fetchone()
        return None if row is None else int(row[0])

    def credits_left(self, allowance_id: str, now: datetime | None = None) -> int | None:
        """The credits ``spend`` would find now (after a refill that is due), without
        spending one; ``None`` for an allowance without credits (or no such key)."""
        params = self._period_params(allowance_id, now or datetime.now(UTC))
        with self._reading() as conn:
            row = conn.execute(self._q_credits_left, params).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # -- customer portal links -------------------------------------------------------------

    def create_portal_link(self, grant: PortalGrant, link_hash: str, actor: str) -> None:
        time_in = self.dialect.time_in
        with self._writing() as conn:
            conn.execute(
                self.dialect.params(sql.PURGE_PORTAL_LINKS),
                {"before": time_in(datetime.now(UTC) - timedelta(days=1))},
            )
            conn.execute(
                self.dialect.params(sql.INSERT_PORTAL_LINK),
                {
                    "link_hash": link_hash,
                    "owner": grant.owner,
                    "policy": self.dialect.json_in(grant.policy),
                    "return_url": grant.return_url,
                    "created_by": grant.created_by,
                    "expires_at": time_in(grant.expires_at),
                },
            )
            details = {"owner": grant.owner, "policy": grant.policy, "expires_at": grant.expires_at}
            self._log(conn, actor, "portal.link", None, details)

    def redeem_portal_link(self, link_hash: str, now: datetime) -> PortalGrant | None:
        params = {"link_hash": link_hash, "now": self.dialect.time_in(now)}
        with self._writing() as conn:
            row = conn.execute(self.dialect.params(sql.REDEEM_PORTAL_LINK), params).fetchone()
            if row is None:
                return None
            owner, policy, expires_at, return_url, created_by = row
            grant = PortalGrant(
                owner,
                self.dialect.json_out(policy),
                self.dialect.time_out(expires_at) or now,
                return_url,
                created_by,
            )
            self._log(conn, f"owner:{owner}", "portal.open", None, {"link_by": created_by})
        return grant

    def _period_params(self, key_id: str, now: datetime) -> dict[str, Any]:
        day, month = period_starts(now)
        time_in = self.dialect.time_in
        return {"id": key_id, "now": time_in(now), "day": time_in(day), "month": time_in(month)}

    # -- owners: limits shared by an owner's keys (``keyturn._owners``) --------------------

    def _owner_keys(self, conn: Connection, owner: str) -> list[KeyRecord]:
        """The owner's keys, locked until the transaction ends."""
        query = self.dialect.params(owner_keys(self.dialect) + self.dialect.lock)
        return [self._record(row) for row in conn.execute(query, {"owner": owner}).fetchall()]

    def put_owner(
        self, owner: Owner, check: Callable[[KeyRecord], None], actor: str
    ) -> tuple[Owner, list[str]]:
        """Store ``owner``'s limits, on its row and its keys' rows, after ``check`` passed
        on each of its keys (as changed: ``check`` raising rolls it all back); the stored
        owner, and the hashes of its keys (announced)."""
        time_in = self.dialect.time_in
        params = {
            "owner": owner.owner,
            "rate_limits": ";".join(owner.rate_limits),
            "credits": owner.credits,
            "refill": owner.refill,
            "refill_amount": owner.refill_amount,
            "refilled_at": time_in(owner.refilled_at),
            "metadata": self.dialect.json_in(owner.metadata),
            "now": time_in(datetime.now(UTC)),
        }
        limits = {
            "owner": owner.owner,
            "rate_limits": params["rate_limits"],
            "has_credits": owner.credits is not None,
        }
        with self._writing() as conn:
            # First: a key put under the owner meanwhile waits for this change to end,
            # then takes the new limits (``sql.OWNER_LIMITS``).
            self._hold_owners(conn, [owner.owner], self.dialect.owner_lock)
            row = conn.execute(self.dialect.params(PUT_OWNER), params).fetchone()
            # Its keys locked before they are written: a rotation of one of them that got
            # there first commits its successor before the write below begins, which
            # then sees it (a write waiting on a row would not).
            self._owner_keys(conn, owner.owner)
            query = self.dialect.params(keep_owner_limits(self.dialect))
            keys = [self._record(r) for r in conn.execute(query, limits).fetchall()]
            hashes = []
            for record in keys:
                check(record)
                self._announce(conn, record.key_hash)
                hashes.append(record.key_hash)
            shown = owner.public()
            del shown["created_at"], shown["updated_at"]
            self._log(conn, actor, "owner.update", None, shown)
        return owner_of_row(self.dialect, row), hashes

    def _hold_owners(self, conn: Connection, owners: Iterable[str | None], how: str) -> None:
        """Hold the owners' limits still until the transaction ends (``how``: the dialect's
        ``owner_share`` or ``owner_lock``; nothing on SQLite), in one order, so that two
        writes holding several cannot wait on each other."""
        if how:
            for name in sorted({o for o in owners if o is not None}):
                conn.execute(self.dialect.params(how), {"owner": name})

    def change_owner_keys(
        self,
        owner: str,
        decide: Callable[[KeyRecord], dict[str, Any] | None],
        actor: str,
        action: str,
        owner_action: str,
    ) -> list[KeyRecord]:
        """``KeyStore.change`` for every key of ``owner`` at once: each decided on as
        stored, under lock, written and audited (``action``), and the whole audited as
        ``owner_action``; one transaction, so a refusal of any key changes none."""
        changed: list[KeyRecord] = []
        with self._writing() as conn:
            for current in self._owner_keys(conn, owner):
                changes = decide(current)
                if not changes:
                    continue
                unknown = set(changes) - sql.UPDATABLE
                if unknown:
                    raise InvalidValue(f"cannot change {', '.join(sorted(unknown))} of a key")
                query, params = sql.update_query(self.dialect, current.id, changes)
                row = conn.execute(self.dialect.params(query), params).fetchone()
                record = self._record(row)
                self._announce(conn, record.key_hash)
                self._log(conn, actor, action, record.id, {**changes, "owner": owner})
                changed.append(record)
            self._log(conn, actor, owner_action, None,
                      {"owner": owner, "keys": [r.id for r in changed]})  # fmt: skip
        return changed

    def get_owner(self, owner: str) -> Owner | None:
        with self._reading() as conn:
            row = conn.execute(self.dialect.params(GET_OWNER), {"owner": owner}).fetchone()
        return owner_of_row(self.dialect, row) if row else None

    def owner_usage(self, owner: str, since: date | None = None) -> OwnerUsage | None:
        """The owner, its keys per status, its balance and its requests per outcome;
        ``None`` when it has neither an owner row nor keys."""
        from keyturn._owners import Owner, OwnerUsage

        if "\x00" in owner:
            return None
        now = datetime.now(UTC)
        with self._reading() as conn:
            row = conn.execute(self.dialect.params(GET_OWNER), {"owner": owner}).fetchone()
            query = self.dialect.params(owner_keys(self.dialect))
            keys = [self._record(r) for r in conn.execute(query, {"owner": owner}).fetchall()]
            usage = conn.execute(
                self.dialect.params(OWNER_USAGE),
                {"owner": owner, "since": (since or date.min).isoformat()},
            ).fetchall()
        if row is None and not keys:
            return None
        found = owner_of_row(self.dialect, row) if row else Owner(owner)
        counts: dict[str, int] = dict.fromkeys(states.STATUSES, 0)
        for record in keys:
            counts[record.status(now)] += 1
        left = self.owner_credits_left(owner, now) if found.credits is not None else None
        return OwnerUsage(found, counts, left, {o: int(n) for o, n in usage})

    def spend_owner(self, owner: str, now: datetime | None = None) -> int | None:
        """Take one credit from the owner's balance (refilling first if due); the credits
        left after it, or ``None`` when none was left. One statement, atomic per row."""
        params = self._period_params(owner, now or datetime.now(UTC))
        with self._reading() as conn:
            row = conn.execute(self.dialect.params(SPEND_OWNER), params).fetchone()
        return None if row is None else int(row[0])

    def owner_credits_left(self, owner: str, now: datetime | None = None) -> int | None:
        params = self._period_params(owner, now or datetime.now(UTC))
        with self._reading() as conn:
            row = conn.execute(self.dialect.params(OWNER_CREDITS_LEFT), params).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # -- roles: named sets of scopes that keys hold (``keyturn.roles``) -----------------

    def get_role(self, name: str) -> Role | None:
        """The role, with how many keys (not revoked) hold it; ``None``: no such role."""
        if _holds_nul(name):
            return None
        with self._reading() as conn:
            row = conn.execute(self._q(get_role(self.dialect)), {"name": name}).fetchone()
        return role_of_row(self.dialect, row) if row else None

    def role_scopes(self, names: Iterable[str]) -> dict[str, frozenset[str]]:
        """The scopes of each named role that exists (one read, no holders counted)."""
        wanted = sorted(set(names))
        if not wanted or _holds_nul(*wanted):
            return {}
        query = self._q(f"SELECT name, scopes FROM roles WHERE {self._named}")
        with self._reading() as conn:
            rows = conn.execute(query, {"names": f" {' '.join(wanted)} "}).fetchall()
        return {name: frozenset(scopes.split()) for name, scopes in rows}

    def list_roles(self) -> list[Role]:
        with self._reading() as conn:
            rows = conn.execute(list_roles(self.dialect)).fetchall()
        return [role_of_row(self.dialect, row) for row in rows]

    def put_role(
        self, role: Role, check: Callable[[Role | None], None], actor: str
    ) -> Role:
        """Store ``role`` (creating or replacing it) after ``check`` passed on the role as
        stored (``None``: new), read under lock; every cache is told that any key may have
        changed (``EVERY_KEY``), so the keys holding it change within the bound."""
        time_in = self.dialect.time_in
        params = {
            "name": role.name,
            "scopes": " ".join(sorted(role.scopes)),
            "description": role.description,
            "now": time_in(datetime.now(UTC)),
        }
        with self._writing() as conn:
            check(self._locked_role(conn, role.name))
            row = conn.execute(self._q(PUT_ROLE), params).fetchone()
            self._announce(conn, EVERY_KEY)
            details = {"name": role.name, "scopes": role.scopes, "description": role.description}
            self._log(conn, actor, "role.update", None, details)
        return role_of_row(self.dialect, row)

    def delete_role(self, name: str, check: Callable[[Role], None], actor: str) -> Role:
        """Delete the role after ``check`` passed on it (read under lock); a role that
        keys which are not revoked still hold is refused (``RoleInUse``), so no working
        key ever names a role that is gone."""
        from keyturn.errors import RoleInUse, RoleNotFound

        with self._writing() as conn:
            current = self._locked_role(conn, name)
            if current is None:
                raise RoleNotFound(name)
            check(current)
            # Counted in a statement of its own, after the lock: it sees every key written
            # by a transaction that held the role (``_ensure_roles``) until it committed.
            query = self._q(f"SELECT {holders(self.dialect, 'CAST(:name AS TEXT)')}")
            count = int(conn.execute(query, {"name": name}).fetchone()[0])
            if count:
                raise RoleInUse(name, count)
            conn.execute(self._q(DELETE_ROLE), {"name": name})
            self._announce(conn, EVERY_KEY)
            self._log(conn, actor, "role.delete", None,
                      {"name": name, "scopes": current.scopes})  # fmt: skip
        return current

    def _locked_role(self, conn: Connection, name: str) -> Role | None:
        if _holds_nul(name):
            return None
        query = self._q(get_role(self.dialect) + self.dialect.lock)
        row = conn.execute(query, {"name": name}).fetchone()
        return role_of_row(self.dialect, row) if row else None

    def _ensure_roles(self, conn: Connection, roles: Iterable[str]) -> None:
        """The roles exist, and stay until the transaction ends (PostgreSQL: ``FOR
        SHARE``, which a deletion's ``FOR UPDATE`` waits for; SQLite's writes are one at
        a time): a key is never written holding a role deleted meanwhile."""
        from keyturn.errors import UnknownRole

        wanted = sorted(set(roles))
        if not wanted:
            return
        query = self._q(
            f"SELECT name FROM roles WHERE {self._named} ORDER BY name{self.dialect.share}"
        )
        found = {r[0] for r in conn.execute(query, {"names": f" {' '.join(wanted)} "})}
        missing = tuple(n for n in wanted if n not in found)
        if missing:
            raise UnknownRole(missing)

    @property
    def _named(self) -> str:
        """Roles named in ``:names`` (names between spaces): a scan of the small roles
        table, with one parameter whatever the number of names."""
        return f"{self.dialect.find}(CAST(:names AS TEXT), ' ' || name || ' ') > 0"

    def _q(self, query: str) -> str:
        return self.dialect.params(query)

    # -- the verification log (``keyturn._verifications``) -------------------------------

    def record_verifications(
        self, values: list[Any], late: list[LateRow] | None = None
    ) -> None:
        """Insert a batch of blocks, numbered here, and note those holding entries written
        late (one transaction): the batch's entries take the next ids of
        ``verification_ids`` (``TAKE_IDS``), each block the first of its entries'."""
        width = len(BLOCK_COLUMNS)
        counts = values[2::width]
        entries = sum(counts)
        with self._writing() as conn:
            after = int(conn.execute(self._q_take_ids, {"count": entries}).fetchone()[0])
            firsts = list(accumulate(counts, initial=after - entries))
            firsts.pop()  # the id after the batch's
            values[0::width] = firsts
            # Loose entries (``keyturn._verifications._loosened``), found before the
            # engine inserts the blocks (SQLite drops columns of ``values`` as it does).
            heads = values[5::width]
            requests = loose_requests(values, firsts, heads) if "" in heads else []
            self._insert_verifications(conn, values)
            if requests:
                self._insert_requests(conn, requests)
            if late:
                moment = self.dialect.time_in
                self._executemany(conn, self._q(INSERT_LATE), [
                    {"block": firsts[place], "at": moment(datetime.fromtimestamp(at, UTC))}
                    for place, at in late
                ])  # fmt: skip

    def add_verification_shapes(self, shapes: list[ShapeRow]) -> list[int]:
        """Insert new shapes (one transaction); their ids, in order."""
        # The shapes of a batch share a time: converted once.
        times = {at: self.dialect.time_in(datetime.fromtimestamp(at, UTC))
                 for at in {shape[0] for shape in shapes}}  # fmt: skip
        with self._writing() as conn:
            ids = self._shape_ids(conn, len(shapes))
            self._insert_shapes(conn, [
                (id_, times[shape[0]], *shape[1:])
                for id_, shape in zip(ids, shapes, strict=True)
            ])  # fmt: skip
        return ids

    def purge_verifications(self, before: datetime) -> None:
        """Delete the entries decided before ``before`` (walking the ids; by time too when an
        entry dated ahead stopped the walk: ``verification_rows.STOPPED_AHEAD``), then the
        shapes no entry left can name (``verification_rows.SHAPES_OUTLIVE``)."""
        time_in = self.dialect.time_in
        ahead = time_in(datetime.now(UTC) + timedelta(seconds=LATE))
        with self._writing() as conn:
            for purge in (PURGE_VERIFICATIONS, PURGE_LATE_VERIFICATIONS, PURGE_LATE):
                conn.execute(self._q(purge), {"before": time_in(before)})
            if conn.execute(self._q(STOPPED_AHEAD), {"ahead": ahead}).fetchone():
                conn.execute(self._q(PURGE_BY_TIME), {"before": time_in(before)})
            conn.execute(PURGE_REQUESTS)
            conn.execute(
                self._q(PURGE_SHAPES),
                {"before": time_in(before - timedelta(seconds=SHAPES_OUTLIVE))},
            )

    def verifications(
        self, filters: VerificationFilter, *, limit: int = 100, before: int | None = None
    ) -> list[Verification]:
        """Entries newest first, filtered; ``before``: an entry id to page on from. An owner
        is read as keys store it (trimmed), whichever face asks."""
        if filters.owner is not None:
            filters = replace(filters, owner=filters.owner.strip())
        if _holds_nul(filters.key_id, filters.owner, filters.outcome, filters.request_id):
            return []
        with self._reading() as conn:
            return read_page(self.dialect, filters, limit, before,
                             lambda query, params: conn.execute(query, params).fetchall())

    def key_callers(self, key_id: str, since: datetime, limit: int = 20) -> list[Caller]:
        """Who used the key since ``since`` (any outcome): per client, method and path,
        the latest first."""
        if _holds_nul(key_id):
            return []
        return callers(self._key_blocks(KEY_CALLERS, key_id, since), since, limit)

    def key_needs(self, key_id: str, since: datetime, limit: int = 10_000) -> list[Need]:
        """What the key's accepted requests since ``since`` needed, per set of scopes and
        client (``keyturn._suggestions``)."""
        if _holds_nul(key_id):
            return []
        return needs(self._key_blocks(KEY_NEEDS, key_id, since), since, limit)

    def _key_blocks(self, query: str, key_id: str, since: datetime) -> Iterator[Any]:
        params = {"key_id": key_id, "since": since_param(self.dialect, since)}
        return key_blocks(self._q(query), params, self._read_rows)

    def _read_rows(self, query: str, params: dict[str, Any]) -> list[Any]:
        with self._reading() as conn:
            rows: list[Any] = conn.execute(query, params).fetchall()
        return rows
