"""A bounded in-process cache of key records by hash, in front of the store.

``ttl`` is the staleness bound: a change made by another process is seen here within ``ttl``
seconds, because entries live that long and then are read again. Changes made through this
process invalidate their entry at once. A store with a change feed (PostgreSQL's
``LISTEN/NOTIFY``, see ``_propagation.py``) invalidates entries as other instances change
them, and while that feed is provably live the cache may keep entries for a longer
``lifetime``: the bound then holds through the feed rather than through expiry.

Unknown hashes are cached too, so a client repeating a well-formed but unknown key does not
hammer the store. They are kept apart from the records, in a smaller bound of their own
(``unknown_maxsize``): the checksum is public, so anyone can make fresh well-formed keys,
and a flood of them must push out other unknown hashes, never the records of the keys
clients actually use. Eviction is first-in-first-out: cheaper on the hot path than LRU
bookkeeping, and with a TTL every entry is refreshed soon anyway.

A canary's record is cached among the records (each use must reach the verifier to raise its
alarm) but is evicted as an unknown hash is: it takes its place in the unknown hashes' order
and bound, and leaves the records when it leaves that order. Were it kept like a record, a
flood of forged keys would push out unknown hashes but not the canary, and whether a
suspect key is still cached after a flood (seen through the per-client bound on store reads)
would tell a canary from a key that does not exist.

Only ``get`` is on the hot path, and it takes no lock. Writers (``put`` after a store read,
``invalidate``, ``clear``) share a lock and an epoch that every invalidation advances. A
store read starts with ``mark()`` and ends with ``put(..., since=mark)``: the entry's time
runs from the read's start (so a change committed while the read was under way is still
seen within ``ttl``), and a read that raced an invalidation is cached for ``ttl`` only, so a
change announced mid-read cannot hide behind a long lifetime.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from keyturn.record import KeyRecord

_MISSING = object()


class KeyCache:
    __slots__ = (
        "_clock",
        "_entries",
        "_lock",
        "_ticks",
        "_unknown",
        "epoch",
        "lifetime",
        "maxsize",
        "ttl",
        "unknown_maxsize",
    )

    def __init__(
        self,
        maxsize: int = 100_000,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        unknown_maxsize: int | None = None,
    ) -> None:
        """``maxsize`` records and ``unknown_maxsize`` unknown hashes (a tenth of
        ``maxsize`` unless given)."""
        self.maxsize = maxsize
        self.unknown_maxsize = maxsize // 10 if unknown_maxsize is None else unknown_maxsize
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, KeyRecord]] = {}
        self._unknown: dict[str, float] = {}  # hash -> expiry
        # How long a new entry lives: ``ttl``, unless a live change feed extends it.
        self.lifetime = ttl
        self._lock = threading.Lock()
        self._ticks = itertools.count(1)
        self.epoch = 0

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def entries(self) -> dict[str, tuple[float, KeyRecord]]:
        """The live mapping of hash to (expiry on the ``monotonic`` clock, record), for the
        hot path to read without a call; writes go through ``put`` and ``invalidate``."""
        return self._entries

    @property
    def unknown(self) -> dict[str, float]:
        """The live mapping of unknown hash to expiry, read as ``entries`` is."""
        return self._unknown

    def get(self, key_hash: str) -> KeyRecord | object | None:
        """The cached record (or ``None`` for a known-unknown hash), else ``MISSING``."""
        entry = self._entries.get(key_hash)
        if entry is not None:
            return entry[1] if entry[0] >= self._clock() else _MISSING
        expiry = self._unknown.get(key_hash)
        return None if expiry is not None and expiry >= self._clock() else _MISSING

    def mark(self) -> tuple[int, float]:
        """Taken before a store read, handed to ``put`` after it."""
        return self.epoch, self._clock()

    def put(
        self, key_hash: str, record: KeyRecord | None, since: tuple[int, float] | None = None
    ) -> None:
        """Cache what the store said; ``since`` is the ``mark()`` taken before reading it."""
        bound = self.maxsize if record is not None and not record.canary else self.unknown_maxsize
        if bound <= 0:
            return
        if record is not None and record.accepted is None:
            record.accepted = {}  # kept: its memo of accepting decisions (``KeyRecord``)
        with self._lock:
            if since is None:
                start, raced = self._clock(), False
            else:
                start, raced = since[1], since[0] != self.epoch
            expiry = start + (self.ttl if raced else self.lifetime)
            if record is None or record.canary:
                self._entries.pop(key_hash, None)
                if len(self._unknown) >= bound and key_hash not in self._unknown:
                    evicted = next(iter(self._unknown))  # first in, first out; an evicted
                    del self._unknown[evicted]  # canary leaves the records with it
                    self._entries.pop(evicted, None)
                self._unknown[key_hash] = expiry
                if record is not None:
                    self._entries[key_hash] = (expiry, record)
            else:
                self._unknown.pop(key_hash, None)
                _bounded(self._entries, key_hash, bound)[key_hash] = (expiry, record)

    def invalidate(self, key_hash: str) -> None:
        with self._lock:
            self.epoch = next(self._ticks)
            self._entries.pop(key_hash, None)
            self._unknown.pop(key_hash, None)

    def clear(self) -> None:
        with self._lock:
            self.epoch = next(self._ticks)
            self._entries.clear()
            self._unknown.clear()

    def extend(self, lifetime: float) -> None:
        """Keep new entries ``lifetime`` seconds (never less than ``ttl``): a change feed is
        live. Everything cached so far is dropped, as it may predate the feed."""
        with self._lock:
            self.lifetime = max(self.ttl, lifetime)
            self.epoch = next(self._ticks)
            self._entries.clear()
            self._unknown.clear()

    def shorten(self) -> None:
        """Back to ``ttl`` for every entry, dropping all: the change feed is not live."""
        with self._lock:
            self.lifetime = self.ttl
            self.epoch = next(self._ticks)
            self._entries.clear()
            self._unknown.clear()

    def __len__(self) -> int:
        return len(self._entries.keys() | self._unknown.keys())  # a canary is in both


_Map = TypeVar("_Map", bound=dict[str, Any])


def _bounded(entries: _Map, key_hash: str, bound: int) -> _Map:
    """``entries``, with room made (first in, first out) for ``key_hash``."""
    if len(entries) >= bound and key_hash not in entries:
        del entries[next(iter(entries))]
    return entries


MISSING = _MISSING
