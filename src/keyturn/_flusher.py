"""The background writer behind every batch kept off the hot path (usage, verifications).

The thread starts on the first thing recorded, so a process that records nothing (a CLI
command, a test) starts none; it writes every interval, or at once when woken (``wake``:
much has gathered); a write that fails is retried after an interval, woken or not, because
a busy or unreachable store must not lose the batch nor stop the writer, nor be asked
again at every request.
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
        self._due = threading.Event()  # set by ``wake`` (and ``stop``): write now
        self.thread: threading.Thread | None = None  # read lock-free on the hot path

    def start(self) -> None:
        """Start the writer once, however many threads ask at the same time."""
        with self._lock:
            if self.thread is not None:
                return
            self.thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            self._due.wait(self.interval)
            self._due.clear()
            if self._stop.is_set():
                return
            try:
                self._flush()
            except Exception as exc:  # a busy or unreachable store: retry next interval
                self._log.warning("%s not written yet, will retry: %s", self._what, exc)
                if self._stop.wait(self.interval):  # however often it is woken meanwhile
                    return
                self._due.set()  # the retry is due now, not an interval more

    def wake(self) -> None:
        """Write now, not at the end of the interval (much has gathered). Cheap when the
        writer is due already: every call of an overloaded queue's ``record`` asks."""
        if not self._due.is_set():
            self._due.set()

    def stop(self) -> None:
        """Stop the writer and wait for a write in progress (a batch of many new kinds of
        entry takes seconds on a busy machine; a store that does not answer gives up within
        its own timeouts); the caller flushes the rest."""
        self._stop.set()
        self._due.set()
        if self.thread is not None:
            self.thread.join(timeout=self.interval + WRITE_WAIT)
