"""Every face records its decisions in the verification log: the core does, on its one
verify path, so a request through the ASGI middleware, FastAPI, Flask, Django, DRF or the
admin API's own authentication shows in ``GET /v1/verifications`` of a real ``keyturn
serve`` sharing the store, with the method and path the face saw. Every integration's
answer, accepted or refused, carries ``X-Request-Id``: the id its entry is found by."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.test import Client as DjangoClient
from django.test.utils import override_settings
from fastapi import FastAPI, Security
from flask import Flask, g
from starlette.testclient import TestClient

from keyturn.integrations import VerifiedKey
from keyturn.integrations.fastapi import KeyturnAuth
from keyturn.integrations.flask import Keyturn, require_key
from tests.integrations import django_site, mounted_apps
from tests.service.conftest import Live, start_live


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("faces"))


def logged(live: Live, key_id: str) -> list[dict[str, Any]]:
    """The key's entries, polled for up to 2 s (an entry is queryable within 2 s)."""
    return entries(live, key_id=key_id)


def entries(live: Live, **filters: str) -> list[dict[str, Any]]:
    """The entries ``GET /v1/verifications`` finds for ``filters``, polled for up to 2 s."""
    deadline = time.monotonic() + 2.0
    while True:
        found = live.root.get("/v1/verifications", params=filters)
        assert found.status_code == 200, found.text
        rows: list[dict[str, Any]] = found.json()["verifications"]
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


Answer = tuple[int, str | None]  # status, X-Request-Id
AGENT = "faces-test/1.0"  # the user agent every face's request sends


def sent(key: str) -> dict[str, str]:
    """The headers of each face's request."""
    return {"Authorization": f"Bearer {key}", "User-Agent": AGENT}


def _starlette(live: Live, key: str) -> Answer:
    app = mounted_apps.starlette_app(live.manager, scopes={})
    with TestClient(app) as client:
        r = client.get("/orders/7", headers=sent(key))
        return r.status_code, r.headers.get("x-request-id")


def _fastapi(live: Live, key: str) -> Answer:
    app = mounted_apps.fastapi_app(live.manager, scopes={})
    with TestClient(app) as client:
        r = client.get("/orders/7", headers=sent(key))
        return r.status_code, r.headers.get("x-request-id")


def _fastapi_dependency(live: Live, key: str) -> Answer:
    """``Security(auth)`` on its route, without ``protect``'s middleware."""
    app = FastAPI()
    auth = KeyturnAuth(live.manager)
    auth.install(app)

    @app.get("/orders/7")
    async def order(key: VerifiedKey = Security(auth)) -> dict[str, str]:  # noqa: B008
        return {"name": key.name}

    with TestClient(app) as client:
        r = client.get("/orders/7", headers=sent(key))
        return r.status_code, r.headers.get("x-request-id")


def _flask(live: Live, key: str) -> Answer:
    app = Flask(__name__)
    Keyturn(app, live.manager)

    @app.get("/orders/7")
    @require_key
    def order() -> dict[str, str]:
        return {"name": g.keyturn_key.name}

    answer = app.test_client().get("/orders/7", headers=sent(key))
    return answer.status_code, answer.headers.get("x-request-id")


def _django(live: Live, key: str) -> Answer:
    middleware = ["keyturn.integrations.django.KeyturnMiddleware"]
    keyturn = {"KEYS": live.manager}
    with override_settings(ROOT_URLCONF=django_site.plain, MIDDLEWARE=middleware,
                           KEYTURN=keyturn):  # fmt: skip
        r = DjangoClient().get("/items", HTTP_AUTHORIZATION=f"Bearer {key}",
                               HTTP_USER_AGENT=AGENT)
        return r.status_code, r.headers.get("x-request-id")


def _drf(live: Live, key: str) -> Answer:
    with override_settings(ROOT_URLCONF=django_site.rest, MIDDLEWARE=[],
                           KEYTURN={"KEYS": live.manager}):  # fmt: skip
        r = DjangoClient().get("/items", HTTP_AUTHORIZATION=f"Bearer {key}",
                               HTTP_USER_AGENT=AGENT)
        return r.status_code, r.headers.get("x-request-id")


def _admin_api(live: Live, key: str) -> Answer:
    r = httpx.get(f"{live.url}/v1/keys", headers=sent(key))
    return r.status_code, r.headers.get("x-request-id")


FACES: dict[str, tuple[Callable[[Live, str], Answer], str, str]] = {
    "asgi": (_starlette, "GET", "/orders/7"),
    "fastapi": (_fastapi, "GET", "/orders/7"),
    "fastapi_dependency": (_fastapi_dependency, "GET", "/orders/7"),
    "flask": (_flask, "GET", "/orders/7"),
    "django": (_django, "GET", "/items"),
    "drf": (_drf, "GET", "/items"),
    "admin_api": (_admin_api, "GET", "/v1/keys"),
}
INTEGRATIONS = [face for face in FACES if face != "admin_api"]


def by_request_id(live: Live, request_id: str) -> list[dict[str, Any]]:
    """The entries recorded under ``request_id``, polled for up to 2 s."""
    return entries(live, request_id=request_id)


@pytest.mark.parametrize("face", FACES)
def test_a_request_through_each_face_is_in_the_verification_log(live: Live, face: str) -> None:
    send, method, path = FACES[face]
    key, record = live.make_key("keys:read", "items:read")
    assert send(live, key)[0] == 200
    rows = logged(live, record["id"])
    assert [(r["outcome"], r["method"], r["path"]) for r in rows] == [("valid", method, path)]
    assert rows[0]["request_id"] and key not in str(rows)
    assert rows[0]["user_agent"] == AGENT


@pytest.mark.parametrize("face", INTEGRATIONS)
def test_each_integration_answers_with_the_request_id_it_logged(live: Live, face: str) -> None:
    """Accepted or refused, the answer's ``X-Request-Id`` finds its decision in the log
    ("Why was it rejected?"), and each request gets an id of its own."""
    send, method, path = FACES[face]
    key, record = live.make_key("keys:read", "items:read")
    status, first = send(live, key)
    assert status == 200 and first
    status, second = send(live, key)
    assert status == 200 and second and second != first
    assert [r["outcome"] for r in by_request_id(live, first)] == ["valid"]

    assert live.root.post(f"/v1/keys/{record['id']}/revoke").status_code == 200
    status, refused = send(live, key)
    assert status == 401 and refused and refused not in (first, second)
    rows = by_request_id(live, refused)
    assert [(r["outcome"], r["method"], r["path"]) for r in rows] == [
        ("key_revoked", method, path)
    ]
