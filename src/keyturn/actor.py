"""Who makes a change, and the grant rules: what an actor may hand out and to which keys.

Every admin operation (``keyturn.admin``) is made by an ``Actor``: the operator of the
deployment (the CLI, the library, the bootstrap; it may do anything), or a key acting
through the admin API or the dashboard. A key acts within what it holds itself, on four
axes:

- **scopes** - it grants only scopes it holds, and changes only keys whose scopes it holds
  (without the second half a ``keys:write`` key could revoke or rotate the root key); a
  key's scopes are its effective ones, its own and its roles' (``keyturn.roles``), on both
  sides;
- **lifetime** - no key it creates, changes, rotates or re-enables may live longer than
  itself, so it can neither extend its own life nor mint a key that outlives it;
- **allowance** - no such key may be looser than itself in credits, refill or rate limits;
- **addresses** - a key restricted to some client addresses (``allowed_ips``) gives no
  key a wider list, nor none at all (which would let the key be used from anywhere);
- **shared limits** - a key of an owner with shared limits (``keyturn._owners``) is bound
  by them too, so every key it makes, moves or rotates stays that owner's and counts
  against the same limits (``bound_owner``), and it loosens none of them: otherwise a
  ``keys:write`` key whose owner had 3 credits left could mint a key for no owner and
  make unlimited requests with it;
- **operation scope** - each operation needs its scope (``keys:write``, ``keys:read``,
  ``audit:read``).

An owner acting through the customer portal (``keyturn.owner_policy``) is the same actor
with three more fields: ``owner`` confines it to that owner's keys (any other key is, to it,
a key that does not exist: ``KeyNotFound``, so neither ids nor counts leak), ``operations``
holds the operation scopes apart from the scopes it may grant (so a portal that may do
``keys:write`` cannot hand ``keys:write`` out), and ``max_keys`` bounds how many working
keys the owner holds. Its ``max_lifetime`` bounds every key it makes or changes, counted
from the moment of the change (``None`` for a key-actor: its own expiry bounds it instead).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from keyturn.errors import KeyNotFound, NotPermitted, ScopeNotHeld
from keyturn.record import KeyRecord, Refill
from keyturn.scopes import missing_scopes

_DAYS = {"daily": 1, "monthly": 31}


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _days(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400} days"
    return f"{seconds} seconds"


@dataclass(frozen=True, slots=True)
class Allowance:
    """How much a key may be used: rate limits, and credits with their refill."""

    rate_limits: tuple[str, ...] = ()
    credits: int | None = None
    refill: Refill | None = None
    refill_amount: int | None = None

    @classmethod
    def of(cls, record: KeyRecord) -> Allowance:
        return cls(record.rate_limits, record.credits, record.refill, record.refill_amount)

    @property
    def unlimited(self) -> bool:
        return not self.rate_limits and self.credits is None

    def looser_than(self, bound: Allowance) -> str | None:
        """Why this allowance admits more than ``bound`` does (``None``: it does not).

        Credits must be at most the bound's, refilled no more often and by no more; each
        of the bound's rate limits must be matched by one of ours that admits no more in
        its window (``100/minute`` is matched by ``1/second``: at most 60 a minute).
        """
        if bound.credits is not None:
            reason = self._credits_beyond(bound)
            if reason is not None:
                return reason
        for limit in bound.rate_limits:
            if not any(_admits_no_more(own, limit) for own in self.rate_limits):
                return f"no rate limit as tight as its own {limit}"
        return None

    def _credits_beyond(self, bound: Allowance) -> str | None:
        if self.credits is None:
            return f"unlimited credits (it has {bound.credits} left)"
        if self.credits > (bound.credits or 0):
            return f"{self.credits} credits (it has {bound.credits} left)"
        if self.refill is None:
            return None
        if bound.refill is None or bound.refill_amount is None:
            return "a credit refill (it has none)"
        amount = self.refill_amount or 0
        if amount > bound.refill_amount or _DAYS[self.refill] < _DAYS[bound.refill]:
            return (
                f"a {self.refill} refill of {amount} (its own is a {bound.refill} refill of "
                f"{bound.refill_amount})"
            )
        return None


def _admits_no_more(own: str, bound: str) -> bool:
    """Whether limit ``own`` admits at most what ``bound`` admits within ``bound``'s window."""
    from keyturn._ratelimit import window  # only keys with rate limits import ``limits``

    own_count, own_seconds = window(own)
    count, seconds = window(bound)
    return own_count * math.ceil(seconds / own_seconds) <= count


UNLIMITED = Allowance()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: ``name`` goes into the audit log (a key's id, or ``cli:<user>``)."""

    name: str
    scopes: frozenset[str] = field(default=frozenset({"*"}))
    expires_at: datetime | None = None  # when the actor stops working (None: never)
    allowance: Allowance = UNLIMITED
    key: KeyRecord | None = field(default=None, repr=False, compare=False)
    # A customer in the portal: only this owner's keys exist for it.
    owner: str | None = None
    # The operations it may do, when they differ from the scopes it may grant (``None``:
    # the same, as for a key).
    operations: frozenset[str] | None = None
    # How many working (active or disabled) keys its owner may hold.
    max_keys: int | None = None
    # The longest life of a key it makes or changes, from the change (an owner's policy).
    max_lifetime: timedelta | None = None
    # A key of an owner with shared limits: the owner whose limits bind it, and every key
    # it hands out.
    bound_owner: str | None = None

    @classmethod
    def operator(cls, name: str = "system") -> Actor:
        """The deployment's operator: whoever holds the database (CLI, library, bootstrap)."""
        return cls(name)

    @classmethod
    def of_key(cls, record: KeyRecord) -> Actor:
        """A key acting through the admin API or the dashboard, bounded by itself. Its life
        ends at its expiry or at the end of a rotation's grace, whichever comes first."""
        until = record.usable_until
        expires = None if until == math.inf else datetime.fromtimestamp(max(until, 0), UTC)
        shared = bool(record.owner_rate_limits) or record.owner_credits
        bound = record.owner if shared else None
        return cls(
            record.id, record.granted, expires, Allowance.of(record), record, bound_owner=bound
        )

    # -- the four checks ------------------------------------------------------------------

    def require(self, scope: str) -> None:
        """The operation needs ``scope``."""
        held = self.scopes if self.operations is None else self.operations
        if missing_scopes(held, (scope,)):
            raise ScopeNotHeld(f"{self._who} lacks the scope {scope}", (scope,))

    def ensure_sees(self, target: KeyRecord) -> None:
        """``target`` exists for this actor: an owner sees only its own keys, and any
        other answers as a key that does not exist (404, not 403: no id leaks)."""
        if self.owner is not None and target.owner != self.owner:
            raise KeyNotFound(target.id)

    def owner_for(self, owner: str | None) -> str | None:
        """The owner a key made or changed by this actor gets: an owner's own, always, and
        a key bound by its owner's limits gives its own owner (none given: that one)."""
        own = self.owner if self.owner is not None else self.bound_owner
        if own is None or owner in (None, own):
            return own if own is not None else owner
        if self.owner is not None:
            raise NotPermitted(f"{self._who} can only make keys for owner {self.owner}")
        raise NotPermitted(self._escapes(own, "a key", owner))

    def ensure_shares(self, owner: str | None, what: str) -> None:
        """A key handed out with owner ``owner`` counts against the limits that bind the
        actor (``bound_owner``): the same owner."""
        if self.bound_owner is not None and owner != self.bound_owner:
            raise NotPermitted(self._escapes(self.bound_owner, what, owner))

    def _escapes(self, own: str, what: str, other: str | None) -> str:
        theirs = f"owner {other}" if other is not None else "no owner"
        return (
            f"{self._who} is bound by the limits owner {own} shares with its keys; it cannot "
            f"hand out {what} for {theirs}, whose keys would not count against them"
        )

    def ensure_grants(self, scopes: Iterable[str]) -> None:
        """``scopes`` may be handed out: the actor holds every one of them."""
        missing = missing_scopes(self.scopes, sorted(scopes))
        if missing:
            raise ScopeNotHeld(
                f"{self._who} cannot grant scopes it does not hold: {', '.join(missing)}",
                missing,
            )

    def ensure_manages(self, target: KeyRecord) -> None:
        """``target`` may be changed: the actor sees it and holds every scope it holds (its
        own and its roles')."""
        self.ensure_sees(target)
        missing = missing_scopes(self.scopes, sorted(target.granted))
        if missing:
            raise ScopeNotHeld(
                f"key {target.id} holds scopes that {self._who} does not: "
                f"{', '.join(missing)}; only a key holding them may change it",
                missing,
            )

    def ensure_revokes(self, target: KeyRecord) -> None:
        """``target`` may be revoked: an owner revokes any key of its own (revoking only
        takes access away, and a leaked key must be stoppable even if an operator gave it
        scopes beyond the owner's policy); any other actor must manage it."""
        if self.owner is not None:
            self.ensure_sees(target)
        else:
            self.ensure_manages(target)

    def ensure_outlived(
        self, expires_at: datetime | None, what: str, now: datetime | None = None
    ) -> None:
        """A key expiring at ``expires_at`` (``None``: never) does not outlive the actor,
        nor live longer than its ``max_lifetime`` from ``now`` (the change's moment)."""
        if self.max_lifetime is not None:
            bound = (now or datetime.now(UTC)) + self.max_lifetime
            if expires_at is None or expires_at > bound:
                raise NotPermitted(
                    f"keys of owner {self.owner} must expire by {_when(bound)}: at most "
                    f"{_days(self.max_lifetime)} from now, the longest this portal allows"
                )
        mine = self.expires_at
        if mine is None:
            return
        if expires_at is None:
            raise NotPermitted(
                f"{self._who} expires on {_when(mine)}; it cannot give {what} no expiry"
            )
        if expires_at > mine:
            raise NotPermitted(
                f"{self._who} expires on {_when(mine)}; it cannot give {what} a later "
                f"expiry ({_when(expires_at)})"
            )

    def ensure_within(self, allowance: Allowance, what: str) -> None:
        """``allowance`` is no looser than the actor's own."""
        if self.allowance.unlimited:
            return
        reason = allowance.looser_than(self.allowance)
        if reason is not None:
            raise NotPermitted(f"{self._who} cannot give {what} {reason}")

    def ensure_confined(self, allowed_ips: tuple[str, ...], what: str) -> None:
        """A key with the allow-list ``allowed_ips`` (empty: anywhere) is used from no
        address the acting key may not be used from."""
        own = self.key.allowed if self.key is not None else None
        if own is None:
            return
        if not allowed_ips:
            raise NotPermitted(
                f"{self._who} may only be used from {', '.join(own.networks)}; it cannot "
                f"give {what} no address restriction"
            )
        wider = [network for network in allowed_ips if not own.covers(network)]
        if wider:
            raise NotPermitted(
                f"{self._who} may only be used from {', '.join(own.networks)}; it cannot "
                f"give {what} {', '.join(wider)}"
            )

    def cap(self, expires_at: datetime | None, now: datetime | None = None) -> datetime | None:
        """A default expiry brought within the actor's life and ``max_lifetime`` from
        ``now`` (an explicit one is checked)."""
        if self.max_lifetime is not None:
            bound = (now or datetime.now(UTC)) + self.max_lifetime
            expires_at = bound if expires_at is None else min(expires_at, bound)
        mine = self.expires_at
        if mine is None:
            return expires_at
        return mine if expires_at is None else min(expires_at, mine)

    @property
    def _who(self) -> str:
        if self.owner is not None:
            return f"the portal of owner {self.owner}"
        return f"key {self.name}" if self.key is not None else self.name
