"""Prometheus metrics: verify outcomes by code, and how long a verify takes.

Each app owns its registry, so two apps in one process (tests, an embedding program) never
collide on metric names. The verify counts are plain integers, bumped on the hot path and
read into Prometheus families only when ``/metrics`` is scraped: prometheus-client's own
counter and histogram take a lock per increment (three per request: the outcome, the
latency's sum and its bucket), which cost forward-auth about 3% of its time. Requests are
counted on the event loop, one thread, so a plain ``+=`` loses nothing.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from keyturn.outcomes import CATALOGUE

if TYPE_CHECKING:
    from keyturn._delivery import Deliverer
    from keyturn._verifications import VerificationLog

# Verify latency is microseconds on a cache hit and milliseconds on a store read.
_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0)
ENDPOINTS = ("forward_auth", "verify_api", "admin")


class _Tally:
    """One counter: ``inc`` bumps it."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self) -> None:
        self.value += 1


class _Children(dict[str, Callable[[], None]]):
    """``code -> inc`` for one endpoint: every verifier outcome up front (so each shows as
    0 before it first happens), any other code the server answers with (a metered key's
    ``rate_limited`` or ``usage_exceeded``) when first seen."""

    def __init__(self) -> None:
        self.tallies: dict[str, _Tally] = {}
        super().__init__()
        for outcome in CATALOGUE.values():
            if outcome.kind == "outcome":
                self.__missing__(outcome.code)

    def __missing__(self, code: str) -> Callable[[], None]:
        tally = self.tallies[code] = _Tally()
        inc = self[code] = tally.inc
        return inc


class _Latency:
    """A histogram of ``_BUCKETS``: ``observe`` finds its bucket by bisection."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(_BUCKETS) + 1)  # the last one: above every bound
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.buckets[bisect_left(_BUCKETS, seconds)] += 1
        self.total += seconds


class _Verifies(Collector):
    """The two verify families, read from the tallies at scrape time."""

    def __init__(self, count: dict[str, _Children], latency: dict[str, _Latency]) -> None:
        self._count = count
        self._latency = latency

    def collect(self) -> Iterator[Metric]:
        outcomes = CounterMetricFamily(
            "keyturn_verify_outcomes",
            "Key checks by endpoint and outcome code (see `keyturn explain CODE`).",
            labels=["endpoint", "code"],
        )
        for endpoint, children in self._count.items():
            for code, tally in list(children.tallies.items()):
                outcomes.add_metric([endpoint, code], tally.value)
        yield outcomes
        durations = HistogramMetricFamily(
            "keyturn_verify_duration_seconds",
            "Time to decide a key check, from reading the request to the outcome.",
            labels=["endpoint"],
        )
        for endpoint, latency in self._latency.items():
            running, cumulative = 0, []
            for bound, count in zip((*_BUCKETS, math.inf), latency.buckets, strict=True):
                running += count
                cumulative.append(("+Inf" if bound == math.inf else repr(bound), running))
            durations.add_metric([endpoint], cumulative, latency.total)
        yield durations


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        latency = {e: _Latency() for e in ENDPOINTS}
        # endpoint -> code -> inc; endpoint -> observe (seconds)
        self.count = {e: _Children() for e in ENDPOINTS}
        self.observe: dict[str, Callable[[float], None]] = {
            e: latency[e].observe for e in ENDPOINTS
        }
        self.registry.register(_Verifies(self.count, latency))

    def watch_verifications(self, log: VerificationLog) -> None:
        """Verification log entries dropped because the queue was full (never a blocked
        request: ``keyturn._verifications``)."""
        gauge = Gauge(
            "keyturn_verifications_dropped",
            "Verification log entries dropped since start: the queue was full.",
            registry=self.registry,
        )
        gauge.set_function(lambda: log.dropped)

    def watch_deliveries(self, deliverer: Deliverer) -> None:
        """Webhook deliveries by outcome, as the worker last counted them in the store."""
        gauge = Gauge(
            "keyturn_webhook_deliveries",
            "Webhook deliveries in the store by status (pending, delivered, failed).",
            ["status"],
            registry=self.registry,
        )
        for status in ("pending", "delivered", "failed"):
            gauge.labels(status).set_function(partial(_count, deliverer, status))

    def exposition(self) -> tuple[bytes, str]:
        """The text format body and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _count(deliverer: Deliverer, status: str) -> float:
    return float(deliverer.counts.get(status, 0))
