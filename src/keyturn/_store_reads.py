"""Store reads behind cache misses, bounded per client and at once: what a forged-key flood
can cost.

The checksum is public, so anyone can make well-formed keys that were never issued, and each
fresh one misses the cache and costs a store read before it can be refused. Two bounds:

- **Per client.** A read that finds no key (or a canary, which must look the same) counts
  against the client that sent it, in a bucket of ``BURST`` that refills at ``RATE`` a
  second (``keyturn._throttle.Throttle``). With
  its bucket empty, that client's keys that are not in the cache are refused without reading
  the store (429 ``lookups_throttled``, with ``Retry-After``); keys already in the cache still
  pass, and other clients are not affected. The client is the address ``trusted_proxies``
  work out (``keyturn._addresses``), so behind a proxy each client has its own bucket, and
  an IPv6 client counts by its /64 (``Throttle.client``, as every throttle counts); a
  request whose client is unknown is not throttled. A refusal says nothing about the key:
  the store was not asked.
- **At once.** At most ``CONCURRENCY`` reads run at the same time, so a flood from many
  addresses queues for the store instead of taking all of its connections; a read that
  cannot start within ``WAIT`` seconds fails closed (503 ``store_unavailable``). Async code
  reads in a pool of exactly that many threads of its own, so it never holds up the worker
  threads the rest of the service uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, SimpleQueue
from typing import TYPE_CHECKING

from keyturn._quota import Quota
from keyturn._throttle import Throttle
from keyturn.errors import Unavailable
from keyturn.record import KeyRecord
from keyturn.verifier import Decision, Origin, Verifier

if TYPE_CHECKING:
    from keyturn.store.base import KeyStore

BURST = 50
"""Unknown keys a client may send before it is throttled: far more than typos make."""
RATE = 5.0
"""Unknown keys a second a client may send, sustained, once its burst is spent."""
CONCURRENCY = 4
WAIT = 2.0
PEERS_KEPT = 4096
"""Peers whose bucket is kept worked out (see ``StoreReads._client``)."""


class StoreReads:
    """The one way the manager reads a record by hash on a cache miss."""

    def __init__(
        self,
        store: KeyStore,
        verifier: Verifier,
        *,
        burst: int = BURST,
        rate: float = RATE,
        concurrency: int = CONCURRENCY,
        wait: float = WAIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._verifier = verifier
        self._burst = burst
        self._throttle = Throttle(
            burst=burst, refill=1.0 / rate, clock=clock, proxies=verifier.proxies
        )
        self._counted = self._throttle.counted
        self._lock = threading.Lock()  # the throttle's buckets, shared by reading threads
        # With no trusted proxy a request's peer is its client, so its bucket depends on
        # the peer alone: worked out once per peer (parsing an address costs a miss 2 µs,
        # an IPv6 one 8 µs, as much as the store read), not once per miss.
        self._by_peer = not verifier.proxies.set
        self._buckets: dict[str | None, str] = {}  # a peer of None never in it
        # The free reads, as tokens in a queue: ``SimpleQueue`` is written in C, so taking
        # and giving back a token costs a miss a tenth of what ``threading.Semaphore``'s
        # Python-level condition does (3 µs, a third of the store read it guards).
        self._slots: SimpleQueue[None] = SimpleQueue()
        for _ in range(concurrency):
            self._slots.put(None)
        self._wait = wait
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads async code reads in (made on the first miss)."""
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.concurrency, "keyturn-reads")
                pool = self._pool
        return pool

    def read(self, key_hash: str, origin: Origin | None) -> KeyRecord | Decision | None:
        """The record stored under ``key_hash`` (``None``: no such key), or the refusal of a
        throttled client. Blocks for a free read at most ``WAIT`` seconds."""
        # A known peer's bucket read in line (a Python call costs a miss 700 instructions),
        # else worked out (``_client``). Falsy: no bucket (the client is unknown).
        client = self._buckets.get(origin[0]) if origin is not None and self._by_peer else None
        if client is None:
            client = self._client(origin)
        # A client with no failure counted need not wait (most of them): ``Throttle.wait``
        # is called only for the others (a read: no lock).
        if client and (client in self._counted or self._burst < 1):
            wait = self._throttle.wait(client)
            if wait:
                return self._refusal(wait)
        try:
            self._slots.get(True, self._wait)  # by position: a keyword costs a dict
        except Empty:
            raise Unavailable(
                f"the store is busy: {self.concurrency} key lookups have been running for "
                f"{self._wait:g} s; retry shortly",
            ) from None
        try:
            record = self._store.find_by_hash(key_hash)
        finally:
            self._slots.put(None)
        # A canary costs what an unknown key costs: a bucket left fuller after it would
        # tell its user that the key exists (the verifier refuses it as unknown too).
        if (record is None or record.canary) and client:
            with self._lock:
                self._throttle.failed(client)
        return record

    def _client(self, origin: Origin | None) -> str | None:
        """The client's bucket as every throttle counts it (an IPv6 client by its /64)."""
        if origin is None:
            return None
        peer = origin[0]
        if peer is None or not self._by_peer:
            return self._throttle.client(*origin) or None
        bucket = self._buckets.get(peer)
        if bucket is None:
            if len(self._buckets) >= PEERS_KEPT:
                self._buckets.clear()
            bucket = self._buckets[peer] = self._throttle.client(peer)
        return bucket or None

    def _refusal(self, wait: int) -> Decision:
        return self._verifier.reject(
            "lookups_throttled",
            "this client has sent too many keys this service does not know, so its keys "
            "that are not already in the cache are refused for a while without a lookup",
            quota=Quota(self._burst, 0, float(wait), "unknown keys"),
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
