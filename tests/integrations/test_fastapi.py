"""FastAPI: the security dependency, ``protect(app)`` and what Swagger UI sees and sends."""

# No ``from __future__ import annotations``: FastAPI evaluates the routes' annotations,
# and they name a local ``auth``.

from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.testclient import TestClient

from keyturn import KeyManager
from keyturn._verifications import VerificationFilter
from keyturn.integrations import VerifiedKey
from keyturn.integrations.fastapi import KeyturnAuth
from tests.integrations.cases import (
    CASES,
    OPEN_PATHS,
    REALM,
    Case,
    Keys,
    case_ids,
    check,
    expected_lifecycle,
    last,
    observed,
)
from tests.integrations.servers import asgi_server


def routes(app: FastAPI, auth: KeyturnAuth) -> None:
    @app.get("/items")
    async def items(
        key: Annotated[VerifiedKey, Security(auth, scopes=["items:read"])],
    ) -> dict[str, Any]:
        return key.as_dict()

    @app.get("/admin")
    async def admin(
        key: Annotated[VerifiedKey, Security(auth, scopes=["admin"])],
    ) -> dict[str, Any]:
        return key.as_dict()

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}


def protected_app(keys: Keys) -> tuple[FastAPI, KeyturnAuth]:
    """The recommended setup: ``protect`` (middleware) plus per-route scopes."""
    app = FastAPI()
    auth = KeyturnAuth(keys.manager, realm=REALM)
    auth.protect(app, open_paths=OPEN_PATHS)
    routes(app, auth)
    return app, auth


def dependency_only_app(keys: Keys) -> FastAPI:
    """No middleware: the dependency verifies on its own."""
    app = FastAPI()
    auth = KeyturnAuth(keys.manager, realm=REALM)
    auth.install(app)
    routes(app, auth)
    return app


@pytest.fixture(scope="module", params=["protect", "dependency_only"])
def client(request: pytest.FixtureRequest, keys: Keys) -> Iterator[TestClient]:
    app = protected_app(keys)[0] if request.param == "protect" else dependency_only_app(keys)
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_fastapi_answers_every_case(case: Case, client: TestClient, keys: Keys) -> None:
    r = last(
        case,
        lambda: client.get(case.path, headers=keys.headers(case), params=keys.query(case) or None),
    )
    check(case, observed(r.status_code, r.headers.multi_items(), r.content), keys)


def test_openapi_offers_bearer_and_api_key_header(keys: Keys) -> None:
    app, _ = protected_app(keys)
    with TestClient(app) as c:
        assert c.get("/docs").status_code == 200  # Swagger UI itself stays reachable
        document = c.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["keyturnBearer"]["type"] == "http"
    assert schemes["keyturnBearer"]["scheme"] == "bearer"
    assert schemes["keyturnApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": schemes["keyturnApiKey"]["description"],
    }
    # Either scheme alone satisfies an operation: two alternatives, not one combined entry.
    items = document["paths"]["/items"]["get"]["security"]
    assert sorted(items, key=str) == [
        {"keyturnApiKey": ["items:read"]},
        {"keyturnBearer": ["items:read"]},
    ]
    assert "security" not in document["paths"]["/health"]["get"]


def test_the_dependency_alone_documents_both_schemes_once_installed(keys: Keys) -> None:
    """Without ``protect``: ``install`` lists the bearer alternative beside the dependency's
    own scheme, with the route's scopes (the dependency does not depend on a second,
    empty one, which FastAPI would resolve on every request)."""
    app = dependency_only_app(keys)
    app.openapi()  # built twice: still one alternative each
    with TestClient(app) as c:
        document = c.get("/openapi.json").json()
    assert document["paths"]["/items"]["get"]["security"] == [
        {"keyturnApiKey": ["items:read"]},
        {"keyturnBearer": ["items:read"]},
    ]
    assert {"keyturnApiKey", "keyturnBearer"} <= set(document["components"]["securitySchemes"])
    assert "security" not in document["paths"]["/health"]["get"]
    dependant = next(r for r in app.routes if getattr(r, "path", "") == "/items").dependant  # type: ignore[attr-defined]
    (auth,) = dependant.dependencies
    assert auth.dependencies == []


@pytest.mark.parametrize(
    "scheme",
    ["keyturnBearer", "keyturnApiKey"],
)
def test_requests_as_swagger_ui_sends_them_after_authorize(scheme: str, keys: Keys) -> None:
    """Swagger UI builds the header from the scheme the user authorised with."""
    app, _ = protected_app(keys)
    with TestClient(app) as c:
        declared = c.get("/openapi.json").json()["components"]["securitySchemes"][scheme]
        key = keys.values["valid"]
        if declared["type"] == "http":
            headers = {"Authorization": f"{declared['scheme'].capitalize()} {key}"}
        else:
            headers = {declared["name"]: key}
        r = c.get("/items", headers=headers)
    assert r.status_code == 200
    assert r.json()["id"] == keys.valid_id


def test_routes_declared_before_protect_are_protected_and_documented(keys: Keys) -> None:
    app = FastAPI()

    @app.get("/early")
    async def early(request: Request) -> dict[str, str]:
        return {"name": request.state.keyturn_key.name}

    auth = KeyturnAuth(keys.manager, realm=REALM)
    auth.protect(app)
    with TestClient(app) as c:
        assert c.get("/early").status_code == 401
        ok = c.get("/early", headers={"x-api-key": keys.values["valid"]})
        assert ok.json() == {"name": "reader"}
        document = c.get("/openapi.json").json()
    assert len(document["paths"]["/early"]["get"]["security"]) == 2


def test_protect_with_path_scopes_documents_them(keys: Keys) -> None:
    app = FastAPI()
    auth = KeyturnAuth(keys.manager)
    auth.protect(app, scopes={"/reports": ["reports:read"]})

    @app.get("/reports/{report_id}")
    async def report(report_id: int) -> dict[str, int]:
        return {"id": report_id}

    with TestClient(app) as c:
        r = c.get("/reports/1", headers={"x-api-key": keys.values["valid"]})
        assert r.status_code == 403
        assert r.json()["required_scopes"] == ["reports:read"]
        security = c.get("/openapi.json").json()["paths"]["/reports/{report_id}"]["get"]
    assert {"keyturnBearer": ["reports:read"]} in security["security"]


def test_the_readme_three_lines_on_an_existing_app(keys: Keys, tmp_path: Any) -> None:
    from keyturn import KeyManager

    url = f"sqlite:///{tmp_path / 'keyturn.db'}"
    with KeyManager(url) as m:
        key = m.create_key("readme").key

    app = FastAPI()  # an existing app ...

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    # ... and the three lines:
    from keyturn.integrations.fastapi import KeyturnAuth

    auth = KeyturnAuth(url)
    auth.protect(app)

    with TestClient(app) as c:
        assert c.get("/hello").status_code == 401
        assert c.get("/hello", headers={"Authorization": f"Bearer {key}"}).json() == {
            "hello": "world"
        }
        assert c.get("/hello", headers={"x-api-key": key}).status_code == 200
        assert c.get("/docs").status_code == 200
        assert "keyturnBearer" in c.get("/openapi.json").json()["components"]["securitySchemes"]


def test_dependency_reuses_the_middleware_verification(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, ...]] = []
    original = KeyManager.verify_asgi

    def counting(self: KeyManager, headers: Any, query: bytes, scopes: Any, *rest: Any) -> Any:
        calls.append(tuple(scopes))
        return original(self, headers, query, scopes, *rest)

    monkeypatch.setattr(KeyManager, "verify_asgi", counting)
    app, _ = protected_app(keys)
    with TestClient(app) as c:
        assert c.get("/items", headers={"x-api-key": keys.values["valid"]}).status_code == 200
        assert calls == [()]  # the middleware's check; the route's scope check is in memory
        calls.clear()
        assert c.get("/admin", headers={"x-api-key": keys.values["valid"]}).status_code == 403
        assert calls == [(), ("admin",)]  # only a refusal is worked out in full


@pytest.mark.parametrize("setup", ["protect", "dependency_only"])
def test_a_route_refusing_for_scopes_answers_with_one_request_id(
    keys: Keys, setup: str
) -> None:
    """``/admin`` refuses the valid key (no ``admin`` scope): the answer carries exactly one
    ``X-Request-Id``, and every decision made on the request (under ``protect``, the
    middleware's acceptance and the route's refusal) is recorded under it."""
    app = protected_app(keys)[0] if setup == "protect" else dependency_only_app(keys)
    log = keys.manager.verifications
    log.flush()
    with TestClient(app) as c:
        r = c.get("/admin", headers={"x-api-key": keys.values["valid"]})
    assert r.status_code == 403
    ids = r.headers.get_list("x-request-id")
    assert len(ids) == 1
    log.flush()
    found = keys.manager.store.verifications(VerificationFilter(request_id=ids[0]))
    expected = ["insufficient_scope", "valid"] if setup == "protect" else ["insufficient_scope"]
    assert sorted(v.outcome for v in found) == expected


def test_without_keyturns_handler_status_and_challenge_still_hold(keys: Keys) -> None:
    app = FastAPI()
    auth = KeyturnAuth(keys.manager, realm=REALM)  # neither protect() nor install()

    @app.get("/items")
    async def items(key: Annotated[VerifiedKey, Security(auth)]) -> dict[str, str]:
        return {"id": key.id}

    with TestClient(app) as c:
        r = c.get("/items")
    assert r.status_code == 401  # not FastAPI's 403 {"detail": "Not authenticated"}
    assert r.headers["www-authenticate"] == f'Bearer realm="{REALM}"'
    assert r.json()["detail"]["code"] == "missing_credentials"


def _documented_app(keys: Keys, **urls: Any) -> FastAPI:
    app = FastAPI(**urls)
    KeyturnAuth(keys.manager, realm=REALM).protect(app)

    @app.get("/docs/{page}")
    async def own_docs(page: str) -> dict[str, str]:
        return {"page": page}

    @app.get("/openapi.json/raw")
    async def raw() -> dict[str, str]:
        return {"raw": "yes"}

    return app


def test_protect_opens_exactly_the_documentation_fastapi_serves(keys: Keys) -> None:
    with asgi_server(_documented_app(keys)) as url, httpx.Client(base_url=url) as http:
        for page in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
            assert http.get(page).status_code == 200, page
            assert http.head(page).status_code == 200, page
        for own in ("/docs/42", "/redoc/x", "/openapi.json/raw", "/docs/oauth2-redirect/x"):
            assert http.get(own).status_code == 401, own
        assert http.post("/docs").status_code == 401
        assert http.get("/docs/42", headers={"x-api-key": keys.values["valid"]}).json() == {
            "page": "42"
        }


def test_protect_opens_the_documentation_where_it_is_configured(keys: Keys) -> None:
    app = _documented_app(keys, docs_url="/api-docs", redoc_url=None, openapi_url="/spec.json")
    with asgi_server(app) as url, httpx.Client(base_url=url) as http:
        assert http.get("/api-docs").status_code == 200
        assert http.get("/spec.json").status_code == 200
        assert http.get("/redoc").status_code == 401  # not served, not opened
        assert http.get("/docs/1").status_code == 401
    app = _documented_app(keys, openapi_url=None)  # no schema: FastAPI serves no docs
    with asgi_server(app) as url:
        assert httpx.get(f"{url}/docs").status_code == 401


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}


@pytest.mark.parametrize("cors_first", [True, False])
def test_cors_preflights_reach_corsmiddleware_whichever_was_added_first(
    keys: Keys, cors_first: bool
) -> None:
    app = FastAPI()
    cors = {"allow_origins": ["https://app.example"], "allow_headers": ["x-api-key"]}
    if cors_first:
        app.add_middleware(CORSMiddleware, **cors)
    KeyturnAuth(keys.manager, realm=REALM).protect(app)
    if not cors_first:
        app.add_middleware(CORSMiddleware, **cors)

    @app.get("/items")
    async def items() -> dict[str, bool]:
        return {"ok": True}

    with asgi_server(app) as url, httpx.Client(base_url=url) as http:
        preflight = http.options("/items", headers=PREFLIGHT)
        assert preflight.status_code == 200, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        # The request itself still needs its key, and the refusal carries CORS headers,
        # so the browser lets the page read keyturn's answer.
        refused = http.get("/items", headers={"Origin": "https://app.example"})
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
        # An OPTIONS that is not a preflight is an ordinary request: it needs a key.
        assert http.options("/items").status_code == 401


def test_protect_tells_a_retiring_key_its_lifecycle_but_never_on_a_refusal(keys: Keys) -> None:
    """Under ``protect`` the middleware adds a due key's lifecycle headers to the app's
    response, and only the request id when the route refused the key for its scopes."""
    app, _ = protected_app(keys)
    record = keys.manager.get(keys.ids["retiring"])
    expected = expected_lifecycle(record)
    assert expected  # the key's expiry is due to be told
    with TestClient(app) as c:
        ok = c.get("/items", headers={"x-api-key": keys.values["retiring"]})
        refused = c.get("/admin", headers={"x-api-key": keys.values["retiring"]})
    assert ok.status_code == 200
    assert {name: ok.headers.get(name) for name in expected} == expected
    assert len(ok.headers.get_list("x-request-id")) == 1
    assert refused.status_code == 403
    assert not any(name in refused.headers for name in expected)
    assert len(refused.headers.get_list("x-request-id")) == 1
