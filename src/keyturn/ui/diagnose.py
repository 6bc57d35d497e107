"""Why was it rejected? Run pasted request headers, or a key, through the verifier.

The decision comes from the same code as ``keyturn check`` and the service: the manager's
``examine`` (the verifier's ``inspect`` and ``decide`` around one store lookup by hash, the
metering looked at but not counted) and ``keyturn.answer.render`` for the exact HTTP answer.
A diagnosis is a check, and a check is never a use: checking a customer's key here does not
touch its last-used time, its usage counts, its rate limit or its credits.

Pasted material often holds a live key. Nothing pasted is sent back: the page shows the
headers as checked with every credential masked, and every text it renders (details,
challenge, body) passes through the service's key masking.

A masked key (``kt_live_4fQz…9aB1``, as logs and this dashboard show them) cannot be
verified, but it names its key: the keys with that prefix, start and end are found and each
is put through ``decide`` as if it had been presented.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from keyturn.actor import Actor
from keyturn.answer import HttpAnswer, render
from keyturn.credentials import Presented
from keyturn.keys import mask
from keyturn.manager import AsyncKeyManager
from keyturn.outcomes import Outcome
from keyturn.permissions import Node
from keyturn.record import KeyRecord
from keyturn.store import KeyFilter
from keyturn.verifier import Candidate, Decision, Origin

MAX_HEADERS = 100
MASKED_SCAN_LIMIT = 5000
_PAGE = 500
_REQUEST_LINE = re.compile(r"^[A-Z]{3,10} (\S+)( HTTP/[\d.]+)?$")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# kt_live_4fQz…9aB1 (or "..." for the ellipsis, as it survives some copy and paste).
_MASKED = re.compile(r"([a-z0-9][a-z0-9_]{0,31})_([0-9A-Za-z]{4})(?:…|\.\.\.)([0-9A-Za-z]{4})")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class Masker(Protocol):
    """Masks keys in what the dashboard shows (the service's redactor)."""

    def text(self, value: str) -> str: ...

    def uri(self, value: str) -> str: ...


class PasteError(ValueError):
    """The pasted text cannot be read as a request; the message says which line and why."""


@dataclass(frozen=True, slots=True)
class PastedRequest:
    headers: list[tuple[str, str]]
    query: str = ""
    ignored: list[int] = field(default_factory=list)


def parse_pasted(text: str) -> PastedRequest:
    """Headers as browsers' developer tools and ``curl -v`` copy them: ``Name: value`` per
    line, an optional request line first (its query string is kept: keys travel there too),
    ``-H '...'`` and ``> `` prefixes tolerated. HTTP/2 pseudo-headers are skipped."""
    headers: list[tuple[str, str]] = []
    query = ""
    ignored: list[int] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith(("> ", "< ")):
            line = line[2:].strip()
        if line.startswith("-H "):
            line = line[3:].strip().strip("'\"")
        if not line:
            continue
        request_line = _REQUEST_LINE.match(line)
        if request_line and not headers:
            query = urlsplit(request_line.group(1)).query
            continue
        if line.startswith(":"):
            name, _, value = line[1:].partition(":")
            if name.strip().lower() == "path":
                query = urlsplit(value.strip()).query
            continue
        name, colon, value = line.partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name.strip()):
            ignored.append(number)
            continue
        headers.append((name.strip(), value.strip(" \t")))
        if len(headers) > MAX_HEADERS:
            raise PasteError(f"more than {MAX_HEADERS} headers; paste only the request's")
    return PastedRequest(headers, query, ignored)


def masked_headers(
    headers: Sequence[tuple[str, str]], key_headers: Sequence[str], redactor: Masker
) -> list[tuple[str, str]]:
    """The headers fit to show: credential values masked whole, key-shaped text anywhere."""
    credentials = _CREDENTIAL_HEADERS | {h.lower() for h in key_headers}
    shown = []
    for name, value in headers:
        if name.lower() in credentials and value:
            scheme, space, rest = value.partition(" ")
            value = f"{scheme} {mask(rest.strip())}" if space and rest.strip() else mask(value)
        shown.append((name, redactor.text(value)))
    return shown


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """One decision, as the page shows it."""

    decision: Decision
    answer: HttpAnswer
    headers: list[tuple[str, str]]
    body: str
    detail: str
    hint: str
    # The stored key the credentials named, also when it was refused (the admin may read
    # keys; the client who sent them learns nothing from this).
    key: KeyRecord | None = None

    @property
    def outcome(self) -> Outcome:
        return self.decision.outcome


def explain(
    decision: Decision,
    realm: str,
    redactor: Masker,
    record: KeyRecord | None = None,
    public_url: str | None = None,
) -> Diagnosis:
    answer = render(decision, realm, public_url)
    body = redactor.text(json.dumps(answer.body, indent=2, ensure_ascii=False))
    headers = [(name, redactor.text(value)) for name, value in answer.headers]
    return Diagnosis(
        decision,
        answer,
        headers,
        body,
        redactor.text(decision.detail),
        redactor.text(decision.hint),
        record or decision.key,
    )


class Diagnostician:
    """Checks (never uses), from the manager's verifier and store."""

    def __init__(
        self,
        manager: AsyncKeyManager,
        realm: str,
        redactor: Masker,
        public_url: str | None = None,
    ) -> None:
        self._manager = manager
        self._realm = realm
        self._public_url = public_url
        self._redactor = redactor

    async def request(
        self,
        pasted: PastedRequest,
        scopes: tuple[str, ...] = (),
        ip: str | None = None,
        permissions: Node | None = None,
    ) -> Diagnosis:
        """Judge a pasted request. ``ip``: the address it came from (as the verify API's
        ``ip`` and ``keyturn check --ip``), else a key restricted by address is
        ``ip_not_allowed``; with the pasted headers it is the peer, so a trusted proxy's
        X-Forwarded-For names the client. ``permissions``: an expression the key must meet
        as well (``keyturn check --permissions``), parsed by the caller."""
        found = self._manager.verifier.inspect(pasted.headers, pasted.query)
        return await self._finish(found, scopes, (ip, pasted.headers), permissions)

    async def key(
        self,
        key: str,
        scopes: tuple[str, ...] = (),
        ip: str | None = None,
        permissions: Node | None = None,
    ) -> Diagnosis:
        """Judge a bare key, ``ip`` and ``permissions`` as for ``request``."""
        found = self._manager.verifier.inspect_key(key)
        return await self._finish(found, scopes, (ip, ()), permissions)

    async def _finish(
        self,
        found: Candidate | Decision,
        scopes: tuple[str, ...],
        origin: Origin,
        permissions: Node | None,
    ) -> Diagnosis:
        decision, record = await self._manager.examine(
            found, scopes, origin=origin, permissions=permissions
        )
        return explain(decision, self._realm, self._redactor, record, self._public_url)

    async def masked(
        self,
        actor: Actor,
        text: str,
        scopes: tuple[str, ...] = (),
        ip: str | None = None,
        permissions: Node | None = None,
    ) -> tuple[list[tuple[KeyRecord, Diagnosis]], bool]:
        """Each key ``actor`` may read whose mask is ``text``, with the decision it would get
        now; and whether the search stopped at ``MASKED_SCAN_LIMIT`` keys before the end."""
        match = parse_masked(text)
        if match is None:
            return [], False
        prefix, start, end = match
        found, complete = await self._scan(actor, prefix, start, end)
        verifier = self._manager.verifier
        results = []
        for record in found:
            candidate = Candidate(Presented(record.masked, "masked key"), record.key_hash)
            decision = verifier.decide(candidate, record, None, scopes, (ip, ()), permissions)
            results.append(
                (record, explain(decision, self._realm, self._redactor, record, self._public_url))
            )
        return results, not complete

    async def _scan(
        self, actor: Actor, prefix: str, start: str, end: str
    ) -> tuple[list[KeyRecord], bool]:
        found: list[KeyRecord] = []
        after: str | None = None
        scanned = 0
        keys = self._manager.admin
        while scanned < MASKED_SCAN_LIMIT:
            page = await keys.list_keys(actor, KeyFilter(prefix=prefix), limit=_PAGE, after=after)
            found += [r for r in page if r.start == start and r.end == end]
            scanned += len(page)
            if len(page) < _PAGE:
                return found, True
            after = page[-1].id
        return found, False


def parse_masked(text: str) -> tuple[str, str, str] | None:
    """(prefix, start, end) of a masked key, or ``None`` if ``text`` is not one."""
    match = _MASKED.fullmatch(text.strip())
    return (match.group(1), match.group(2), match.group(3)) if match else None
