"""Usage accounting, batched off the hot path: last-used times and counts by outcome.

A verify only touches dicts in memory; a background thread writes the batch every
``interval`` seconds (and on ``close``). What a crash can lose is usage facts, never
anything that decides whether a key is accepted (credits are spent in the store, per
request, not here):

- last-used times noted since the last flush (at most ``interval`` seconds' worth);
- request counts by outcome from the last two intervals (at most ``2 * interval`` seconds'
  worth): counts of accepted requests are incremented without a lock, so a batch is only
  written one interval after it was swapped out, once no request can still be adding to it.

Counting an accepted request costs the hot path one list-item increment on the entry it
already reads for the last-used time. Without a lock, two threads counting the same key at
the same instant may count once; an event loop (one thread) never does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from keyturn._flusher import Flusher

# Seconds within which a key's next accepted request changes nothing worth writing (its
# last-used time is kept to the second): counted only, without the lock. ``KeyManager``'s
# fast path makes the same test inline.
NOTE_EVERY = 1.0

log = logging.getLogger("keyturn.usage")


class UsageStore(Protocol):
    def touch(self, last_used: Mapping[str, datetime]) -> None: ...


class UsageRecorder:
    def __init__(self, store: UsageStore, interval: float = 5.0) -> None:
        self.store = store
        self.interval = interval
        self._pending: dict[str, float] = {}
        # Key id -> [last noted time, accepted requests]: read and bumped lock-free on the
        # hot path, swapped out whole at each flush and counted one flush later.
        self.noted: dict[str, list[float]] = {}
        self._ripening: dict[str, list[float]] = {}
        # Other outcomes per (key id, code): off the fast path, under the lock.
        self._outcomes: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._writer = Flusher(self.flush, interval, "keyturn-usage", log, "usage")

    def note(self, key_id: str, at: float) -> None:
        """An accepted request: count it, and note the time if a second has passed."""
        entry = self.noted.get(key_id)
        if entry is not None:
            entry[1] += 1
            # Within a second of the last note nothing changes worth writing: skip the lock.
            if at - entry[0] < NOTE_EVERY:
                return
            entry[0] = at
        else:
            self.noted.setdefault(key_id, [at, 0])[1] += 1
        with self._lock:
            self._pending[key_id] = at
        if self._writer.thread is None:
            self._writer.start()

    def count(self, key_id: str, code: str) -> None:
        """A refused request for a known key (revoked, rate limited, out of credits, ...)."""
        with self._lock:
            self._outcomes[key_id, code] = self._outcomes.get((key_id, code), 0) + 1
        if self._writer.thread is None:
            self._writer.start()

    def flush(self, *, final: bool = False) -> None:
        """Write what is due: last-used times, and the counts that have ripened (all of
        them when ``final``, after the hot path has stopped)."""
        with self._lock:
            batch, self._pending = self._pending, {}
            outcomes, self._outcomes = self._outcomes, {}
            ripened, self._ripening, self.noted = self._ripening, self.noted, {}
            latest: dict[str, list[float]] = {}
            if final:
                latest, self._ripening = self._ripening, {}
            ripe = _merge(ripened, latest)
        for key_id, total in ripe.items():
            outcomes[key_id, "valid"] = outcomes.get((key_id, "valid"), 0) + int(total)
        try:
            if batch:
                self.store.touch({k: datetime.fromtimestamp(v, UTC) for k, v in batch.items()})
                batch = {}
            counter = getattr(self.store, "count_usage", None)
            if outcomes and counter is not None:
                counter(outcomes)
        except Exception:
            self._keep(batch, outcomes)
            raise

    def _keep(self, batch: dict[str, float], outcomes: dict[tuple[str, str], int]) -> None:
        """Put back what could not be written, for the next flush."""
        with self._lock:
            for key_id, at in batch.items():
                self._pending[key_id] = max(at, self._pending.get(key_id, 0.0))
            for key, total in outcomes.items():
                self._outcomes[key] = self._outcomes.get(key, 0) + total

    def close(self) -> None:
        self._writer.stop()
        self.flush(final=True)


def _merge(first: dict[str, list[float]], second: dict[str, list[float]]) -> dict[str, float]:
    """Accepted counts per key id from two batches of ``noted`` entries."""
    merged: dict[str, float] = {key: entry[1] for key, entry in first.items()}
    for key, entry in second.items():
        merged[key] = merged.get(key, 0) + entry[1]
    return merged
