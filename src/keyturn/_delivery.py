"""The webhook worker: takes events from the store's outbox and posts them, signed.

One thread per ``keyturn serve`` instance. Each round it fans new events out to the
webhooks subscribed to them (``EventStore.dispatch``), takes the deliveries that are due
for a lease (``EventStore.claim``: with several instances, each delivery is sent by one of
them at a time), posts each and writes down how it went (``EventStore.settle``).

Delivery is at least once: a receiver that answers anything but 2xx, or does not answer,
gets the event again - first after ``FIRST_RETRY`` seconds, then after twice as long each
time, at most ``MAX_DELAY`` apart - until it takes it or ``GIVE_UP_AFTER`` has passed
since the event; then the delivery is marked failed (the deliveries list, the dashboard and
``/metrics`` show it). A process killed mid-delivery leaves its lease to run out, and the
next round of any instance sends the delivery again. Redirects are not followed (a
receiver cannot send keyturn elsewhere), and the destination's address is checked again
before each attempt (``keyturn._webhooks``).
"""

from __future__ import annotations

from keyturn._extras import require

require("serve", "keyturn._delivery", "httpx")

import logging
import threading
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx

from keyturn import __version__
from keyturn._signing import headers
from keyturn._webhooks import private_address
from keyturn.record import utcnow
from keyturn.store.base import Claim, EventStore

FIRST_RETRY = 5.0
MAX_DELAY = 60.0
GIVE_UP_AFTER = timedelta(hours=24)
LEASE = 60.0  # longer than one attempt can take (TIMEOUT), so a live worker keeps its claim
TIMEOUT = 10.0
POLL = 0.5
COUNT_EVERY = 5.0  # seconds between counts of deliveries by status (for /metrics)
_log = logging.getLogger("keyturn.webhooks")


def retry_delay(attempts: int, first: float = FIRST_RETRY, cap: float = MAX_DELAY) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: 5, 10, 20, 40, 60..."""
    return float(min(first * 2.0 ** max(attempts - 1, 0), cap))


class Deliverer:
    """Posts outbox events to their webhooks until closed."""

    def __init__(
        self,
        store: EventStore,
        *,
        allow_private: bool = False,
        poll: float = POLL,
        first_retry: float = FIRST_RETRY,
        give_up_after: timedelta = GIVE_UP_AFTER,
    ) -> None:
        self.store = store
        self.allow_private = allow_private
        self.poll = poll
        self.first_retry = first_retry
        self.give_up_after = give_up_after
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.counts: dict[str, int] = {}
        self._counted = 0.0
        self._client = httpx.Client(
            timeout=TIMEOUT,
            follow_redirects=False,
            headers={"user-agent": f"keyturn-webhooks/{__version__}"},
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="keyturn-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT + 5)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                if time.monotonic() - self._counted > COUNT_EVERY:
                    self.counts = self.store.delivery_counts()
                    self._counted = time.monotonic()
            except Exception as exc:  # a store outage: try again next round
                _log.warning("webhook delivery round failed: %s", exc)
            self._wake.wait(self.poll)
            self._wake.clear()

    def run_once(self, now: datetime | None = None) -> int:
        """One round: dispatch, claim, send. How many deliveries were attempted."""
        self.store.dispatch()
        claims = self.store.claim(now or utcnow(), LEASE)
        for claim in claims:
            if self._stop.is_set():
                break  # the lease runs out and another round sends it
            self.send(claim)
        return len(claims)

    def send(self, claim: Claim) -> bool:
        delivery = claim.delivery
        status: int | None = None
        error: str | None = None
        refused = None
        if not self.allow_private:
            parts = urlsplit(claim.url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            refused = private_address(parts.hostname or "", port)
        if refused is not None:
            error = f"not sent: the host {refused.partition(' ')[2]}"
        else:
            try:
                answer = self._client.post(
                    claim.url,
                    content=claim.body.encode(),
                    headers={
                        "content-type": "application/json",
                        **headers(claim.secret, delivery.event_id, claim.body),
                    },
                )
                status = answer.status_code
                if not 200 <= status < 300:
                    error = f"the receiver answered {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
        at = utcnow()
        attempts = delivery.attempts + 1
        if error is None:
            outcome, next_at = "delivered", at
        elif at - delivery.created_at >= self.give_up_after:
            outcome, next_at = "failed", at
            _log.warning(
                "webhook %s gave up on event %s after %d attempts: %s",
                delivery.webhook_id, delivery.event_id, attempts, error,
            )
        else:
            outcome = "pending"
            next_at = at + timedelta(seconds=retry_delay(attempts, self.first_retry))
        self.store.settle(
            delivery.id,
            status=outcome,
            attempts=attempts,
            at=at,
            next_at=next_at,
            last_status=status,
            last_error=error,
        )
        return error is None
