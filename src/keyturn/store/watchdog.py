"""A deadline on every statement: a connection whose statement runs past it is cut.

A PostgreSQL that stops answering without closing its connections (its process frozen,
its host paused, packets to it dropped) leaves a statement waiting for an answer forever:
the driver has no client-side timeout, and ``statement_timeout`` is enforced by the very
server that is not answering. The watchdog is one daemon thread that looks at the running
statements a few times a second and shuts down the socket of any that has run past its
deadline; the driver's wait then ends with an error, which the store reports as
``Unavailable`` (and which opens its breaker, ``breaker.py``). Registering a statement
costs two dictionary operations under a lock; the thread starts with the first one.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time


class Watchdog:
    def __init__(self, timeout: float, tick: float = 0.2) -> None:
        self.timeout = timeout
        self.tick = tick
        self._running: dict[int, tuple[float, int]] = {}  # token -> (deadline, socket fd)
        self._tokens = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def watch(self, fd: int) -> int:
        """A statement starts on the socket ``fd``; the token to hand to ``done``."""
        token = next(self._tokens)
        with self._lock:
            self._running[token] = (time.monotonic() + self.timeout, fd)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="keyturn-statement-deadline", daemon=True
                )
                self._thread.start()
        return token

    def done(self, token: int) -> None:
        """The statement ended (either way): its socket is no longer watched."""
        with self._lock:
            self._running.pop(token, None)

    def _run(self) -> None:
        while not self._closed.wait(self.tick):
            now = time.monotonic()
            with self._lock:  # so a socket is cut only while its statement is running
                late = [t for t, (deadline, _) in self._running.items() if deadline < now]
                for token in late:
                    _, fd = self._running.pop(token)
                    _cut(fd)

    def close(self) -> None:
        self._closed.set()


def _cut(fd: int) -> None:
    """Shut the socket down in both directions (through a duplicate of its descriptor, so
    the driver's own descriptor stays valid until the driver closes it)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: the statement has ended anyway
