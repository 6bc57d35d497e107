"""``X-Request-Id`` from a trusted proxy: every integration answers with the id the proxy
set and records its decision under it, so one id follows the request through the proxy's
log, the answer and the verification log; a peer that is not a trusted proxy cannot name
the id (it could point at another request's entries) and gets one of keyturn's own."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from django.test import Client as DjangoClient
from django.test.utils import override_settings
from flask import Flask
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from keyturn import KeyManager
from keyturn._verifications import VerificationFilter
from keyturn.integrations.asgi import KeyturnMiddleware
from keyturn.integrations.flask import Keyturn, require_key
from keyturn.verifier import Verifier
from tests.integrations import django_site
from tests.integrations.servers import asgi_server

PROXY_ID = "edge-7f3a-0042"
Face = Callable[[KeyManager, str, dict[str, str]], tuple[int, str | None]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A store with one key: (its URL, the key)."""
    url = f"sqlite:///{tmp_path / 'ids.db'}"
    with KeyManager(url) as manager:
        key = manager.create_key("ids", scopes=["items:read"]).key
    yield url, key


def _asgi(manager: KeyManager, key: str, extra: dict[str, str]) -> tuple[int, str | None]:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(
        routes=[Route("/items", hello)],
        middleware=[Middleware(KeyturnMiddleware, keys=manager)],
    )
    with asgi_server(app) as url:  # a real connection: the peer is 127.0.0.1
        r = httpx.get(f"{url}/items", headers={"authorization": f"Bearer {key}", **extra})
    return r.status_code, r.headers.get("x-request-id")


def _flask(manager: KeyManager, key: str, extra: dict[str, str]) -> tuple[int, str | None]:
    app = Flask(__name__)
    Keyturn(app, manager)

    @app.get("/items")
    @require_key
    def items() -> str:
        return "hello"

    r = app.test_client().get("/items", headers={"authorization": f"Bearer {key}", **extra})
    return r.status_code, r.headers.get("x-request-id")


def _django(manager: KeyManager, key: str, extra: dict[str, str]) -> tuple[int, str | None]:
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in extra.items()}
    middleware = ["keyturn.integrations.django.KeyturnMiddleware"]
    with override_settings(ROOT_URLCONF=django_site.plain, MIDDLEWARE=middleware,
                           KEYTURN={"KEYS": manager}):  # fmt: skip
        r = DjangoClient().get("/items", HTTP_AUTHORIZATION=f"Bearer {key}", **meta)
    return r.status_code, r.headers.get("x-request-id")


def _drf(manager: KeyManager, key: str, extra: dict[str, str]) -> tuple[int, str | None]:
    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in extra.items()}
    with override_settings(ROOT_URLCONF=django_site.rest, MIDDLEWARE=[],
                           KEYTURN={"KEYS": manager}):  # fmt: skip
        r = DjangoClient().get("/items", HTTP_AUTHORIZATION=f"Bearer {key}", **meta)
    return r.status_code, r.headers.get("x-request-id")


FACES: dict[str, Face] = {"asgi": _asgi, "flask": _flask, "django": _django, "drf": _drf}


def _logged_ids(manager: KeyManager) -> list[str]:
    manager.verifications.flush()
    return [v.request_id for v in manager.store.verifications(VerificationFilter())]


@pytest.mark.parametrize("face", FACES)
def test_a_trusted_proxys_request_id_is_answered_and_logged(
    store: tuple[str, str], face: str
) -> None:
    url, key = store
    trusting = KeyManager(url, verifier=Verifier(trusted_proxies=["127.0.0.1"]))
    try:
        status, answered = FACES[face](trusting, key, {"x-request-id": PROXY_ID})
        assert (status, answered) == (200, PROXY_ID)
        assert PROXY_ID in _logged_ids(trusting)
    finally:
        trusting.close()


@pytest.mark.parametrize("face", FACES)
def test_a_request_id_from_an_untrusted_peer_is_not_taken(
    store: tuple[str, str], face: str
) -> None:
    url, key = store
    with KeyManager(url) as manager:  # trusts no proxy
        status, answered = FACES[face](manager, key, {"x-request-id": PROXY_ID})
        assert status == 200 and answered and answered != PROXY_ID
        assert re.fullmatch(r"[0-9a-f]{32}", answered)  # as /auth makes them: time first
        logged = _logged_ids(manager)
        assert answered in logged and PROXY_ID not in logged
