"""The verification log: every decision, recorded in batches off the hot path.

Every decision the core makes for a use of a key (``KeyManager.verify``, ``verify_asgi``,
``verify_key`` and their async twins, whichever face called them: ``/auth``, the verify
API, the admin API's own authentication, the ASGI middleware and the framework
integrations) is queued as the fields of one plain tuple (``Entry``): one
``list.extend``, no lock, no I/O (``KeyManager`` queues it itself while the log is open,
``open_from`` to ``open_until``, and hands it to ``VerificationLog.record`` otherwise,
which starts the writer, keeps the queue within its bound, or drops and counts). A face
tells what it knows of the request in a ``Seen`` (method, path, request id, user agent). A
background thread writes what has gathered every ``interval`` seconds (half a second by
default, so an entry is queryable within about that, and well within 2 s; at once when
``WAKE_AT`` entries have gathered sooner) and deletes
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
after. Nor is the tuple itself queued, but its fields, flat (``FIELDS`` to an entry): a
queued tuple is still one more object the collector tracks per request, and the young
collections they set off (one each 700 requests, walking whatever the writer's thread held
then) were most of what the log cost the serving thread (callgrind, a cached verify as the
ASGI middleware makes it: 24.9k instructions with the log on, 22.2k off). A ``list.extend``
of a tuple is atomic, so the queue always holds whole entries. The queue is a list, not a
``deque``: a list extends by a tuple in one copy of its references, where a deque takes
each item through an iterator (about 380 instructions more for an entry's ten fields, a
fifth of what the log cost the serving thread). The header list is kept only where the
writer must read it (a peer that may be a trusted proxy).

The user agent a face leaves to the core is queued as the core found it among the headers
(``Entry.sent``: ASGI bytes, on every path) and decoded by the writer: putting its text in the
``Seen``'s place cost the hot path a call (the memo of the last user agent's text) and four
look-ups into the ``Seen`` (a tuple subclass, so each a generic subscript), 1,200 of the
2,800 instructions the log cost the middleware's call (callgrind; 1,550 since, of 18,400
with the log off). The writer pays about 200 an entry to compare and decode them, and the
queue holds each request's header bytes until they are written. Measured and not kept: a
bound ``extend`` (160 instructions more than the method call). Not tried, as they could
not pay: a memo per key record of the entry's constant part (outcome, key, scopes, method:
the ``Seen``'s path and request id would still be looked up one by one, about 130
instructions each), and the time taken from the request id (the moment its run of 256 ids
began, not the request's).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate, chain, compress, count, islice, repeat, starmap
from operator import add, call, floordiv, getitem, is_, le, mul, ne, sub
from typing import TYPE_CHECKING, Any, NamedTuple

from keyturn._addresses import address_text, parse_address
from keyturn._flusher import Flusher
from keyturn._redact import SHORTEST_KEY, mask_text
from keyturn._request_ids import new_id
from keyturn.errors import KeyturnError
from keyturn.store.verification_blocks import (
    MOST_ENTRIES,
    TAIL,
    pack_each,
    pack_texts,
    pack_times,
    split_request_id,
    uniform,
)
from keyturn.store.verification_rows import BLOCK_COLUMNS, LATE, SHAPE_REUSE

if TYPE_CHECKING:
    from keyturn._addresses import TrustedProxies
    from keyturn.store.base import KeyStore
    from keyturn.store.verification_rows import LateRow, ShapeRow

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


def _stored_path(path: str) -> str:
    """A path as stored, worked out once per distinct path of a batch (``_rows``): without
    its query (where keys and tokens are sent), masked and cut (``_shown``). A path shorter
    than any key, as most are, is kept as it is unless it holds a NUL: one call where the
    masking took four (a batch of a new path each costs the writer a call per entry)."""
    path = path.partition("?")[0]
    if len(path) < SHORTEST_KEY and "\x00" not in path:
        return path
    return _shown(path, MAX_TEXT)


def _peer_address(peer: str | None) -> str | None:
    """A peer's address as stored, where no proxy is trusted: the peer is the client."""
    return address_text(peer) if peer else None


class Seen(NamedTuple):
    """What a face knows of a request, handed to the verify call so that the core records
    the decision (``KeyManager``): the method and path it judged, the request id it answers
    with (``None``: one is made when the entry is written), the user agent (``None``: read
    by the core from the request's headers when it records the decision, which costs the
    ASGI fast path nothing more than its look through them for the key: the core queues the
    header as it found it, ``Entry.sent``, for the writer to decode), and the header
    pairs the writer must read, by reference: the forwarded addresses when the peer may be
    a trusted proxy; ``()`` when there is nothing to read (no proxy is trusted), so that
    the queue holds no header list."""

    method: str
    path: str
    request_id: str | None = None
    user_agent: str | None = None
    headers: Any = ()  # HeaderPairs; ``Any``: ``str`` or ASGI ``bytes`` pairs


UNSEEN: tuple[Any, ...] = ("", "", None, None, ())
"""``Seen``'s fields for a request no face described (a direct call of the core) when no
proxy is trusted: nothing for the writer to read but the user agent, which the core queues
as it found it (``Entry.sent``)."""


def unseen(headers: Any, proxied: bool) -> tuple[Any, ...]:
    """``Seen``'s fields, as a plain tuple, for a request no face described: its headers
    only if a proxy is trusted (``proxied``: the writer reads the forwarded addresses
    then), so that the queue keeps no header list otherwise."""
    return ("", "", None, None, headers) if proxied else UNSEEN


def sent_agent(headers: Any) -> Any:
    """The first user agent among pairs of ASGI ``bytes`` or of ``str`` as sent, ``None``
    when none was: queued as it is (``Entry.sent``), decoded by the writer (``_sent_text``),
    as the ASGI fast path queues the one it finds."""
    for name, value in headers:
        if name == b"user-agent" or (isinstance(name, str) and name.lower() == "user-agent"):
            return value
    return None


class Entry(NamedTuple):
    """One decision as the core queues it (``KeyManager``: the first six fields, then a
    ``Seen``'s, one tuple made by ``+``): what a request costs the log is this tuple and one
    ``list.extend``. The key's mask, the client's address (forwarded addresses are read
    only if the peer is a trusted proxy) and the user agent are worked out when the entry
    is written, off the hot path."""

    at: float
    outcome: str  # the outcome's code
    key_id: str | None
    peer: str | None
    # What the request needed (path rules, asked for); ``None``: not a set of scopes (a
    # permission expression, which may say ``not``).
    scopes: tuple[str, ...] | None
    # The user agent header as the core found it (as sent: ASGI bytes, or a ``str`` pair's
    # text; ``None``: none sent), for a ``Seen`` that left the user agent to the core
    # (``user_agent`` ``None``, or no ``Seen``): decoded by the writer, once per distinct
    # value of a batch, where the hot path would have made a call and four look-ups into
    # the ``Seen`` to put its text in its place.
    sent: bytes | str | None
    method: str
    path: str
    request_id: str | None
    user_agent: str | None
    headers: Any


FIELDS = len(Entry._fields)  # the queue's items to an entry


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


def _taken(queue: list[Any]) -> list[Any]:
    """All the queue holds, taken out of it: whole entries (see ``FIELDS``). Copied, then
    cleared, by two C calls chained in C (``starmap`` consumed by ``any``: the calls return
    ``None``), so that no thread runs between them and an entry queued meanwhile cannot be
    cleared uncopied. Neither call allocates an object the collector tracks (a list
    extended by a list copies its references), so no collection, and no finalizer's
    Python code, can run between them either."""
    taken: list[Any] = []
    any(starmap(call, ((taken.extend, queue), (queue.clear,))))
    return taken


def _ignore(entry: tuple[Any, ...]) -> None:
    """``record`` of a log that is turned off."""


# The hot path queues without counting (``VerificationLog.record``) for OPEN_FOR seconds,
# while the queue has room for OPEN_ROOM more entries (500,000 a second).
OPEN_FOR = 0.05
OPEN_ROOM = 25_000
# The writer is woken (``record``) once the queue holds WAKE_AT entries, not left to its
# interval: entries queued faster than the capacity an interval (200,000 a second; one
# process's tight loop of cached verifies queues 800,000) would fill the queue before the
# interval ends, and the rest be dropped, where the writer keeps up (half a microsecond an
# entry of repeating traffic, against a cached verify's one).
WAKE_AT = 25_000
MASKS_KEPT = 10_000  # key ids whose masks the log remembers (``VerificationLog.masks``)
# Shapes the writer names by id (then it starts again). An entry of a shape it does not
# name costs its shape's row too: several times an entry of a known shape. A shape names a
# key, a user agent and the scopes asked for, which a client of /auth chooses
# (X-Keyturn-Required-Scopes), so what is kept here must stay small whatever clients send:
# 1,000 shapes hold about 250 KB (a tuple of references to texts the entries brought, each
# no longer than a stored text: ``_small``). Traffic of more shapes than that an hour pays
# the new shape's price on most entries.
SHAPES_KEPT = 1_000


def _small(key: tuple[Any, ...]) -> bool:
    """Whether the writer may remember a shape (``_rows``): its key holds the user agent,
    method and scopes as the client sent them, so one whose texts are longer than a stored
    text is written but not kept (else clients, with or without a key, could fill the
    memory with ``SHAPES_KEPT`` long user agents). Not cut instead: the stored text is
    masked before it is cut, and a cut could split a key the masker would then miss."""
    scopes = key[2]
    size = len(key[3]) + len(key[4] or "")
    if scopes is not None:
        size += sum(map(len, scopes))
    return size <= MAX_TEXT


def _through(column: tuple[Any, ...], work_out: Callable[[Any], Any]) -> list[Any]:
    """``work_out`` of each value of a batch's ``column``, called once per distinct value,
    the column made in C: a list of one value for a column that holds one (most do, in a
    batch of one client's requests), else a ``map`` through the distinct values' dict."""
    if uniform(column):
        return [work_out(column[0])] * len(column)
    done = {value: work_out(value) for value in set(column)}
    return list(map(done.__getitem__, column))


def _sent_text(sent: Any) -> str:
    """A user agent the core found (``Entry.sent``) as stored: "" where none was sent. The
    value is the scope's, queued as it was: bytes from a server, but a scope made by hand
    may hold a ``str`` or a ``bytearray``, written as its text too (an entry the writer
    cannot write would fail its batch at every retry, and the log with it)."""
    if sent is None:
        return ""
    try:
        return str(sent, "latin-1")  # bytes, or any buffer
    except TypeError:  # no buffer: text already, or whatever a hand-made scope holds
        return str(sent)


def _agents(told: tuple[Any, ...], sent: tuple[Any, ...]) -> Sequence[str]:
    """A batch's user agents (columns of ``Entry``'s ``user_agent`` and ``sent``): the one
    each face told, else (``None``) the header the core found, decoded once per distinct
    value (each, if a value cannot be a dict's key: a hand-made scope's ``bytearray``). A
    batch of one face's entries is told apart by one C loop (``uniform``, by identity: one
    text, or ``None`` each)."""
    if uniform(told):
        if told[0] is not None:
            return told
        try:
            return _through(sent, _sent_text)
        except TypeError:
            return list(map(_sent_text, sent))
    agents = list(told)
    for i in compress(range(len(agents)), map(is_, agents, repeat(None))):
        agents[i] = _sent_text(sent[i])
    return agents


_HEAD = slice(None, -TAIL)  # a request id longer than its tail: its head, its tail
_TAIL = slice(-TAIL, None)


def _numbered(column: Sequence[Any]) -> tuple[list[int] | None, int]:
    """Each value of a batch's column numbered among the column's distinct values (first
    seen, first numbered), and how many there are; ``None`` for a column of one value."""
    if uniform(column):
        return None, 1
    seen = dict.fromkeys(column)
    if len(seen) == len(column):  # all different (a proxy's random ids): numbered in order
        return list(range(len(column))), len(column)
    distinct = dict(zip(seen, count(), strict=False))
    return list(map(distinct.__getitem__, column)), len(distinct)


def _grouped(*columns: Sequence[Any]) -> tuple[list[int] | None, bool, bool]:
    """Each entry's block, numbered (``None``: the batch is one block), by its numbers
    among the batch's values of each column (ints, so no tuple an entry for the
    collector to count and walk: a batch of many clients set off a collection every few
    hundred entries, which walked the batch's columns); whether the numbers are of more
    than one column (then not in the order of the blocks' first entries); and whether
    every entry is alone in its block (a column of values all different)."""
    numbers: list[int] | None = None
    combined = False
    for column in columns:
        found, size = _numbered(column)
        if size == len(column):  # every entry a block of its own
            return found, False, True
        if found is not None:
            combined = numbers is not None
            numbers = found if numbers is None else \
                list(map(add, map(mul, numbers, repeat(size)), found))
    return numbers, combined, False


def _loose(
    numbers: list[int] | None, counted: Counter[int] | None, heads: Sequence[str]
) -> Sequence[int]:
    """The places of a batch's loose entries: those alone in their block (``counted``: the
    entries of each block, ``None`` when every entry is alone; a request id whose head no
    other entry of the key and shape shares: a trusted proxy's random ids, nginx's
    ``$request_id`` or UUIDs), and those of an empty request id (head "", which is a loose
    block's: see ``_loosened``; ``heads`` is empty when no id is that short). A batch of
    runs (no block of one) is told by its blocks, without a look at each entry."""
    if numbers is None:  # one block
        return range(len(heads)) if heads and not heads[0] else ()
    if counted is None:
        return range(len(numbers))
    lone = {number for number, size in counted.items() if size == 1}
    found: Sequence[int] = \
        list(compress(range(len(numbers)), map(lone.__contains__, numbers))) if lone else ()
    if "" in heads:
        found = sorted({*found, *(i for i, head in enumerate(heads) if not head)})
    return found


def _loosened(
    loose: Sequence[int], ats: Sequence[float], key_ids: Sequence[str | None],
    shapes: Sequence[int], heads: Sequence[str], tails: Sequence[str], rids: Sequence[str],
) -> tuple[Sequence[str], Sequence[str], Sequence[float | None]]:
    """The heads and tails of a batch whose ``loose`` entries are grouped again, by key,
    shape and minute (``LATE``), and each entry's minute (``None`` for an entry not loose),
    the column that keeps loose blocks apart.

    A block of one is a row and its index entries for one entry (about 36,000 writer
    instructions on SQLite, where a row an entry cost 19,500), and a proxy's random ids
    made every entry one. A loose entry's head is "" and its tail its whole request id (so
    ``verification_blocks.unpack`` gives it back), and the store indexes its id by its
    request id in ``verification_requests`` (a narrow row: the entry's id and the request
    id), where a lookup by request id finds it. No request id but "" has the head "" (an
    id of two characters or fewer is all head), so a loose block is one of head "".

    A loose block holds one minute's entries: a block is purged whole once its newest
    entry is due, and a batch written after an outage, or holding an entry dated ahead,
    would otherwise keep its older entries that much past the retention (a run of
    keyturn's ids is of one moment). An entry alone in its key, shape and minute too keeps
    its head: its block would still be of one, and the side row only a cost; unless its
    id is "", whose head is a loose block's."""
    new_heads: list[str]
    new_tails: list[str]
    minutes: list[float | None]
    if len(loose) == len(heads):
        new_heads, new_tails = [""] * len(heads), list(rids)
        first = min(ats) // LATE  # most batches are of one minute: a column of one value
        minutes = [first] * len(ats) if max(ats) // LATE == first else \
            list(map(floordiv, ats, repeat(LATE)))
    else:
        new_heads, new_tails, minutes = list(heads), list(tails), [None] * len(heads)
        for i in loose:
            new_heads[i], new_tails[i], minutes[i] = "", rids[i], ats[i] // LATE
    regrouped, _, _ = _grouped(key_ids, shapes, new_heads, minutes)
    if regrouped is not None:
        sizes = Counter(regrouped)
        for i in loose:
            if sizes[regrouped[i]] == 1 and heads[i]:
                new_heads[i], new_tails[i], minutes[i] = heads[i], tails[i], None
    return new_heads, new_tails, minutes


def _blocks(
    ats: Sequence[float], rids: Sequence[str], key_ids: Sequence[str | None],
    shapes: Sequence[int], clients: Sequence[str | None], paths: Sequence[str],
    late_before: float, late: list[LateRow],
) -> list[Any]:
    """A batch's entries (by column, in queue order) as blocks (``verification_blocks``):
    the entries sharing a key id, shape and request-id head are one block (cut into
    consecutive blocks of ``MOST_ENTRIES`` when longer), in the order they were queued,
    and the blocks are in the order of their first entries; one flat list of
    ``BLOCK_COLUMNS`` a block, the ids left to the store. The places of the
    blocks holding an entry dated before ``late_before`` go to ``late``, with their times.

    What is done entry by entry is done by C loops: the heads and tails sliced off by
    ``map``; each entry's block a number made of its key's, shape's and head's
    numbers among the batch's (ints, so no tuple an entry for the collector to count and
    walk: a batch of many clients set off a collection every few hundred entries, which
    walked the batch's columns); the entries put in block order by one ``sorted``
    (stable, so queue order holds within a block) unless they are in it already, the
    columns reordered by ``map``, the blocks of one entry packed by ``map`` and joins
    (``verification_blocks.pack_each``). Python runs once a block of several entries."""
    entries = len(ats)
    short = min(map(len, rids)) <= TAIL
    if not short:
        heads: Sequence[str] = list(map(getitem, rids, repeat(_HEAD)))
        tails: Sequence[str] = list(map(getitem, rids, repeat(_TAIL)))
    else:  # an id of two characters or fewer is all head
        heads, tails = zip(*map(split_request_id, rids), strict=True)
    numbers, combined, alone = _grouped(key_ids, shapes, heads)
    counted = None if numbers is None or alone else Counter(numbers)
    loose = _loose(numbers, counted, heads if short else ())
    if loose:  # grouped again, by key, shape and minute, their head ""
        heads, tails, minutes = _loosened(loose, ats, key_ids, shapes, heads, tails, rids)
        numbers, combined, _ = _grouped(key_ids, shapes, heads, minutes)
        counted = None if numbers is None else Counter(numbers)
    order: list[int] | None = None  # the entries in block order, unless queued so
    if numbers is None or counted is None:  # one block: the batch as it is
        ends = [entries]
    else:
        if combined:  # numbered again, in the order of the blocks' first entries
            places = dict(zip(dict.fromkeys(numbers), count(), strict=False))
            numbers = list(map(places.__getitem__, numbers))
        # First seen, first counted: the blocks in the order of their first entries (the
        # numbering again keeps that order).
        ends = list(accumulate(counted.values()))
        # Blocks whose entries were queued together (runs of keyturn's ids, a proxy's
        # random ids) are in order already; else the entries are put in block order.
        if not all(map(le, numbers, islice(numbers, 1, None))):
            order = sorted(range(entries), key=numbers.__getitem__)
            ats = list(map(ats.__getitem__, order))
            tails = list(map(tails.__getitem__, order))
            paths = list(map(paths.__getitem__, order))
            clients = list(map(clients.__getitem__, order))
    starts = [0, *ends[:-1]]
    sizes = list(map(sub, ends, starts))
    if max(sizes) > MOST_ENTRIES:
        starts, ends = _capped(starts, ends)
        sizes = list(map(sub, ends, starts))
    # Each block's first entry, by its place in the batch: what the block's entries share.
    firsts: Sequence[int] = starts if order is None else list(map(order.__getitem__, starts))
    # Each block packed as if it held its first entry alone (C loops: a batch of a
    # proxy's random request ids is mostly blocks of one), then the
    # blocks of more than one entry one by one. (Packing those in C loops too ran fewer
    # instructions, but kept a list or slice a block until the end, which set off
    # collections that walked the batch's columns, and cost more than it saved.)
    newest = list(map(ats.__getitem__, starts))
    packed_tails = pack_each(list(map(tails.__getitem__, starts)))
    packed_paths = pack_each(list(map(paths.__getitem__, starts)))
    packed_clients = pack_each(list(map(clients.__getitem__, starts)))
    times: list[bytes | None] = [None] * len(starts)
    for place in compress(range(len(starts)), map(ne, sizes, repeat(1))):
        start, end = starts[place], ends[place]
        block_times = ats[start:end]
        newest[place] = max(block_times)
        times[place] = pack_times(block_times)
        packed_tails[place] = pack_texts(tails[start:end])
        packed_paths[place] = pack_texts(paths[start:end])
        packed_clients[place] = pack_texts(clients[start:end])
    width = len(BLOCK_COLUMNS)
    values: list[Any] = [None] * (len(starts) * width)  # ``id``: the store's
    values[1::width] = newest
    values[2::width] = sizes
    values[3::width] = map(key_ids.__getitem__, firsts)
    values[4::width] = map(shapes.__getitem__, firsts)
    values[5::width] = map(heads.__getitem__, firsts)
    values[6::width] = packed_tails
    values[7::width] = times
    values[8::width] = packed_paths
    values[9::width] = packed_clients
    if min(ats) < late_before:  # rare: entries queued while the store was down
        late.extend((place, newest[place]) for place, start, end in zip(count(), starts, ends)
                    if min(ats[start:end]) < late_before)  # fmt: skip
    return values


def _capped(starts: list[int], ends: list[int]) -> tuple[list[int], list[int]]:
    """Blocks (their entries' places ``starts[i]:ends[i]``) of more than ``MOST_ENTRIES``
    entries cut into consecutive blocks of ``MOST_ENTRIES`` and the rest: a trusted proxy
    passing one request id on every request would make a batch one block, and every read
    of an entry in it unpack the whole batch's texts."""
    capped_starts: list[int] = []
    for start, end in zip(starts, ends, strict=True):
        capped_starts.extend(range(start, end, MOST_ENTRIES))
    return capped_starts, [*capped_starts[1:], ends[-1]]


class _Batch:
    """What the writer works out once per batch: a client's address from a peer, and for
    the new shapes in it a masked text, the key ids the store no longer holds."""

    __slots__ = ("clients", "gone", "texts")

    def __init__(self) -> None:
        self.clients: dict[str | None, str | None] = {}
        self.texts: dict[str, str] = {}
        self.gone: set[str] = set()

    def shown(self, text: str) -> str:
        """``_shown``, once per text a batch holds."""
        shown = self.texts.get(text)
        if shown is None:
            shown = self.texts[text] = _shown(text, MAX_TEXT)
        return shown


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
        self.queue: list[Any] = []  # ``Entry``'s fields, entry after entry
        # key id -> the key's mask, for the writer: the core notes a key's mask when it
        # decides on a key it read (``KeyManager._logged``), so that the hot path queues
        # only the id; the writer reads one it does not find from the store.
        self.masks: dict[str, str] = {}
        # From and until when (the entries' clock) the hot path (``KeyManager``) may queue an
        # entry itself, without the call to ``record`` nor a look at the queue's length: floats
        # compared with the time the hot path has read anyway, where the length was a call
        # and a new int (360 instructions of a cached verify's 1,900 for the log,
        # callgrind). 0 until the writer runs and while the log is off, so the first entry
        # (and every entry of a log turned off) goes through ``record``, which starts the
        # writer (or ignores it); see ``record`` for how the bound is kept.
        self.open_from = self.open_until = 0.0
        self._writer = Flusher(self.flush, interval, "keyturn-verifications", log,
                               "verification log")
        self._purged = 0.0
        # What the writer knows of the shapes it stored (``_rows``): shape key -> id, and
        # since when (it forgets them all after ``SHAPE_REUSE``).
        self._shapes: dict[tuple[Any, ...], int] = {}
        self._shapes_from = 0.0

    def record(self, entry: tuple[Any, ...]) -> None:
        """Queue an entry (``Entry``'s fields, a plain tuple); past ``capacity`` entries,
        drop it and count it. Never blocks.

        The hot path queues without this call until ``open_until``, which is opened here
        for ``OPEN_FOR`` seconds past the entry's time, and only while the queue has room
        for ``OPEN_ROOM`` more entries, more than one process can queue in that time (a
        cached verify takes microseconds): so the queue stays within its capacity, and once
        it is that full every entry comes here, is counted against the capacity and dropped
        past it (a log of a smaller capacity counts every entry here). The window is a span
        of the wall clock, ``open_from`` to ``open_until``: a clock stepped back (an NTP
        correction) leaves it, and the writer closes it each time it takes the queue
        (``flush``), so the bound holds even while the store does not answer. A queue of
        ``WAKE_AT`` entries or more wakes the writer."""
        queue = self.queue
        size = len(queue)
        if size >= self.capacity * FIELDS:
            self.dropped += 1
            return
        queue.extend(entry)
        if self._writer.thread is None:
            self._writer.start()
        if size < (self.capacity - OPEN_ROOM) * FIELDS:
            self.open_from = entry[0]
            self.open_until = entry[0] + OPEN_FOR
        if size >= WAKE_AT * FIELDS:
            self._writer.wake()

    def flush(self) -> int:
        """Write what has gathered (and purge what is past the retention, once a minute);
        the number of entries written. While the store fails (it does not answer, is locked
        or full) the entries go back to the queue; an entry the writer cannot take is
        dropped alone, counted and logged."""
        queue = self.queue
        self.open_until = 0.0  # the next entry is counted by ``record``
        # A tuple, which the collector stops tracking at its first pass when every item is
        # a plain value (no headers kept), where a list is walked by each collection while
        # the batch is written.
        batch = tuple(_taken(queue))
        pieces = [batch] if batch else []  # what is left to write, the next piece last
        written = 0
        refused: list[BaseException] = []  # why each entry no store would take was dropped
        try:
            while pieces:
                piece = pieces.pop()
                try:
                    late: list[LateRow] = []
                    self.store.record_verifications(self._rows(piece, late), late)
                    written += len(piece) // FIELDS
                except KeyturnError:
                    # The store's (down, locked, full): back to the front for the next
                    # flush, the newest entries that fit.
                    unwritten = piece + tuple(chain.from_iterable(reversed(pieces)))
                    fit = max(0, self.capacity * FIELDS - len(queue)) // FIELDS * FIELDS
                    kept = unwritten[max(0, len(unwritten) - fit) :]
                    queue[:0] = kept
                    self.dropped += (len(unwritten) - len(kept)) // FIELDS
                    raise
                except Exception as exc:
                    # Not the store's: a value in the piece the writer cannot take (one no
                    # face should have queued; a bug). Written again as it is, it would fail
                    # at every flush and stop the log for every entry queued behind it; so
                    # the piece is halved until the entry is found, and that entry alone is
                    # dropped.
                    if len(piece) == FIELDS:
                        refused.append(exc)
                        continue
                    half = len(piece) // FIELDS // 2 * FIELDS
                    pieces += (piece[half:], piece[:half])
        finally:  # counted and said also when the store fails later in the same flush
            if refused:
                self.dropped += len(refused)
                log.error("%d verification log entries could not be written and were dropped",
                          len(refused), exc_info=refused[0])  # fmt: skip
        now = time.time()
        if now - self._purged >= 60:
            self._purged = now
            self.store.purge_verifications(datetime.fromtimestamp(now - self.retention, UTC))
        return written

    def note_mask(self, key_id: str, masked: str) -> None:
        """Remember a key's mask for the writer (bounded: past ``MASKS_KEPT`` ids the
        memory starts again, and the writer reads what it misses from the store)."""
        masks = self.masks
        if len(masks) >= MASKS_KEPT:
            masks.clear()
        masks[key_id] = masked

    def _mask(self, key_id: str, work: _Batch) -> str | None:
        """A key's mask the core did not note: read from the store (``None``: the key is
        gone, noted in ``work`` so that a batch reads it once)."""
        if key_id in work.gone:
            return None
        record = self.store.get(key_id)
        if record is None:
            work.gone.add(key_id)
            return None
        self.note_mask(key_id, record.masked)
        return record.masked

    def _rows(self, batch: tuple[Any, ...], late: list[LateRow]) -> list[Any]:
        """The stored blocks of queued entries (``Entry``'s fields, flat), made by
        ``_blocks`` of each entry's time, request id, key id, the id of its shape (what
        repeats from request to request, stored once: ``verification_rows``), its path
        (masked once per batch) and its client's address (worked out once per peer and
        batch). An entry's
        shape is found by what the request showed (outcome, key, scopes, method, user
        agent) among the shapes this writer made. The batch is read by column, not by entry:
        each field's column is a slice of the batch, and the stored columns are made of
        them by C loops (``map`` over a dict of the batch's distinct paths, peers and shapes,
        then ``zip``), so that an entry of a known shape, path and peer costs no Python
        bytecode at all; only what is new (a shape, an entry whose headers the writer must
        read, a request id to make or to clean) is worked out entry by entry. The shapes
        new to the batch are stored first, in their own transaction, so that a batch the
        store then refuses leaves none named that is not there. The blocks holding entries
        ``LATE`` seconds or more old are added to ``late`` (for the purge)."""
        now = time.time()
        if now - self._shapes_from >= SHAPE_REUSE or len(self._shapes) >= SHAPES_KEPT:
            self._shapes.clear()  # the purge keeps a shape SHAPE_REUSE after it was made
            self._shapes_from = now
        known = self._shapes
        work = _Batch()
        columns: list[Any] = [batch[i::FIELDS] for i in range(FIELDS)]
        ats, codes, key_ids, peers, asked, sent, methods, paths, rids, told, headers = columns
        count = len(ats)
        agents = _agents(told, sent)
        # No proxy trusted (the usual case): a peer is its client, worked out in one call.
        clients = _through(peers, lambda peer: self._client(peer, (), work)) \
            if self.proxies.set else _through(peers, _peer_address)
        # Headers kept (the client named by a trusted proxy): most often none, which
        # ``count`` finds by identity (``()`` is one object).
        if headers.count(()) != count:
            for i in compress(range(count), headers):
                clients[i] = self._client(peers[i], headers[i], work)
        shaping = (codes, key_ids, asked, methods, agents)  # a shape's key, by column
        # ``None in`` a column compares each value with ``None`` (about a hundred
        # instructions an entry, as each type declines the comparison): a batch of one shape
        # is asked once.
        if all(map(uniform, shaping)):
            shape = known.get(tuple(column[0] for column in shaping))
            shapes: list[Any] = [shape] * count
            unnamed_any = shape is None
        else:
            shapes = list(map(known.get, zip(*shaping, strict=True)))
            unnamed_any = None in shapes
        if unnamed_any:  # shapes this writer has not named yet
            new: dict[tuple[Any, ...], int] = {}  # shape key -> its place in ``made``
            made: list[ShapeRow] = []
            unnamed = list(compress(range(count), map(is_, shapes, repeat(None))))
            for i in unnamed:
                key = (codes[i], key_ids[i], asked[i], methods[i], agents[i])
                place = new.get(key)
                if place is None:
                    place = new[key] = len(made)
                    made.append(self._shape(now, key, work))
                shapes[i] = place
            ids = self.store.add_verification_shapes(made)
            for key, place in new.items():
                if len(known) >= SHAPES_KEPT:
                    break
                if _small(key):
                    known[key] = ids[place]
            for i in unnamed:
                shapes[i] = ids[shapes[i]]
        try:  # a request id to make (``None``, which the join refuses) or to clean
            clean = "\x00" not in "".join(rids) and max(map(len, rids)) <= 128
        except TypeError:
            clean = False
        if not clean:
            rids = tuple(new_id()[0] if rid is None else _text(rid, 128) for rid in rids)
        return _blocks(ats, rids, key_ids, shapes, clients, _through(paths, _stored_path),
                       now - LATE, late)  # fmt: skip

    def _client(self, peer: str | None, headers: Any, work: _Batch) -> str | None:
        """The client's address as stored: the peer's, or the one a trusted proxy's
        forwarded addresses name (per request, so not kept in ``work``)."""
        clients = work.clients
        if peer in clients:
            return clients[peer]
        if peer and self.proxies.set:
            address = parse_address(peer)
            if address is not None and address in self.proxies.set:
                found = self.proxies.client(peer, headers)
                return None if found is None else str(found)
        client = clients[peer] = _peer_address(peer)
        return client

    def _shape(self, now: float, key: tuple[Any, ...], work: _Batch) -> ShapeRow:
        """A new shape's row from its key (``_rows``): the key's mask found, the user agent
        masked and cut, the scopes joined."""
        code, key_id, scopes, method, agent = key
        masked = None if key_id is None else self.masks.get(key_id) or self._mask(key_id, work)
        return (
            now,
            code,
            masked,
            _shown(method, 16),  # a forwarded method is a client's words
            work.shown(agent or ""),  # ``None``: no header to read it from
            # ``/auth``'s scopes header is a client's words too (masked, not cut); a scope
            # a face did not check could hold a NUL.
            None if scopes is None else mask_text(" ".join(scopes)).replace("\x00", "\ufffd"),
        )

    def close(self) -> None:
        self._writer.stop()
        try:
            self.flush()
        except Exception as exc:
            log.warning("verification log not written at shutdown: %s", exc)
