"""A real service per engine for the attacks here: SQLite, and PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.service.conftest import Live, start_live


def live_on(
    engine: str, request: pytest.FixtureRequest, tmp: pytest.TempPathFactory, **overrides: Any
) -> Iterator[Live]:
    """``start_live`` on ``engine``: a fresh SQLite file, or a schema of its own in
    PostgreSQL with a Redis key prefix of its own."""
    folder = tmp.mktemp("security")
    if engine == "sqlite":
        yield from start_live(folder, **overrides)
        return
    from tests.conftest import REDIS_URL, pg_schema, redis_keyspace

    database = request.getfixturevalue("pg_database")
    with pg_schema(database, "sec") as url, redis_keyspace("sec") as prefix:
        yield from start_live(
            folder, database_url=url, redis_url=REDIS_URL, redis_prefix=prefix, **overrides
        )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One service per module and engine, default settings."""
    yield from live_on(request.param, request, tmp_path_factory)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def hooks_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One service per module and engine whose webhooks may post to loopback (nothing needs
    to answer at the port used)."""
    yield from live_on(request.param, request, tmp_path_factory, webhook_allow_private=True)
