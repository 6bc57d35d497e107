"""``--timeout`` bounds the whole probe, not each read.

httpx's timeouts apply to each connect, read and write: a server that trickles its headers
or its body one byte at a time, just inside the read timeout, holds a probe for hours, and a
name server that does not answer holds it in ``getaddrinfo``, where no timeout reaches.

So every request runs in a worker thread that the caller waits for only until the deadline;
every socket the probe opens is registered (through httpcore's documented ``trace``
extension) and shut down when the deadline passes, which wakes any read blocked on it; and
a request that reaches the deadline before its first byte is written is not sent at all, so
a worker still waiting for DNS when time runs out never sends the key afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_OPENED = ("connection.connect_tcp.complete", "connection.start_tls.complete")


class OutOfTime(Exception):
    """The probe's deadline passed."""


def _winding_down(event: str) -> bool:
    """Closing and failure reports come while httpcore cleans up; refusing them would only
    raise inside its cleanup (an unraisable exception), not stop anything."""
    return event.endswith(".failed") or "close" in event


class Deadline:
    """One bound for everything a probe does; use as a context manager around it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._passed = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        self._expire()  # nothing the probe opened outlives it

    @property
    def passed(self) -> bool:
        return self._passed or time.monotonic() >= self.end

    def remaining(self) -> float:
        return max(self.end - time.monotonic(), 0.0)

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's ``trace`` extension: keep each socket opened; refuse to go on (and so
        to send anything) once the deadline has passed."""
        if event in _OPENED:
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._sockets.append(sock)
                    if self._passed:
                        _shut(sock)
        if self.passed and not _winding_down(event):
            raise OutOfTime

    def call(self, work: Callable[[], T]) -> T:
        """``work()`` in a worker thread, waited for until the deadline (``OutOfTime``)."""
        result: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                result.append(work())
            except BaseException as exc:  # handed to the waiting thread
                failure.append(exc)

        worker = threading.Thread(target=run, name="keyturn-doctor-probe", daemon=True)
        worker.start()
        worker.join(self.remaining() + 0.05)
        if worker.is_alive():
            self._expire()
            worker.join(0.5)  # a shut socket ends a blocked read at once
        if result:
            return result[0]
        if failure and not isinstance(failure[0], OutOfTime):
            raise failure[0]
        raise OutOfTime

    def _expire(self) -> None:
        with self._lock:
            self._passed = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)
