"""Rate limits per key, counted by the ``limits`` library in memory or in Redis.

A key may carry several limits ("100/second", "10000/day"). Each is a fixed window counted
with one atomic increment (``INCR`` in Redis), so across any number of instances sharing one
Redis no window ever admits more than its limit. The documented slack of fixed windows: two
bursts on either side of a window boundary can admit up to twice the limit within one
window's length. A moving window would close that gap at the cost of storing every request's
timestamp, which a 10,000/day limit cannot afford.

Limits are counted shortest window first and counting stops at the first refusal, so a burst
refused by the per-second limit does not also eat into the day's budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import lru_cache

from limits import RateLimitItem, parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from keyturn._extras import require
from keyturn.errors import InvalidValue, LimiterUnavailable
from keyturn.quota import Quota
from keyturn.store.base import masked_url

MEMORY = "memory://"
DEFAULT_KEY_PREFIX = "keyturn"


@lru_cache(maxsize=1024)
def _item(text: str) -> RateLimitItem:
    try:
        return parse(text)
    except ValueError:
        raise InvalidValue(
            f"invalid rate limit {text[:40]!r}: write it as COUNT/PERIOD, like '100/second', "
            "'10000/day' or '50/5 minutes' (periods: second, minute, hour, day, month, year)"
        ) from None


def normalize_rate_limit(text: str) -> str:
    """The canonical spelling of a limit (``'100 per second'`` -> ``'100/second'``);
    ``ValueError`` says how to write it. Stored in this form, one per limit."""
    item = _item(text.strip())
    if item.amount < 1:
        raise InvalidValue(f"invalid rate limit {text[:40]!r}: the count must be at least 1")
    period = item.GRANULARITY.name
    return (
        f"{item.amount}/{period}"
        if item.multiples == 1
        else (f"{item.amount}/{item.multiples} {period}s")
    )


def window(text: str) -> tuple[int, int]:
    """(count, window length in seconds) of a limit: ``"100/minute"`` -> ``(100, 60)``."""
    item = _item(text)
    return item.amount, item.get_expiry()


def normalize_rate_limits(texts: Iterable[str]) -> tuple[str, ...]:
    """Validated limits, shortest window first (the order they are counted in)."""
    unique = {normalize_rate_limit(t) for t in texts}
    return tuple(sorted(unique, key=lambda t: (_item(t).get_expiry(), t)))


class RateLimiter:
    """Counts requests per key id against the key's limits.

    ``storage`` is a ``limits`` storage URI: ``memory://`` (one process) or
    ``redis://host:6379/0`` (shared by every instance). ``key_prefix`` separates deployments
    (or test runs) that share one Redis.
    """

    def __init__(self, storage: str = MEMORY, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self.uri = storage
        shown = masked_url(storage)
        options: dict[str, str | float] = {}
        if storage.startswith(("redis", "rediss")):
            require("redis", "rate limits counted in Redis")
            # A Redis that stops answering must fail requests in a second, not hang them.
            options.update(key_prefix=key_prefix, socket_timeout=1.0, socket_connect_timeout=1.0)
        elif not storage.startswith("memory"):
            options["key_prefix"] = key_prefix
        try:
            found = storage_from_string(storage, **options)
        except Exception as exc:  # the library raises several kinds for a bad URI
            # The library's message repeats the URI, password and all: say it our way.
            raise InvalidValue(
                f"cannot use rate-limit storage {shown!r}: use memory:// or "
                "redis://[:password@]host:6379/0",
                "redis_url",
            ) from exc
        if not isinstance(found, Storage):
            raise InvalidValue(
                f"cannot use rate-limit storage {shown!r}: it is asynchronous", "redis_url"
            )
        self.storage: Storage = found
        self.shown = shown
        # What the storage's client raises when its server does not answer (redis.RedisError
        # for Redis): mapped to ``LimiterUnavailable`` here, once. Memory cannot fail so.
        failures = () if storage.startswith("memory") else found.base_exceptions
        self._failures: tuple[type[BaseException], ...] = (
            failures if isinstance(failures, tuple) else (failures,)
        )
        self._strategy = FixedWindowRateLimiter(self.storage)

    def hit(self, key_id: str, limits: tuple[str, ...]) -> Quota | None:
        """Count one request; ``None`` if every limit admits it, else the refusing limit."""
        try:
            return self._count(key_id, limits, self._strategy.hit)
        except self._failures as exc:
            raise self._unavailable(exc) from exc

    def peek(self, key_id: str, limits: tuple[str, ...]) -> Quota | None:
        """What ``hit`` would answer, without counting: for checks, which are not uses."""
        try:
            return self._count(key_id, limits, self._strategy.test)
        except self._failures as exc:
            raise self._unavailable(exc) from exc

    def _count(
        self, key_id: str, limits: tuple[str, ...], admits: Callable[[RateLimitItem, str], bool]
    ) -> Quota | None:
        strategy = self._strategy
        for text in limits:
            item = _item(text)
            if not admits(item, key_id):
                stats = strategy.get_window_stats(item, key_id)
                return Quota(
                    item.amount,
                    stats.remaining,
                    max(0.0, stats.reset_time - time.time()),
                    text,
                )
        return None

    def _unavailable(self, exc: BaseException) -> LimiterUnavailable:
        return LimiterUnavailable(
            f"cannot count rate limits in {self.shown!r}: {type(exc).__name__}"
        )

    def reset(self) -> None:
        """Forget every count (tests, and ``memory://`` between runs)."""
        self.storage.reset()

    def check(self) -> bool:
        """Whether the storage answers (a readiness probe for Redis)."""
        return bool(self.storage.check())
