"""Time-driven events: what happens to a key because time passes, not because of a change.

``keyturn serve`` runs ``Reminders`` in a thread: every ``lifecycle_interval`` seconds it
reads the keys an event may be due for (``due_for_events``) and records

- ``key.expiring`` when a key's expiry is within one of ``expiry_warnings`` days (30, 7
  and 1 by default; a key already closer than a threshold when it is first seen gets the
  closest one only), with ``data.days``;
- ``key.expired`` when its expiry has passed (within the last week);
- ``key.grace_ending`` when a rotated key's grace period ends within a day, with
  ``data.still_used_by``: who used the old key since the rotation (the verification log's
  clients, methods, paths, last seen), so the receiver knows who has yet to move. For a
  usage-aware grace (``grace_until_quiet_seconds``) it is about the latest end,
  ``grace_max``: the quiet end comes only once nobody uses the key, and needs no warning,
  while the latest end cuts off whoever still does. (Its ``grace_until`` moves with every
  use, so it cannot name an occasion.)
- ``key.credits_low`` when a refilled key has 10% of its refill left, and when any metered
  key has none left (``data.level``: 10 or 0);
- ``key.unused``, disabling the key, when it has not been used for ``disable_unused_after``.

Each occasion is recorded once, however many rounds or instances see it: an event names
its occasion (``Event.once``: the key, the threshold and the expiry it is about) and the
outbox keeps one event per occasion. An expiry moved later is a new occasion.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

from keyturn import _events as events
from keyturn._events import Event
from keyturn.actor import Actor
from keyturn.admin import KeyAdmin
from keyturn.errors import KeyturnError
from keyturn.record import KeyRecord, utcnow
from keyturn.store.base import EventStore

ACTOR = "lifecycle"
_log = logging.getLogger("keyturn.lifecycle")


class Reminders:
    def __init__(
        self,
        admin: KeyAdmin,
        store: EventStore,
        *,
        warnings: Sequence[int] = (30, 7, 1),
        unused_after: timedelta | None = None,
        interval: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.admin = admin
        self.store = store
        self.warnings = tuple(sorted(set(warnings), reverse=True))
        self.unused_after = unused_after
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="keyturn-lifecycle", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except KeyturnError as exc:  # a store outage: the next round sees the same keys
                _log.warning("looking for lifecycle events failed: %s", exc)
            self._stop.wait(self.interval)

    def run_once(self, now: datetime | None = None) -> int:
        """One round; how many events were new."""
        now = now or self.clock()
        horizon = now + timedelta(days=max(self.warnings, default=0))
        unused_since = now - self.unused_after if self.unused_after is not None else None
        due = self.store.due_for_events(now, horizon, unused_since)
        found = [event for record in due for event in self.events(record, now)]
        new = self.store.record_events(found) if found else 0
        if unused_since is not None:
            actor = Actor.operator(ACTOR)
            for record in due:
                if (
                    not record.disabled
                    and record.replaced_by is None
                    and (record.last_used_at or record.created_at) < unused_since
                ):
                    self.admin.disable_unused(actor, record.id, unused_since)
                    new += 1
        return new

    def events(self, record: KeyRecord, now: datetime) -> Iterator[Event]:
        """The time-driven events due for ``record`` now, each naming its occasion."""
        key = record.id
        if record.expires_at is not None:
            stamp = int(record.expires_at.timestamp())
            left = record.expires_at - now
            if left <= timedelta(0):
                yield events.about(events.EXPIRED, record, once=f"expired:{key}:{stamp}")
            else:
                near = [d for d in self.warnings if left <= timedelta(days=d)]
                if near:
                    days = min(near)
                    once = f"expiring:{key}:{days}d:{stamp}"
                    yield events.about(events.EXPIRING, record, once=once, days=days)
        grace = record.grace_until
        if grace is not None and grace > now:
            end = record.grace_max or grace
            if end - now <= timedelta(days=1):
                callers = self.admin.callers(Actor.operator(ACTOR), key).callers
                yield events.about(
                    events.GRACE_ENDING,
                    record,
                    once=f"grace:{key}:{int(end.timestamp())}",
                    still_used_by=[c.public() for c in callers],
                )
        if record.credits is not None:
            period = int(record.refilled_at.timestamp()) if record.refilled_at else 0
            level = None
            if record.credits == 0:
                level = 0
            elif record.refill_amount and record.credits <= record.refill_amount // 10:
                level = 10
            if level is not None:
                once = f"credits:{key}:{level}:{period}"
                yield events.about(events.CREDITS_LOW, record, once=once, level=level)
