"""The background writer behind every batch kept off the hot path (usage, verifications).

The thread starts on the first thing recorded, so a process that records nothing (a CLI
command, a test) starts none; a write that fails is retried at the next interval, because a
busy or unreachable store must not lose the batch nor stop the writer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

WRITE_WAIT = 10.0  # seconds ``stop`` waits for a write in progress, past the interval


class Flusher:
    def __init__(self, flush: Callable[[], object], interval: float, name: str,
                 log: logging.Logger, what: str) -> None:
        self.interval = interval
        self._flush = flush
        self._name = name
        self._log = log
        self._what = what
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None  # read lock-free on the hot path

    def start(self) -> None:
        """Start the writer once, however many threads ask at the same time."""
        with self._lock:
            if self.thread is not None:
                return
            self.thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._flush()
            except Exception as exc:  # a busy or unreachable store: retry next interval
                self._log.warning("%s not written yet, will retry: %s", self._what, exc)

    def stop(self) -> None:
        """Stop the writer and wait for a write in progress (a batch of many new kinds of
        entry takes seconds on a busy machine; a store that does not answer gives up within
        its own timeouts); the caller flushes the rest."""
        self._stop.set()
        if self.thread is not None:
            self.thread.join(timeout=self.interval + WRITE_WAIT)
