"""The adapter core every framework integration wraps.

A framework module does three things only: hand the request's headers and query string to
a ``Guard``, turn an ``HttpAnswer`` into its own response type, and put the ``VerifiedKey``
where its handlers look. Everything else - the verification, the rule table, the exact HTTP
answer for each outcome, the key handlers see - lives here once, so FastAPI, Flask and
Django answer the same request with the same status, challenge and body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias

from keyturn._path_rules import PathRules, Requirement
from keyturn._request_ids import RequestIds
from keyturn._verifications import Seen
from keyturn.answer import DEFAULT_REALM, HttpAnswer, render, render_error
from keyturn.compose import build_manager
from keyturn.config import load_settings
from keyturn.config import public_url as checked_public_url
from keyturn.credentials import HeaderPairs
from keyturn.errors import KeyturnError
from keyturn.integrations.identity import VerifiedKey
from keyturn.manager import AsyncKeyManager, KeyManager
from keyturn.record import KeyRecord
from keyturn.verifier import Decision

_IDENTITY_LIMIT = 10_000


class Guard:
    """Verifies requests for a framework and says what to answer.

    ``keys`` is a ``KeyManager``, an ``AsyncKeyManager``, or a store URL or ``None``: the
    guard then builds its own manager (and closes it) from the same settings as ``keyturn
    serve`` (``KEYTURN_*``, ``$KEYTURN_CONFIG``; the URL, when given, is the database), so
    the pepper and accepted prefixes agree with the server's. That manager only reads: a
    SQLite file that does not exist is an error naming its absolute path, never a new
    empty database; the realm and ``public_url`` are then the settings' too (the address
    the problems' ``type`` points into, ``keyturn.answer.problem_type``). ``open_paths``
    and ``scopes`` form the ``PathRules`` that app-wide middleware applies; decorators and
    dependencies pass their scopes directly.
    """

    __slots__ = (
        "_identities",
        "_refusals",
        "async_manager",
        "manager",
        "owns_manager",
        "public_url",
        "realm",
        "request_ids",
        "rules",
        "settled",
    )

    def __init__(
        self,
        keys: KeyManager | AsyncKeyManager | str | None = None,
        *,
        realm: str | None = None,
        open_paths: Iterable[str] = (),
        scopes: Mapping[str, Sequence[str]] | None = None,
        public_url: str | None = None,
    ) -> None:
        public_url = checked_public_url(public_url)
        if keys is None or isinstance(keys, str):
            settings = load_settings({"database_url": keys})
            self.manager = build_manager(settings, create=False)
            self.owns_manager = True
            realm = settings.realm if realm is None else realm
            public_url = settings.public_url if public_url is None else public_url
        elif isinstance(keys, AsyncKeyManager):
            self.manager = keys.sync
            self.owns_manager = False
        elif isinstance(keys, KeyManager):
            self.manager = keys
            self.owns_manager = False
        else:
            raise TypeError(
                f"expected a KeyManager, an AsyncKeyManager, a store URL or None, not "
                f"{type(keys)!r}"
            )
        self.async_manager = AsyncKeyManager(self.manager)
        # The X-Request-Id of each answer: a trusted proxy's, or a new one.
        self.request_ids = RequestIds(self.manager.verifier.proxies.set)
        self.realm = DEFAULT_REALM if realm is None else realm
        self.public_url = public_url
        self.rules = PathRules(open_paths, scopes)
        self._identities: dict[str, tuple[KeyRecord, VerifiedKey]] = {}
        self._refusals: dict[tuple[str, str, str, tuple[str, ...]], HttpAnswer] = {}
        # id(accepting decision) -> (the decision, its key): the verifier keeps one
        # accepting decision per cached record and scope tuple, so the hot path finds the
        # key for it with one lookup (``KeyturnMiddleware`` reads it inline).
        self.settled: dict[int, tuple[Decision, VerifiedKey]] = {}

    @classmethod
    def of(cls, keys: KeySource, **options: object) -> Guard:
        """``keys`` itself if it is a guard (options must then be empty), else a new guard."""
        if isinstance(keys, Guard):
            if options:
                raise TypeError(f"options {sorted(options)} cannot be applied to a ready Guard")
            return keys
        return cls(keys, **options)  # type: ignore[arg-type]

    def requirement(self, method: str, path: str) -> Requirement:
        return self.rules.requirement(method, path)

    # -- verification: one call per kind of caller ----------------------------------------

    # ``peer``: the address the request came from (WSGI's ``REMOTE_ADDR``, ASGI's
    # ``scope["client"][0]``), for keys restricted by address; ``seen``: its method and
    # path, which the core records with the decision in the verification log.

    def check(
        self,
        headers: HeaderPairs,
        query: str | bytes,
        scopes: Sequence[str],
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        """Sync frameworks (WSGI: Flask, Django)."""
        return self.manager.verify(headers, query, scopes=scopes, peer=peer, seen=seen)

    async def check_async(
        self,
        headers: HeaderPairs,
        query: str | bytes,
        scopes: Sequence[str],
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        """Async frameworks with ``str`` headers (Django under ASGI)."""
        return await self.async_manager.verify(
            headers, query, scopes=scopes, peer=peer, seen=seen
        )

    async def check_asgi(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes,
        scopes: Sequence[str],
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> Decision:
        """ASGI scopes: cached keys are answered inline, a cache miss reads in a thread."""
        return await self.async_manager.verify_asgi(
            headers, query, scopes=scopes, peer=peer, seen=seen
        )

    # -- the key for the handler, or the answer to send: check and settle, errors mapped ---

    def verdict(
        self,
        headers: HeaderPairs,
        query: str | bytes,
        scopes: Sequence[str],
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> VerifiedKey | HttpAnswer:
        try:
            return self.settle(self.check(headers, query, scopes, peer, seen))
        except KeyturnError as exc:
            return self.failure(exc)

    async def verdict_async(
        self,
        headers: HeaderPairs,
        query: str | bytes,
        scopes: Sequence[str],
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> VerifiedKey | HttpAnswer:
        try:
            return self.settle(await self.check_async(headers, query, scopes, peer, seen))
        except KeyturnError as exc:
            return self.failure(exc)

    async def verdict_asgi(
        self,
        headers: Sequence[tuple[bytes, bytes]],
        query: bytes,
        scopes: Sequence[str],
        peer: str | None = None,
        seen: Seen | None = None,
    ) -> VerifiedKey | HttpAnswer:
        try:
            return self.settle(await self.check_asgi(headers, query, scopes, peer, seen))
        except KeyturnError as exc:
            return self.failure(exc)

    # -- what to do with the decision ----------------------------------------------------

    def settle(self, decision: Decision) -> VerifiedKey | HttpAnswer:
        """The key to hand the handler, or the full answer to send instead."""
        record = decision.key
        if decision.ok and record is not None:
            verified = self.identity(record)
            if len(self.settled) >= _IDENTITY_LIMIT:
                self.settled.clear()
            self.settled[id(decision)] = (decision, verified)  # it holds the id in use
            return verified
        if decision.quota is not None:  # Retry-After and RateLimit-* differ each time
            return render(decision, self.realm, self.public_url)
        # A refusal's answer is made of these alone (and the guard's realm and address):
        # rendered once, so a flood of the same refusal is not rendered request by request.
        made = (decision.code, decision.detail, decision.hint, decision.required_scopes)
        answer = self._refusals.get(made)
        if answer is None:
            if len(self._refusals) >= _IDENTITY_LIMIT:
                self._refusals.clear()
            answer = self._refusals[made] = render(decision, self.realm, self.public_url)
        return answer

    def missing(self) -> HttpAnswer:
        """The answer to a request without a key (its challenge included), decided by the
        verifier alone: no request was made, so nothing is recorded."""
        found = self.manager.verifier.inspect(())
        assert isinstance(found, Decision)
        return self.answer(found)

    def answer(self, decision: Decision) -> HttpAnswer:
        return render(decision, self.realm, self.public_url)

    def failure(self, error: KeyturnError) -> HttpAnswer:
        """The answer when no decision could be made (the store or Redis did not answer:
        503 with ``Retry-After``): each framework module maps ``keyturn.errors`` so, once."""
        return render_error(error, self.realm, public_url=self.public_url)

    def identity(self, record: KeyRecord) -> VerifiedKey:
        """One ``VerifiedKey`` per cached record, not one per request."""
        entry = self._identities.get(record.id)
        if entry is not None and entry[0] is record:
            return entry[1]
        if len(self._identities) >= _IDENTITY_LIMIT:
            self._identities.clear()
        verified = VerifiedKey.from_record(record)
        self._identities[record.id] = (record, verified)
        return verified

    def close(self) -> None:
        """Close the manager if this guard opened it from a URL."""
        if self.owns_manager:
            self.manager.close()


KeySource: TypeAlias = Guard | KeyManager | AsyncKeyManager | str | None
"""What every integration accepts as ``keys``: a guard, a manager, a store URL, or ``None``
for the settings of the environment (as ``keyturn serve`` reads them)."""
