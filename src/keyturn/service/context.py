"""What every part of a running service shares: the manager, the settings, the metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from keyturn.cache import KeyCache
from keyturn.config import Settings
from keyturn.credentials import CredentialReader
from keyturn.manager import AsyncKeyManager, KeyManager
from keyturn.service.metrics import Metrics
from keyturn.store.base import StoreError, masked_url
from keyturn.verifier import Verifier

if TYPE_CHECKING:
    from keyturn.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class ServiceContext:
    settings: Settings
    manager: AsyncKeyManager
    metrics: Metrics

    @property
    def sync(self) -> KeyManager:
        return self.manager.sync


def build_manager(settings: Settings) -> KeyManager:
    """The key manager the settings describe (opens and migrates the store)."""
    reader = CredentialReader(
        settings.api_key_headers,
        query_params=settings.query_params,
        allow_query=settings.allow_query,
    )
    pepper = settings.pepper.encode() if settings.pepper else None
    return KeyManager(
        settings.database_url,
        verifier=Verifier(settings.prefixes, pepper=pepper, reader=reader),
        cache=KeyCache(ttl=settings.cache_ttl),
        prefix=settings.default_prefix,
        usage_interval=settings.usage_flush_interval,
        limiter=_limiter(settings),
    )


def _limiter(settings: Settings) -> RateLimiter | None:
    """Rate limits counted in Redis when the instances share one, else in this process."""
    if not settings.redis_url:
        return None
    from keyturn.ratelimit import RateLimiter

    limiter = RateLimiter(settings.redis_url, key_prefix=settings.redis_prefix)
    if not limiter.check():
        raise StoreError(f"cannot reach Redis at {masked_url(settings.redis_url)!r}")
    return limiter


def build_context(settings: Settings, manager: KeyManager | None = None) -> ServiceContext:
    return ServiceContext(
        settings, AsyncKeyManager(manager or build_manager(settings)), Metrics()
    )
