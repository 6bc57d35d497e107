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
    refused: Callable[[KeyRecord], float]  # refused for this reason from then on
    sql: str  # the column condition for "marked", with :now for the current time
    detail: Callable[[KeyRecord], str]  # the refusal's sentence


def _revoked(record: KeyRecord) -> float:
    return ALREADY if record.revoked_at is not None else NEVER


def _disabled(record: KeyRecord) -> float:
    return ALREADY if record.disabled else NEVER


def _replaced(record: KeyRecord) -> float:
    return ALREADY if record.replaced_by is not None else NEVER


def _grace_over(record: KeyRecord) -> float:
    grace = record.grace_until  # ``_at``, inlined: this runs on every record built
    return NEVER if grace is None else grace.timestamp()


def _why_grace_ended(record: KeyRecord) -> str:
    """For a usage-aware grace, which of its two ends came (``KeyAdmin.rotate``)."""
    if record.grace_quiet_seconds is None:
        return ""
    if record.grace_max is not None and record.grace_until == record.grace_max:
        return ", the longest it could last while the key was still in use"
    return f", after {record.grace_quiet_seconds} seconds without a use"


def _expires(record: KeyRecord) -> float:
    expires = record.expires_at  # ``_at``, inlined
    return NEVER if expires is None else expires.timestamp()


STATES: tuple[State, ...] = (
    State(
        "revoked",
        "key_revoked",
        _revoked,
        _revoked,
        "revoked_at IS NOT NULL",
        lambda r: f"the key was revoked on {_fmt(r.revoked_at)}",  # type: ignore[arg-type]
    ),
    State(
        "disabled",
        "key_disabled",
        _disabled,
        _disabled,
        "disabled",
        lambda r: "the key is disabled",
    ),
    State(
        "rotated",
        "key_rotated",
        _replaced,
        _grace_over,
        "replaced_by IS NOT NULL",
        lambda r: "the key was replaced by a rotated key; its grace period ended on "
        f"{_fmt(r.grace_until)}{_why_grace_ended(r)}",  # type: ignore[arg-type]
    ),
    State(
        "expired",
        "key_expired",
        _expires,
        _expires,
        "(expires_at IS NOT NULL AND expires_at <= :now)",
        lambda r: f"the key expired on {_fmt(r.expires_at)}",  # type: ignore[arg-type]
    ),
)
"""In order: the first state that holds is the key's."""

ACTIVE: Status = "active"
STATUSES: tuple[Status, ...] = (ACTIVE, *(s.name for s in STATES))
BY_NAME = {s.name: s for s in STATES}


_REFUSED = tuple(state.refused for state in STATES)


def usable_until(record: KeyRecord) -> float:
    """The Unix time from which the verifier refuses the key (``-inf``: already). Runs on
    every cache miss: a plain loop, cheaper than ``min`` over a generator."""
    until = NEVER
    for refused in _REFUSED:
        moment = refused(record)
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
