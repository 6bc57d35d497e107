"""Every integration takes ``public_url`` (as ``keyturn serve`` does): a refusal's problem
``type`` is then the page of its code in the served catalogue, else keyturn's URN.

Given in code (``public_url=`` / Django's ``PUBLIC_URL``), or, for an integration that
reads the settings of the environment, as ``KEYTURN_PUBLIC_URL``.
"""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' annotations.

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import pytest
from django.test import Client
from django.test.utils import override_settings
from fastapi import FastAPI, Security
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from keyturn import InvalidValue
from keyturn.integrations.asgi import KeyturnMiddleware
from keyturn.integrations.fastapi import KeyturnAuth
from keyturn.integrations.flask import Keyturn, require_key
from keyturn.integrations.identity import VerifiedKey
from keyturn.manager import KeyManager
from tests.integrations import django_site
from tests.integrations.cases import Keys

PUBLIC = "https://auth.example.com/"
PAGE = "https://auth.example.com/outcomes/missing_credentials"
URN = "urn:keyturn:outcome:missing_credentials"


def _asgi(keys: Any, public_url: str | None) -> dict[str, Any]:
    app = Starlette(routes=[Route("/items", lambda request: PlainTextResponse("ok"))])
    client = TestClient(KeyturnMiddleware(app, keys, public_url=public_url))
    return dict(client.get("/items").json())


def _fastapi(keys: Any, public_url: str | None) -> dict[str, Any]:
    auth = KeyturnAuth(keys, public_url=public_url)
    app = FastAPI()
    auth.install(app)

    @app.get("/items")
    def items(key: Annotated[VerifiedKey, Security(auth)]) -> str:
        return "ok"

    return dict(TestClient(app).get("/items").json())


def _flask(keys: Any, public_url: str | None) -> dict[str, Any]:
    app = Flask(__name__)
    Keyturn(app, keys, public_url=public_url)

    @app.get("/items")
    @require_key
    def items() -> str:
        return "ok"

    answer = app.test_client().get("/items").get_json()
    assert isinstance(answer, dict)
    return answer


def _django(keys: Any, public_url: str | None) -> dict[str, Any]:
    keyturn = {"KEYS": keys, **({"PUBLIC_URL": public_url} if public_url else {})}
    middleware = ["keyturn.integrations.django.KeyturnMiddleware"]
    with override_settings(ROOT_URLCONF=django_site.plain, MIDDLEWARE=middleware,
                           KEYTURN=keyturn):
        return dict(Client().get("/items").json())


FACES: dict[str, Callable[[Any, str | None], dict[str, Any]]] = {
    "asgi": _asgi, "fastapi": _fastapi, "flask": _flask, "django": _django,
}


@pytest.mark.parametrize("face", FACES)
def test_public_url_given_in_code_types_problems_with_the_codes_page(
    face: str, keys: Keys
) -> None:
    assert FACES[face](keys.manager, PUBLIC)["type"] == PAGE
    assert FACES[face](keys.manager, None)["type"] == URN


@pytest.mark.parametrize("face", FACES)
def test_public_url_from_the_environment_when_the_settings_are_read(
    face: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'keyturn.db'}"
    KeyManager(url).close()
    monkeypatch.setenv("KEYTURN_PUBLIC_URL", PUBLIC)
    assert FACES[face](url, None)["type"] == PAGE


@pytest.mark.parametrize("wrong", ["auth.example.com", "ftp://auth.example.com", "  "])
def test_a_public_url_that_is_not_an_address_is_refused(keys: Keys, wrong: str) -> None:
    if not wrong.strip():
        assert KeyturnAuth(keys.manager, public_url=wrong).guard.public_url is None
        return
    with pytest.raises(InvalidValue, match="public_url"):
        KeyturnAuth(keys.manager, public_url=wrong)
