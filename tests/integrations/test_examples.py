"""The examples in ``examples/`` run as documented: each protects its routes as it claims."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ModuleType]]:
    """Import an example as its documented command would, on a store in ``tmp_path``."""
    monkeypatch.setenv("KEYTURN_DATABASE_URL", f"sqlite:///{tmp_path / 'example.db'}")
    monkeypatch.syspath_prepend(str(EXAMPLES))
    monkeypatch.delitem(sys.modules, "demo_key", raising=False)

    def loader(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    yield loader


def _demo_key(manager: object) -> str:
    from keyturn import KeyManager

    assert isinstance(manager, KeyManager)
    return manager.create_key("t", scopes=["items:read"]).key


@pytest.mark.parametrize("name", ["fastapi_app", "starlette_app"])
def test_asgi_examples(name: str, load: Callable[[str], ModuleType]) -> None:
    from starlette.testclient import TestClient

    module = load(name)
    manager = module.auth.guard.manager if name == "fastapi_app" else module.keys
    key = _demo_key(manager)
    with TestClient(module.app) as c:
        assert c.get("/items", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert c.get("/admin", headers={"x-api-key": key}).status_code == 403
        assert c.get("/items").status_code == 401
        assert c.get("/health").status_code == 200


def test_flask_example(load: Callable[[str], ModuleType]) -> None:
    module = load("flask_app")
    key = _demo_key(module.keyturn.guard.manager)
    c = module.app.test_client()
    assert c.get("/items", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert c.get("/admin", headers={"x-api-key": key}).status_code == 403
    assert c.get("/items").status_code == 401
    assert c.get("/health").status_code == 200


def test_django_example(load: Callable[[str], ModuleType], tmp_path: Path) -> None:
    from django.test import Client
    from django.test.utils import override_settings

    # The test run configured Django already, so the example's configure() is skipped:
    # the same KEYTURN settings are applied here instead.
    module = load("django_app")
    keyturn: dict[str, object] = {
        "KEYS": f"sqlite:///{tmp_path / 'example.db'}",
        "OPEN_PATHS": ["/health"],
        "SCOPES": {"/items": ["items:read"]},
    }
    middleware = ["keyturn.integrations.django.KeyturnMiddleware"]
    with override_settings(ROOT_URLCONF=module, MIDDLEWARE=middleware, KEYTURN=keyturn):
        from keyturn.integrations.django import guard

        key = _demo_key(guard().manager)
        c = Client()
        assert c.get("/items", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        assert c.get("/admin", headers={"x-api-key": key}).status_code == 403
        assert c.get("/items").status_code == 401
        assert c.get("/health").status_code == 200


def test_portal_example(load: Callable[[str], ModuleType]) -> None:
    from starlette.testclient import TestClient

    module = load("portal_app")
    with TestClient(module.app) as c:
        assert c.get("/account/api-keys/keys").status_code == 401
        assert c.get("/signin", params={"customer": "acme"}).status_code == 200
        made = c.post("/account/api-keys/keys", json={"name": "ci", "scopes": ["orders:read"]})
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        assert c.get("/account/api-keys/keys").json()["keys"][0]["owner"] == "acme"
        c.cookies.clear()
        answer = c.get("/orders", headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 200 and answer.json()["customer"] == "acme"
