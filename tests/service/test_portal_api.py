"""``POST /v1/portal/sessions`` on a real server, on each engine: who may open a portal,
what the policy may say, and that the link is stored as a hash and opens once."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.service.conftest import Live, start_live


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    if request.param == "sqlite":
        yield from start_live(tmp_path_factory.mktemp("portal-api"))
        return
    from tests.conftest import pg_schema

    database: str = request.getfixturevalue("pg_database")
    with pg_schema(database, "portalapi") as url:
        yield from start_live(tmp_path_factory.mktemp("portal-api-pg"), database_url=url)


BODY = {
    "owner": "acme",
    "return_url": "https://app.example/settings",
    "ttl": "15m",
    "policy": {
        "scopes": ["orders:read", "orders:write"],
        "max_keys": 5,
        "max_lifetime": "90d",
        "require_expiry": True,
    },
}


def open_portal(client: httpx.Client, body: object = None) -> httpx.Response:
    return client.post("/v1/portal/sessions", json=BODY if body is None else body)


def test_a_portal_link_for_one_owner(served: Live) -> None:
    answer = open_portal(served.root)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    url = urlsplit(made["url"])
    assert f"{url.scheme}://{url.netloc}" == served.url
    assert url.path == "/portal/enter" and url.query.startswith("token=ktp_")
    assert made["owner"] == "acme"
    assert made["policy"] == {
        "scopes": ["orders:read", "orders:write"],
        "max_keys": 5,
        "max_lifetime": 90 * 86400,
        "require_expiry": True,
    }
    audit = served.root.get("/v1/audit", params={"action": "portal.link"}).json()["events"]
    assert audit[0]["details"]["owner"] == "acme"
    assert url.query.removeprefix("token=") not in str(audit)


def test_opening_a_portal_needs_portal_write_and_the_policys_scopes(served: Live) -> None:
    writer, _ = served.make_key("keys:write", "keys:read", "orders:read", "orders:write")
    assert open_portal(served.client(writer)).status_code == 403
    opener, _ = served.make_key("portal:write", "orders:read")
    answer = open_portal(served.client(opener))
    assert answer.status_code == 403
    assert "orders:write" in answer.json()["detail"]
    narrow = {**BODY, "policy": {"scopes": ["orders:read"]}}
    assert open_portal(served.client(opener), narrow).status_code == 201
    assert served.client().post("/v1/portal/sessions", json=BODY).status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        {"owner": ""},
        {"owner": "a\nb"},
        {"ttl": "forever"},
        {"ttl": "2d"},
        {"ttl": 0},
        {"ttl": 10**30},
        {"policy": {"max_lifetime": 10**30}},
        {"return_url": "javascript:alert(1)"},
        {"return_url": "/relative"},
        {"policy": {"max_keys": -1}},
        {"policy": {"max_lifetime": "soon"}},
        {"return_url": ""},
        {"return_url": "http://["},
        {"ttl": "9s"},
        {"ttl": "25h"},
        {"policy": {"scopes": ["has space"]}},
        {"policy": {"colour": "red"}},
        {"extra": 1},
    ],
)
def test_a_bad_request_is_a_422_naming_the_field(served: Live, change: dict[str, object]) -> None:
    answer = open_portal(served.root, {**BODY, **change})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_store_keeps_only_the_links_hash(served: Live) -> None:
    token = open_portal(served.root).json()["url"].partition("token=")[2]
    url = served.settings.database_url
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        with sqlite3.connect(path) as conn:
            dumped = "\n".join(conn.iterdump())
        assert token not in dumped and token[4:] not in dumped
        assert "portal_links" in dumped
    else:
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT * FROM portal_links").fetchall()
        assert rows and token not in repr(rows) and token[4:] not in repr(rows)


def test_the_link_is_built_on_public_url_when_set(tmp_path: Path) -> None:
    for live in start_live(tmp_path, public_url="https://keys.example.com/"):
        made = open_portal(live.root).json()
        assert made["url"].startswith("https://keys.example.com/portal/enter?token=ktp_")
