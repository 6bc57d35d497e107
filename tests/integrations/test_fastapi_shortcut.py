"""FastAPI under ``protect``: routes with ``Security(auth, scopes=[...])`` take the
middleware's verification without FastAPI resolving the dependency, and answer exactly as
when it does - refusals, the key handed to the endpoint, the OpenAPI document, test
overrides, routes the shortcut does not cover, and FastAPI versions it does not know."""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' annotations,
# and they name a local ``auth``.

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import fastapi
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import SecurityScopes
from fastapi.testclient import TestClient

from keyturn import KeyManager
from keyturn.integrations import VerifiedKey
from keyturn.integrations._fastapi_shortcut import known
from keyturn.integrations.fastapi import KeyturnAuth
from tests.integrations.servers import asgi_server

REALM = "shortcut-test"
# On another FastAPI every route keeps FastAPI's path: the answers are the same, the
# dependency runs; test_the_installed_fastapi_is_one_the_shortcut_knows says so once.
SHORTCUT = known(fastapi.__version__)


@dataclass
class Callers:
    reader: str  # items:read
    admin: str  # items:read and admin
    wildcard: str  # items:*
    ids: dict[str, str]


@pytest.fixture
def callers(manager: KeyManager) -> Callers:
    made = {
        "reader": manager.create_key("reader", scopes=["items:read"]),
        "admin": manager.create_key("admin", scopes=["items:read", "admin"]),
        "wildcard": manager.create_key("wildcard", scopes=["items:*"]),
    }
    return Callers(
        **{name: issued.key for name, issued in made.items()},
        ids={name: issued.record.id for name, issued in made.items()},
    )


def with_key(key: str) -> dict[str, str]:
    return {"x-api-key": key}


class Calls:
    """What the route's own dependencies and keyturn's dependency were called for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.user: list[str] = []
        self.keyturn = 0
        original = KeyturnAuth.__call__

        @functools.wraps(original)  # FastAPI reads the dependency's parameters from it
        async def counting(auth: KeyturnAuth, *args: Any, **kwargs: Any) -> Any:
            self.keyturn += 1
            return await original(auth, *args, **kwargs)

        monkeypatch.setattr(KeyturnAuth, "__call__", counting)

    def recorder(self, name: str) -> Any:
        def record() -> str:
            self.user.append(name)
            return name

        return record


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    return Calls(monkeypatch)


def scoped_app(manager: KeyManager, calls: Calls) -> tuple[FastAPI, KeyturnAuth]:
    """``protect``, then routes using the dependency in each way FastAPI allows."""
    app = FastAPI()
    auth = KeyturnAuth(manager, realm=REALM)
    auth.protect(app, open_paths=["/open"])

    @app.get("/items")
    async def items(
        key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])],
        user: Annotated[str, Depends(calls.recorder("items"))],
    ) -> dict[str, Any]:
        return {"id": key.id, "user": user}

    @app.get("/admin")
    async def admin(
        key: Annotated[VerifiedKey, Security(auth, scopes=["admin"])],
        user: Annotated[str, Depends(calls.recorder("admin"))],
    ) -> dict[str, Any]:
        return {"id": key.id, "user": user}

    @app.get("/sync")
    def sync(
        key: VerifiedKey = Security(auth, scopes=["items:read"]),  # noqa: B008 - as users write it
    ) -> dict[str, Any]:
        return {"id": key.id}

    @app.get("/with-request")
    async def with_request(
        request: Request, key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])]
    ) -> dict[str, Any]:
        return {"id": key.id, "state": request.state.keyturn_key.id}

    @app.get("/route-level", dependencies=[Security(auth, scopes=["admin"])])
    async def route_level(
        key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])],
    ) -> dict[str, Any]:
        return {"id": key.id}

    @app.get("/counted/{n}")
    async def counted(
        n: int, key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])]
    ) -> dict[str, Any]:
        return {"n": n, "id": key.id}

    @app.get("/open")
    async def open_route(
        key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])],
    ) -> dict[str, Any]:
        return {"id": key.id}

    return app, auth


@pytest.fixture
def app_and_auth(manager: KeyManager, calls: Calls) -> tuple[FastAPI, KeyturnAuth]:
    return scoped_app(manager, calls)


@pytest.fixture
def client(app_and_auth: tuple[FastAPI, KeyturnAuth]) -> Iterator[TestClient]:
    with TestClient(app_and_auth[0]) as c:
        yield c


def assert_insufficient_scope(r: httpx.Response, required: list[str]) -> None:
    """keyturn's refusal for a key without the route's scopes (RFC 6750 section 3.1)."""
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="{REALM}"')
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{" ".join(required)}"' in challenge
    body = r.json()
    assert body["status"] == 403
    assert body["code"] == "insufficient_scope"
    assert body["required_scopes"] == required
    assert len(r.headers.get_list("x-request-id")) == 1


# -- (1) the scope check comes first, and refuses as before ---------------------------------


def test_a_key_without_the_routes_scopes_is_refused_before_other_dependencies_run(
    client: TestClient, callers: Callers, calls: Calls
) -> None:
    assert_insufficient_scope(client.get("/admin", headers=with_key(callers.reader)), ["admin"])
    assert calls.user == []  # the route's own dependency never ran for it
    ok = client.get("/admin", headers=with_key(callers.admin))
    assert ok.json() == {"id": callers.ids["admin"], "user": "admin"}
    assert calls.user == ["admin"]


def test_route_level_dependencies_are_held_too(client: TestClient, callers: Callers) -> None:
    refused = client.get("/route-level", headers=with_key(callers.reader))
    assert_insufficient_scope(refused, ["admin"])
    ok = client.get("/route-level", headers=with_key(callers.admin))
    assert ok.json() == {"id": callers.ids["admin"]}


def test_wildcard_scopes_are_read_as_the_dependency_reads_them(
    client: TestClient, callers: Callers, calls: Calls
) -> None:
    assert client.get("/items", headers=with_key(callers.wildcard)).json() == {
        "id": callers.ids["wildcard"],
        "user": "items",
    }
    # items:* holds items:read without asking the dependency
    assert calls.keyturn == (0 if SHORTCUT else 1)
    assert_insufficient_scope(client.get("/admin", headers=with_key(callers.wildcard)), ["admin"])


def test_under_uvicorn_accepted_and_refused_requests_answer_as_before(
    app_and_auth: tuple[FastAPI, KeyturnAuth], callers: Callers, calls: Calls
) -> None:
    with asgi_server(app_and_auth[0]) as url, httpx.Client(base_url=url) as http:
        assert http.get("/items").status_code == 401
        for _ in range(3):
            r = http.get("/items", headers=with_key(callers.reader))
            assert r.json() == {"id": callers.ids["reader"], "user": "items"}
            assert len(r.headers.get_list("x-request-id")) == 1
        assert_insufficient_scope(http.get("/admin", headers=with_key(callers.reader)), ["admin"])
    assert calls.user == ["items"] * 3


# -- (2) the endpoint gets its key ------------------------------------------------------------


def test_the_endpoint_gets_the_key_its_scopes_were_held_against(
    manager: KeyManager, callers: Callers
) -> None:
    """The route's other dependencies run between the scope check and the endpoint: one
    replacing ``request.state``'s key (with a key holding no scopes at all) must not change
    the key the endpoint is handed."""
    app = FastAPI()
    auth = KeyturnAuth(manager, realm=REALM)
    auth.protect(app)

    class Swapped:
        id = "swapped"
        scopes: frozenset[str] = frozenset()

    def swap(request: Request) -> None:
        request.state.keyturn_key = Swapped()

    @app.get("/items")
    async def items(
        key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])],
        _: Annotated[None, Depends(swap)],
    ) -> dict[str, Any]:
        return {"id": key.id}

    @app.get("/sync")
    def sync(
        key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])],
        _: Annotated[None, Depends(swap)],
    ) -> dict[str, Any]:
        return {"id": key.id}

    with TestClient(app) as c:
        for path in ("/items", "/sync"):
            r = c.get(path, headers=with_key(callers.reader))
            assert r.json() == {"id": callers.ids["reader"]}, path



def test_an_endpoint_taking_the_key_alone_gets_it_however_it_is_declared(
    manager: KeyManager, callers: Callers, calls: Calls
) -> None:
    """The key alone is handed by position (the short way): a keyword-only key, and an
    endpoint behind a decorator of ``**kwargs`` (whose ``__wrapped__`` shows the key as a
    positional parameter) take it by name. Fails with a 500 if the decorated endpoint is
    handed it by position."""
    other = manager.create_key("other", scopes=["other:read"]).key
    app = FastAPI()
    auth = KeyturnAuth(manager, realm=REALM)
    auth.protect(app)

    def by_name(endpoint: Any) -> Any:
        @functools.wraps(endpoint)
        async def wrapper(**kwargs: Any) -> Any:
            return await endpoint(**kwargs)

        return wrapper

    @app.get("/alone")
    async def alone(key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])]) -> Any:
        return {"id": key.id}

    @app.get("/keyword")
    async def keyword(*, key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])]) -> Any:
        return {"id": key.id}

    @app.get("/decorated")
    @by_name
    async def decorated(
        key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])],
    ) -> Any:
        return {"id": key.id}

    paths = ("/alone", "/keyword", "/decorated")
    with TestClient(app) as c:
        for path in paths:
            r = c.get(path, headers=with_key(callers.reader))
            assert r.json() == {"id": callers.ids["reader"]}, path
        assert calls.keyturn == (0 if SHORTCUT else 3)  # the short way, each
        for path in paths:
            assert_insufficient_scope(c.get(path, headers=with_key(other)), ["items:read"])


def test_accepted_requests_hand_the_endpoint_its_key_without_running_the_dependency(
    client: TestClient, callers: Callers, calls: Calls
) -> None:
    reader = with_key(callers.reader)
    assert client.get("/items", headers=reader).json()["id"] == callers.ids["reader"]
    assert client.get("/sync", headers=reader).json() == {"id": callers.ids["reader"]}
    assert client.get("/with-request", headers=reader).json() == {
        "id": callers.ids["reader"],
        "state": callers.ids["reader"],
    }
    assert client.get("/counted/7", headers=reader).json() == {
        "n": 7,
        "id": callers.ids["reader"],
    }
    # The middleware's verification was taken as it is.
    assert calls.keyturn == (0 if SHORTCUT else 4)


def test_validation_errors_still_name_the_users_endpoint(
    app_and_auth: tuple[FastAPI, KeyturnAuth], callers: Callers
) -> None:
    app = app_and_auth[0]
    told: list[str] = []

    async def telling(request: Request, exc: Exception) -> JSONResponse:
        told.append(str(exc))
        return JSONResponse({"told": True}, status_code=422)

    app.add_exception_handler(RequestValidationError, telling)
    with TestClient(app) as c:
        assert c.get("/counted/x", headers=with_key(callers.reader)).status_code == 422
    (message,) = told
    assert f'File "{__file__}"' in message
    assert "in counted" in message


# -- (3) the OpenAPI document -----------------------------------------------------------------


def test_the_openapi_document_lists_each_routes_scopes_once_requests_were_served(
    client: TestClient, callers: Callers
) -> None:
    assert client.get("/items", headers=with_key(callers.reader)).status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path, scopes in (("/items", ["items:read"]), ("/admin", ["admin"])):
        assert paths[path]["get"]["security"] == [
            {"keyturnApiKey": scopes},
            {"keyturnBearer": scopes},
        ], path
    assert paths["/counted/{n}"]["get"]["parameters"][0]["name"] == "n"
    assert paths["/route-level"]["get"]["security"] == [  # FastAPI merges a scheme's uses
        {"keyturnApiKey": ["admin", "items:read"]},
        {"keyturnBearer": ["admin", "items:read"]},
    ]


def test_the_openapi_document_is_the_one_fastapis_own_path_gives(
    manager: KeyManager, calls: Calls, callers: Callers, monkeypatch: pytest.MonkeyPatch
) -> None:
    documents = []
    for version in (fastapi.__version__, "0.0.1"):
        monkeypatch.setattr(fastapi, "__version__", version)
        with TestClient(scoped_app(manager, calls)[0]) as c:
            assert c.get("/items", headers=with_key(callers.reader)).status_code == 200
            documents.append(c.get("/openapi.json").json())
    assert documents[0] == documents[1]


# -- (4) overrides ----------------------------------------------------------------------------


def test_an_override_of_the_dependency_is_honoured(
    app_and_auth: tuple[FastAPI, KeyturnAuth], client: TestClient, callers: Callers
) -> None:
    app, auth = app_and_auth
    assert (
        client.get("/items", headers=with_key(callers.reader)).json()["id"]
        == (callers.ids["reader"])
    )
    stand_in = VerifiedKey(
        id="stand-in",
        name="test",
        owner=None,
        scopes=frozenset(),
        metadata={},
        masked="kt_test_…",
        expires_at=None,
    )
    app.dependency_overrides[auth] = lambda: stand_in
    assert client.get("/items", headers=with_key(callers.reader)).json()["id"] == "stand-in"
    assert client.get("/sync", headers=with_key(callers.reader)).json() == {"id": "stand-in"}

    def refusing() -> VerifiedKey:
        raise HTTPException(418, "overridden")

    app.dependency_overrides = {auth: refusing}  # a new mapping, as some tests write it
    assert client.get("/items", headers=with_key(callers.reader)).status_code == 418
    app.dependency_overrides.clear()
    assert (
        client.get("/items", headers=with_key(callers.reader)).json()["id"]
        == (callers.ids["reader"])
    )


def test_overrides_of_the_routes_other_dependencies_still_apply(
    manager: KeyManager, callers: Callers
) -> None:
    app = FastAPI()
    auth = KeyturnAuth(manager, realm=REALM)
    auth.protect(app)

    def plan() -> str:
        return "real"

    @app.get("/plan")
    async def route(
        key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])],
        chosen: Annotated[str, Depends(plan)],
    ) -> dict[str, str]:
        return {"id": key.id, "plan": chosen}

    app.dependency_overrides[plan] = lambda: "overridden"
    with TestClient(app) as c:
        assert c.get("/plan", headers=with_key(callers.reader)).json() == {
            "id": callers.ids["reader"],
            "plan": "overridden",
        }


def test_a_dependency_wrapping_keyturns_can_be_overridden(
    manager: KeyManager, callers: Callers
) -> None:
    app = FastAPI()
    auth = KeyturnAuth(manager, realm=REALM)
    auth.protect(app)

    def owner(key: Annotated[VerifiedKey, Security(auth, scopes=["admin"])]) -> str:
        return key.name

    @app.get("/owner")
    async def route(name: Annotated[str, Depends(owner)]) -> dict[str, str]:
        return {"name": name}

    with TestClient(app) as c:
        assert_insufficient_scope(c.get("/owner", headers=with_key(callers.reader)), ["admin"])
        assert c.get("/owner", headers=with_key(callers.admin)).json() == {"name": "admin"}
        app.dependency_overrides[owner] = lambda: "someone"
        assert c.get("/owner", headers=with_key(callers.reader)).json() == {"name": "someone"}


# -- (5) what the shortcut does not cover stays right ------------------------------------------


def late_routes(target: FastAPI | APIRouter, auth: KeyturnAuth, prefix: str = "") -> None:
    @target.get(f"{prefix}/late")
    async def late(
        key: Annotated[VerifiedKey, Security(auth, scopes=["admin"])],
    ) -> dict[str, str]:
        return {"id": key.id}


def check_late(c: TestClient, path: str, callers: Callers) -> None:
    assert c.get(path).status_code == 401
    assert_insufficient_scope(c.get(path, headers=with_key(callers.reader)), ["admin"])
    assert c.get(path, headers=with_key(callers.admin)).json() == {"id": callers.ids["admin"]}


def test_routes_declared_once_the_app_runs_take_fastapis_path(
    app_and_auth: tuple[FastAPI, KeyturnAuth], client: TestClient, callers: Callers, calls: Calls
) -> None:
    app, auth = app_and_auth
    assert client.get("/items", headers=with_key(callers.reader)).status_code == 200
    late_routes(app, auth)
    calls.keyturn = 0
    check_late(client, "/late", callers)
    assert calls.keyturn == 2  # the late route's dependency ran for its accepted requests


@pytest.mark.parametrize("when", ["before start", "after start"])
def test_included_routers_stay_right(
    app_and_auth: tuple[FastAPI, KeyturnAuth], callers: Callers, when: str
) -> None:
    app, auth = app_and_auth
    router = APIRouter(prefix="/v1")
    late_routes(router, auth)
    if when == "before start":
        app.include_router(router)
    with TestClient(app) as c:
        assert c.get("/items", headers=with_key(callers.reader)).status_code == 200
        if when == "after start":
            app.include_router(router)
        check_late(c, "/v1/late", callers)


def test_mounted_apps_stay_right(
    app_and_auth: tuple[FastAPI, KeyturnAuth], callers: Callers
) -> None:
    app, auth = app_and_auth
    sub = FastAPI()
    auth.install(sub)  # its own exception handlers: keyturn's answers
    late_routes(sub, auth)
    app.mount("/sub", sub)
    with TestClient(app) as c:
        check_late(c, "/sub/late", callers)


def test_another_keyturnauth_on_a_route_is_its_own_dependency(
    manager: KeyManager, callers: Callers, calls: Calls
) -> None:
    app = FastAPI()
    auth = KeyturnAuth(manager, realm=REALM)
    auth.protect(app)
    late_routes(app, KeyturnAuth(manager, realm=REALM))
    with TestClient(app) as c:
        check_late(c, "/late", callers)
    assert calls.keyturn == 2


def test_a_subclass_calling_the_dependency_its_own_way_is_called(
    manager: KeyManager, callers: Callers
) -> None:
    class Tagging(KeyturnAuth):
        async def __call__(
            self, request: Request, security_scopes: SecurityScopes, response: Response
        ) -> VerifiedKey:
            key = await super().__call__(request, security_scopes, response)
            response.headers["x-plan"] = "pro"
            return key

    app = FastAPI()
    auth = Tagging(manager, realm=REALM)
    auth.protect(app)
    late_routes(app, auth)
    with TestClient(app) as c:
        check_late(c, "/late", callers)
        assert c.get("/late", headers=with_key(callers.admin)).headers["x-plan"] == "pro"


def test_an_open_path_still_verifies_in_the_dependency(
    client: TestClient, callers: Callers
) -> None:
    """The middleware lets ``/open`` through without a key; its route's dependency asks."""
    assert client.get("/open").status_code == 401
    assert client.get("/open", headers=with_key(callers.reader)).json() == {
        "id": callers.ids["reader"]
    }


# -- (6) FastAPI versions ---------------------------------------------------------------------


def test_the_installed_fastapi_is_one_the_shortcut_knows() -> None:
    assert known(fastapi.__version__)


@pytest.mark.parametrize("version", ["0.166.0", "0.164.2", "1.0.0", "0.165", "dev"])
def test_only_known_versions_count(version: str) -> None:
    assert known(version) is (version == "0.165")


def test_an_unknown_fastapi_keeps_its_own_path_and_answers_the_same(
    manager: KeyManager, calls: Calls, callers: Callers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastapi, "__version__", "0.999.0")
    with TestClient(scoped_app(manager, calls)[0]) as c:
        assert c.get("/items", headers=with_key(callers.reader)).json() == {
            "id": callers.ids["reader"],
            "user": "items",
        }
        assert c.get("/sync", headers=with_key(callers.reader)).json() == {
            "id": callers.ids["reader"]
        }
        assert_insufficient_scope(c.get("/admin", headers=with_key(callers.reader)), ["admin"])
    assert calls.keyturn == 3  # FastAPI resolved the dependency on each request
    assert calls.user == ["items"]
