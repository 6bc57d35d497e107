"""Stores, chosen by URL: ``sqlite:///keyturn.db`` is the embedded default,
``postgresql://...`` the store that several instances share."""

from __future__ import annotations

from keyturn.store.base import AuditEvent, KeyFilter, KeyNotFound, KeyStore, StoreError

DEFAULT_URL = "sqlite:///keyturn.db"


def open_store(url: str = DEFAULT_URL) -> KeyStore:
    """Open (and migrate) the store that ``url`` names; ``StoreError`` says what is wrong."""
    scheme = url.partition("://")[0].lower()
    if scheme == "sqlite":
        from keyturn.store.sqlite import SQLiteStore

        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        from keyturn.store.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(
        f"unsupported database URL {scheme + '://...'!r}: use "
        "sqlite:///path/to/keyturn.db or postgresql://user:password@host/dbname"
    )


__all__ = [
    "DEFAULT_URL",
    "AuditEvent",
    "KeyFilter",
    "KeyNotFound",
    "KeyStore",
    "StoreError",
    "open_store",
]
