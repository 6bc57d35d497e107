"""The admin layer's rules through the admin API of a real ``keyturn serve``, on each engine.

- A key can neither extend its own life or allowance nor grant another key a longer life
  or a looser allowance than its own (issue 11, item 9).
- Times outside what every engine and Python hold are a 422 that changes nothing, and the
  key keeps working everywhere (issue 11, item 4).
- A NUL character in metadata is the same 422 on SQLite and PostgreSQL (issue 11, item 11).
- Errors map once: a database that does not answer is a 503 problem with ``Retry-After``.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import Live, start_live


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One service per engine for the module."""
    if request.param == "sqlite":
        yield from start_live(tmp_path_factory.mktemp("rules"))
        return
    from tests.conftest import pg_schema

    database: str = request.getfixturevalue("pg_database")
    with pg_schema(database, "rules") as url:
        yield from start_live(tmp_path_factory.mktemp("rules-pg"), database_url=url)


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = answer.json()
    assert body["code"] == code, body
    return body


def short_lived_writer(live: Live) -> tuple[httpx.Client, dict[str, Any]]:
    """A keys:write key that expires in an hour and has 5 credits."""
    key, record = live.make_key(
        "keys:write", "keys:read", "orders:read", expires_in=3600, credits=5
    )
    return live.client(key), record


def test_a_key_cannot_extend_its_own_life_or_allowance(served: Live) -> None:
    writer, me = short_lived_writer(served)
    for change in (
        {"expires_at": None},
        {"expires_at": "2099-01-01T00:00:00Z"},
        {"credits": None},
        {"credits": 1000},
        {"refill": {"interval": "daily", "amount": 5}},
    ):
        body = problem(writer.patch(f"/v1/keys/{me['id']}", json=change), 403, "grant_exceeded")
        assert me["id"] in body["detail"]
    after = served.root.get(f"/v1/keys/{me['id']}").json()
    assert after["expires_at"] == me["expires_at"] and after["refill"] is None
    assert after["credits"] <= 5  # its own requests spend them


def test_a_key_cannot_mint_a_longer_lived_or_looser_key(served: Live) -> None:
    writer, me = short_lived_writer(served)
    for body in (
        {"name": "forever", "scopes": ["keys:write"], "expires_in": None},
        {"name": "later", "expires_in": 86_400},
        {"name": "unlimited", "expires_in": 60},
        {"name": "more", "expires_in": 60, "credits": 6},
    ):
        problem(writer.post("/v1/keys", json=body), 403, "grant_exceeded")
    events = served.root.get("/v1/audit", params={"actor": me["id"]}).json()["events"]
    assert events == []  # nothing was made
    # Within its bounds it may: the default lifetime is cut short to its own expiry.
    made = writer.post("/v1/keys", json={"name": "child", "scopes": ["orders:read"], "credits": 1})
    assert made.status_code == 201, made.text
    child = made.json()
    assert datetime.fromisoformat(child["expires_at"]) <= datetime.fromisoformat(me["expires_at"])


def test_rotating_itself_does_not_extend_its_life(served: Live) -> None:
    writer, me = short_lived_writer(served)
    rotated = writer.post(f"/v1/keys/{me['id']}/rotate", json={"grace_seconds": 60})
    assert rotated.status_code == 201, rotated.text
    successor = rotated.json()
    assert datetime.fromisoformat(successor["expires_at"]) <= datetime.fromisoformat(
        me["expires_at"]
    )


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59+14:00",
        "9999-06-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "1969-12-31T23:59:59Z",
    ],
)
def test_an_unstorable_expiry_is_refused_and_changes_nothing(served: Live, moment: str) -> None:
    key, record = served.make_key("read")
    body = problem(
        served.root.patch(f"/v1/keys/{record['id']}", json={"expires_at": moment}),
        422,
        "invalid_request",
    )
    assert body["errors"][0]["field"] == "body.expires_at"
    assert served.root.get(f"/v1/keys/{record['id']}").json()["expires_at"] == record["expires_at"]
    listed = served.root.get("/v1/keys", params={"limit": 1000})
    assert listed.status_code == 200
    assert served.client(key).get("/auth").status_code == 204
    assert served.root.post(f"/v1/keys/{record['id']}/revoke").status_code == 200
    assert served.client(key).get("/auth").status_code == 401


def test_the_latest_storable_expiry_works_everywhere(served: Live) -> None:
    key, record = served.make_key("read")
    latest = "9998-12-31T23:59:00Z"
    changed = served.root.patch(f"/v1/keys/{record['id']}", json={"expires_at": latest})
    assert changed.status_code == 200, changed.text
    assert served.client(key).get("/auth").status_code == 204
    assert served.root.post(f"/v1/keys/{record['id']}/rotate").status_code == 201


@pytest.mark.parametrize(
    "metadata",
    [{"note": "a\u0000b"}, {"a\u0000": 1}, {"list": ["ok", {"deep": "\u0000"}]}],
)
def test_nul_in_metadata_is_a_422_on_every_engine(
    served: Live, metadata: dict[str, Any]
) -> None:
    created = served.root.post("/v1/keys", json={"name": "x", "metadata": metadata})
    problem(created, 422, "invalid_request")
    _, record = served.make_key()
    answer = served.root.patch(f"/v1/keys/{record['id']}", json={"metadata": metadata})
    assert problem(answer, 422, "invalid_request")["errors"][0]["field"] == "body.metadata"
    assert served.root.get(f"/v1/keys/{record['id']}").json()["metadata"] == {}


def test_nul_in_lookups_is_never_a_500(served: Live) -> None:
    assert served.root.get("/v1/keys/key_%00").status_code == 404
    for params in ({"owner": "a\u0000"}, {"search": "\u0000"}, {"after": "k\u0000"}):
        answer = served.root.get("/v1/keys", params=params)
        assert answer.status_code in (200, 422), answer.text
    assert served.root.get("/v1/audit", params={"actor": "\u0000"}).status_code in (200, 422)


def test_conflicts_and_unknown_keys(served: Live) -> None:
    _, record = served.make_key()
    served.root.post(f"/v1/keys/{record['id']}/revoke")
    problem(served.root.post(f"/v1/keys/{record['id']}/enable"), 409, "conflict")
    problem(served.root.get("/v1/keys/key_0000000000000000"), 404, "key_not_found")


def test_a_locked_database_is_a_503_with_retry_after(tmp_path: Path) -> None:
    """A database that does not answer in time (here: SQLite locked by another process
    past its busy timeout) is the catalogued 503, never a 409 or a 500."""
    for live in start_live(tmp_path):
        _, record = live.make_key()
        path = live.settings.database_url.removeprefix("sqlite:///")
        blocker = sqlite3.connect(path, isolation_level=None, timeout=1)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            answer = live.client(live.root_key).patch(
                f"/v1/keys/{record['id']}", json={"name": "renamed"}, timeout=30
            )
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        body = problem(answer, 503, "store_unavailable")
        assert int(answer.headers["retry-after"]) >= 1
        assert "locked" in body["detail"]
        assert live.root.get(f"/v1/keys/{record['id']}").json()["name"] == record["name"]


def test_every_problem_code_is_catalogued(served: Live) -> None:
    from keyturn.outcomes import CATALOGUE

    for code in ("grant_exceeded", "conflict", "key_not_found", "store_unavailable"):
        assert CATALOGUE[code].kind == "problem"
    body = problem(served.root.get("/v1/keys/key_0000000000000000"), 404, "key_not_found")
    assert body["title"] == CATALOGUE["key_not_found"].title


def test_forward_auth_fails_closed_with_a_503_when_redis_does_not_answer(tmp_path: Path) -> None:
    """A metered key whose rate-limit counter (Redis) does not answer: the catalogued 503
    with ``Retry-After`` on /auth and the verify API, never a 500 or a 204."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    for live in start_live(tmp_path, redis_url=f"redis://127.0.0.1:{port}/0"):
        key, _ = live.make_key("read", rate_limits=["10/second"])
        answer = live.client(key).get("/auth")
        body = problem(answer, 503, "limiter_unavailable")
        assert int(answer.headers["retry-after"]) >= 1
        assert key not in answer.text and body["title"]
        unmetered, _ = live.make_key("read")
        assert live.client(unmetered).get("/auth").status_code == 204
