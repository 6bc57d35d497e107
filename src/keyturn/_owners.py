"""Owners as identities: limits shared by every key of an owner, and acting on all its keys.

A key's ``owner`` was a label; an ``Owner`` record makes it an identity with an allowance
of its own. Its rate limits are counted per owner (in the same limiter as the keys', so
across every instance sharing Redis) and its credits are spent from one balance in the
store (one conditional ``UPDATE``, exact across instances), so a client cannot escape a
limit by minting more keys: every key's request counts against the owner too. A key's own
limits still hold; a request must pass both.

The verifier's read of a key brings its owner's limits with it (``store.sql.by_hash``), so
a key without an owner row pays nothing, and a change to an owner's limits reaches every
instance within the propagation bound as a change to a key does.

The operations (``OwnerAdmin``) sit beside the key operations of the admin layer and keep
its rules: revoking or disabling all its keys needs ``keys:write`` and a key that manages
every one of the owner's keys that is not revoked (it holds all their scopes). Setting an
owner's limits needs ``owners:write`` instead, and a key that manages those keys too: the
limits bind the keys made for the owner later, by anyone, which no check of today's keys
can cover (a ``keys:write`` key could plant ``credits: 0`` for an owner with no keys yet,
or lift a cap set for keys to come), as a role binds the keys given it later and needs
``roles:write``. A key with limits of its own sets none looser (``Actor.ensure_within``),
and a key bound by the owner's limits (``Actor.bound_owner``) loosens none of them;
reading needs ``keys:read``. Every change is audited, each key's own change included, in
one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

from keyturn.actor import Actor, Allowance
from keyturn.admin import (
    READ,
    WRITE,
    checked_metadata,
    checked_metering,
    checked_rate_limits,
    checked_text,
)
from keyturn.cache import KeyCache
from keyturn.errors import NotFound, NotPermitted
from keyturn.record import KeyRecord, Refill, utcnow
from keyturn.store.base import KeyStore

# Setting limits that every key of an owner shares, those made later included.
OWNERS_WRITE: Final = "owners:write"


@dataclass(frozen=True, slots=True)
class Owner:
    """An owner's shared limits and metadata, as stored."""

    owner: str
    rate_limits: tuple[str, ...] = ()
    credits: int | None = None
    refill: Refill | None = None
    refill_amount: int | None = None
    refilled_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "rate_limits": list(self.rate_limits),
            "credits": self.credits,
            "refill": (
                {"interval": self.refill, "amount": self.refill_amount} if self.refill else None
            ),
            "metadata": self.metadata,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


@dataclass(frozen=True, slots=True)
class OwnerLimits:
    """What ``PUT /v1/owners/{owner}`` sets: the whole record (left out: none)."""

    rate_limits: tuple[str, ...] = ()
    credits: int | None = None
    refill: str | None = None
    refill_amount: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OwnerUsage:
    """An owner and what its keys did: how many keys per status, the credits left in its
    balance (after a due refill), and requests per outcome (as flushed so far)."""

    owner: Owner
    keys: dict[str, int]
    credits_left: int | None
    requests: dict[str, int]

    def public(self) -> dict[str, Any]:
        return {
            **self.owner.public(),
            "keys": self.keys,
            "credits_left": self.credits_left,
            "requests": self.requests,
        }


class OwnerAdmin:
    """Set an owner's shared limits, read its usage, revoke or disable all its keys."""

    def __init__(self, store: KeyStore, cache: KeyCache) -> None:
        self.store = store
        self.cache = cache

    def put(self, actor: Actor, owner: str, limits: OwnerLimits) -> Owner:
        """Replace the owner's limits and metadata (creating the owner). Only a key that
        manages each of the owner's keys may change the limits they share (checked on each,
        inside the store's transaction), holding ``owners:write``."""
        actor.require(OWNERS_WRITE)
        name = _owner(owner)
        credits, refill, amount = checked_metering(
            limits.credits, limits.refill, limits.refill_amount
        )
        record = Owner(
            name,
            checked_rate_limits(limits.rate_limits),
            credits,
            refill,
            amount,
            utcnow() if refill is not None else None,
            checked_metadata(limits.metadata),
        )
        # Shared limits are an allowance: a limited key sets none looser than its own, as
        # it gives no key looser ones (``{}`` would lift a cap the keys rely on).
        shared = Allowance(record.rate_limits, credits, refill, amount)
        actor.ensure_within(shared, f"owner {name}")
        if actor.bound_owner == name:  # the limits binding the actor itself: none looser
            reason = shared.looser_than(self._shared(name))
            if reason is not None:
                raise NotPermitted(
                    f"key {actor.name} is bound by the limits of owner {name}; it cannot "
                    f"give them {reason}"
                )
        stored, hashes = self.store.put_owner(record, _working(actor.ensure_manages), actor.name)
        for key_hash in hashes:
            self.cache.invalidate(key_hash)
        return stored

    def _shared(self, name: str) -> Allowance:
        """The owner's limits as they stand: its credits are those left in its balance."""
        usage = self.store.owner_usage(name)
        if usage is None:
            return Allowance()
        found = usage.owner
        return Allowance(found.rate_limits, usage.credits_left, found.refill, found.refill_amount)

    def get(self, actor: Actor, owner: str, since: date | None = None) -> OwnerUsage:
        actor.require(READ)
        name = _owner(owner)
        found = self.store.owner_usage(name, since)
        if found is None:
            raise NotFound(f"no owner {name!r}: it has no keys and no limits")
        return found

    def revoke(self, actor: Actor, owner: str) -> list[KeyRecord]:
        """Revoke every key of the owner at once (those revoked already stay as they are)."""
        actor.require(WRITE)
        at = utcnow()

        def decide(record: KeyRecord) -> dict[str, Any] | None:
            if record.revoked_at is not None:
                return None
            actor.ensure_manages(record)
            return {"revoked_at": at}

        return self._each(actor, owner, decide, "key.revoke", "owner.revoke")

    def disable(self, actor: Actor, owner: str) -> list[KeyRecord]:
        """Disable every live key of the owner at once (revoked keys are left alone)."""
        actor.require(WRITE)

        def decide(record: KeyRecord) -> dict[str, Any] | None:
            if record.revoked_at is not None:
                return None
            actor.ensure_manages(record)
            return None if record.disabled else {"disabled": True}

        return self._each(actor, owner, decide, "key.disable", "owner.disable")

    def _each(
        self, actor: Actor, owner: str, decide: Any, action: str, owner_action: str
    ) -> list[KeyRecord]:
        changed = self.store.change_owner_keys(
            _owner(owner), decide, actor.name, action, owner_action
        )
        for record in changed:
            self.cache.invalidate(record.key_hash)
        return changed


def _working(check: Callable[[KeyRecord], None]) -> Callable[[KeyRecord], None]:
    """``check`` for the owner's keys that are not revoked: a revoked key never changes
    again, so an owner-wide change leaves it alone, and it must not stand in the way (a
    revoked key beyond the actor would block stopping the rest)."""

    def checked(record: KeyRecord) -> None:
        if record.revoked_at is None:
            check(record)

    return checked


def _owner(owner: str) -> str:
    """An owner's name as keys store it (``checked_text``: trimmed, printable), read the
    same way by every operation: ``" acme"`` in an address is ``acme``, for revoking its
    keys as for setting its limits."""
    return checked_text(owner, "owner") or ""


class AsyncOwnerAdmin:
    """``OwnerAdmin`` for ``async`` code: each operation in a worker thread."""

    def __init__(self, admin: OwnerAdmin) -> None:
        self.sync = admin

    async def put(self, actor: Actor, owner: str, limits: OwnerLimits) -> Owner:
        return await asyncio.to_thread(self.sync.put, actor, owner, limits)

    async def get(self, actor: Actor, owner: str, since: date | None = None) -> OwnerUsage:
        return await asyncio.to_thread(self.sync.get, actor, owner, since)

    async def revoke(self, actor: Actor, owner: str) -> list[KeyRecord]:
        return await asyncio.to_thread(self.sync.revoke, actor, owner)

    async def disable(self, actor: Actor, owner: str) -> list[KeyRecord]:
        return await asyncio.to_thread(self.sync.disable, actor, owner)
