"""Path rules wherever the app is mounted: ``uvicorn --root-path``, Starlette's ``Mount``,
``FastAPI(root_path=...)``, Django below a WSGI ``SCRIPT_NAME`` or an ASGI ``root_path``.

Each app has the same rules (``/public`` open, ``/admin`` needs ``admin``, ``GET /reports``
needs ``reports``) written for the paths it routes on, and is driven over real HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.test.utils import override_settings
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response as WerkzeugResponse

from keyturn import KeyManager
from tests.integrations import django_site, mounted_apps
from tests.integrations.servers import asgi_server, uvicorn_command, wsgi_server


@dataclass
class Keys:
    store: str
    plain: str  # no scopes
    admin: str
    reports: str


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    store = f"sqlite:///{tmp_path_factory.mktemp('mounts') / 'keyturn.db'}"
    with KeyManager(store) as manager:
        made = [manager.create_key(n, scopes=s).key for n, s in
                (("plain", []), ("admin", ["admin"]), ("reports", ["reports"]))]
    yield Keys(store, *made)


def check_rules(url: str, keys: Keys, prefix: str = "") -> None:
    """The rules hold for the paths the app routes on, reached at ``prefix`` + path."""
    with httpx.Client(base_url=url + prefix, timeout=10) as http:
        assert http.get("/public").status_code == 200  # open
        assert http.get("/public/page").status_code == 200
        assert http.get("/other").status_code == 401  # a key, any scopes
        plain = {"x-api-key": keys.plain}
        assert http.get("/other", headers=plain).status_code == 200
        refused = http.get("/admin/users", headers=plain)
        assert refused.status_code == 403, refused.text
        assert refused.json()["required_scopes"] == ["admin"]
        assert http.get("/admin/users", headers={"x-api-key": keys.admin}).status_code == 200
        assert http.head("/reports", headers=plain).status_code == 403  # GET covers HEAD
        assert http.head("/reports", headers={"x-api-key": keys.reports}).status_code == 200


@pytest.mark.parametrize("app", ["starlette", "fastapi"])
def test_uvicorn_root_path(app: str, keys: Keys, tmp_path: Path) -> None:
    """Behind a proxy that strips /api: uvicorn puts the root path back into the path."""
    with uvicorn_command(
        f"tests.integrations.mounted_apps:{app}", "--root-path", "/api",
        env={"KEYTURN_TEST_STORE": keys.store}, log=tmp_path / "uvicorn.log",
    ) as url:
        check_rules(url, keys)
        routed = httpx.get(f"{url}/admin/x", headers={"x-api-key": keys.admin}).json()
        assert routed["routed"].endswith("/admin/x")


def test_starlette_mount(keys: Keys) -> None:
    with asgi_server(mounted_apps.mounted_app(keys.store)) as url:
        check_rules(url, keys, "/api")
        assert httpx.get(f"{url}/elsewhere").status_code == 404  # nothing else is mounted


@pytest.mark.filterwarnings("ignore:The `root_path` parameter is deprecated")
@pytest.mark.parametrize("prefix", ["", "/api"])
def test_fastapi_root_path(keys: Keys, prefix: str) -> None:
    """``FastAPI(root_path=...)``, reached with the prefix stripped by a proxy, or not."""
    with asgi_server(mounted_apps.fastapi_app(keys.store, root_path="/api")) as url:
        check_rules(url, keys, prefix)


@pytest.fixture
def django_mounted(keys: Keys) -> Iterator[None]:
    keyturn = {"KEYS": keys.store, "OPEN_PATHS": mounted_apps.OPEN, "SCOPES": mounted_apps.SCOPES}
    middleware = ["keyturn.integrations.django.KeyturnMiddleware"]
    with override_settings(ROOT_URLCONF=django_site.routed, MIDDLEWARE=middleware,
                           KEYTURN=keyturn, REST_FRAMEWORK={"UNAUTHENTICATED_USER": None}):
        yield


def _not_found(environ: object, start_response: Callable[..., object]) -> object:
    return WerkzeugResponse("not here", status=404)(environ, start_response)


@pytest.mark.usefixtures("django_mounted")
def test_django_below_a_wsgi_script_name(keys: Keys) -> None:
    """Mounted at /api by a WSGI dispatcher: SCRIPT_NAME=/api, PATH_INFO=/admin/..."""
    with wsgi_server(DispatcherMiddleware(_not_found, {"/api": WSGIHandler()})) as url:
        check_rules(url, keys, "/api")
        routed = httpx.get(f"{url}/api/admin/x", headers={"x-api-key": keys.admin}).json()
        assert routed["routed"] == "/admin/x"


@pytest.mark.usefixtures("django_mounted")
def test_django_under_uvicorn_root_path(keys: Keys) -> None:
    with asgi_server(ASGIHandler(), root_path="/api") as url:
        check_rules(url, keys)
