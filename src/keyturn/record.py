"""What is stored about a key: everything but the key itself.

The record holds the key's hash (for lookup) and its display parts (for people), so a
database dump, a log line or a ``repr`` can never hand out a usable key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from keyturn import _states as states
from keyturn._addresses import AddressSet
from keyturn._states import Status
from keyturn.keys import mask_parts

Refill = Literal["daily", "monthly"]
REFILLS: tuple[Refill, ...] = ("daily", "monthly")


LAZY = frozenset({"created_at", "last_used_at", "metadata"})
"""The fields of a record read on a cache miss made on first read (see ``KeyRecord.rest``):
what people and handlers see of a key, which no decision needs."""


_ALREADY = -math.inf


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class KeyRecord:
    """One key's stored state. Treat it as immutable (use ``evolve``): cached records are
    shared between requests. Not ``frozen`` only because a frozen dataclass takes 5 µs to
    build, which a cache miss cannot afford."""

    id: str
    key_hash: str = field(repr=False)
    prefix: str
    start: str
    end: str
    name: str
    owner: str | None
    scopes: frozenset[str]
    metadata: dict[str, Any]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None = None
    disabled: bool = False
    last_used_at: datetime | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    grace_until: datetime | None = None
    # Metering (see ``_ratelimit.py`` and ``_credits.py``): limits like "100/second"; the
    # uses left (None: unlimited), refilled to ``refill_amount`` each ``refill`` period.
    rate_limits: tuple[str, ...] = ()
    credits: int | None = None
    refill: Refill | None = None
    refill_amount: int | None = None
    refilled_at: datetime | None = None
    # The allowance the key is metered against: the id of the first key of its rotation
    # chain (its own id unless it replaced a key). A key and its successors share it during
    # the grace overlap: rate limits are counted under this id, and credits are spent from
    # the chain's newest key (``KeyStore.spend``), so rotating a key cannot double its
    # allowance.
    allowance_id: str = ""
    # Client addresses the key may be used from (canonical networks; empty: anywhere).
    allowed_ips: tuple[str, ...] = ()
    # The owner's shared limits (``keyturn._owners``), as the verifier's read brings them:
    # its rate limits, and whether it has a credit balance to spend from.
    owner_rate_limits: tuple[str, ...] = ()
    owner_credits: bool = False
    # A canary: a real-looking key that exists only to be noticed. The verifier refuses it
    # exactly as it refuses an unknown key, and every use of it is an event
    # (``key.canary_used``); it is never usable (``usable_until`` is -inf).
    canary: bool = False
    # Roles (``keyturn.roles``): the names the key holds, and the scopes they grant as the
    # key's read brings them (every read joins them, so a change to a role is a change to
    # the row of each key holding it, seen within the propagation bound like any other).
    roles: tuple[str, ...] = ()
    role_scopes: frozenset[str] = frozenset()
    # A usage-aware grace (``KeyAdmin.rotate`` with a quiet period): the rotated key works
    # until it has gone unused for this many seconds, and until ``grace_max`` at the latest;
    # ``grace_until`` is the end as things stand, moved later by the store as uses of the
    # key are flushed (``store.sql.extend_quiet_grace``).
    grace_quiet_seconds: int | None = None
    grace_max: datetime | None = None
    # Unix times computed once (from the state table, ``keyturn._states``), so the hot path
    # compares floats instead of datetimes:
    # ``usable_until`` - refused from then on, for any reason (inf: never; -inf: already);
    # ``live_until`` - until when the ASGI fast path may accept the key from the cache alone:
    # ``usable_until``, or -inf when metered (a metered key must reach its limiter or its
    # credit counter on every request, so it never takes the fast path; a key restricted
    # by address does, and the fast path checks its client's address).
    usable_until: float = field(init=False, repr=False, compare=False)
    live_until: float = field(init=False, repr=False, compare=False)
    # The verifier's accepting decision per tuple of required scopes, built once per kept
    # record and bounded (``Verifier.accept``): a cache hit hands back the same immutable
    # Decision instead of building one each time. Only what keeps a record gives it this
    # memo (``KeyCache.put``, the store's memory of rows read); others hold ``None``. A
    # memo holds decisions that hold the record: a cycle, which only the garbage collector
    # frees, and a record read on a miss that nothing keeps would add one per request.
    accepted: dict[tuple[str, ...], Any] | None = field(init=False, repr=False, compare=False)
    metered: bool = field(init=False, repr=False, compare=False)
    # ``allowed_ips`` ready to test addresses against; ``None``: not restricted.
    allowed: AddressSet | None = field(init=False, repr=False, compare=False)
    # The effective scopes: its own and its roles', which every check of what the key may
    # do reads (the verifier, the admin layer's grant rules, the identity handed to
    # handlers). Made once per record, so a key with roles costs the hot path nothing.
    granted: frozenset[str] = field(init=False, repr=False, compare=False)

    # A record read from a row (``keyturn.store.sql.record_reader``) is made without its
    # display fields (``LAZY``: what no decision reads), and with what they are made from
    # here: the converters and the row's raw values (see ``unpack``). The first
    # read of one of them makes them all (``unpack``); ``None`` once made, or for a
    # record made whole.
    rest: tuple[Any, ...] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.derive()

    def derive(self) -> None:
        """Work out, once per record, what the hot path reads instead of the fields."""
        if not self.allowance_id:
            self.allowance_id = self.id
        self.usable_until = usable = _ALREADY if self.canary else states.usable_until(self)
        self.metered = metered = bool(  # one call of ``bool``: this runs per record built
            self.rate_limits
            or self.credits is not None
            or self.owner_rate_limits
            or self.owner_credits
        )
        self.allowed = AddressSet(self.allowed_ips) if self.allowed_ips else None
        self.live_until = _ALREADY if metered else usable
        role_scopes = self.role_scopes
        self.granted = self.scopes | role_scopes if role_scopes else self.scopes
        self.accepted = None

    def unpack(self) -> None:
        """Make the display fields of a record read on a cache miss from ``rest`` (the
        first read of one of them does, through its property: see ``_made_on_first_read``).
        Another thread may make them meanwhile: both make the same values."""
        rest = self.rest
        if rest is not None:
            moment, loads, created, used, metadata = rest
            self.created_at = moment(created)
            self.last_used_at = None if used is None else moment(used)
            self.metadata = loads(metadata)
            self.rest = None

    @property
    def masked(self) -> str:
        return mask_parts(self.prefix, self.start, self.end)

    def status(self, now: datetime | None = None) -> Status:
        """What the key shows as: the first state of ``keyturn._states.STATES`` it is in,
        or active. A rotated key shows as rotated during its grace period too, while
        the verifier still accepts it (``usable``)."""
        return states.status(self, (now or utcnow()).timestamp())

    def usable(self, now: datetime | None = None) -> bool:
        """Whether the verifier would accept the key now (scopes and metering aside)."""
        return (now or utcnow()).timestamp() < self.usable_until

    def public(self, now: datetime | None = None) -> dict[str, Any]:
        """A JSON-ready view for APIs and the CLI: identity and state, never the hash."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "key": self.masked,
            "prefix": self.prefix,
            "scopes": sorted(self.scopes),
            "roles": list(self.roles),
            "effective_scopes": sorted(self.granted),
            "metadata": self.metadata,
            "status": self.status(now),
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "disabled": self.disabled,
            "canary": self.canary,
            "last_used_at": iso(self.last_used_at),
            "replaced_by": self.replaced_by,
            "replaces": self.replaces,
            "grace_until": iso(self.grace_until),
            "grace_until_quiet_seconds": self.grace_quiet_seconds,
            "grace_max": iso(self.grace_max),
            "rate_limits": list(self.rate_limits),
            "credits": self.credits,
            "refill": (
                {"interval": self.refill, "amount": self.refill_amount} if self.refill else None
            ),
            "allowed_ips": list(self.allowed_ips),
        }

    def evolve(self, **changes: Any) -> KeyRecord:
        return replace(self, **changes)


def _made_on_first_read(name: str) -> property:
    """The property a ``LAZY`` field is read through: the value its slot holds, made by
    ``unpack`` on the first read of a record read on a cache miss; else, for a slot never
    set, a true AttributeError.

    A property on these fields, rather than ``__getattr__`` on the class: a class
    with ``__getattr__`` has every attribute read take the generic lookup (the interpreter
    does not specialise them), which cost a cached verify its four reads of the record
    (1,100 instructions, 7% of it) and a cache miss every read of its fields."""
    slot = KeyRecord.__dict__[name]  # the slot's own descriptor, which holds the value
    get = slot.__get__

    def read(record: KeyRecord) -> Any:
        try:
            return get(record)
        except AttributeError:
            record.unpack()
            return get(record)

    return property(read, slot.__set__, doc=f"The record's {name} (see ``LAZY``).")


for _name in LAZY:
    setattr(KeyRecord, _name, _made_on_first_read(_name))
del _name
