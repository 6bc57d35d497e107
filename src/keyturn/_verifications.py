"""The verification log: every decision, recorded in batches off the hot path.

Every decision the core makes for a use of a key (``KeyManager.verify``, ``verify_asgi``,
``verify_key`` and their async twins, whichever face called them: ``/auth``, the verify
API, the admin API's own authentication, the ASGI middleware and the framework
integrations) is queued as one plain tuple (``Entry``): one ``deque.append``, no lock, no
I/O (``KeyManager`` appends it itself while the queue has ``room``, and hands it to
``VerificationLog.record`` otherwise, which starts the writer, or drops and counts). A face
tells what it knows of the request in a ``Seen`` (method, path, request id, user agent). A
background thread writes what has gathered every ``interval`` seconds (half a second by
default, so an entry is queryable within about that, and well within 2 s) and deletes
entries older than the retention. The queue is bounded: when the store cannot keep up
(or does not answer), entries past ``capacity`` are dropped and counted (``dropped``, on
``/metrics``), and a request never waits for the log.

What an entry holds: when, the request id, the key's id when the key is known (its mask is
found when the entry is written), the outcome code, the client's address as the request
showed it (the peer, and the forwarded addresses when the peer is a trusted proxy: the
client is worked out when the entry is written, not on the request), method, path, user
agent and the scopes the request needed (what least-privilege suggestions,
``keyturn._suggestions``, are made of). Never the key.

Why an entry is a plain tuple of strings and numbers, and not the decision and the
request's header list: a queue holds a few hundred thousand entries between two writes
under load, and every object in it that the garbage collector tracks (a decision, a header
list, a named tuple) is promoted through its generations and walked again by each full
collection; that made the log cost the hot path half again as much as the decision. A
tuple of untracked values is untracked at the first young collection and costs nothing
after. The header list is kept only where the writer must read it (a face that did not
find the user agent, or a peer that may be a trusted proxy).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from keyturn._addresses import parse_address
from keyturn._flusher import Flusher
from keyturn._redact import mask_text
from keyturn._request_ids import new_id

if TYPE_CHECKING:
    from keyturn._addresses import TrustedProxies
    from keyturn.store.base import KeyStore
    from keyturn.store.verification_rows import VerificationRow

log = logging.getLogger("keyturn.verifications")

READ_SCOPE = "verifications:read"
DEFAULT_RETENTION = 30 * 86_400.0
DEFAULT_CAPACITY = 100_000
MAX_TEXT = 512  # paths and user agents are cut to this many characters


def _text(value: str, limit: int) -> str:
    """What any engine stores: no NUL (PostgreSQL refuses one, and a batch it refuses
    would be retried for ever), at most ``limit`` characters."""
    return value[:limit].replace("\x00", "\ufffd")


def _shown(text: str, limit: int) -> str:
    """Client-written text as stored: every key in it masked, in whatever encoding it came
    (``keyturn._redact``: a key in a user agent or a percent-encoded path is still a key),
    then cut and cleaned (``_text``)."""
    return _text(mask_text(text), limit)


class Seen(NamedTuple):
    """What a face knows of a request, handed to the verify call so that the core records
    the decision (``KeyManager``): the method and path it judged, the request id it answers
    with (``None``: one is made when the entry is written), the user agent (``None``: to
    be read from ``headers`` when the entry is written), and the header pairs the writer
    must read, by reference: the forwarded addresses when the peer may be a trusted proxy,
    the user agent when not given; ``()`` when there is nothing to read (no proxy is
    trusted, the user agent given), so that the queue holds no header list."""

    method: str
    path: str
    request_id: str | None = None
    user_agent: str | None = None
    headers: Any = ()  # HeaderPairs; ``Any``: ``str`` or ASGI ``bytes`` pairs


def unseen(headers: Any, proxied: bool) -> tuple[Any, ...]:
    """``Seen``'s fields, as a plain tuple, for a request no face described (a direct call
    of the core): its user agent, read now so that the queue keeps no header list, and its
    headers only if a proxy is trusted (``proxied``: the writer reads the forwarded
    addresses then). It runs on every direct call: the ASGI pairs are looked through in
    line (no call, no encoded name) and no ``Seen`` is built, only the tuple the entry is
    made of."""
    for name, value in headers:
        if name == b"user-agent":
            return ("", "", None, value.decode("latin-1"), headers if proxied else ())
    return ("", "", None, _header(headers, "user-agent"), headers if proxied else ())


class Entry(NamedTuple):
    """One decision as the core queues it (``KeyManager``: the first five fields, then a
    ``Seen``'s, one tuple made by ``+``): what a request costs the log is this tuple and one
    ``deque.append``. The key's mask, the client's address (forwarded addresses are read
    only if the peer is a trusted proxy) and the user agent are worked out when the entry
    is written, off the hot path."""

    at: float
    outcome: str  # the outcome's code
    key_id: str | None
    peer: str | None
    # What the request needed (path rules, asked for); ``None``: not a set of scopes (a
    # permission expression, which may say ``not``).
    scopes: tuple[str, ...] | None
    method: str
    path: str
    request_id: str | None
    user_agent: str | None
    headers: Any


def user_agent(headers: Any) -> str:
    """The user agent among ASGI header pairs (lower-case ``bytes`` names), for a face
    that does not read the headers otherwise."""
    for name, value in headers:
        if name == b"user-agent":
            return str(value.decode("latin-1"))
    return ""


def _needed(needs: dict[tuple[str, ...], str], scopes: tuple[str, ...]) -> str:
    """The scopes a request needed as stored (space-separated, cleaned as ``_text``
    cleans: a scope a face did not check could hold a NUL; masked as ``_shown`` masks:
    ``/auth``'s scopes header is a client's words), kept in ``needs``."""
    text = needs[scopes] = mask_text(" ".join(scopes)).replace("\x00", "\ufffd")
    return text


def _header(headers: Any, name: str) -> str:
    """The first ``name`` header among pairs of ``str`` or of ASGI ``bytes``."""
    wanted = name.encode("latin-1")
    for key, value in headers:
        if key == wanted:  # ASGI's lower-case bytes, the hot path's
            return str(value.decode("latin-1"))
        if isinstance(key, str) and key.lower() == name:
            return str(value)
    return ""


@dataclass(frozen=True, slots=True)
class Verification:
    """An entry as stored and shown."""

    id: int
    at: datetime
    request_id: str
    key_id: str | None
    key: str | None
    outcome: str
    client: str | None
    method: str
    path: str
    user_agent: str
    scopes: tuple[str, ...] | None = None  # ``None``: logged before scopes were recorded

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "request_id": self.request_id,
            "key_id": self.key_id,
            "key": self.key,
            "outcome": self.outcome,
            "client": self.client,
            "method": self.method,
            "path": self.path,
            "user_agent": self.user_agent,
            "scopes": None if self.scopes is None else list(self.scopes),
        }


@dataclass(frozen=True, slots=True)
class Caller:
    """Who used a key, as the log groups it: one client, method and path, with how many
    requests (any outcome) and the last one's time."""

    client: str | None
    method: str
    path: str
    requests: int
    last_seen: datetime

    def public(self) -> dict[str, Any]:
        return {
            "client": self.client,
            "method": self.method,
            "path": self.path,
            "requests": self.requests,
            "last_seen": self.last_seen.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class KeyCallers:
    """Who used one key since a moment (for a rotated key: since its rotation)."""

    key_id: str
    since: datetime
    callers: tuple[Caller, ...]

    def public(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "since": self.since.isoformat(),
            "callers": [c.public() for c in self.callers],
        }


@dataclass(frozen=True, slots=True)
class VerificationFilter:
    key_id: str | None = None
    owner: str | None = None
    outcome: str | None = None
    request_id: str | None = None
    since: datetime | None = None


def _ignore(entry: tuple[Any, ...]) -> None:
    """``record`` of a log that is turned off."""


MASKS_KEPT = 10_000  # key ids whose masks the log remembers (``VerificationLog.masks``)


class VerificationLog:
    """A bounded queue of entries and the thread that writes them."""

    def __init__(
        self,
        store: KeyStore,
        proxies: TrustedProxies,
        *,
        interval: float = 0.5,
        retention: float = DEFAULT_RETENTION,
        capacity: int = DEFAULT_CAPACITY,
        enabled: bool = True,
    ) -> None:
        """``enabled=False``: ``record`` does nothing (the ``verification_log`` setting)."""
        self.store = store
        if not enabled:
            self.record = _ignore  # type: ignore[method-assign]
        self.proxies = proxies
        self.interval = interval
        self.retention = retention
        self.capacity = capacity
        self.dropped = 0
        self.queue: deque[tuple[Any, ...]] = deque()
        # key id -> the key's mask, for the writer: the core notes a key's mask when it
        # decides on a key it read (``KeyManager._logged``), so that the hot path queues
        # only the id; the writer reads one it does not find from the store.
        self.masks: dict[str, str] = {}
        # How full the queue may be for the hot path (``KeyManager``) to append an entry
        # itself, without the call to ``record``: the capacity once the writer runs; 0
        # until then and while the log is off, so the first entry (and every entry of a log
        # turned off) goes through ``record``, which starts the writer (or ignores it).
        self.room = 0
        self._writer = Flusher(self.flush, interval, "keyturn-verifications", log,
                               "verification log")
        self._purged = 0.0

    def record(self, entry: tuple[Any, ...]) -> None:
        """Queue an entry (``Entry``'s fields, a plain tuple); past ``capacity``, drop it
        and count it. Never blocks."""
        queue = self.queue
        if len(queue) >= self.capacity:
            self.dropped += 1
            return
        queue.append(entry)
        if self._writer.thread is None:
            self._writer.start()
            self.room = self.capacity

    def flush(self) -> int:
        """Write what has gathered (and purge what is past the retention, once a minute);
        the number of entries written."""
        queue = self.queue
        batch = [queue.popleft() for _ in range(len(queue))]
        if batch:
            try:
                self.store.record_verifications(self._rows(batch))
            except Exception:
                for entry in reversed(batch):  # back to the front, for the next flush
                    if len(queue) < self.capacity:
                        queue.appendleft(entry)
                    else:
                        self.dropped += 1
                raise
        now = time.time()
        if now - self._purged >= 60:
            self._purged = now
            self.store.purge_verifications(datetime.fromtimestamp(now - self.retention, UTC))
        return len(batch)

    def note_mask(self, key_id: str, masked: str) -> None:
        """Remember a key's mask for the writer (bounded: past ``MASKS_KEPT`` ids the
        memory starts again, and the writer reads what it misses from the store)."""
        masks = self.masks
        if len(masks) >= MASKS_KEPT:
            masks.clear()
        masks[key_id] = masked

    def _mask(self, key_id: str, gone: set[str]) -> str | None:
        """A key's mask the core did not note: read from the store (``None``: the key is
        gone, noted in ``gone`` so that a batch reads it once)."""
        if key_id in gone:
            return None
        record = self.store.get(key_id)
        if record is None:
            gone.add(key_id)
            return None
        self.note_mask(key_id, record.masked)
        return record.masked

    def _rows(self, batch: list[tuple[Any, ...]]) -> list[VerificationRow]:
        """The stored rows of queued entries (``Entry``'s fields, in order). What repeats
        from request to request (the client of a peer that is no trusted proxy, a path, a
        user agent) is worked out once per batch: masking a text or reading an address
        costs microseconds, and a batch holds the same few many times over."""
        proxies = self.proxies
        masks = self.masks
        clients: dict[str | None, str | None] = {}
        paths: dict[str, str] = {}
        agents: dict[str, str] = {}
        needs: dict[tuple[str, ...], str] = {}
        gone: set[str] = set()  # key ids the store no longer holds
        rows: list[VerificationRow] = []
        for at, code, key_id, peer, scopes, method, path, rid, agent, headers in batch:
            masked = None if key_id is None else masks.get(key_id) or self._mask(key_id, gone)
            if peer in clients:
                client = clients[peer]
            else:
                address = parse_address(peer) if peer else None
                if address is not None and address in proxies.set:
                    # A trusted proxy's forwarded addresses name the client: per request.
                    found = proxies.client(peer, headers)
                    client = None if found is None else str(found)
                else:
                    client = clients[peer] = None if address is None else str(address)
            if agent is None:
                agent = _header(headers, "user-agent")
            path_shown = paths.get(path)
            if path_shown is None:
                path_shown = paths[path] = _shown(path.partition("?")[0], MAX_TEXT)
            agent_shown = agents.get(agent)
            if agent_shown is None:
                agent_shown = agents[agent] = _shown(agent, MAX_TEXT)
            rows.append((
                at,
                _text(rid or new_id()[0], 128),
                key_id,
                masked,
                code,
                client,
                _shown(method, 16),  # a forwarded method is a client's words
                path_shown,
                agent_shown,
                None if scopes is None else needs.get(scopes) or _needed(needs, scopes),
            ))  # fmt: skip
        return rows

    def close(self) -> None:
        self._writer.stop()
        try:
            self.flush()
        except Exception as exc:
            log.warning("verification log not written at shutdown: %s", exc)
