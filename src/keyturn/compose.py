"""The composition root: settings in, a ``KeyManager`` out, the same way for every face.

``keyturn serve``, every CLI command, the dashboard and the framework integrations' URL
form (``KeyturnAuth("sqlite:///keyturn.db")``) build their manager here and nowhere else,
so a setting means the same everywhere: a key made by ``keyturn keys create`` with
``KEYTURN_PEPPER`` set is accepted by ``keyturn serve`` with the same setting, a prefix
``KEYTURN_PREFIXES`` does not list is refused by every face, and ``keyturn check`` reads
credentials with the server's headers and answers with its realm.

Settings come from flags, then ``KEYTURN_*`` environment variables, then the TOML file
(``keyturn.config``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyturn.admin import LifetimePolicy
from keyturn.cache import KeyCache
from keyturn.config import Settings
from keyturn.credentials import CredentialReader
from keyturn.errors import LimiterUnavailable
from keyturn.manager import KeyManager
from keyturn.store import open_store
from keyturn.store.base import masked_url
from keyturn.verifier import Verifier

if TYPE_CHECKING:
    from keyturn._ratelimit import RateLimiter


def build_verifier(settings: Settings) -> Verifier:
    """What the settings accept: prefixes, key headers, query parameters, pepper, and whose
    forwarding headers name the client (trusted proxies)."""
    reader = CredentialReader(
        settings.api_key_headers,
        query_params=settings.query_params,
        allow_query=settings.allow_query,
    )
    pepper = settings.pepper.encode() if settings.pepper else None
    return Verifier(
        settings.prefixes,
        pepper=pepper,
        reader=reader,
        trusted_proxies=settings.trusted_proxies,
    )


def build_manager(settings: Settings, *, create: bool = True, probe: bool = False) -> KeyManager:
    """The key manager the settings describe (opens and migrates the store).

    ``create=False`` for faces that only read keys (``keys list``, ``check``, the
    integrations): a SQLite file that does not exist is then an error naming its absolute
    path, never a new empty database. ``probe``: also fail now, not at the first metered
    request, if the configured Redis does not answer (``keyturn serve`` does).
    """
    store = open_store(settings.database_url, create=create)
    try:
        return KeyManager(
            store,
            verifier=build_verifier(settings),
            cache=KeyCache(ttl=settings.cache_ttl),
            prefix=settings.default_prefix,
            usage_interval=settings.usage_flush_interval,
            limiter=_limiter(settings, probe),
            verification_retention=settings.verification_retention,
            verification_log=settings.verification_log,
            allow_private_webhooks=settings.webhook_allow_private,
            lifetime=LifetimePolicy(settings.max_lifetime, settings.require_expiry),
        )
    except BaseException:
        store.close()
        raise


def _limiter(settings: Settings, probe: bool) -> RateLimiter | None:
    """Rate limits counted in Redis when the instances share one, else in this process."""
    if not settings.redis_url:
        return None
    from keyturn._ratelimit import RateLimiter

    limiter = RateLimiter(settings.redis_url, key_prefix=settings.redis_prefix)
    if probe and not limiter.check():
        raise LimiterUnavailable(
            f"cannot reach Redis at {masked_url(settings.redis_url)!r}: check that Redis runs "
            "there, or leave --redis and KEYTURN_REDIS_URL unset to count rate limits in this "
            "process"
        )
    return limiter
