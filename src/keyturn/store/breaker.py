"""A circuit breaker: while a database is known to be down, fail at once instead of waiting.

When PostgreSQL stops answering, every request that needs it would wait for the connection
pool's timeout before failing, and the worker threads fill up with such waits, so that
answers come later and later. After one failure that says the server is unreachable, the
breaker *opens*: requests are refused at once (``Unavailable``, which every face answers as
the catalogue's 503 with ``Retry-After``). Once a ``retry`` interval has passed, one
request at a time is let through to try the server again (*half-open*); the first that
succeeds closes the breaker, and a failure opens it for another interval. So the service
notices by itself that the server is back, within about ``retry`` seconds, and no request
ever waits longer than the pool's timeout.
"""

from __future__ import annotations

import threading
import time


class Breaker:
    """Thread-safe; ``allow`` is one comparison while the breaker is closed."""

    def __init__(self, retry: float = 1.0) -> None:
        self.retry = retry
        self._closed = True
        self._retry_at = 0.0
        self._probing = False
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    def allow(self) -> bool:
        """Whether a request may try the server now (when open: one trial per interval)."""
        if self._closed:
            return True
        with self._lock:
            if self._probing or time.monotonic() < self._retry_at:
                return False
            self._probing = True
            return True

    def succeeded(self) -> None:
        """A request reached the server: close (cheap when already closed)."""
        if not self._closed:
            with self._lock:
                self._closed, self._probing = True, False

    def failed(self) -> None:
        """The server could not be reached: open for another ``retry`` interval."""
        with self._lock:
            self._closed, self._probing = False, False
            self._retry_at = time.monotonic() + self.retry
