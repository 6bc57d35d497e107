"""How a change made through one instance reaches every other instance's cache in time.

The bound is the cache's ``ttl`` (1 s by default). Two mechanisms meet it:

- **Expiry**, for any store: a cached record is read again after ``ttl`` seconds. This is
  all SQLite has, and it is enough there: several processes on one machine each re-read a
  key at most once per ``ttl``, from a local file.
- **A change feed**, for PostgreSQL: every change to a key is announced with ``NOTIFY``
  when it commits and each instance drops that key at once (milliseconds). While the feed
  is provably live (``store/notify.py`` heartbeats every ``ttl / 3``), entries may live
  ``lifetime`` seconds (5 minutes by default) instead of ``ttl``, so N instances do not
  re-read every busy key from the shared database once per second each. When the feed is
  lost the cache drops everything and falls back to expiry until it is back.
"""

from __future__ import annotations

from typing import Any

from keyturn.cache import KeyCache
from keyturn.store.base import EVERY_KEY

DEFAULT_LIFETIME = 300.0


class CacheInvalidation:
    """A ``ChangeListener`` that keeps one cache in step with the store's change feed."""

    def __init__(self, cache: KeyCache, lifetime: float = DEFAULT_LIFETIME) -> None:
        self.cache = cache
        self.lifetime = lifetime
        self.live_now = False

    def changed(self, key_hash: str) -> None:
        if key_hash == EVERY_KEY:  # a role changed: any key may hold it
            self.cache.clear()
        else:
            self.cache.invalidate(key_hash)

    def live(self) -> None:
        self.live_now = True
        self.cache.extend(self.lifetime)

    def lost(self) -> None:
        self.live_now = False
        self.cache.shorten()


def follow_changes(store: Any, cache: KeyCache, lifetime: float = DEFAULT_LIFETIME) -> Any:
    """Subscribe ``cache`` to ``store``'s change feed; the feed (close it when done), or
    ``None`` for a store without one (expiry alone then keeps the bound)."""
    watch = getattr(store, "watch", None)
    if watch is None or cache.ttl <= 0:
        return None
    return watch(CacheInvalidation(cache, lifetime), cache.ttl)
