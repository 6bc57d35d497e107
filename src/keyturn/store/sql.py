"""The SQL both engines share, and the few ways in which their dialects differ.

Statements are written once, with ``:name`` parameters; a ``Dialect`` says how the engine
spells parameters, how it stores times and JSON, and the two functions whose names differ.
SQLite keeps times as Unix seconds (REAL) and JSON as text; PostgreSQL as ``timestamptz``
and ``jsonb``, so that a DBA reading the tables sees what they are.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from keyturn import _states as states
from keyturn.record import KeyRecord
from keyturn.store.base import KeyFilter

COLUMN_NAMES = (
    "id",
    "key_hash",
    "prefix",
    "start",
    "end",
    "name",
    "owner",
    "scopes",
    "metadata",
    "created_at",
    "expires_at",
    "revoked_at",
    "disabled",
    "last_used_at",
    "replaced_by",
    "replaces",
    "grace_until",
    "rate_limits",
    "credits",
    "refill",
    "refill_amount",
    "refilled_at",
    "allowance_id",
    "allowed_ips",
    "canary",
    "roles",
    "grace_quiet_seconds",
    "grace_max",
)
COLUMNS = ", ".join(f'"{c}"' for c in COLUMN_NAMES)
TIME_FIELDS = frozenset(
    {
        "created_at",
        "expires_at",
        "revoked_at",
        "last_used_at",
        "grace_until",
        "refilled_at",
        "grace_max",
    }
)
UPDATABLE = frozenset(
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
        "rate_limits",
        "credits",
        "refill",
        "refill_amount",
        "refilled_at",
        "allowed_ips",
        "roles",
    }
)


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Dialect:
    name: str
    # Python -> database and back, for time and JSON columns.
    time_in: Callable[[datetime | None], Any]
    time_out: Callable[[Any], datetime | None]
    json_in: Callable[[Any], Any]
    json_out: Callable[[Any], Any]
    # ``:name`` parameters -> the driver's placeholders.
    params: Callable[[str], str] = _same
    like: str = "LIKE"  # case-insensitive substring search (SQLite's LIKE is, PG's is not)
    greatest: str = "MAX"  # the larger of two values
    least: str = "MIN"  # the smaller of two values
    plus_seconds: str = "({} + {})"  # a time column plus a number of seconds
    lock: str = ""  # appended to a SELECT to lock its rows until the transaction ends
    share: str = ""  # appended to a SELECT to keep its rows from changing until the end
    find: str = "instr"  # the position of a text in another (0: not in it)
    # An id among those a subquery returns, in a form an index on the id serves beside
    # another index under ``OR`` (PostgreSQL plans ``IN (subquery)`` under ``OR`` as a
    # filter on every row it reads, but ``= ANY(ARRAY(...))`` as an index condition).
    among: str = "IN ({})"
    join_text: str = "group_concat"  # an aggregate joining texts with a separator
    # Statements (with ``:owner``) holding an owner's limits still until the transaction
    # ends: shared by a write that puts a key under the owner, exclusive by a change to
    # the limits (``OWNER_LIMITS``). None for SQLite, whose writes are one at a time.
    owner_share: str = ""
    owner_lock: str = ""
    # A time column's value that is not NULL -> datetime: ``time_out`` without its test
    # for NULL (the record reader makes it).
    time_of: Callable[[Any], datetime] = _same


def _seconds(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _moment(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _utc(value: float) -> datetime:
    # The time zone given by position: ``partial(datetime.fromtimestamp, tz=UTC)`` has no
    # frame but passes a keyword, which takes the call through a dict (a third dearer).
    return datetime.fromtimestamp(value, UTC)


def _json_text(value: str) -> Any:
    # On every cache miss: empty metadata skips the JSON parser.
    return json.loads(value) if value != "{}" else {}


SQLITE = Dialect(
    "sqlite", _seconds, _moment, json.dumps, _json_text,
    time_of=_utc,
)  # fmt: skip


def role_scopes(dialect: Dialect) -> str:
    """The scopes of the roles a key holds, as one space-separated text (NULL: it holds
    none), for the key's row read in the same statement. The roles table is small (roles
    are named by people), and a key without roles skips it."""
    return (
        "CASE WHEN keys.roles = '' THEN NULL ELSE "
        f"(SELECT {dialect.join_text}(r.scopes, ' ') FROM roles r "
        f"WHERE {dialect.find}(' ' || keys.roles || ' ', ' ' || r.name || ' ') > 0) END"
    )


HEAD = (
    "key_hash", "id", "prefix", "start", "end", "name", "owner", "scopes", "metadata",
    "allowance_id", "created_at", "expires_at", "last_used_at",
)  # fmt: skip
"""The columns every key has a value in (or most keys: an expiry, a last use), first in
what a read of a key selects."""
TAIL = (
    "disabled", "replaced_by", "replaces", "rate_limits", "credits", "refill",
    "refill_amount", "allowed_ips", "canary", "roles", "grace_quiet_seconds", "role_scopes",
    "owner_rate_limits", "owner_credits", "revoked_at", "grace_until", "refilled_at",
    "grace_max",
)  # fmt: skip
"""Then the values most keys leave empty (rotation, metering, restrictions, roles, the
owner's shared limits as the key's row keeps them: ``OWNER_LIMITS``; ``role_scopes`` is
the scopes of the key's roles, ``role_scopes()``): among many keys, few different
tails, so a reader converts each tail it sees once (``packed_reader``)."""


def _read_as(dialect: Dialect, name: str) -> str:
    return role_scopes(dialect) if name == "role_scopes" else f'"{name}"'


def selected(dialect: Dialect) -> str:
    """What every read of a key selects: ``HEAD`` then ``TAIL`` (``record_reader``'s
    order)."""
    return ", ".join(_read_as(dialect, name) for name in HEAD + TAIL)


SEPARATOR = "\x1f"
"""Between the values ``packed_by_hash`` packs: a control character, which no value the
admin layer writes holds (names and owners are printable text, metadata is JSON, the rest
are tokens, ids and numbers). A value that holds it all the same (a row written by other
means) shows as a wrong count of values, and the row is read the general way."""
TAIL_MARK = "\x1e"
"""Between ``packed_by_hash``'s head and tail (another control character). A value that
holds it puts the first mark early, if it is in the head: the head then counts too few
values, or the tail (which holds the head's later separators besides its own) too many."""
_FLAGS = ("disabled", "canary", "owner_credits")


_TIME_SCALE = 1 << 22
"""A stored time times this is a whole number: the scale of the times ``packed_by_hash``
writes as integers. A double of at least 2**30 (a time from 2004 on) has no bit finer than
2**-22, and scaling by a power of two is exact, so the integer is the time to the bit
(``packed_time`` divides it back exactly); below 2**41 (the year 71,700) it fits SQLite's
64 bits."""


def _packed_time(column: str) -> str:
    # NULL stays NULL (an empty text), tested first: most times are NULL; a time the
    # integer could not hold exactly becomes a SEPARATOR, whose extra value sends the row
    # to the general read.
    return (
        f'CASE WHEN "{column}" IS NULL THEN NULL '
        f'WHEN "{column}" >= {1 << 30} AND "{column}" < {1 << 41} '
        f'THEN CAST("{column}" * {_TIME_SCALE} AS INTEGER) '
        f"ELSE char({ord(SEPARATOR)}) END"
    )


def packed_time(text: str) -> datetime | None:
    """A time as ``packed_by_hash`` writes it -> the aware datetime ``_utc`` makes of the
    stored REAL (the integer over the scale is that REAL exactly); empty: NULL."""
    return datetime.fromtimestamp(int(text) / _TIME_SCALE, UTC) if text else None


def _packed(dialect: Dialect, name: str) -> str:
    if name in TIME_FIELDS:
        return _packed_time(name)
    if name == "allowance_id":  # most keys' own id, which the record then takes
        return 'nullif("allowance_id", "id")'
    return f'nullif("{name}", 0)' if name in _FLAGS else _read_as(dialect, name)


def packed_by_hash(dialect: Dialect) -> str:
    """The cache-miss read on SQLite: ``by_hash``'s values joined into one text (``printf``,
    in one pass), the head's and the tail's by ``SEPARATOR``, with ``TAIL_MARK`` between
    them; without the key hash (the reader is given the one looked up), and the allowance
    id empty when it is the key's own (which a record then takes: ``KeyRecord.derive``);
    named short (an unnamed column is named by its expression, which the driver
    decodes on every read), the times as whole numbers of 2**-22 seconds (``_packed_time``:
    exact, where a REAL as text would be rounded to 15 digits).

    A column costs the driver a description tuple, a name, an object and a release of the
    GIL per read (1,600 instructions each, 30 of them: more than the B-tree lookup itself);
    the text costs SQLite about what the columns would, and the reader one ``str.split`` of
    the head, and of the tail only the first time it sees it (a JSON array costs SQLite as
    much, and the C JSON scanner six times what the split does). A NULL becomes an empty
    text, which the record reader takes as NULL; a false flag is made NULL first, so that
    it too reads as false."""
    head = ", ".join(_packed(dialect, name) for name in HEAD[1:])  # the hash is known
    tail = ", ".join(_packed(dialect, name) for name in TAIL)
    fields = (
        SEPARATOR.join(["%s"] * (len(HEAD) - 1)) + TAIL_MARK + SEPARATOR.join(["%s"] * len(TAIL))
    )
    return (
        f"SELECT printf('{fields}', {head}, {tail}) AS packed "
        "FROM keys WHERE key_hash = :key_hash"
    )


_NONE: frozenset[str] = frozenset()
_blank = object.__new__
SCOPE_SETS_KEPT = 1024
TAILS_KEPT = 1024


def _record_maker(
    moment: Callable[[Any], datetime | None], loads: Callable[[Any], Any]
) -> tuple[
    Callable[..., KeyRecord],
    dict[Hashable, tuple[Any, ...]],
    Callable[[Hashable, Sequence[Any]], tuple[Any, ...]],
]:
    """``make(key_hash, head, fields)``: the record of a key's hash, the rest of its row's
    ``HEAD`` values and its ``TAIL``'s fields: those of a tail seen before, in ``tails``
    by the tail as read, else ``fields_of(tail as read, its values)``; the times made by
    ``moment``.

    This runs on every cache miss whose row was not read before: positional arguments,
    scopes split on spaces (a scope token has none, RFC 6750 §3), no per-field dispatch,
    and a time column that is NULL (most are) costs a test, not a call."""
    # Scope sets by their text, shared by the records of keys with the same scopes (most
    # keys of a deployment hold one of a few): a frozenset costs a miss 4,000 instructions.
    sets: dict[str, frozenset[str]] = {}

    def scope_set(text: str) -> frozenset[str]:
        found = sets.get(text)
        if found is None:
            found = frozenset(text.split())
            if len(sets) < SCOPE_SETS_KEPT:
                sets[text] = found
        return found

    def tail(
        disabled: Any, replaced_by: str | None, replaces: str | None, rate_limits: str,
        credits: int | str | None, refill: Any, refill_amount: int | str | None, ips: str,
        canary: Any, roles: str, quiet: int | str | None, role_scopes: str | None,
        owner_rate_limits: str, owner_credits: Any, revoked: Any, grace: Any,
        refilled: Any, grace_max: Any,
    ) -> tuple[Any, ...]:  # fmt: skip
        # The record's fields in ``TAIL``'s order: immutable values, which records share.
        return (
            bool(disabled),
            replaced_by or None,
            replaces or None,
            tuple(rate_limits.split(";")) if rate_limits else (),
            None if credits is None or credits == "" else int(credits),
            refill or None,
            None if refill_amount is None or refill_amount == "" else int(refill_amount),
            tuple(ips.split()) if ips else (),
            bool(canary),
            tuple(roles.split()) if roles else (),
            None if quiet is None or quiet == "" else int(quiet),
            (sets.get(role_scopes) or scope_set(role_scopes)) if role_scopes else _NONE,
            tuple(owner_rate_limits.split(";")) if owner_rate_limits else (),
            bool(owner_credits),
            None if revoked is None or revoked == "" else moment(revoked),
            None if grace is None or grace == "" else moment(grace),
            None if refilled is None or refilled == "" else moment(refilled),
            None if grace_max is None or grace_max == "" else moment(grace_max),
        )

    def make(key_hash: str, head: Sequence[Any], fields: tuple[Any, ...]) -> KeyRecord:
        # Made without ``__init__``: the fields a decision reads set here, the display
        # fields made on their first read (``KeyRecord.rest``), then what the hot path
        # reads worked out (``KeyRecord.derive``). The head's values unpacked here, not
        # passed one by one (``*`` builds a tuple of them first).
        id_, prefix, start, end, name, owner, scopes, metadata, allowance, created, expires, \
            used = head
        record = _blank(KeyRecord)
        record.id = id_
        record.key_hash = key_hash
        record.prefix = prefix
        record.start = start
        record.end = end
        record.name = name
        record.owner = owner or None
        record.scopes = sets.get(scopes) or scope_set(scopes)
        record.allowance_id = allowance
        record.expires_at = None if expires is None or expires == "" else moment(expires)
        (
            record.disabled, record.replaced_by, record.replaces, record.rate_limits,
            record.credits, record.refill, record.refill_amount, record.allowed_ips,
            record.canary, record.roles, record.grace_quiet_seconds, record.role_scopes,
            record.owner_rate_limits, record.owner_credits, record.revoked_at,
            record.grace_until, record.refilled_at, record.grace_max,
        ) = fields  # fmt: skip
        record.rest = (moment, loads, created, used, metadata)
        record.derive()
        return record

    # Tails' fields by the tail as read (its text, or its values), at most ``TAILS_KEPT``
    # (forgotten together when full): most keys share a few tails, each converted once,
    # which saves a miss 4,000 instructions. Keys with credits make a new tail at each
    # spend, so a memo that stopped taking tails when full would soon hold only old ones.
    tails: dict[Hashable, tuple[Any, ...]] = {}

    def fields_of(known: Hashable, values: Sequence[Any]) -> tuple[Any, ...]:
        fields = tail(*values)
        if len(tails) >= TAILS_KEPT:
            tails.clear()
        tails[known] = fields
        return fields

    return make, tails, fields_of


def record_reader(dialect: Dialect) -> Callable[..., KeyRecord]:
    """A row's values (in ``selected``'s order) -> record, with the dialect's converters:
    ``read(*row)``."""
    make, tails, fields_of = _record_maker(dialect.time_of, dialect.json_out)
    head = len(HEAD)

    def read(*row: Any) -> KeyRecord:
        rest = row[head:]
        return make(row[0], row[1:head], tails.get(rest) or fields_of(rest, rest))

    return read


def packed_reader(dialect: Dialect) -> Callable[[str, str], KeyRecord | None]:
    """``packed_by_hash``'s text of the row read under a key hash -> record (``read(key_hash,
    text)``), or ``None`` if the text cannot hold the row (a value holding a separator, a
    time as ``_packed_time`` could not write it): the row is then read the general way. A
    tail seen before is neither split nor converted."""
    make, tails, fields_of = _record_maker(packed_time, dialect.json_out)
    head_length, tail_length = len(HEAD) - 1, len(TAIL)

    def read(key_hash: str, text: str) -> KeyRecord | None:
        head, _, rest = text.partition(TAIL_MARK)
        values = head.split(SEPARATOR)
        if len(values) != head_length:
            return None
        fields = tails.get(rest)
        if fields is None:
            raw = rest.split(SEPARATOR)
            if len(raw) != tail_length:
                return None
            fields = fields_of(rest, raw)
        return make(key_hash, values, fields)

    return read


def column_value(dialect: Dialect, name: str, value: Any) -> Any:
    """A record field's value as its column stores it."""
    if name in TIME_FIELDS:
        return dialect.time_in(value)
    if name == "scopes":
        return " ".join(sorted(value))
    if name == "metadata":
        return dialect.json_in(value)
    if name == "rate_limits":
        return ";".join(value)
    if name == "allowed_ips" or name == "roles":
        return " ".join(value)
    if name == "disabled" or name == "canary":
        return bool(value)
    return value


def record_params(dialect: Dialect, record: KeyRecord) -> dict[str, Any]:
    return {name: column_value(dialect, name, getattr(record, name)) for name in COLUMN_NAMES}


# An owner's shared limits (``keyturn._owners``) are kept on each of its keys' rows, so the
# verifier's read is one row of one table: the owner's rate limits, and whether it has a
# credit balance (spent from the owner's row). Set from the owners table whenever a key is
# written under an owner (created, or moved to another owner) and by each change to the
# owner's limits (``SQLStore.put_owner``), in the same transaction; on PostgreSQL the two
# kinds of write exclude each other through ``Dialect.owner_share`` and ``owner_lock``, so
# a key created while its owner's limits change gets the new limits. A change to them is
# thus a change to the rows of the owner's keys, seen by every instance within the
# propagation bound, as a change to a key is.
OWNER_LIMITS = {
    "owner_rate_limits": (
        "COALESCE((SELECT o.rate_limits FROM owners o WHERE o.owner = :owner), '')"
    ),
    "owner_credits": (
        "EXISTS (SELECT 1 FROM owners o WHERE o.owner = :owner AND o.credits IS NOT NULL)"
    ),
}
INSERT_KEY = (
    f"INSERT INTO keys ({COLUMNS}, {', '.join(OWNER_LIMITS)}) "
    f"VALUES ({', '.join(':' + c for c in COLUMN_NAMES)}, {', '.join(OWNER_LIMITS.values())})"
)
INSERT_AUDIT = (
    "INSERT INTO audit (at, actor, action, key_id, details) "
    "VALUES (:at, :actor, :action, :key_id, :details)"
)


def by_hash(dialect: Dialect) -> str:
    """The verifier's read: one row of one table, by its unique index."""
    return f"SELECT {selected(dialect)} FROM keys WHERE key_hash = :key_hash"


def by_id(dialect: Dialect) -> str:
    return f"SELECT {selected(dialect)} FROM keys WHERE id = :id"


def audit_details(changes: Mapping[str, Any]) -> dict[str, Any]:
    def show(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, frozenset | set | tuple):
            return sorted(value)
        return value

    return {k: show(v) for k, v in changes.items()}




def list_query(
    dialect: Dialect, filters: KeyFilter, limit: int, after: str | None
) -> tuple[str, dict[str, Any]]:
    where: list[str] = ["1 = 1"]
    params: dict[str, Any] = {"now": dialect.time_in(datetime.now(UTC)), "limit": limit}
    if filters.owner is not None:
        where.append("owner = :owner")
        params["owner"] = filters.owner
    if filters.prefix is not None:
        where.append("prefix = :prefix")
        params["prefix"] = filters.prefix
    if filters.status is not None:
        where.append(f"({states.status_sql(filters.status)})")
    if filters.canary is not None:
        where.append("canary = :canary")
        params["canary"] = filters.canary
    if filters.role is not None:
        where.append(f"{dialect.find}(' ' || roles || ' ', :role_word) > 0")
        params["role_word"] = f" {filters.role} "
    if filters.search:
        like = dialect.like
        where.append(
            f"(name {like} :search ESCAPE '\\' OR owner {like} :search ESCAPE '\\' OR id = :exact)"
        )
        escaped = filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params["search"] = f"%{escaped}%"
        params["exact"] = filters.search
    if filters.expiring_before is not None:
        where.append("expires_at IS NOT NULL AND expires_at <= :expiring")
        params["expiring"] = dialect.time_in(filters.expiring_before)
    if after is not None:
        where.append("(created_at, id) < (SELECT created_at, id FROM keys WHERE id = :after)")
        params["after"] = after
    sql = (
        f"SELECT {selected(dialect)} FROM keys WHERE {' AND '.join(where)} "
        "ORDER BY created_at DESC, id DESC LIMIT :limit"
    )
    return sql, params


def audit_query(
    key_id: str | None, actor: str | None, action: str | None, limit: int, before: int | None
) -> tuple[str, dict[str, Any]]:
    where: list[str] = ["1 = 1"]
    params: dict[str, Any] = {"limit": limit}
    for name, value in (("key_id", key_id), ("actor", actor), ("action", action)):
        if value is not None:
            where.append(f"{name} = :{name}")
            params[name] = value
    if before is not None:
        where.append("id < :before")
        params["before"] = before
    sql = (
        f"SELECT id, at, actor, action, key_id, details FROM audit "
        f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit"
    )
    return sql, params


def update_query(
    dialect: Dialect, key_id: str, changes: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """``UPDATE`` of the given fields, returning the changed row."""
    sets = ", ".join(f'"{name}" = :{name}' for name in changes)
    if "owner" in changes:  # the new owner's limits come with it
        sets += "".join(f", {column} = {value}" for column, value in OWNER_LIMITS.items())
    params = {name: column_value(dialect, name, value) for name, value in changes.items()}
    params["key_id"] = key_id
    return f"UPDATE keys SET {sets} WHERE id = :key_id RETURNING {selected(dialect)}", params


# A key is replaced once, and only while it is not revoked: the condition makes the store
# itself refuse a second successor, whatever its caller checked.
def rotate_query(dialect: Dialect) -> str:
    return (
        "UPDATE keys SET replaced_by = :replaced_by, grace_until = :grace_until, "
        "grace_quiet_seconds = :grace_quiet_seconds, grace_max = :grace_max "
        "WHERE id = :id AND replaced_by IS NULL AND revoked_at IS NULL "
        f"RETURNING {selected(dialect)}"
    )


def extend_quiet_grace(dialect: Dialect) -> str:
    """``UPDATE`` moving the end of every usage-aware grace (``KeyAdmin.rotate`` with a
    quiet period) to the key's last use plus its quiet period, at most its ``grace_max``,
    returning the hashes of the keys it moved.

    Run after ``touch`` wrote the last-used times. Only a grace still running (``:now``)
    and a use made before its end move it, and only ever later: a grace that has ended
    stays ended (a late flush does not revive the key), and concurrent flushes of several
    instances cannot move it back. The partial index ``keys_quiet_grace`` keeps it to the
    keys in such a grace."""
    quiet_over = dialect.plus_seconds.format("last_used_at", "grace_quiet_seconds")
    end = f"{dialect.least}(grace_max, {quiet_over})"
    return (
        f"UPDATE keys SET grace_until = {end} "
        "WHERE grace_quiet_seconds IS NOT NULL AND grace_until > :now "
        f"AND last_used_at < grace_until AND {end} > grace_until RETURNING key_hash"
    )


def touch_query(dialect: Dialect) -> str:
    return (
        f"UPDATE keys SET last_used_at = {dialect.greatest}(COALESCE(last_used_at, :at), :at) "
        "WHERE id = :id"
    )


# A refill is due when the key was last refilled before the current period began.
_DUE = (
    "(refill = 'daily' AND COALESCE(refilled_at, created_at) < :day "
    "OR refill = 'monthly' AND COALESCE(refilled_at, created_at) < :month)"
)
# The credits of an allowance are the counter of the newest key of its rotation chain (the
# one not replaced): every key of the chain spends from that row, so a key and its
# successor share one count during the grace overlap, whatever record a cache holds.
_HEAD = "allowance_id = :id AND replaced_by IS NULL"
# One statement, atomic per row in both engines: refill if due, then take one credit, or
# match no row when none is left. Concurrent spenders queue on the row lock (PostgreSQL) or
# the database write lock (SQLite) and each re-checks ``credits > 0`` after waiting. (A
# spend that waited on a rotation of the head matches no row on PostgreSQL, whose
# statement does not see the successor inserted meanwhile: it is refused, never free.)
SPEND = (
    f"UPDATE keys SET "
    f"credits = CASE WHEN {_DUE} THEN refill_amount - 1 ELSE credits - 1 END, "
    f"refilled_at = CASE WHEN {_DUE} THEN :now ELSE refilled_at END "
    f"WHERE {_HEAD} AND credits IS NOT NULL "
    f"AND (credits > 0 OR ({_DUE} AND refill_amount > 0)) "
    f"RETURNING credits"
)

# What SPEND would find, without spending: a check is not a use.
CREDITS_LEFT = (
    f"SELECT CASE WHEN {_DUE} THEN refill_amount ELSE credits END FROM keys WHERE {_HEAD}"
)

# The fields of a key's allowance; a change to them is made to every key that shares it.
ALLOWANCE_FIELDS = frozenset({"rate_limits", "credits", "refill", "refill_amount", "refilled_at"})


def allowance_query(
    dialect: Dialect, record: KeyRecord, changes: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """``UPDATE`` of the allowance fields among ``changes`` on the other keys that share
    ``record``'s allowance (its rotation chain), returning their hashes."""
    fields = sorted(ALLOWANCE_FIELDS & set(changes))
    sets = ", ".join(f'"{name}" = :{name}' for name in fields)
    params = {name: column_value(dialect, name, changes[name]) for name in fields}
    params.update(allowance_id=record.allowance_id, key_id=record.id)
    return (
        f"UPDATE keys SET {sets} WHERE allowance_id = :allowance_id AND id <> :key_id "
        "RETURNING key_hash",
        params,
    )


COUNT_USAGE = (
    "INSERT INTO usage (key_id, day, outcome, count) VALUES (:key_id, :day, :outcome, :count) "
    "ON CONFLICT (key_id, day, outcome) DO UPDATE SET count = usage.count + excluded.count"
)
INSERT_PORTAL_LINK = (
    "INSERT INTO portal_links (link_hash, owner, policy, return_url, created_by, expires_at) "
    "VALUES (:link_hash, :owner, :policy, :return_url, :created_by, :expires_at)"
)
PURGE_PORTAL_LINKS = "DELETE FROM portal_links WHERE expires_at < :before"
REDEEM_PORTAL_LINK = (
    "UPDATE portal_links SET used_at = :now "
    "WHERE link_hash = :link_hash AND used_at IS NULL AND expires_at > :now "
    "RETURNING owner, policy, expires_at, return_url, created_by"
)
USAGE_BY_OUTCOME = (
    "SELECT outcome, SUM(count) FROM usage WHERE key_id = :key_id AND day >= :since "
    "GROUP BY outcome"
)
