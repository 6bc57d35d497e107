"""``KeyManager``: issue, change and verify keys over a store, with a cache in front.

This is the library's front door. The sync manager is the core; ``AsyncKeyManager`` runs the
same core and moves only store access (cache misses, writes, and the rate-limit and credit
checks of metered keys) to a worker thread, so an event loop is never blocked by I/O.

Several managers (processes, machines) may share one store: changes made through any of them
reach every cache within the cache's ``ttl`` (see ``propagation.py``).
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from hashlib import sha256
from typing import TYPE_CHECKING, Any

from keyturn.cache import MISSING, KeyCache
from keyturn.credentials import HeaderPairs, Presented
from keyturn.credits import next_refill, validate_credits
from keyturn.keys import DEFAULT_PREFIX, checksum, display_parts, generate_key, hash_key, mask
from keyturn.outcomes import CATALOGUE
from keyturn.propagation import DEFAULT_LIFETIME as FEED_LIFETIME
from keyturn.propagation import follow_changes
from keyturn.quota import Quota
from keyturn.record import KeyRecord, scopes_satisfy, utcnow, validate_scopes
from keyturn.store import DEFAULT_URL, KeyFilter, KeyNotFound, KeyStore, StoreError, open_store
from keyturn.store.base import AuditEvent
from keyturn.usage import UsageRecorder
from keyturn.verifier import Candidate, Decision, Verifier

if TYPE_CHECKING:
    from keyturn.ratelimit import RateLimiter

DEFAULT_LIFETIME = timedelta(days=90)
VALID = CATALOGUE["valid"]
_DEFAULT: Any = object()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly issued key. ``key`` is the only copy there will ever be: show it once."""

    key: str
    record: KeyRecord

    def __repr__(self) -> str:
        return f"IssuedKey(key={mask(self.key)!r}, id={self.record.id!r})"


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


class KeyManager:
    def __init__(
        self,
        store: KeyStore | str = DEFAULT_URL,
        *,
        verifier: Verifier | None = None,
        cache: KeyCache | None = None,
        prefix: str = DEFAULT_PREFIX,
        usage_interval: float = 5.0,
        limiter: RateLimiter | str | None = None,
        feed_lifetime: float = FEED_LIFETIME,
    ) -> None:
        """``cache.ttl`` is the propagation bound (1 s by default). ``limiter`` counts rate
        limits: a ``RateLimiter``, or a storage URI (``redis://host:6379``; the default is
        in memory, for one instance). ``feed_lifetime``: how long cached records live while
        the store's change feed is live (PostgreSQL)."""
        self.store = open_store(store) if isinstance(store, str) else store
        self.verifier = verifier or Verifier()
        self.cache = cache if cache is not None else KeyCache()
        self.prefix = prefix
        self.usage = UsageRecorder(self.store, usage_interval)
        self._limiter = limiter
        self.feed = follow_changes(self.store, self.cache, feed_lifetime)
        # Bound once: the hot path pays for no attribute chains.
        self._plain = self.verifier.reader.plain_asgi
        self._entries = self.cache.entries
        self._cache_clock = self.cache.clock
        self._note = self.usage.note
        self._shape = self.verifier.shape
        pepper = self.verifier.pepper
        self._digest: Callable[[str], str] = (
            (lambda key: sha256(key.encode()).hexdigest())
            if pepper is None
            else (lambda key: hash_key(key, pepper))
        )

    # -- issuing and changing keys ------------------------------------------------------

    def create_key(
        self,
        name: str,
        *,
        scopes: Iterable[str] = (),
        expires_in: timedelta | None = _DEFAULT,
        owner: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prefix: str | None = None,
        actor: str = "system",
        rate_limits: Iterable[str] = (),
        credits: int | None = None,
        refill: str | None = None,
        refill_amount: int | None = None,
    ) -> IssuedKey:
        """``expires_in=None`` means the key never expires; the default is 90 days.

        ``rate_limits`` like ``["100/second", "10000/day"]``; ``credits``: how many requests
        the key may make (None: unlimited), refilled to ``refill_amount`` (default: the
        starting credits) every ``refill`` period (``"daily"`` or ``"monthly"``, UTC).
        """
        issued = self._new_key(
            name=name,
            scopes=validate_scopes(scopes),
            expires_in=DEFAULT_LIFETIME if expires_in is _DEFAULT else expires_in,
            owner=owner,
            metadata=dict(metadata or {}),
            prefix=prefix or self.prefix,
            metering=_metering(rate_limits, credits, refill, refill_amount),
        )
        self.store.create(issued.record, actor)
        self.cache.invalidate(issued.record.key_hash)
        return issued

    def _new_key(
        self,
        *,
        name: str,
        scopes: frozenset[str],
        expires_in: timedelta | None,
        owner: str | None,
        metadata: dict[str, Any],
        prefix: str,
        replaces: str | None = None,
        metering: Mapping[str, Any] | None = None,
    ) -> IssuedKey:
        if not name.strip():
            raise StoreError("a key needs a non-empty name")
        key = generate_key(prefix)
        key_prefix, start, end = display_parts(key)
        now = utcnow()
        record = KeyRecord(
            id=new_key_id(),
            key_hash=hash_key(key, self.verifier.pepper),
            prefix=key_prefix,
            start=start,
            end=end,
            name=name.strip(),
            owner=owner,
            scopes=scopes,
            metadata=metadata,
            created_at=now,
            expires_at=now + expires_in if expires_in is not None else None,
            replaces=replaces,
            **(metering or {}),
        )
        if record.refill is not None and record.refilled_at is None:
            record.refilled_at = now  # the starting credits are this period's
        return IssuedKey(key, record)

    def get(self, key_id: str) -> KeyRecord:
        record = self.store.get(key_id)
        if record is None:
            raise KeyNotFound(key_id)
        return record

    def list_keys(
        self, filters: KeyFilter | None = None, *, limit: int = 50, after: str | None = None
    ) -> Sequence[KeyRecord]:
        return self.store.list_keys(filters or KeyFilter(), limit=limit, after=after)

    def audit(self, **query: Any) -> Sequence[AuditEvent]:
        return self.store.audit(**query)

    def usage_counts(self, key_id: str, since: date | None = None) -> dict[str, int]:
        """Requests per outcome for a key, as flushed so far (see ``usage.py``)."""
        return self.store.usage(key_id, since)

    def _change(
        self, key_id: str, changes: Mapping[str, Any], actor: str, action: str
    ) -> KeyRecord:
        record = self.store.update(key_id, changes, actor, action)
        self.cache.invalidate(record.key_hash)
        return record

    def update(
        self,
        key_id: str,
        *,
        name: str | None = None,
        owner: str | None = _DEFAULT,
        scopes: Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        expires_at: datetime | None = _DEFAULT,
        actor: str = "system",
        rate_limits: Iterable[str] | None = None,
        credits: int | None = _DEFAULT,
        refill: str | None = _DEFAULT,
        refill_amount: int | None = _DEFAULT,
    ) -> KeyRecord:
        """Change what is given; ``expires_at=None`` removes the expiry, ``credits=None``
        makes the key unlimited, ``rate_limits=[]`` removes its limits. Setting ``credits``
        sets the uses left now (and starts a new refill period)."""
        changes: dict[str, Any] = {}
        if rate_limits is not None:
            changes["rate_limits"] = _rate_limits(rate_limits)
        if (credits, refill, refill_amount) != (_DEFAULT, _DEFAULT, _DEFAULT):
            changes.update(self._credit_changes(key_id, credits, refill, refill_amount))
        if name is not None:
            if not name.strip():
                raise StoreError("a key needs a non-empty name")
            changes["name"] = name.strip()
        if owner is not _DEFAULT:
            changes["owner"] = owner
        if scopes is not None:
            changes["scopes"] = validate_scopes(scopes)
        if metadata is not None:
            changes["metadata"] = dict(metadata)
        if expires_at is not _DEFAULT:
            changes["expires_at"] = expires_at
        return self._change(key_id, changes, actor, "key.update")

    def _credit_changes(
        self, key_id: str, credits: int | None, refill: str | None, refill_amount: int | None
    ) -> dict[str, Any]:
        """The merged credit settings, checked as a whole. ``credits=None`` (unlimited)
        drops the refill too; a refill amount is kept unless a new one is given."""
        current = self.get(key_id)
        new_credits = current.credits if credits is _DEFAULT else credits
        new_refill = current.refill if refill is _DEFAULT else refill
        if credits is None and refill is _DEFAULT:
            new_refill = None
        amount = refill_amount if refill_amount is not _DEFAULT else None
        if amount is None and refill_amount is _DEFAULT and new_refill is not None:
            amount = current.refill_amount
        merged = validate_credits(new_credits, new_refill, amount)
        changes: dict[str, Any] = dict(
            zip(("credits", "refill", "refill_amount"), merged, strict=True)
        )
        if credits is not _DEFAULT or refill is not _DEFAULT:
            changes["refilled_at"] = utcnow() if merged[1] is not None else None
        return changes

    def revoke(self, key_id: str, *, actor: str = "system") -> KeyRecord:
        """Permanent. Revoking a revoked key changes nothing and succeeds."""
        record = self.get(key_id)
        if record.revoked_at is not None:
            return record
        return self._change(key_id, {"revoked_at": utcnow()}, actor, "key.revoke")

    def disable(self, key_id: str, *, actor: str = "system") -> KeyRecord:
        return self._set_disabled(key_id, True, actor)

    def enable(self, key_id: str, *, actor: str = "system") -> KeyRecord:
        return self._set_disabled(key_id, False, actor)

    def _set_disabled(self, key_id: str, disabled: bool, actor: str) -> KeyRecord:
        record = self.get(key_id)
        if record.revoked_at is not None:
            raise StoreError(f"key {key_id} is revoked; revoked keys cannot be enabled or disabled")
        if record.disabled == disabled:
            return record
        return self._change(
            key_id, {"disabled": disabled}, actor, "key.disable" if disabled else "key.enable"
        )

    def rotate(
        self, key_id: str, *, grace: timedelta = timedelta(hours=24), actor: str = "system"
    ) -> IssuedKey:
        """Issue a successor with the same name, owner, scopes and lifetime; the old key keeps
        working for ``grace``, then answers ``key_rotated``."""
        old = self.get(key_id)
        status = old.status()
        if status in ("revoked", "rotated"):
            raise StoreError(f"key {key_id} is {status}; only a live key can be rotated")
        if old.replaced_by is not None:
            raise StoreError(f"key {key_id} was already rotated to {old.replaced_by}")
        lifetime = old.expires_at - old.created_at if old.expires_at is not None else None
        issued = self._new_key(
            name=old.name,
            scopes=old.scopes,
            expires_in=lifetime,
            owner=old.owner,
            metadata=dict(old.metadata),
            prefix=old.prefix,
            replaces=old.id,
            metering={
                "rate_limits": old.rate_limits,
                "credits": old.credits,
                "refill": old.refill,
                "refill_amount": old.refill_amount,
                "refilled_at": old.refilled_at,
            },
        )
        now = utcnow()
        self.store.rotate(old.id, issued.record, now + grace, actor)
        self.cache.invalidate(old.key_hash)
        return issued

    # -- verifying ----------------------------------------------------------------------

    def _lookup(self, candidate: Candidate) -> KeyRecord | None:
        cached = self.cache.get(candidate.key_hash)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
        return self._load(candidate)

    def _load(self, candidate: Candidate) -> KeyRecord | None:
        """The store read behind a cache miss."""
        since = self.cache.mark()
        record = self.store.find_by_hash(candidate.key_hash)
        self.cache.put(candidate.key_hash, record, since)
        return record

    @property
    def limiter(self) -> RateLimiter:
        """Made on first use: a deployment without rate limits never imports ``limits``."""
        limiter = self._limiter
        if limiter is None or isinstance(limiter, str):
            from keyturn.ratelimit import MEMORY, RateLimiter

            limiter = self._limiter = RateLimiter(limiter or MEMORY)
        return limiter

    def meter(self, decision: Decision, now: float) -> Decision:
        """A valid decision for a metered key, checked against its rate limits and then its
        credits (so a burst refused by a rate limit spends no credits). Does I/O."""
        record = decision.key
        assert record is not None
        if record.rate_limits:
            refused = self.limiter.hit(record.id, record.rate_limits)
            if refused is not None:
                return self.verifier.rate_limited(record, refused)
        if record.credits is not None:
            moment = datetime.fromtimestamp(now, UTC)
            if self.store.spend(record.id, moment) is None:
                refill = next_refill(record.refill, moment)
                wait = refill.timestamp() - now if refill is not None else math.inf
                quota = Quota(record.refill_amount or 0, 0, wait, "credits")
                return self.verifier.usage_exceeded(record, quota)
        return decision

    def account(self, record: KeyRecord | None, decision: Decision, now: float) -> None:
        """Count the request for its key (batched, off the hot path)."""
        if record is None:
            return
        if decision.ok:
            self.usage.note(record.id, now)
        else:
            self.usage.count(record.id, decision.code)

    def finish(
        self,
        candidate: Candidate,
        record: KeyRecord | None,
        scopes: tuple[str, ...],
        now: float | datetime | None,
    ) -> Decision:
        if now is None:
            now = time.time()
        elif isinstance(now, datetime):
            now = now.timestamp()
        decision = self.verifier.decide(candidate, record, now, scopes)
        if decision.ok and decision.key.metered:  # type: ignore[union-attr]
            decision = self.meter(decision, now)
        self.account(record, decision, now)
        return decision

    def verify(
        self,
        headers: HeaderPairs,
        query: str | bytes = "",
        *,
        scopes: Sequence[str] = (),
        now: float | datetime | None = None,
    ) -> Decision:
        """Check a request's credentials: the whole hot path, sync."""
        found = self.verifier.inspect(headers, query)
        if isinstance(found, Decision):
            return found
        return self.finish(found, self._lookup(found), tuple(scopes), now)

    def verify_asgi(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes = b"",
        *,
        scopes: Sequence[str] = (),
    ) -> Decision:
        """``verify`` for ASGI scopes (lower-case byte header names): the middleware's path."""
        scopes = tuple(scopes)
        found = self.triage_asgi(headers, query, scopes)
        if found is None:
            return self.verify(headers, query, scopes=scopes)
        if isinstance(found, Candidate):
            return self.finish(found, self._lookup(found), scopes, None)
        return found

    def triage_asgi(
        self, headers: Sequence[tuple[bytes, bytes]], query: bytes, scopes: tuple[str, ...]
    ) -> Decision | Candidate | None:
        """The common cases in as few steps as possible.

        A request carrying one plain key is answered from the cache (``Decision``) or handed
        back as a ``Candidate`` to look up in the store (or, for a metered key, to meter);
        anything else returns ``None`` and takes the general path, which reaches the same
        answers (a property test holds both paths to that). Never does I/O.
        """
        found = self._plain(headers, query)
        if found is None:
            return None
        key, source = found
        key_hash = self._digest(key)
        entry = self._entries.get(key_hash)  # KeyCache.get, inlined: this runs per request
        record = entry[1] if entry is not None and entry[0] >= self._cache_clock() else MISSING
        if isinstance(record, KeyRecord):
            # No shape or checksum check needed: a cached record under this hash proves the
            # value is a key this service issued (SHA-256 does not collide).
            now = time.time()
            if now < record.live_until:
                accepted = record.accepted.get(scopes)
                if accepted is None and not (scopes and scopes_satisfy(record.scopes, scopes)):
                    accepted = record.accepted[scopes] = Decision(VALID, "", "", record, scopes)
                if accepted is not None:
                    self._note(record.id, now)
                    return accepted  # type: ignore[no-any-return]
            if record.metered:
                return Candidate(Presented(key, source), key_hash)
            return self.finish(Candidate(Presented(key, source), key_hash), record, scopes, now)
        if record is MISSING:
            if self._shape(key) and checksum(key[:-6]) == key[-6:]:
                return Candidate(Presented(key, source), key_hash)
            return None
        # A cached unknown hash: only keys that passed the checksum are cached.
        return self.finish(Candidate(Presented(key, source), key_hash), None, scopes, None)

    def verify_key(
        self, key: str, *, scopes: Sequence[str] = (), now: datetime | None = None
    ) -> Decision:
        """Check a bare key (as the verify API receives it)."""
        found = self.verifier.inspect_key(key)
        if isinstance(found, Decision):
            return found
        return self.finish(found, self._lookup(found), tuple(scopes), now)

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
        self.usage.close()
        self.store.close()

    def __enter__(self) -> KeyManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncKeyManager:
    """The same manager for ``async`` code: cache hits answer inline, store work in a thread."""

    def __init__(self, manager: KeyManager | KeyStore | str = DEFAULT_URL, **options: Any) -> None:
        self.sync = manager if isinstance(manager, KeyManager) else KeyManager(manager, **options)

    @property
    def verifier(self) -> Verifier:
        return self.sync.verifier

    async def lookup(self, candidate: Candidate) -> KeyRecord | None:
        cached = self.sync.cache.get(candidate.key_hash)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
        return await asyncio.to_thread(self.sync._load, candidate)

    async def verify(
        self,
        headers: HeaderPairs,
        query: str | bytes = "",
        *,
        scopes: Sequence[str] = (),
        now: float | datetime | None = None,
    ) -> Decision:
        found = self.sync.verifier.inspect(headers, query)
        if isinstance(found, Decision):
            return found
        return await self.finish(found, await self.lookup(found), tuple(scopes), now)

    async def finish(
        self,
        candidate: Candidate,
        record: KeyRecord | None,
        scopes: tuple[str, ...],
        now: float | datetime | None = None,
    ) -> Decision:
        """``KeyManager.finish`` with the metering I/O in a worker thread."""
        sync = self.sync
        if now is None:
            now = time.time()
        elif isinstance(now, datetime):
            now = now.timestamp()
        decision = sync.verifier.decide(candidate, record, now, scopes)
        if decision.ok and decision.key.metered:  # type: ignore[union-attr]
            decision = await asyncio.to_thread(sync.meter, decision, now)
        sync.account(record, decision, now)
        return decision

    async def verify_asgi(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes = b"",
        *,
        scopes: Sequence[str] = (),
    ) -> Decision:
        scopes = tuple(scopes)
        found = self.sync.triage_asgi(headers, query, scopes)
        if found is None:
            return await self.verify(headers, query, scopes=scopes)
        if isinstance(found, Candidate):
            return await self.finish(found, await self.lookup(found), scopes)
        return found

    async def verify_key(self, key: str, *, scopes: Sequence[str] = ()) -> Decision:
        found = self.sync.verifier.inspect_key(key)
        if isinstance(found, Decision):
            return found
        return await self.finish(found, await self.lookup(found), tuple(scopes))

    def __getattr__(self, name: str) -> Any:
        """Management calls (create_key, revoke, ...) run in a worker thread."""
        method = getattr(self.sync, name)
        if not callable(method):
            return method

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(method, *args, **kwargs)

        return call

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)


def _rate_limits(texts: Iterable[str]) -> tuple[str, ...]:
    texts = tuple(texts)
    if not texts:
        return ()
    from keyturn.ratelimit import normalize_rate_limits

    return normalize_rate_limits(texts)


def _metering(
    rate_limits: Iterable[str], credits: int | None, refill: str | None, amount: int | None
) -> dict[str, Any]:
    """Checked metering fields for a new key; ``ValueError`` says what is wrong."""
    credits, checked_refill, amount = validate_credits(credits, refill, amount)
    return {
        "rate_limits": _rate_limits(rate_limits),
        "credits": credits,
        "refill": checked_refill,
        "refill_amount": amount,
    }
