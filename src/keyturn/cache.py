"""A bounded in-process cache of key records by hash, in front of the store.

Entries live at most ``ttl`` seconds, which bounds how long a change made by another process
takes to be seen here; changes made through this process invalidate their entry at once.
Unknown hashes are cached too, so a flood of well-formed but unknown keys cannot hammer the
store. Eviction is first-in-first-out: cheaper on the hot path than LRU bookkeeping, and with
a TTL every entry is refreshed soon anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from keyturn.record import KeyRecord

_MISSING = object()


class KeyCache:
    __slots__ = ("_clock", "_entries", "maxsize", "ttl")

    def __init__(
        self,
        maxsize: int = 100_000,
        ttl: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maxsize = maxsize
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, KeyRecord | None]] = {}

    def get(self, key_hash: str) -> KeyRecord | object | None:
        """The cached record (or ``None`` for a known-unknown hash), else ``MISSING``."""
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < self._clock():
            return _MISSING
        return entry[1]

    def put(self, key_hash: str, record: KeyRecord | None) -> None:
        if self.maxsize <= 0:
            return
        entries = self._entries
        if len(entries) >= self.maxsize and key_hash not in entries:
            del entries[next(iter(entries))]
        entries[key_hash] = (self._clock() + self.ttl, record)

    def invalidate(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


MISSING = _MISSING
