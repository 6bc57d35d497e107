"""Every connection this process opens, seen through the interpreter's audit events.

``socket.connect`` is raised by CPython for every outgoing TCP connection, whatever library
makes it (httpx, http.client, a resolver), and ``socket.getaddrinfo`` for every name looked
up; so a test can hold "no origin but the target ever receives the key" for everything the
doctor does, not only for the servers the test started. Audit hooks cannot be removed, so
one hook is installed once and records only while a ``Watch`` is open.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_lock = threading.Lock()
_watches: list[Watch] = []


@dataclass
class Watch:
    connected: list[tuple[str, int]] = field(default_factory=list)
    looked_up: list[str] = field(default_factory=list)


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("socket.connect", "socket.getaddrinfo") or not _watches:
        return
    with _lock:
        for watch in _watches:
            if event == "socket.connect":
                address = args[1]
                if isinstance(address, tuple) and len(address) >= 2:
                    watch.connected.append((str(address[0]), int(address[1])))
            else:
                watch.looked_up.append(str(args[0]))


sys.addaudithook(_hook)


@contextmanager
def watch() -> Iterator[Watch]:
    """Record every connection opened (and name looked up) by any thread until exit."""
    seen = Watch()
    with _lock:
        _watches.append(seen)
    try:
        yield seen
    finally:
        with _lock:
            _watches.remove(seen)
