"""Canary keys: every use of one is an alarm, written as the event ``key.canary_used``.

A canary is a real key of the deployment's format, planted where only an intruder would
look (a decoy ``.env``, an old backup, a honeypot config). The verifier refuses it exactly
as it refuses a key that does not exist - same status, body and headers, and the same one
store lookup - so whoever tries it learns nothing, while the deployment learns that
someone has it: the client's address as keyturn judges it everywhere (the peer, or what a
trusted proxy names: ``keyturn._addresses``; an intruder's own ``X-Forwarded-For`` cannot
blame another address, and is kept apart as ``forwarded_for``, what was claimed), and the
method, path and user agent as the request's headers say them (``X-Forwarded-Method`` /
``X-Original-Method``, ``X-Forwarded-Uri`` / ``X-Original-URI``, as forward-auth receives
them).

The alarm is written off the request path, by one thread, so a flood of canary uses delays
no answer; the queue is bounded, and what does not fit is counted in the next event.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from keyturn import _events as events
from keyturn._redact import mask_text
from keyturn.keys import mask
from keyturn.record import KeyRecord
from keyturn.store.base import EventStore

if TYPE_CHECKING:
    from keyturn._addresses import TrustedProxies

MAX_PENDING = 1000
MAX_FIELD = 200
_ORIGIN_HEADERS = {
    "forwarded_for": ("x-forwarded-for",),
    "method": ("x-forwarded-method", "x-original-method"),
    "path": ("x-forwarded-uri", "x-original-uri"),
    "user_agent": ("user-agent",),
}
_log = logging.getLogger("keyturn.canary")


def who(
    origin: tuple[str | None, Iterable[tuple[Any, Any]]] | None,
    key: str,
    proxies: TrustedProxies,
) -> dict[str, str | None]:
    """Who used the canary: ``client`` as ``proxies`` judge it (the peer when no trusted
    proxy names another), the rest as the request's headers say: each field at most 200
    characters, the path without its query, and the key itself - and any other key, in
    whatever encoding - masked wherever it shows (``keyturn._redact``): the event goes to
    webhook receivers."""
    peer, headers = origin or (None, ())
    headers = list(headers)
    client = proxies.client(peer, headers)
    seen: dict[str, str] = {}
    for name, value in headers:
        lower = (name.decode("latin-1") if isinstance(name, bytes) else str(name)).lower()
        if lower not in seen:
            seen[lower] = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    found: dict[str, str | None] = {"client": None if client is None else str(client)}
    for field, names in _ORIGIN_HEADERS.items():
        value = next((seen[n] for n in names if n in seen), None)
        if value is not None:
            if field == "path":
                value = value.split("?")[0]
            if key:
                value = value.replace(key, mask(key))
            value = mask_text(value)[:MAX_FIELD]
        found[field] = value
    return found


class CanaryAlarm:
    """Writes ``key.canary_used`` events to the store's outbox from a worker thread."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._queue: queue.Queue[events.Event | None] = queue.Queue(MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.dropped = 0

    def raise_alarm(self, record: KeyRecord, seen_as: dict[str, str | None]) -> None:
        event = events.about(events.CANARY_USED, record, request=seen_as, dropped=self.dropped)
        try:
            self._queue.put_nowait(event)
            self.dropped = 0
        except queue.Full:
            self.dropped += 1
            return
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="keyturn-canary", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self.store.record_events([event])
            except Exception as exc:  # the store is down: say so, keep the thread
                _log.error("could not record a canary use of %s: %s", event.key_id, exc)

    def close(self) -> None:
        """Write what is queued, then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
