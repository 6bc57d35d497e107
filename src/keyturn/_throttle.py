"""Requests that cost the server something, counted per client address, slow that client.

Used for failed dashboard sign-ins and for leak reports (``POST /v1/leaks``): a key cannot
be guessed (160 random bits), but every attempt costs the server a lookup, and a stream of
them from one address is rarely an honest mistake. Each client gets a bucket of ``BURST``
that refills at one every ``REFILL`` seconds; with the bucket empty, its requests are
refused (429, ``signin_throttled`` or ``reports_throttled``, with ``Retry-After``) before
anything is read. The dashboard counts only failed sign-ins, so an admin who mistyped a key
a few times is never held up.

Who the client is (``Throttle.client``) is what the rest of keyturn believes: the
connection's peer, or the address a proxy listed in ``trusted_proxies`` names
(``keyturn._addresses``), never a header an untrusted peer wrote. Behind a trusted proxy
each client has its own bucket, so one client's failures never hold up another (without
``trusted_proxies`` every client shares the proxy's bucket). An IPv6 client counts by its
/64, the block one subscriber is given: stepping through the addresses of one's own block
is no way around the bucket. Memory is bounded: at most ``CLIENTS`` clients are remembered,
the least recently failed forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from ipaddress import IPv6Address, IPv6Network

from keyturn._addresses import TrustedProxies, parse_address
from keyturn.credentials import HeaderPairs

BURST = 10
REFILL = 6.0  # seconds per failure forgiven: 10 a minute, sustained
CLIENTS = 10_000


class Throttle:
    def __init__(
        self,
        *,
        burst: int = BURST,
        refill: float = REFILL,
        clients: int = CLIENTS,
        clock: Callable[[], float] = time.monotonic,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self._burst = burst
        self._refill = refill
        self._clients = clients
        self._clock = clock
        self._proxies = proxies or TrustedProxies()
        # client -> (failures still allowed, when that was counted)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def counted(self) -> Mapping[str, tuple[float, float]]:
        """The clients with a failure counted, live: any other has a full bucket, so with a
        burst of one or more ``wait`` says 0 for it (what a hot path may read in line)."""
        return self._buckets

    def client(self, peer: str | None, headers: HeaderPairs = ()) -> str:
        """The bucket a request from ``peer`` with ``headers`` counts in (see the module's
        docstring)."""
        address = self._proxies.client(peer, headers)
        if address is None:  # no peer, or a trusted proxy that named nobody readable
            address = parse_address(peer) if peer else None
            if address is None:
                return peer or ""
        if isinstance(address, IPv6Address):
            return str(IPv6Network((int(address) >> 64 << 64, 64)))
        return str(address)

    def _allowance(self, client: str, now: float) -> float:
        left, then = self._buckets.get(client, (float(self._burst), now))
        return min(float(self._burst), left + (now - then) / self._refill)

    def wait(self, client: str) -> int:
        """Seconds ``client`` must wait before its next request (0: go ahead).

        Only reads (one ``dict`` look-up, atomic), so callers need no lock around it; a
        client that never failed has a full bucket and costs no clock reading."""
        if client not in self._buckets and self._burst >= 1:
            return 0
        now = self._clock()
        left = self._allowance(client, now)
        return 0 if left >= 1 else max(1, math.ceil((1 - left) * self._refill))

    def failed(self, client: str) -> None:
        """Count one request (a failed sign-in, a report) from ``client``."""
        now = self._clock()
        self._buckets[client] = (self._allowance(client, now) - 1, now)
        self._buckets.move_to_end(client)
        while len(self._buckets) > self._clients:
            self._buckets.popitem(last=False)
