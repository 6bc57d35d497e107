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
next round of any instance sends the delivery again.

A receiver is a stranger's server, so an attempt gives it little to work with: the name is
resolved once per attempt and the connection goes to an address of that answer only when
every address in it is public (``keyturn._webhooks``; a name that answers differently on
the next lookup, as DNS rebinding does, never gets the second answer used); redirects are
not followed; the answer's status is read and its body never is; and the attempt has one
deadline for everything (``TIMEOUT``), so a receiver trickling its answer a byte at a time
holds the worker no longer than one that does not answer.
"""

from __future__ import annotations

from keyturn._extras import require

require("serve", "keyturn._delivery", "httpx")

import logging
import threading
import time
import typing
from datetime import datetime, timedelta

import httpcore
import httpx

from keyturn import __version__
from keyturn._signing import headers
from keyturn._webhooks import NotPublic, public_addresses
from keyturn.record import utcnow
from keyturn.store.base import Claim, EventStore

FIRST_RETRY = 5.0
MAX_DELAY = 60.0
GIVE_UP_AFTER = timedelta(hours=24)
LEASE = 60.0  # longer than one attempt can take (TIMEOUT), so a live worker keeps its claim
TIMEOUT = 10.0  # one attempt, all of it: connecting, sending, the answer's head
LEASE_MARGIN = 5.0  # the lease's slack past the last attempt's end (clocks, the settle)
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
        # httpcore, under httpx: a pool that follows no redirect, keeps no connection
        # (each attempt connects afresh, through the checks of ``_Destinations``).
        self._pool = httpcore.ConnectionPool(
            max_keepalive_connections=0,
            network_backend=_Destinations(allow_private),
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
        self._pool.close()

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
        # Every attempt must end inside the lease, or another instance could take a
        # delivery while this one is still sending it (a batch of slow receivers outlasts
        # one lease): no attempt starts with less than one attempt's time left of it,
        # counted from before the claim (which may wait for the store's lock).
        last_start = time.monotonic() + LEASE - TIMEOUT - LEASE_MARGIN
        claims = self.store.claim(now or utcnow(), LEASE)
        sent = 0
        for claim in claims:
            if self._stop.is_set() or time.monotonic() > last_start:
                break  # the lease runs out and another round (of any instance) sends it
            self.send(claim)
            sent += 1
        return sent

    def send(self, claim: Claim) -> bool:
        delivery = claim.delivery
        status: int | None = None
        error: str | None = None
        try:
            url = httpx.URL(claim.url)  # the parsing (and IDNA) httpx gives every request
            with self._pool.stream(
                "POST",
                httpcore.URL(
                    scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
                ),
                headers=[
                    ("content-type", "application/json"),
                    ("user-agent", f"keyturn-webhooks/{__version__}"),
                    *headers(claim.secret, delivery.event_id, claim.body).items(),
                ],
                content=claim.body.encode(),
                extensions={"timeout": dict.fromkeys(_TIMEOUTS, TIMEOUT)},
            ) as answer:
                status = answer.status  # the body is never read
            if not 200 <= status < 300:
                error = f"the receiver answered {status}"
        except NotPublic as exc:
            error = f"not sent: {exc}"
        except _FAILURES as exc:
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


_TIMEOUTS = ("connect", "read", "write", "pool")
_FAILURES = (
    httpx.InvalidURL,
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
)


class _Destinations(httpcore.SyncBackend):
    """httpcore's own sockets, opened only to an address just found public (unless the
    deployment allows its own network), each bounded by one deadline (``_Bounded``)."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        end = time.monotonic() + TIMEOUT
        addresses = [host] if self.allow_private else public_addresses(host, port)
        failure: Exception = httpcore.ConnectError(f"{host[:80]!r} has no address")
        for address in addresses:
            left = _left(end, timeout, httpcore.ConnectTimeout)
            try:
                stream = super().connect_tcp(address, port, left, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _Bounded(stream, end)
        raise failure


def _left(end: float, timeout: float | None, late: type[Exception]) -> float:
    """What is left of the attempt's deadline (at most ``timeout``); ``late`` once none."""
    left = end - time.monotonic()
    if left <= 0:
        raise late(f"the attempt took its {TIMEOUT:g} s")
    return left if timeout is None else min(left, timeout)


class _Bounded(httpcore.NetworkStream):
    """A stream whose every read and write gets only what is left of one deadline: a
    server answering a byte at a time, each just in time, still runs out."""

    def __init__(self, stream: httpcore.NetworkStream, end: float) -> None:
        self._stream = stream
        self._end = end

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(self._end, timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(self._end, timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _left(self._end, timeout, httpcore.ConnectTimeout)
        return _Bounded(self._stream.start_tls(ssl_context, server_hostname, left), self._end)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)
