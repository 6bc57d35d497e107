"""Stores, chosen by URL: ``sqlite:///keyturn.db`` is the embedded default,
``postgresql://...`` the store that several instances share."""

from __future__ import annotations

from keyturn.errors import InvalidValue
from keyturn.store.base import AuditEvent, KeyFilter, KeyStore

DEFAULT_URL = "sqlite:///keyturn.db"


def normal_url(url: str) -> str:
    """``url`` with its scheme in lower case: schemes are case-insensitive (RFC 3986,
    3.1), so ``SQLITE:///keyturn.db`` names the same file as ``sqlite:///keyturn.db``,
    where the SQLite path reading and psycopg take the lower-case form only."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.lower()}{sep}{rest}" if sep else url


def open_store(url: str = DEFAULT_URL, *, create: bool = True) -> KeyStore:
    """Open (and migrate) the store that ``url`` names.

    ``create=False`` is for readers (``keys list``, ``check``, the framework integrations):
    a SQLite file that does not exist is then an error naming its absolute path, instead
    of a new empty database in whatever folder the process started in, which would answer
    ``unknown_key`` for every key. Raises ``InvalidValue`` for an unusable URL or file and
    ``Unavailable`` for a database that does not answer.
    """
    url = normal_url(url)
    scheme = url.partition("://")[0]
    if scheme == "sqlite":
        from keyturn.store.sqlite import SQLiteStore

        return SQLiteStore(url, create=create)
    if scheme in ("postgresql", "postgres"):
        from keyturn._extras import require

        require("postgres", "a PostgreSQL database")
        from keyturn.store.postgres import PostgresStore

        return PostgresStore(url)
    raise InvalidValue(
        f"unsupported database URL {scheme + '://...'!r}: use "
        "sqlite:///path/to/keyturn.db or postgresql://user:password@host/dbname",
        "database_url",
    )


__all__ = [
    "DEFAULT_URL",
    "AuditEvent",
    "KeyFilter",
    "KeyStore",
    "open_store",
]
