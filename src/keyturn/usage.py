"""Last-used times, batched off the hot path.

A verify only notes the time in a dict; a background thread writes the batch every
``interval`` seconds (and on ``close``). A crash loses at most one interval of last-used
times — usage facts, never anything that decides whether a key is accepted.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from keyturn.store.base import KeyStore


class UsageRecorder:
    def __init__(self, store: KeyStore, interval: float = 5.0) -> None:
        self.store = store
        self.interval = interval
        self._pending: dict[str, float] = {}
        self._noted: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def note(self, key_id: str, at: float) -> None:
        # Within a second of the last note nothing changes worth writing: skip the lock.
        if at - self._noted.get(key_id, 0.0) < 1.0:
            return
        self._noted[key_id] = at
        with self._lock:
            self._pending[key_id] = at
        if self._thread is None:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="keyturn-usage", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending, self._noted = self._pending, {}, {}
        if batch:
            self.store.touch({k: datetime.fromtimestamp(v, UTC) for k, v in batch.items()})

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 1)
        self.flush()
