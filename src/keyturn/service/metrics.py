"""Prometheus metrics: verify outcomes by code, and how long a verify takes.

Each app owns its registry, so two apps in one process (tests, an embedding program) never
collide on metric names. The label children for every catalogue code are made up front:
``labels()`` takes a lock and a dict walk that the forward-auth hot path should not pay.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from keyturn.outcomes import CATALOGUE

if TYPE_CHECKING:
    from keyturn.delivery import Deliverer
    from keyturn.verifications import VerificationLog

# Verify latency is microseconds on a cache hit and milliseconds on a store read.
_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0)
ENDPOINTS = ("forward_auth", "verify_api", "admin")


class _Children(dict[str, Callable[[], None]]):
    """``code -> Counter.inc`` for one endpoint: every verifier outcome up front (so each
    shows as 0 before it first happens), any other code the server answers with (a rate
    limit's ``rate_limited``) when first seen."""

    def __init__(self, counter: Counter, endpoint: str) -> None:
        self._counter = counter
        self._endpoint = endpoint
        super().__init__(
            (o.code, counter.labels(endpoint, o.code).inc)
            for o in CATALOGUE.values()
            if o.kind == "outcome"
        )

    def __missing__(self, code: str) -> Callable[[], None]:
        inc = self[code] = self._counter.labels(self._endpoint, code).inc
        return inc


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        outcomes = Counter(
            "keyturn_verify_outcomes",
            "Key checks by endpoint and outcome code (see `keyturn explain CODE`).",
            ["endpoint", "code"],
            registry=self.registry,
        )
        latency = Histogram(
            "keyturn_verify_duration_seconds",
            "Time to decide a key check, from reading the request to the outcome.",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        # endpoint -> code -> bound Counter.inc; endpoint -> bound Histogram.observe
        self.count = {e: _Children(outcomes, e) for e in ENDPOINTS}
        self.observe = {e: latency.labels(e).observe for e in ENDPOINTS}

    def watch_verifications(self, log: VerificationLog) -> None:
        """Verification log entries dropped because the queue was full (never a blocked
        request: ``keyturn.verifications``)."""
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
