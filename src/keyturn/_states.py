"""The states a key can be in, in the one order that decides between them.

A key can be revoked, disabled, rotated and expired all at once; what it *is* — the status
people see, the outcome a request with it gets, the filter ``keys list --status`` applies —
is the first of these that holds, in this order. The order is written here once, as a
table (as h11 keeps its state machine in one dict), and everything else derives from it:
the verifier's refusals (``Verifier.decide``), ``KeyRecord.status``, the SQL filters of
``list_keys``, and the precomputed ``usable_until`` that lets the hot path compare one float.

Each state says two things about a record, as Unix times:

- ``marked`` - from when the key shows this status;
- ``refused`` - from when the verifier refuses the key for this reason.

They differ only for rotation: a rotated key *shows* as rotated at once (``keys list
--status rotated`` finds it), but is still accepted until its grace period ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from keyturn.record import KeyRecord

Status = Literal["active", "revoked", "disabled", "rotated", "expired"]
NEVER = math.inf
ALREADY = -math.inf


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True, slots=True)
class State:
    """One row of the table."""

    name: Status
    outcome: str  # the catalogue code of a request refused for this reason
    marked: Callable[[KeyRecord], float]  # shows this status from then on
    # Refused for this reason: from the time this field of the record holds (``timed``),
    # or at once while it is set (a time, or true). A field's name rather than a function,
    # so that ``usable_until``, which runs on every record built, reads the fields without
    # a call for each.
    refused_by: str
    timed: bool
    sql: str  # the column condition for "marked", with :now for the current time
    detail: Callable[[KeyRecord], str]  # the refusal's sentence

    def refused(self, record: KeyRecord) -> float:
        """From when the verifier refuses ``record`` for this reason (``NEVER``: not)."""
        value = getattr(record, self.refused_by)
        if not value:  # None, or false
            return NEVER
        return value.timestamp() if self.timed else ALREADY


def _revoked(record: KeyRecord) -> float:
    return ALREADY if record.revoked_at is not None else NEVER


def _disabled(record: KeyRecord) -> float:
    return ALREADY if record.disabled else NEVER


def _replaced(record: KeyRecord) -> float:
    return ALREADY if record.replaced_by is not None else NEVER


def _why_grace_ended(record: KeyRecord) -> str:
    """For a usage-aware grace, which of its two ends came (``KeyAdmin.rotate``)."""
    if record.grace_quiet_seconds is None:
        return ""
    if record.grace_max is not None and record.grace_until == record.grace_max:
        return ", the longest it could last while the key was still in use"
    return f", after {record.grace_quiet_seconds} seconds without a use"


def _expires(record: KeyRecord) -> float:
    expires = record.expires_at
    return NEVER if expires is None else expires.timestamp()


STATES: tuple[State, ...] = (
    State(
        "revoked",
        "key_revoked",
        _revoked,
        "revoked_at",
        False,
        "revoked_at IS NOT NULL",
        lambda r: f"the key was revoked on {_fmt(r.revoked_at)}",  # type: ignore[arg-type]
    ),
    State(
        "disabled",
        "key_disabled",
        _disabled,
        "disabled",
        False,
        "disabled",
        lambda r: "the key is disabled",
    ),
    State(
        "rotated",
        "key_rotated",
        _replaced,
        "grace_until",
        True,
        "replaced_by IS NOT NULL",
        lambda r: "the key was replaced by a rotated key; its grace period ended on "
        f"{_fmt(r.grace_until)}{_why_grace_ended(r)}",  # type: ignore[arg-type]
    ),
    State(
        "expired",
        "key_expired",
        _expires,
        "expires_at",
        True,
        "(expires_at IS NOT NULL AND expires_at <= :now)",
        lambda r: f"the key expired on {_fmt(r.expires_at)}",  # type: ignore[arg-type]
    ),
)
"""In order: the first state that holds is the key's."""

ACTIVE: Status = "active"
STATUSES: tuple[Status, ...] = (ACTIVE, *(s.name for s in STATES))
BY_NAME = {s.name: s for s in STATES}


_REFUSED_BY = tuple((state.refused_by, state.timed) for state in STATES)


def usable_until(record: KeyRecord) -> float:
    """The Unix time from which the verifier refuses the key (``-inf``: already): the
    earliest of the states' ``refused``. Runs on every record built (each cache miss that
    reads a row for the first time): a plain loop over the fields, no call per state."""
    until = NEVER
    for field, timed in _REFUSED_BY:
        value = getattr(record, field)
        if not value:  # None, or false
            continue
        if not timed:
            return ALREADY
        moment = value.timestamp()
        if moment < until:
            until = moment
    return until


def refusal(record: KeyRecord, now: float) -> State | None:
    """The state the verifier refuses the key for at ``now``, or ``None`` if it accepts."""
    for state in STATES:
        if now >= state.refused(record):
            return state
    return None


def status(record: KeyRecord, now: float) -> Status:
    """What the key shows as at ``now``: the first marked state, or active."""
    for state in STATES:
        if now >= state.marked(record):
            return state.name
    return ACTIVE


def status_sql(name: Status) -> str:
    """The SQL condition for ``name``: that state's own condition and none of the earlier
    ones (active: none at all)."""
    conditions: list[str] = []
    for state in STATES:
        if state.name == name:
            conditions.append(state.sql)
            break
        # Every condition is guarded with IS [NOT] NULL, so its negation is never NULL.
        conditions.append(f"NOT ({state.sql})")
    return " AND ".join(conditions)
