"""Rate limits per key: fixed windows counted in memory, or in Redis for many instances.

A key may carry several limits ("100/second", "10000/day"). Each is a fixed window that
starts at its first request and is counted with one atomic increment (``INCR`` in a Redis
script that also sets the window's expiry), so across any number of instances sharing one
Redis no window ever admits more than its limit. The documented slack of fixed windows: two
bursts on either side of a window boundary can admit up to twice the limit within one
window's length. A moving window would close that gap at the cost of storing every request's
timestamp, which a 10,000/day limit cannot afford.

Limits are counted shortest window first and counting stops at the first refusal, so a burst
refused by the per-second limit does not also eat into the day's budget.

Counting in memory is the standard library's; counting in Redis needs the ``redis`` extra.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple, Protocol
from urllib.parse import urlsplit

from keyturn._extras import require
from keyturn._quota import Quota
from keyturn.errors import InvalidValue, LimiterUnavailable
from keyturn.store.base import masked_url

if TYPE_CHECKING:
    import redis

MEMORY = "memory://"
# The URLs redis-py opens: TCP, TLS, and a Unix socket (``unix:///run/redis.sock?db=0``).
REDIS_SCHEMES = ("redis", "rediss", "unix")
REDIS_URLS = (
    "redis://[:password@]host:6379/0 such as redis://127.0.0.1:6379/0, rediss://... for TLS, "
    "or unix:///path/redis.sock?db=0"
)
DEFAULT_KEY_PREFIX = "keyturn"

# A month and a year are 30 and 360 days: a window has one length, whatever the calendar.
PERIODS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86_400,
    "month": 30 * 86_400,
    "year": 360 * 86_400,
}
_LIMIT = re.compile(
    r"\s*(\d{1,12})\s*(?:/|\s+per\s+)\s*(?:(\d{1,9})\s*)?(second|minute|hour|day|month|year)s?\s*",
    re.IGNORECASE,
)


class Limit(NamedTuple):
    """``amount`` requests per window of ``multiples`` ``period`` s."""

    amount: int
    multiples: int
    period: str

    @property
    def seconds(self) -> int:
        return self.multiples * PERIODS[self.period]

    def __str__(self) -> str:
        if self.multiples == 1:
            return f"{self.amount}/{self.period}"
        return f"{self.amount}/{self.multiples} {self.period}s"


@lru_cache(maxsize=1024)
def parse_limit(text: str) -> Limit:
    """``"100/second"``, ``"100 per second"``, ``"50/5 minutes"``: one limit, or
    ``InvalidValue`` saying how to write it."""
    found = _LIMIT.fullmatch(text)
    if found is None:
        raise InvalidValue(
            f"invalid rate limit {text[:40]!r}: write it as COUNT/PERIOD, like '100/second', "
            "'10000/day' or '50/5 minutes' (periods: second, minute, hour, day, month, year)"
        )
    count, multiples, period = found.groups()
    limit = Limit(int(count), int(multiples or 1), period.lower())
    if limit.amount < 1:
        raise InvalidValue(f"invalid rate limit {text[:40]!r}: the count must be at least 1")
    if limit.multiples < 1:
        raise InvalidValue(f"invalid rate limit {text[:40]!r}: the window must be at least 1")
    return limit


def normalize_rate_limit(text: str) -> str:
    """The canonical spelling of a limit (``'100 per second'`` -> ``'100/second'``);
    ``InvalidValue`` says how to write it. Stored in this form, one per limit."""
    return str(parse_limit(text.strip()))


def window(text: str) -> tuple[int, int]:
    """(count, window length in seconds) of a limit: ``"100/minute"`` -> ``(100, 60)``."""
    limit = parse_limit(text)
    return limit.amount, limit.seconds


def normalize_rate_limits(texts: Iterable[str]) -> tuple[str, ...]:
    """Validated limits, shortest window first (the order they are counted in)."""
    unique = {normalize_rate_limit(t) for t in texts}
    return tuple(sorted(unique, key=lambda t: (parse_limit(t).seconds, t)))


class _Counts(Protocol):
    """Where windows are counted: ``(count, seconds until the window ends)`` per name."""

    def add(self, name: str, seconds: int) -> tuple[int, float]: ...

    def read(self, name: str) -> tuple[int, float]: ...

    def check(self) -> bool: ...


class _MemoryCounts:
    """Windows of one process, under one lock; ended windows are swept now and then, so
    keys that stop calling do not keep memory."""

    SWEEP_EVERY = 4096

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}  # name -> (count, ends at)
        self._lock = threading.Lock()
        self._adds = 0

    def add(self, name: str, seconds: int) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            count, ends = self._windows.get(name, (0, 0.0))
            if ends <= now:
                count, ends = 0, now + seconds
            self._windows[name] = (count + 1, ends)
            self._adds += 1
            if self._adds % self.SWEEP_EVERY == 0:
                self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
        return count + 1, ends - now

    def read(self, name: str) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            count, ends = self._windows.get(name, (0, 0.0))
        return (count, ends - now) if ends > now else (0, 0.0)

    def check(self) -> bool:
        return True


# One round trip, atomic: the first request of a window also starts its expiry.
_ADD = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}
"""


class _RedisCounts:
    """Windows shared by every instance using one Redis, under ``prefix``."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._add = client.register_script(_ADD)

    def add(self, name: str, seconds: int) -> tuple[int, float]:
        count, ttl_ms = self._add(keys=[f"{self._prefix}/ratelimit/{name}"], args=[seconds * 1000])
        return int(count), max(0, int(ttl_ms)) / 1000

    def read(self, name: str) -> tuple[int, float]:
        key = f"{self._prefix}/ratelimit/{name}"
        pipe = self._client.pipeline(transaction=False)
        pipe.get(key)
        pipe.pttl(key)
        count, ttl_ms = pipe.execute()
        return (int(count), max(0, int(ttl_ms)) / 1000) if count is not None else (0, 0.0)

    def check(self) -> bool:
        return bool(self._client.ping())


class RateLimiter:
    """Counts requests per key id against the key's limits.

    ``storage`` is ``memory://`` (one process) or ``redis://[:password@]host:6379/0``
    (``rediss://`` for TLS, ``unix:///path/redis.sock?db=0`` for a local socket; shared by
    every instance; the ``redis`` extra). ``key_prefix``
    separates deployments (or test runs) that share one Redis.
    """

    def __init__(self, storage: str = MEMORY, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        shown = masked_url(storage)
        self.shown = shown
        self._failures: tuple[type[BaseException], ...] = ()
        self._counts: _Counts
        if storage == MEMORY:
            self._counts = _MemoryCounts()
            return
        if urlsplit(storage).scheme not in REDIS_SCHEMES:
            raise InvalidValue(
                f"cannot use rate-limit storage {shown!r}: use memory:// or {REDIS_URLS}",
                "redis_url",
            )
        require("redis", "rate limits counted in Redis")
        import redis

        try:
            # A Redis that stops answering must fail requests in a second, not hang them.
            client = redis.Redis.from_url(storage, socket_timeout=1.0, socket_connect_timeout=1.0)
        except ValueError as exc:
            # The client's message may repeat the URL, password and all: say it our way.
            raise InvalidValue(
                f"cannot use rate-limit storage {shown!r}: use memory:// or {REDIS_URLS}",
                "redis_url",
            ) from exc
        self._counts = _RedisCounts(client, key_prefix)
        # What the client raises when its server does not answer, mapped here, once.
        self._failures = (redis.RedisError,)

    def hit(self, key_id: str, limits: tuple[str, ...]) -> Quota | None:
        """Count one request; ``None`` if every limit admits it, else the refusing limit."""
        return self._count(key_id, limits, use=True)

    def peek(self, key_id: str, limits: tuple[str, ...]) -> Quota | None:
        """What ``hit`` would answer, without counting: for checks, which are not uses."""
        return self._count(key_id, limits, use=False)

    def _count(self, key_id: str, limits: tuple[str, ...], *, use: bool) -> Quota | None:
        try:
            for text in limits:
                limit = parse_limit(text)
                name = f"{key_id}/{limit.amount}/{limit.seconds}"
                if use:
                    count, left = self._counts.add(name, limit.seconds)
                    admitted = count <= limit.amount
                else:
                    count, left = self._counts.read(name)
                    admitted = count < limit.amount
                if not admitted:
                    return Quota(limit.amount, max(0, limit.amount - count), left, text)
        except self._failures as exc:
            raise LimiterUnavailable(
                f"cannot count rate limits in {self.shown!r} ({type(exc).__name__}): check "
                "that Redis runs there and answers"
            ) from exc
        return None

    def check(self) -> bool:
        """Whether the storage answers (a readiness probe for Redis)."""
        try:
            return self._counts.check()
        except self._failures:
            return False

    def ping(self) -> None:
        """``LimiterUnavailable`` unless the storage answers (``/readyz``), saying why."""
        try:
            answers = self._counts.check()
        except self._failures as exc:
            raise LimiterUnavailable(
                f"cannot reach rate-limit storage {self.shown!r}: {type(exc).__name__}"
            ) from exc
        if not answers:
            raise LimiterUnavailable(f"cannot reach rate-limit storage {self.shown!r}")
