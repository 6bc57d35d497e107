"""Decide the outcome of a key check (sans-I/O).

Two pure steps around the one lookup the caller performs:

1. ``inspect`` reads the request and checks the key's shape and checksum, so garbage and
   typos are answered without touching any store; it returns a ``Candidate`` (with the
   hash to look up) or a final ``Decision``.
2. ``decide`` takes the candidate, the record found for its hash (or ``None``), ``now``,
   the required scopes and where the request came from. A record's state (revoked,
   expired, ...) is only revealed after its hash matched, so nobody learns anything about
   keys they do not hold; then a key restricted by address is checked against the client's
   (``keyturn._addresses``), before its scopes and before the caller meters it.

Every decision is made here, including the manager's fast path for cached keys: it asks
``well_formed`` and ``accept`` rather than re-deciding. Which state refuses a key, and in
which order, comes from the state table (``keyturn._states``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from keyturn import _states as states
from keyturn._addresses import TrustedProxies
from keyturn._providers import identify
from keyturn._quota import Quota
from keyturn.credentials import CredentialReader, HeaderPairs, Presented, Rejection
from keyturn.errors import InvalidValue
from keyturn.keys import (
    CHECKSUM_LENGTH,
    DEFAULT_PREFIX,
    TEST_PREFIX,
    KeyDefect,
    KeyProblem,
    checksum,
    hash_key,
    parse_key,
    shape_pattern,
)
from keyturn.outcomes import CATALOGUE, Outcome
from keyturn.permissions import Node
from keyturn.record import KeyRecord
from keyturn.scopes import missing_scopes

Origin = tuple[str | None, HeaderPairs]
"""Where a request came from: the connection's peer address (``None``: unknown) and the
request's headers (read for ``X-Forwarded-For`` only when the peer is a trusted proxy)."""

# Accepting decisions kept per cached record (one per tuple of required scopes). Clients
# choose scopes too (the forward-auth scopes header), so the memo is bounded: past it,
# a decision is built per request instead of kept.
ACCEPTED_MEMO_LIMIT = 64

_new = tuple.__new__  # a named tuple made from its fields in C (see ``Verifier.accept``)


class Decision(NamedTuple):
    """The end of a key check: a catalogue outcome, what exactly happened, and the key.

    Immutable, so one accepting decision is shared by every request with the same key and
    scopes; a tuple, because a cache miss builds one and a frozen dataclass takes twice as
    long. ``quota``: for a refusal by a rate limit or spent credits, where the caller
    stands (the answer's ``Retry-After`` and ``RateLimit-*`` headers come from it)."""

    outcome: Outcome
    detail: str
    hint: str = ""
    key: KeyRecord | None = None
    required_scopes: tuple[str, ...] = ()
    quota: Quota | None = None
    # For ``insufficient_scope``: what the key lacks, as an expression (the missing scopes
    # joined by ``and``, or the failed part of a permission expression).
    unmet: str = ""

    @property
    def code(self) -> str:
        return self.outcome.code

    @property
    def ok(self) -> bool:
        return self.outcome.code == "valid"


class Candidate(NamedTuple):
    """A well-formed key awaiting lookup; carries its hash, never shown."""

    presented: Presented
    key_hash: str

    def __repr__(self) -> str:
        return f"Candidate({self.presented!r})"


_PROBLEM_CODE = {
    KeyProblem.WRONG_PREFIX: "malformed_key",
    KeyProblem.WRONG_LENGTH: "malformed_key",
    KeyProblem.ILLEGAL_CHARACTER: "malformed_key",
    KeyProblem.CHECKSUM_MISMATCH: "checksum_mismatch",
}


class Verifier:
    """Pure policy: which keys this deployment accepts and what each failure means."""

    __slots__ = (
        "_valid",
        "pepper",
        "prefix_list",
        "prefixes",
        "proxies",
        "reader",
        "shape",
    )

    def __init__(
        self,
        prefixes: Iterable[str] = (DEFAULT_PREFIX, TEST_PREFIX),
        *,
        pepper: bytes | None = None,
        reader: CredentialReader | None = None,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self.prefix_list = tuple(dict.fromkeys(prefixes))  # in order: the first is the default
        if not self.prefix_list:
            raise InvalidValue("a verifier needs at least one key prefix", "prefixes")
        self.prefixes = frozenset(self.prefix_list)
        self.shape = shape_pattern(self.prefixes).fullmatch
        self.pepper = pepper
        self.reader = reader or CredentialReader()
        self.proxies = TrustedProxies(trusted_proxies)
        self._valid = CATALOGUE["valid"]

    def reject(self, code: str, detail: str, hint: str = "", **extra: object) -> Decision:
        outcome = CATALOGUE[code]
        return Decision(outcome, detail, hint or outcome.fix, **extra)  # type: ignore[arg-type]

    def inspect(self, headers: HeaderPairs, query: str | bytes = "") -> Candidate | Decision:
        return self._check(self.reader.read(headers, query))

    def inspect_key(self, key: str) -> Candidate | Decision:
        """For a key that arrived on its own (the verify API), not inside a request."""
        return self._check(self.reader.parse_token(key.strip(), "body", "the key"))

    def well_formed(self, key: str, issued: bool = False) -> bool:
        """One regex and a CRC32: the shape of an accepted prefix and a matching checksum.
        ``issued``: the key's hash is one the store has read a row under, so the key was
        made with its checksum (the CRC32 is two thirds of this check's cost on a cache
        miss); its shape is still checked, for the prefixes this verifier accepts."""
        return self.shape(key) is not None and (  # a test, not a call of ``bool``
            issued or checksum(key[:-CHECKSUM_LENGTH]) == key[-CHECKSUM_LENGTH:]
        )

    def _check(self, found: Presented | Rejection) -> Candidate | Decision:
        if isinstance(found, Rejection):
            return self.reject(found.code, found.detail, found.hint)
        key = found.key
        # Only a key that fails the fast check is parsed again, slowly, to say precisely
        # what is wrong with it.
        if not self.well_formed(key):
            parsed = parse_key(key, self.prefixes)
            if isinstance(parsed, KeyDefect):
                return self._defect(key, parsed)
        return Candidate(found, hash_key(key, self.pepper))

    def _defect(self, key: str, defect: KeyDefect) -> Decision:
        code = _PROBLEM_CODE[defect.problem]
        if defect.problem is KeyProblem.WRONG_PREFIX:
            provider = identify(key)
            if provider is not None:
                return self.reject(
                    code,
                    "this is not a key of this service: it has the shape of a key issued by "
                    f"{provider.name}",
                    f"send it to {provider.name} instead, and use the key this service issued "
                    f"(it starts with {self._prefix_list()})",
                )
            return self.reject(
                code,
                f"{defect.detail}; keys of this service start with {self._prefix_list()}",
            )
        return self.reject(code, defect.detail)

    def _prefix_list(self) -> str:
        return " or ".join(f"'{p}_'" for p in sorted(self.prefixes))

    def decide(
        self,
        candidate: Candidate,
        record: KeyRecord | None,
        now: float | datetime | None = None,
        required_scopes: tuple[str, ...] = (),
        origin: Origin | None = None,
        permissions: Node | None = None,
    ) -> Decision:
        """``now`` is Unix time or an aware datetime; ``None`` means the current time.
        ``origin``: where the request came from (``None``: unknown, so a key restricted
        by address is refused). ``permissions``: an expression the key's scopes must meet
        as well as ``required_scopes`` (``keyturn.permissions``)."""
        if now is None:
            now = time.time()
        elif isinstance(now, datetime):
            now = now.timestamp()
        if record is None or record.canary:  # a canary is refused as if it did not exist
            return self.reject("unknown_key", "no key with this value exists in this deployment")
        if now >= record.usable_until:
            state = states.refusal(record, now)
            assert state is not None
            return self.reject(state.outcome, state.detail(record))
        if record.allowed is not None:
            refused = self._outside(record, origin)
            if refused is not None:
                return refused
        decision = self.accept(record, required_scopes) or self.lacking(record, required_scopes)
        if permissions is not None and decision.ok:
            return self.permitted(decision, permissions)
        return decision

    def permitted(self, decision: Decision, permissions: Node) -> Decision:
        """``decision`` (an accepting one) if its key meets ``permissions``, else the
        ``insufficient_scope`` refusal naming the part of the expression it fails."""
        record = decision.key
        assert record is not None
        unmet = permissions.unmet(record.granted)
        if unmet is None:
            return decision
        return self.reject(
            "insufficient_scope",
            f"the key does not meet the permissions required: it lacks {unmet}",
            key=record,
            required_scopes=tuple(s for s in unmet.scopes() if s not in record.granted),
            unmet=str(unmet),
        )

    def admits(self, record: KeyRecord, peer: str | None, headers: HeaderPairs) -> bool:
        """Whether the client of a request from ``peer`` with ``headers`` is on the
        allow-list of ``record`` (which has one): the fast path's question, ``decide``'s
        answer without the refusal. (With no trusted proxy the fast path reads the record's
        verdict on the peer itself: ``AddressSet.verdicts``.)"""
        allowed = record.allowed
        assert allowed is not None
        client = self.proxies.client(peer, headers)
        return client is not None and client in allowed

    def _outside(self, record: KeyRecord, origin: Origin | None) -> Decision | None:
        """``ip_not_allowed`` unless the client's address is on the key's allow-list."""
        client = None if origin is None else self.proxies.client(*origin)
        if client is not None and client in record.allowed:  # type: ignore[operator]
            return None
        if client is None:
            return self.reject(
                "ip_not_allowed",
                "the key may only be used from listed addresses, and the client's address "
                "is unknown",
                "send the request directly, or through a proxy listed in trusted_proxies "
                "that sets X-Forwarded-For; the verify API needs the client's address as ip",
                key=record,
            )
        return self.reject(
            "ip_not_allowed",
            f"the key may not be used from {client}",
            f"the request came from {client}, which is not on the key's list of allowed "
            "addresses; send it from a listed address or ask the key's owner to add this one",
            key=record,
        )

    def accept(self, record: KeyRecord, required_scopes: tuple[str, ...]) -> Decision | None:
        """The accepting decision for a usable ``record`` if it holds ``required_scopes``,
        else ``None``. Decisions are frozen, so each is built once per kept record and
        scope tuple and kept in the record's bounded memo, which the manager's fast path
        reads (a record nothing keeps has none: ``KeyRecord.accepted``)."""
        memo = record.accepted
        accepted: Decision | None = None if memo is None else memo.get(required_scopes)
        if accepted is None:
            if required_scopes and missing_scopes(record.granted, required_scopes):
                return None
            # Made in C, without the frame of the named tuple's ``__new__`` (a cache
            # miss makes one): every field, in order.
            accepted = _new(Decision, (self._valid, "", "", record, required_scopes, None, ""))
            if memo is not None and len(memo) < ACCEPTED_MEMO_LIMIT:
                memo[required_scopes] = accepted
        return accepted

    def lacking(self, record: KeyRecord, required_scopes: tuple[str, ...]) -> Decision:
        """The refusal of ``record`` for the ``required_scopes`` it does not hold."""
        missing = missing_scopes(record.granted, required_scopes)
        return self.reject(
            "insufficient_scope",
            f"the key lacks the scope{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
            key=record,
            required_scopes=required_scopes,
            unmet=" and ".join(missing),
        )

    def rate_limited(self, record: KeyRecord, quota: Quota, whose: str = "key") -> Decision:
        """``whose``: ``key``, or ``owner`` for a limit shared by the owner's keys."""
        wait = quota.retry_after
        outcome = CATALOGUE["rate_limited"]
        return Decision(
            outcome,
            f"the {whose}'s limit of {quota.policy} is used up"
            + (", shared by all of its keys" if whose == "owner" else ""),
            f"wait {wait} s (Retry-After) before the next request, then stay under "
            f"{quota.policy}; ask the key's owner for a higher limit if you need one",
            record,
            quota=quota,
        )

    def usage_exceeded(self, record: KeyRecord, quota: Quota, whose: str = "key") -> Decision:
        """``whose``: ``key``, or ``owner`` for the balance shared by the owner's keys."""
        outcome = CATALOGUE["usage_exceeded"]
        wait = quota.retry_after
        who = (
            "the key"
            if whose == "key"
            else (f"the key's owner ({record.owner}), whose credits all of its keys share,")
        )
        if wait is None:
            detail = f"{who} has used all of its credits, and they are not refilled"
            hint = "ask the key's owner to add credits, or use another key; do not retry"
        elif whose == "owner":
            detail = f"{who} has used all of its credits until the next refill"
            hint = f"the owner's credits are refilled in {wait} s (Retry-After); retry after that"
        else:
            detail = f"the key has used all of its {record.refill} credits"
            hint = f"the credits are refilled in {wait} s (Retry-After); retry after that"
        return Decision(outcome, detail, hint, record, quota=quota)
