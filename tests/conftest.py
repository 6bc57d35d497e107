"""Shared fixtures: real SQLite stores in a temporary folder, never a shared file; real
PostgreSQL and Redis on loopback, each test in its own schema and key prefix.

PostgreSQL and Redis tests skip only outside CI when the server is unreachable; under
``CI=true`` an unreachable server fails them (``scripts/services.sh`` starts both).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from keyturn import KeyManager


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keyturn.db'}"


@pytest.fixture
def manager(db_url: str) -> Iterator[KeyManager]:
    with KeyManager(db_url) as m:
        # On PostgreSQL the change feed empties the cache when it connects (nothing changed
        # before it listened may be served stale): wait for that, or a test that looks at
        # the cache races it (test_unknown_keys_are_cached_negatively did, under load).
        if m.feed is not None:
            assert m.feed.connected.wait(10)
        yield m


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_make_parametrize_id(config: pytest.Config, val: object, argname: str) -> str | None:
    """Long strings (generated keys among them) get short ids that are the same in every
    pytest-xdist worker, and test ids never spell out a key."""
    if isinstance(val, str) and len(val) > 24:
        return f"{val[:4]}…{len(val)}"
    return None


PG_ADMIN_URL = os.environ.get(
    "KEYTURN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("KEYTURN_TEST_REDIS", "redis://127.0.0.1:6379/0")


def unreachable(what: str, error: Exception) -> None:
    """Fail in CI, skip elsewhere: a developer without the server still runs the rest."""
    message = f"{what} is unreachable: {error}"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
def pg_database(worker_id: str) -> Iterator[str]:
    """A database of this test session (one per xdist worker), dropped at the end."""
    import psycopg

    name = f"keyturn_test_{worker_id}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unreachable(f"PostgreSQL at {PG_ADMIN_URL}", exc)
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield with_database(PG_ADMIN_URL, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def pg_schema(database_url: str, label: str) -> Iterator[str]:
    """A store URL of its own: a fresh schema in ``database_url``, dropped afterwards."""
    import psycopg

    schema = f"{label}_{secrets.token_hex(6)}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        try:
            yield f"{database_url}?options=-csearch_path%3D{schema}"
        finally:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@contextmanager
def redis_keyspace(label: str) -> Iterator[str]:
    """A Redis key prefix of its own, whose keys are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unreachable(f"Redis at {REDIS_URL}", exc)
    prefix = f"keyturn-{label}-{secrets.token_hex(6)}"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    with pg_schema(pg_database, "t") as url:
        yield url


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    with redis_keyspace("test") as prefix:
        yield prefix


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test against each engine: the store conformance suite."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'keyturn.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url
