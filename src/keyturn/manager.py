"""``KeyManager``: issue, change and verify keys over a store, with a cache in front.

This is the library's front door. Verifying is the verifier's decision (sans-I/O) around
the manager's I/O: one cache or store lookup, and for metered keys the rate-limit and
credit counters. Changing keys is the admin layer's (``keyturn.admin``); the manager's
``create_key``, ``update``, ... are that layer's operations for the operator.

``AsyncKeyManager`` is the same manager for ``async`` code, written out method by method
(as httpx writes ``AsyncClient`` beside ``Client``): the decisions and the time handling
are the sync manager's own methods, and only store and counter I/O moves to a worker
thread, so an event loop is never blocked.

Several managers (processes, machines) may share one store: changes made through any of them
reach every cache within the cache's ``ttl`` (see ``_propagation.py``).

A *check* (``check``, ``check_key``, ``examine``: ``keyturn check`` and the dashboard's
"why was it rejected?") answers what a request would get without being a use: it spends no
credit, counts no rate limit and touches no last-used time or usage count.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from keyturn._canary import CanaryAlarm, who
from keyturn._credits import next_refill
from keyturn._owners import AsyncOwnerAdmin, OwnerAdmin
from keyturn._propagation import DEFAULT_LIFETIME as FEED_LIFETIME
from keyturn._propagation import follow_changes
from keyturn._quota import Quota
from keyturn._store_reads import StoreReads
from keyturn._usage import NOTE_EVERY, UsageRecorder
from keyturn._verifications import (
    DEFAULT_RETENTION,
    UNSEEN,
    Seen,
    VerificationLog,
    sent_agent,
    unseen,
)
from keyturn._webhooks import AsyncWebhookAdmin, WebhookAdmin
from keyturn.actor import Actor
from keyturn.admin import (
    UNSET,
    AsyncKeyAdmin,
    IssuedKey,
    KeyAdmin,
    KeyChange,
    LifetimePolicy,
    NewKey,
    Unset,
)
from keyturn.cache import MISSING, KeyCache
from keyturn.credentials import API_KEY, RESPELLED, HeaderPairs, Presented
from keyturn.errors import InvalidValue
from keyturn.keys import builtin_sha256, key_bytes_hasher
from keyturn.outcomes import CATALOGUE
from keyturn.permissions import Node, permissions_of
from keyturn.record import KeyRecord, Refill
from keyturn.roles import AsyncRoleAdmin, RoleAdmin
from keyturn.store import DEFAULT_URL, KeyFilter, KeyStore, open_store
from keyturn.store.base import AuditEvent, EventStore
from keyturn.verifier import Candidate, Decision, Origin, Verifier

if TYPE_CHECKING:
    from keyturn._ratelimit import RateLimiter

VALID = CATALOGUE["valid"]  # the accepting outcome: ``decision.outcome is VALID`` is ``ok``
_VALID = VALID.code
# A named tuple made from its fields in C, without the Python frame of its ``__new__``
# (a cache miss makes two): ``_new(Candidate, (presented, key_hash))``.
_new = tuple.__new__
# ``verify_asgi``'s kind for the user agent among the header names it looks for, beside the
# reader's (``credentials.AUTHORIZATION``, ``API_KEY``, ``RESPELLED``).
_AGENT, _AGENT_NAME = -1, b"user-agent"
Moment = float | datetime | None
"""``now`` as callers give it: Unix time, an aware datetime, or ``None`` for the clock."""


def seconds(now: Moment) -> float:
    """``now`` as Unix time: the one time conversion of both managers."""
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        return now.timestamp()
    return now


def as_actor(actor: Actor | str) -> Actor:
    """An audit name alone means the operator acting under that name."""
    return actor if isinstance(actor, Actor) else Actor.operator(actor)


class KeyManager:
    def __init__(
        self,
        store: KeyStore | str = DEFAULT_URL,
        *,
        verifier: Verifier | None = None,
        cache: KeyCache | None = None,
        prefix: str | None = None,
        usage_interval: float = 5.0,
        limiter: RateLimiter | str | None = None,
        feed_lifetime: float = FEED_LIFETIME,
        allow_private_webhooks: bool = False,
        verification_retention: float = DEFAULT_RETENTION,
        verification_log: bool = True,
        lifetime: LifetimePolicy | None = None,
    ) -> None:
        """``prefix`` is the default prefix of new keys (the verifier's first accepted
        one unless given; it must be accepted). ``cache.ttl`` is the propagation bound (1 s
        by default). ``limiter`` counts rate limits: a ``RateLimiter``, or a storage URI
        (``redis://host:6379``; the default is in memory, for one instance).
        ``feed_lifetime``: how long cached records live while the store's change feed is
        live (PostgreSQL). Deployments build their manager from settings with
        ``keyturn.compose.build_manager``. ``allow_private_webhooks``: webhooks may
        post to this network's own addresses (``keyturn._webhooks``)."""
        self.verifier = verifier or Verifier()
        if prefix is not None and prefix not in self.verifier.prefixes:
            raise InvalidValue(
                f"prefix {prefix!r} is not one the verifier accepts "
                f"({', '.join(self.verifier.prefix_list)}): its keys would be refused",
                "prefix",
            )
        self.store = open_store(store) if isinstance(store, str) else store
        self.cache = cache if cache is not None else KeyCache()
        self.prefix = prefix or self.verifier.prefix_list[0]
        self.admin = KeyAdmin(
            self.store,
            self.cache,
            prefixes=self.verifier.prefix_list,
            pepper=self.verifier.pepper,
            default_prefix=self.prefix,
            lifetime=lifetime,
            usage_lag=timedelta(seconds=usage_interval + self.cache.ttl),
        )
        self.webhooks = WebhookAdmin(
            cast(EventStore, self.store), allow_private=allow_private_webhooks
        )
        self.owners = OwnerAdmin(self.store, self.cache)
        self.roles = RoleAdmin(self.store, self.cache)
        self.usage = UsageRecorder(self.store, usage_interval)
        self.verifications = VerificationLog(
            self.store,
            self.verifier.proxies,
            retention=verification_retention,
            enabled=verification_log,
        )
        self.canaries = CanaryAlarm(cast(EventStore, self.store))
        self._limiter = limiter
        self.feed = follow_changes(self.store, self.cache, feed_lifetime)
        self.reads = StoreReads(self.store, self.verifier)
        # Bound once: the hot path pays for no attribute chains. ``verify_asgi`` looks for
        # the user agent in the same pass as for the key (a header of a key's name stays
        # one, should it be called so).
        names = self.verifier.reader.asgi_names
        self._asgi_names = {_AGENT_NAME: _AGENT, **names}
        # Each name as the text a ``Presented`` names its source by (a miss decoded it).
        self._name_texts = {name: name.decode("latin-1") for name in names}
        self._may_hold_key = self.verifier.reader.may_hold_key
        self._entries = self.cache.entries
        self._unknown = self.cache.unknown
        self._cache_clock = self.cache.clock
        self._note = self.usage.note
        self._log_queue = self.verifications.queue
        self._logging = verification_log
        self._proxied = bool(self.verifier.proxies.set)  # a peer may be a trusted proxy
        self._well_formed = self.verifier.well_formed
        # Hashes of keys the store has found (see ``Verifier.well_formed``'s ``issued``).
        self._hashes_read: Collection[str] = getattr(self.store, "hashes_read", ())
        self._accept = self.verifier.accept
        self._admits = self.verifier.admits
        # With a pepper, the HMAC its states are bound in; without, ``None``: the hot path
        # hashes in line (``builtin_sha256``), without the call of a Python function.
        pepper = self.verifier.pepper
        self._peppered = None if pepper is None else key_bytes_hasher(pepper)

    # -- issuing and changing keys, as the operator -------------------------------------

    def create_key(
        self,
        name: str,
        *,
        scopes: Collection[str] = (),
        expires_in: timedelta | Unset | None = UNSET,
        owner: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prefix: str | None = None,
        actor: Actor | str = "system",
        rate_limits: Collection[str] = (),
        credits: int | None = None,
        refill: str | None = None,
        refill_amount: int | None = None,
        allowed_ips: Collection[str] = (),
        roles: Collection[str] = (),
    ) -> IssuedKey:
        """``expires_in=None``: the key never expires; left out: 90 days. ``roles``: names
        of roles (``keyturn.roles``) whose scopes it holds too. See ``NewKey``."""
        new = NewKey(
            name, scopes, expires_in, owner, dict(metadata or {}), prefix,
            rate_limits, credits, refill, refill_amount, allowed_ips, roles=roles,
        )  # fmt: skip
        return self.admin.create(as_actor(actor), new)

    def update(
        self,
        key_id: str,
        *,
        actor: Actor | str = "system",
        name: str | Unset = UNSET,
        owner: str | Unset | None = UNSET,
        scopes: Collection[str] | Unset = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        expires_at: datetime | Unset | None = UNSET,
        rate_limits: Collection[str] | Unset = UNSET,
        credits: int | Unset | None = UNSET,
        refill: str | Unset | None = UNSET,
        refill_amount: int | Unset | None = UNSET,
        allowed_ips: Collection[str] | Unset = UNSET,
        roles: Collection[str] | Unset = UNSET,
    ) -> KeyRecord:
        """Change what is given (see ``KeyChange``)."""
        change = KeyChange(
            name, owner, scopes, metadata, expires_at, rate_limits, credits, refill,
            refill_amount, allowed_ips, roles,
        )  # fmt: skip
        return self.admin.update(as_actor(actor), key_id, change)

    def rotate(
        self,
        key_id: str,
        *,
        grace: timedelta | None = None,
        quiet: timedelta | None = None,
        actor: Actor | str = "system",
    ) -> IssuedKey:
        """Issue a successor with the same name, owner, scopes and lifetime; the old key keeps
        working for ``grace`` (default 24 hours; 0: it stops now), then answers
        ``key_rotated``. With ``quiet``, until nobody has used it for that long, at most
        ``grace`` (default 7 days): ``KeyAdmin.rotate``."""
        return self.admin.rotate(as_actor(actor), key_id, grace, quiet=quiet)

    def revoke(self, key_id: str, *, actor: Actor | str = "system") -> KeyRecord:
        """Permanent. Revoking a revoked key changes nothing and succeeds."""
        return self.admin.revoke(as_actor(actor), key_id)

    def disable(self, key_id: str, *, actor: Actor | str = "system") -> KeyRecord:
        return self.admin.disable(as_actor(actor), key_id)

    def enable(self, key_id: str, *, actor: Actor | str = "system") -> KeyRecord:
        return self.admin.enable(as_actor(actor), key_id)

    def get(self, key_id: str) -> KeyRecord:
        """``KeyNotFound`` if there is no such key."""
        return self.admin.get(Actor.operator(), key_id)

    def list_keys(
        self, filters: KeyFilter | None = None, *, limit: int = 50, after: str | None = None
    ) -> Sequence[KeyRecord]:
        return self.admin.list_keys(Actor.operator(), filters, limit=limit, after=after)

    def audit(
        self,
        *,
        key_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[AuditEvent]:
        """The audit log, newest first; ``actor`` filters on who acted."""
        return self.admin.audit(
            Actor.operator(), key_id=key_id, by=actor, action=action, limit=limit, before=before
        )

    def usage_counts(self, key_id: str, since: date | None = None) -> dict[str, int]:
        """Requests per outcome for a key, as flushed so far (see ``_usage.py``)."""
        return self.admin.usage(Actor.operator(), key_id, since)

    # -- verifying ----------------------------------------------------------------------

    def _lookup(self, candidate: Candidate, origin: Origin | None) -> KeyRecord | Decision | None:
        cached = self.cache.get(candidate.key_hash)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
        return self._load(candidate, origin)

    def _load(self, candidate: Candidate, origin: Origin | None) -> KeyRecord | Decision | None:
        """The store read behind a cache miss (``keyturn._store_reads``: bounded per client
        and at once; a throttled client's refusal instead of the record)."""
        cache = self.cache
        if cache.maxsize <= 0 and cache.unknown_maxsize <= 0:  # it keeps nothing: no put
            return self.reads.read(candidate.key_hash, origin)
        since = cache.epoch, self._cache_clock()  # KeyCache.mark, inlined
        record = self.reads.read(candidate.key_hash, origin)
        if isinstance(record, Decision):
            return record
        cache.put(candidate.key_hash, record, since)
        return record

    @property
    def limiter(self) -> RateLimiter:
        """Made on first use: a deployment without rate limits never imports ``limits``."""
        limiter = self._limiter
        if limiter is None or isinstance(limiter, str):
            from keyturn._ratelimit import MEMORY, RateLimiter

            limiter = self._limiter = RateLimiter(limiter or MEMORY)
        return limiter

    def meter(self, decision: Decision, now: float, *, use: bool = True) -> Decision:
        """A valid decision for a metered key, checked against its rate limits and its
        owner's, then its credits and its owner's (so a burst refused by a rate limit
        spends no credits; a credit the key spent when its owner's balance then refuses is
        spent all the same). Does I/O. With ``use=False`` (a check) nothing is counted or
        spent: it only looks.

        The key's own count against its allowance (``KeyRecord.allowance_id``), which a
        rotated key shares with its successors: during the grace overlap the old and the
        new key together get what one key would. The owner's are shared by all its keys."""
        record = decision.key
        assert record is not None
        allowance = record.allowance_id
        if record.rate_limits or record.owner_rate_limits:
            counter = self.limiter.hit if use else self.limiter.peek
            if record.rate_limits:
                refused = counter(allowance, record.rate_limits)
                if refused is not None:
                    return self.verifier.rate_limited(record, refused)
            if record.owner_rate_limits:  # shared by the owner's keys: counted per owner
                refused = counter(f"owner:{record.owner}", record.owner_rate_limits)
                if refused is not None:
                    return self.verifier.rate_limited(record, refused, "owner")
        moment = datetime.fromtimestamp(now, UTC)
        if record.credits is not None:
            left = self.store.spend(allowance, moment) if use else self._unspent(allowance, moment)
            if left is None:
                return self._spent(record, record.refill, record.refill_amount, now, "key")
        if record.owner_credits and record.owner is not None:  # the owner's one balance
            owner = record.owner
            if use:
                left = self.store.spend_owner(owner, moment)
            else:
                left = self.store.owner_credits_left(owner, moment) or None
            if left is None:
                found = self.store.get_owner(owner)
                refill = found.refill if found is not None else None
                amount = found.refill_amount if found is not None else None
                return self._spent(record, refill, amount, now, "owner")
        return decision

    def _spent(
        self, record: KeyRecord, refill: Refill | None, amount: int | None, now: float, whose: str
    ) -> Decision:
        """``usage_exceeded`` for credits used up (the key's or its owner's)."""
        due = next_refill(refill, datetime.fromtimestamp(now, UTC))
        wait = due.timestamp() - now if due is not None else math.inf
        quota = Quota(amount or 0, 0, wait, "credits")
        return self.verifier.usage_exceeded(record, quota, whose)

    def _unspent(self, allowance: str, moment: datetime) -> int | None:
        """What ``spend`` would find (refills included), without spending: ``None`` if no
        credit is left."""
        left = self.store.credits_left(allowance, moment)
        return left if left else None

    def _logged(
        self,
        decision: Decision,
        peer: str | None,
        headers: HeaderPairs,
        seen: Seen | None,
        scopes: tuple[str, ...] | None = (),
    ) -> Decision:
        """``decision``, recorded in the verification log (queued as an ``Entry``; see
        ``_verifications``): every use of a key the core decides goes through here or the
        fast path's append. ``scopes``: what the request needed (``None``: a permission
        expression). A key's mask is noted for the writer here, where the key was read: the
        fast path queues only its id."""
        if not self._logging:
            return decision
        log = self.verifications
        key = decision.key
        key_id = None
        if key is not None:
            key_id = key.id
            if key_id not in log.masks:
                log.note_mask(key_id, key.masked)
        now = time.time()
        fields: tuple[Any, ...] = seen or unseen(headers, self._proxied)
        # A user agent the face left to the core: queued as sent, for the writer to decode.
        sent = sent_agent(headers) if fields[3] is None else None
        entry = (now, decision.outcome.code, key_id, peer, scopes, sent, *fields)
        if log.open_from <= now < log.open_until:  # ``record``'s extend, without the call
            self._log_queue.extend(entry)
        else:
            log.record(entry)
        return decision

    def account(self, record: KeyRecord | None, decision: Decision, now: float) -> None:
        """Count the request for its key (batched, off the hot path). ``finish`` makes the
        accepted case in line (a call costs a miss ~700 instructions): change both."""
        if record is None:
            return
        if decision.outcome is VALID:
            self._note(record.id, now)
        else:
            self.usage.count(record.id, decision.code)

    def finish(
        self,
        candidate: Candidate,
        record: KeyRecord | None,
        scopes: tuple[str, ...],
        now: Moment,
        origin: Origin | None = None,
        permissions: Node | None = None,
    ) -> Decision:
        """Decide, meter (for a metered key) and count: what follows a lookup. A canary's
        use raises its alarm, with what ``origin`` (peer and headers) says of the request."""
        at = time.time() if now is None else seconds(now)
        decision = self.verifier.decide(candidate, record, at, scopes, origin, permissions)
        if record is None:
            return decision
        if record.canary:  # someone has it: key.canary_used
            self.canaries.raise_alarm(
                record, who(origin, candidate.presented.key, self.verifier.proxies)
            )
        if record.metered and decision.outcome is VALID:
            decision = self.meter(decision, at)
        if decision.outcome is VALID:  # ``account``'s common case, without its call
            self._note(record.id, at)
        else:
            self.account(record, decision, at)
        return decision

    def verify(
        self,
        headers: HeaderPairs,
        query: str | bytes = "",
        *,
        scopes: Sequence[str] = (),
        now: Moment = None,
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        """Check a request's credentials: the whole hot path, sync. ``peer``: the address
        the request came from (the connection's; see ``keyturn._addresses``)."""
        if not isinstance(headers, list | tuple):
            headers = list(headers)  # read twice: for the key, and for forwarded addresses
        found = self.verifier.inspect(headers, query)
        if isinstance(found, Decision):
            return self._logged(found, peer, headers, seen, tuple(scopes))
        origin = (peer, headers)
        record = self._lookup(found, origin)
        if isinstance(record, Decision):
            return self._logged(record, peer, headers, seen, tuple(scopes))
        decision = self.finish(found, record, tuple(scopes), now, origin)
        return self._logged(decision, peer, headers, seen, tuple(scopes))

    @overload
    def verify_asgi(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes = b"",
        scopes: Sequence[str] = (),
        peer: str | None = None,
        seen: Seen | None = None,
        triage: Literal[False] = False,
    ) -> Decision: ...

    @overload
    def verify_asgi(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes,
        scopes: Sequence[str],
        peer: str | None,
        seen: Seen | None,
        triage: Literal[True],
    ) -> Decision | Candidate | None: ...

    def verify_asgi(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes = b"",
        scopes: Sequence[str] = (),
        peer: str | None = None,
        seen: Seen | None = None,
        triage: bool = False,
    ) -> Decision | Candidate | None:
        """``verify`` for ASGI scopes (lower-case byte header names): the middleware's path,
        the common cases in as few steps as possible. ``peer``: the connection's address
        (``scope["client"][0]``). Every argument may be given by position: a keyword-only
        argument left to its default costs a dict lookup per call (a cached verify is short
        enough for three of them to show).

        A request carrying one plain key is answered from the cache; anything else takes
        the general path, which reaches the same answers (a property test holds both paths
        to that). The decisions are the verifier's, and each one returned is recorded
        (``seen``: what the face knows of the request, for the verification log). The memo
        of accepted scope tuples is filled by ``accept``.

        ``triage``: do no I/O (what an event loop's face calls inline, so a cached key
        costs no coroutine): where the cache cannot decide, return a ``Candidate`` to look
        up in the store (or, for a metered key, to meter), or ``None`` for the general
        path, for ``AsyncKeyManager.resume_asgi``. One method for both, not a triage the
        sync verify calls: a Python call is 6% of a cached verify.
        """
        scopes = tuple(scopes)
        # The plain read, in line (a call is 6% of a cached verify): the one key of a request
        # that carries it the plain way (``CredentialReader.asgi_names``), as sent, else
        # ``None``: the general path, whose ``read`` explains the mistake. Its characters are
        # not checked here: a cache hit proves them, and a miss checks the key's shape.
        raw: bytes | None = None
        source = b""
        agent: bytes | None = None  # the first user agent, for a ``seen`` that leaves it out
        names = self._asgi_names
        for name, value in headers:
            if name not in names:
                continue
            kind = names[name]
            if kind == _AGENT:
                if agent is None:
                    agent = value
                continue
            if raw is not None or kind == RESPELLED:  # two keys, or a misspelled header
                raw = None
                break
            if kind == API_KEY:
                raw, source = value, name
                continue
            # One partition, not ``startswith`` (its arguments are parsed from a tuple built
            # per call) and a slice: 280 instructions less per request.
            scheme, space, raw = value.partition(b" ")
            if not space or (scheme != b"Bearer" and scheme.lower() != b"bearer"):
                raw = None
                break
            source = name
        if raw is None or (query and self._may_hold_key(query)):
            return None if triage else self.verify(
                headers, query, scopes=scopes, peer=peer, seen=seen
            )
        # The key's bytes as sent are hashed: a hit needs them never decoded. Only ASCII
        # bytes are a key (the shape says so), and their hash is their text's; any other
        # value's hash is no key's, and the shape check below refuses it.
        peppered = self._peppered
        key_hash = builtin_sha256(raw).hexdigest() if peppered is None else peppered(raw)
        entry = self._entries.get(key_hash)  # KeyCache.get, inlined: this runs per request
        # The cache's clock is called from a local: ``self._cache_clock()`` is a lookup the
        # interpreter does not specialise for an instance's attribute (110 instructions).
        clock = self._cache_clock
        # Each test that takes a request off the fast path returns at once: CPython 3.11
        # specialises a float comparison only before a short jump (a generic one costs the
        # fast path 100 instructions).
        if entry is None or entry[0] < clock():
            return self._miss(raw, source, key_hash, entry is not None, headers, query, scopes,
                              peer, seen, triage)  # fmt: skip
        record = entry[1]
        # No shape or checksum check needed: a cached record under this hash proves the
        # value is a key this service issued (SHA-256 does not collide).
        now = time.time()
        if now >= record.live_until:
            return self._decide_cached(raw, source, key_hash, record, now, headers, scopes,
                                       peer, seen, triage)  # fmt: skip
        # A cached record has its memo (``KeyCache.put`` gives it one).
        accepted = record.accepted.get(scopes) or self._accept(record, scopes)  # type: ignore[union-attr]
        if accepted is None or not (
            record.allowed is None
            # no proxy trusted: the peer is the client, its verdict one dict read
            or (self._admits(record, peer, headers) if self._proxied or peer is None
                else record.allowed.verdicts[peer])
        ):  # fmt: skip
            return self._decide_cached(raw, source, key_hash, record, now, headers, scopes,
                                       peer, seen, triage)  # fmt: skip
        key_id = record.id
        # ``UsageRecorder.note``, inlined for a key noted within the second
        counted = self.usage.noted.get(key_id)
        if counted is not None and now - counted[0] < NOTE_EVERY:
            counted[1] += 1
        else:
            self._note(key_id, now)
        if self._logging:
            # ``_logged``, inlined: the writer finds the key's mask by its id, and the user
            # agent, where the face left it out, from the header found above (``Entry.sent``)
            logged = (now, _VALID, key_id, peer, scopes, agent) + (
                seen if seen is not None
                else UNSEEN if not self._proxied else ("", "", None, None, headers)  # unseen
            )
            log = self.verifications
            if log.open_from <= now < log.open_until:
                self._log_queue.extend(logged)
            else:
                log.record(logged)
        return accepted

    def _decide_cached(
        self,
        raw: bytes,
        source: bytes,
        key_hash: str,
        record: KeyRecord,
        now: float,
        headers: Sequence[tuple[bytes, bytes]],
        scopes: tuple[str, ...],
        peer: str | None,
        seen: Seen | None,
        triage: bool,
    ) -> Decision | Candidate:
        """``verify_asgi`` for a cached key it could not accept at once: metered (to meter),
        refused by its state, its scopes or its client's address (the verifier says why)."""
        presented = _new(Presented, (raw.decode("latin-1"), source.decode("latin-1")))
        candidate = _new(Candidate, (presented, key_hash))
        if record.metered:
            if triage:
                return candidate
            return self._resolve(candidate, headers, scopes, peer, seen)
        decision = self.finish(candidate, record, scopes, now, (peer, headers))
        return self._logged(decision, peer, headers, seen, scopes)

    def _miss(
        self,
        raw: bytes,
        source: bytes,
        key_hash: str,
        stale: bool,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes,
        scopes: tuple[str, ...],
        peer: str | None,
        seen: Seen | None,
        triage: bool,
    ) -> Decision | Candidate | None:
        """``verify_asgi`` for a key the cache holds no fresh record of (``stale``: it holds
        one past its time): its shape and checksum checked, a cached unknown hash refused,
        else the store read (or, in triage, the ``Candidate`` to read)."""
        key = raw.decode("latin-1")
        if not self._well_formed(key, stale or key_hash in self._hashes_read):
            return None if triage else self.verify(
                headers, query, scopes=scopes, peer=peer, seen=seen
            )
        candidate = _new(Candidate, (_new(Presented, (key, self._name_texts[source])), key_hash))
        expiry = self._unknown.get(key_hash)
        if expiry is not None and expiry >= self._cache_clock():
            decision = self.finish(candidate, None, scopes, None)  # a cached unknown hash
            return self._logged(decision, peer, headers, seen, scopes)
        return candidate if triage else self._resolve(candidate, headers, scopes, peer, seen)

    def _resolve(
        self,
        found: Candidate,
        headers: Sequence[tuple[bytes, bytes]],
        scopes: tuple[str, ...],
        peer: str | None,
        seen: Seen | None,
    ) -> Decision:
        """What follows ``verify_asgi``'s triage when the cache did not decide: the store
        read of a key (at once for a hash the cache does not hold), or the metering of a
        cached metered key."""
        origin = (peer, headers)
        if found.key_hash in self._entries:
            record = self._lookup(found, origin)
        else:
            record = self._load(found, origin)
        if isinstance(record, Decision):
            return self._logged(record, peer, headers, seen, scopes)
        decision = self.finish(found, record, scopes, None, origin)
        return self._logged(decision, peer, headers, seen, scopes)

    def verify_key(
        self,
        key: str,
        *,
        scopes: Sequence[str] = (),
        now: Moment = None,
        ip: str | None = None,
        permissions: str | Node | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        """Check a bare key (as the verify API receives it); ``ip``: the client's address,
        as the caller saw it (needed for a key restricted by address). ``permissions``: an
        expression over scopes the key must meet too, like ``"orders:read and (orders:write
        or admin)"`` (``keyturn.permissions``; ``InvalidPermissions`` if it cannot be
        read); a refusal's ``unmet`` names the part it fails."""
        needed = permissions_of(permissions)
        # An expression's needs are no set of scopes (it may say ``not``): logged as such.
        asked = None if needed is not None else tuple(scopes)
        found = self.verifier.inspect_key(key)
        if isinstance(found, Decision):
            return self._logged(found, ip, (), seen, asked)
        record = self._lookup(found, (ip, ()))
        if isinstance(record, Decision):
            return self._logged(record, ip, (), seen, asked)
        decision = self.finish(found, record, tuple(scopes), now, (ip, ()), needed)
        return self._logged(decision, ip, (), seen, asked)

    # -- checking: the same decisions, never a use ----------------------------------------

    def check(
        self,
        headers: HeaderPairs,
        query: str | bytes = "",
        *,
        scopes: Sequence[str] = (),
        now: Moment = None,
        peer: str | None = None,
        permissions: str | Node | None = None,
    ) -> Decision:
        """The decision a request would get now, without making it a use. ``permissions``:
        an expression the key must meet too (as ``verify_key`` takes it)."""
        needed = permissions_of(permissions)
        if not isinstance(headers, list | tuple):
            headers = list(headers)
        found = self.verifier.inspect(headers, query)
        return self.examine(found, tuple(scopes), now, (peer, headers), needed)[0]

    def check_key(
        self,
        key: str,
        *,
        scopes: Sequence[str] = (),
        now: Moment = None,
        ip: str | None = None,
        permissions: str | Node | None = None,
    ) -> Decision:
        """``check`` for a bare key."""
        needed = permissions_of(permissions)
        found = self.verifier.inspect_key(key)
        return self.examine(found, tuple(scopes), now, (ip, ()), needed)[0]

    def examine(
        self,
        found: Candidate | Decision,
        scopes: tuple[str, ...] = (),
        now: Moment = None,
        origin: Origin | None = None,
        permissions: Node | None = None,
    ) -> tuple[Decision, KeyRecord | None]:
        """The decision for an inspected request, and the stored record its key names (also
        when it is refused), read from the store rather than the cache: what is stored now.
        Not a use (see the module's docstring)."""
        if isinstance(found, Decision):
            return found, None
        at = seconds(now)
        record = self.store.find_by_hash(found.key_hash)
        decision = self.verifier.decide(found, record, at, scopes, origin, permissions)
        if decision.ok and record is not None and record.metered:
            decision = self.meter(decision, at, use=False)
        return decision, record

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
        self.verifications.close()
        self.reads.close()
        self.usage.close()
        self.canaries.close()
        self.store.close()

    def __enter__(self) -> KeyManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncKeyManager:
    """The same manager for ``async`` code: cache hits answer inline, store work in a thread.

    Every method is the sync manager's, with its I/O awaited in a worker thread; nothing
    is decided here that the sync manager does not decide the same way.
    """

    def __init__(self, manager: KeyManager | KeyStore | str = DEFAULT_URL, **options: Any) -> None:
        self.sync = manager if isinstance(manager, KeyManager) else KeyManager(manager, **options)
        self.admin = AsyncKeyAdmin(self.sync.admin)
        self.webhooks = AsyncWebhookAdmin(self.sync.webhooks)
        self.owners = AsyncOwnerAdmin(self.sync.owners)
        self.roles = AsyncRoleAdmin(self.sync.roles)

    @property
    def verifier(self) -> Verifier:
        return self.sync.verifier

    @property
    def store(self) -> KeyStore:
        return self.sync.store

    # -- issuing and changing keys, as the operator -------------------------------------

    async def create_key(
        self,
        name: str,
        *,
        scopes: Collection[str] = (),
        expires_in: timedelta | Unset | None = UNSET,
        owner: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        prefix: str | None = None,
        actor: Actor | str = "system",
        rate_limits: Collection[str] = (),
        credits: int | None = None,
        refill: str | None = None,
        refill_amount: int | None = None,
        allowed_ips: Collection[str] = (),
        roles: Collection[str] = (),
    ) -> IssuedKey:
        """``KeyManager.create_key`` in a worker thread."""
        new = NewKey(
            name, scopes, expires_in, owner, dict(metadata or {}), prefix,
            rate_limits, credits, refill, refill_amount, allowed_ips, roles=roles,
        )  # fmt: skip
        return await self.admin.create(as_actor(actor), new)

    async def update(
        self,
        key_id: str,
        *,
        actor: Actor | str = "system",
        name: str | Unset = UNSET,
        owner: str | Unset | None = UNSET,
        scopes: Collection[str] | Unset = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
        expires_at: datetime | Unset | None = UNSET,
        rate_limits: Collection[str] | Unset = UNSET,
        credits: int | Unset | None = UNSET,
        refill: str | Unset | None = UNSET,
        refill_amount: int | Unset | None = UNSET,
        allowed_ips: Collection[str] | Unset = UNSET,
        roles: Collection[str] | Unset = UNSET,
    ) -> KeyRecord:
        """``KeyManager.update`` in a worker thread."""
        change = KeyChange(
            name, owner, scopes, metadata, expires_at, rate_limits, credits, refill,
            refill_amount, allowed_ips, roles,
        )  # fmt: skip
        return await self.admin.update(as_actor(actor), key_id, change)

    async def rotate(
        self,
        key_id: str,
        *,
        grace: timedelta | None = None,
        quiet: timedelta | None = None,
        actor: Actor | str = "system",
    ) -> IssuedKey:
        return await asyncio.to_thread(
            lambda: self.sync.rotate(key_id, grace=grace, quiet=quiet, actor=actor)
        )

    async def revoke(self, key_id: str, *, actor: Actor | str = "system") -> KeyRecord:
        return await asyncio.to_thread(self.sync.revoke, key_id, actor=actor)

    async def disable(self, key_id: str, *, actor: Actor | str = "system") -> KeyRecord:
        return await asyncio.to_thread(self.sync.disable, key_id, actor=actor)

    async def enable(self, key_id: str, *, actor: Actor | str = "system") -> KeyRecord:
        return await asyncio.to_thread(self.sync.enable, key_id, actor=actor)

    async def get(self, key_id: str) -> KeyRecord:
        return await asyncio.to_thread(self.sync.get, key_id)

    async def list_keys(
        self, filters: KeyFilter | None = None, *, limit: int = 50, after: str | None = None
    ) -> Sequence[KeyRecord]:
        return await asyncio.to_thread(self.sync.list_keys, filters, limit=limit, after=after)

    async def audit(
        self,
        *,
        key_id: str | None = None,
        actor: str | None = None,
        action: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Sequence[AuditEvent]:
        return await asyncio.to_thread(
            lambda: self.sync.audit(
                key_id=key_id, actor=actor, action=action, limit=limit, before=before
            )
        )

    async def usage_counts(self, key_id: str, since: date | None = None) -> dict[str, int]:
        return await asyncio.to_thread(self.sync.usage_counts, key_id, since)

    # -- verifying ----------------------------------------------------------------------

    async def lookup(
        self, candidate: Candidate, origin: Origin | None
    ) -> KeyRecord | Decision | None:
        """The cached record, or the store read in the readers' own threads."""
        sync = self.sync
        cached = sync.cache.get(candidate.key_hash)
        if cached is not MISSING:
            return cached  # type: ignore[return-value]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(sync.reads.pool, sync._load, candidate, origin)

    async def finish(
        self,
        candidate: Candidate,
        record: KeyRecord | None,
        scopes: tuple[str, ...],
        now: Moment = None,
        origin: Origin | None = None,
        permissions: Node | None = None,
    ) -> Decision:
        """``KeyManager.finish`` with the metering I/O in a worker thread."""
        sync = self.sync
        at = seconds(now)
        decision = sync.verifier.decide(candidate, record, at, scopes, origin, permissions)
        if record is not None and record.canary:
            sync.canaries.raise_alarm(
                record, who(origin, candidate.presented.key, sync.verifier.proxies)
            )
        if decision.ok and record is not None and record.metered:
            decision = await asyncio.to_thread(sync.meter, decision, at)
        sync.account(record, decision, at)
        return decision

    async def verify(
        self,
        headers: HeaderPairs,
        query: str | bytes = "",
        *,
        scopes: Sequence[str] = (),
        now: Moment = None,
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        if not isinstance(headers, list | tuple):
            headers = list(headers)
        found = self.sync.verifier.inspect(headers, query)
        if isinstance(found, Decision):
            return self.sync._logged(found, peer, headers, seen, tuple(scopes))
        origin = (peer, headers)
        record = await self.lookup(found, origin)
        if isinstance(record, Decision):
            return self.sync._logged(record, peer, headers, seen, tuple(scopes))
        decision = await self.finish(found, record, tuple(scopes), now, origin)
        return self.sync._logged(decision, peer, headers, seen, tuple(scopes))

    async def verify_asgi(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes = b"",
        scopes: Sequence[str] = (),
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        """``KeyManager.verify_asgi``, with the store read in a worker thread."""
        scopes = tuple(scopes)
        found = self.sync.verify_asgi(headers, query, scopes, peer, seen, True)
        if isinstance(found, Decision):
            return found
        return await self.resume_asgi(found, headers, query, scopes, peer, seen)

    async def resume_asgi(
        self,
        found: Candidate | None,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes,
        scopes: tuple[str, ...],
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        """What follows ``KeyManager.verify_asgi``'s triage when it did not decide: the
        store lookup of a ``Candidate``, or the general path (``None``). The ASGI middleware
        triages inline and awaits this only then, so a cached key costs no coroutine."""
        if found is None:
            return await self.verify(headers, query, scopes=scopes, peer=peer, seen=seen)
        origin = (peer, headers)
        record = await self.lookup(found, origin)
        if isinstance(record, Decision):
            return self.sync._logged(record, peer, headers, seen, scopes)
        decision = await self.finish(found, record, scopes, None, origin)
        return self.sync._logged(decision, peer, headers, seen, scopes)

    async def verify_key(
        self,
        key: str,
        *,
        scopes: Sequence[str] = (),
        now: Moment = None,
        ip: str | None = None,
        permissions: str | Node | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        needed = permissions_of(permissions)
        # An expression's needs are no set of scopes (it may say ``not``): logged as such.
        asked = None if needed is not None else tuple(scopes)
        found = self.sync.verifier.inspect_key(key)
        if isinstance(found, Decision):
            return self.sync._logged(found, ip, (), seen, asked)
        record = await self.lookup(found, (ip, ()))
        if isinstance(record, Decision):
            return self.sync._logged(record, ip, (), seen, asked)
        decision = await self.finish(found, record, tuple(scopes), now, (ip, ()), needed)
        return self.sync._logged(decision, ip, (), seen, asked)

    # -- checking -------------------------------------------------------------------------

    async def check(
        self,
        headers: HeaderPairs,
        query: str | bytes = "",
        *,
        scopes: Sequence[str] = (),
        now: Moment = None,
        peer: str | None = None,
        permissions: str | Node | None = None,
    ) -> Decision:
        needed = permissions_of(permissions)
        if not isinstance(headers, list | tuple):
            headers = list(headers)
        found = self.sync.verifier.inspect(headers, query)
        return (await self.examine(found, tuple(scopes), now, (peer, headers), needed))[0]

    async def check_key(
        self,
        key: str,
        *,
        scopes: Sequence[str] = (),
        now: Moment = None,
        ip: str | None = None,
        permissions: str | Node | None = None,
    ) -> Decision:
        needed = permissions_of(permissions)
        found = self.sync.verifier.inspect_key(key)
        return (await self.examine(found, tuple(scopes), now, (ip, ()), needed))[0]

    async def examine(
        self,
        found: Candidate | Decision,
        scopes: tuple[str, ...] = (),
        now: Moment = None,
        origin: Origin | None = None,
        permissions: Node | None = None,
    ) -> tuple[Decision, KeyRecord | None]:
        if isinstance(found, Decision):
            return found, None
        return await asyncio.to_thread(
            self.sync.examine, found, scopes, now, origin, permissions
        )

    async def aclose(self) -> None:
        await asyncio.to_thread(self.sync.close)
