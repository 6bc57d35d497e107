"""The pure ASGI middleware, through Starlette's test client and around a bare ASGI app."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from keyturn import KeyManager
from keyturn._verifications import VerificationFilter
from keyturn.integrations import VerifiedKey
from keyturn.integrations.asgi import KeyturnMiddleware
from keyturn.verifier import Verifier
from tests.integrations.cases import (
    CASES,
    OPEN_PATHS,
    PATH_SCOPES,
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


async def whoami(request: Request) -> JSONResponse:
    key: VerifiedKey = request.state.keyturn_key
    return JSONResponse(key.as_dict())


async def health(request: Request) -> JSONResponse:
    assert not hasattr(request.state, "keyturn_key")
    return JSONResponse({"ok": True})


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"name": websocket.state.keyturn_key.name})
    await websocket.close()


def starlette_app(keys: KeyManager | str) -> Starlette:
    return Starlette(
        routes=[
            Route("/items", whoami),
            Route("/admin", whoami),
            Route("/health", health),
            WebSocketRoute("/ws", socket),
        ],
        middleware=[
            Middleware(
                KeyturnMiddleware,
                keys=keys,
                realm=REALM,
                open_paths=OPEN_PATHS,
                scopes=PATH_SCOPES,
            )
        ],
    )


@pytest.fixture(scope="module")
def client(keys: Keys) -> Iterator[TestClient]:
    with TestClient(starlette_app(keys.manager)) as c:
        yield c


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_starlette_answers_every_case(case: Case, client: TestClient, keys: Keys) -> None:
    r = last(
        case,
        lambda: client.get(case.path, headers=keys.headers(case), params=keys.query(case) or None),
    )
    check(case, observed(r.status_code, r.headers.multi_items(), r.content), keys)


def test_repeated_refusals_keep_their_own_answer_and_request_id(
    client: TestClient, keys: Keys
) -> None:
    """A refusal's answer is rendered once and reused (a flood of one refusal costs one
    rendering): each request still gets its own request id, and different refusals on
    one app never answer with each other's body or challenge."""
    revoked = {"authorization": f"Bearer {keys.values['revoked']}"}
    short = {"authorization": f"Bearer {keys.values['valid']}"}  # lacks the admin scope
    seen: set[str] = set()
    for _ in range(2):
        gone = client.get("/items", headers=revoked)
        denied = client.get("/admin", headers=short)
        assert (gone.status_code, gone.json()["code"]) == (401, "key_revoked")
        assert (denied.status_code, denied.json()["code"]) == (403, "insufficient_scope")
        assert 'scope="admin"' in denied.headers["www-authenticate"]
        assert "scope=" not in gone.headers["www-authenticate"]
        assert denied.json()["required_scopes"] == ["admin"]
        seen |= {gone.headers["x-request-id"], denied.headers["x-request-id"]}
    assert len(seen) == 4


def test_two_authorization_headers_conflict(client: TestClient, keys: Keys) -> None:
    valid = keys.values["valid"]
    r = client.get("/items", headers=[("authorization", f"Bearer {valid}")] * 2)
    assert r.status_code == 400
    assert r.json()["code"] == "conflicting_credentials"


def test_websocket_handshake_needs_a_key(client: TestClient, keys: Keys) -> None:
    from starlette.testclient import WebSocketDenialResponse

    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/ws"):
        pass  # pragma: no cover - the handshake is refused
    assert denied.value.status_code == 401
    assert denied.value.headers["www-authenticate"] == f'Bearer realm="{REALM}"'
    assert denied.value.json()["code"] == "missing_credentials"
    assert re.fullmatch(r"[0-9a-f]{32}", denied.value.headers["x-request-id"])

    with client.websocket_connect("/ws", headers={"x-api-key": keys.values["retiring"]}) as ws:
        assert ws.receive_json() == {"name": "reader"}
        # The accept carries the key's lifecycle, as an HTTP response would.
        told = {k.decode(): v.decode() for k, v in ws.extra_headers or ()}
        assert told.pop("x-request-id")  # and the id its decision is logged under
        record = keys.manager.get(keys.ids["retiring"])
        assert told == expected_lifecycle(record)



def test_a_websocket_accept_for_a_key_with_nothing_due_carries_its_request_id(
    client: TestClient, keys: Keys
) -> None:
    """The id the decision is logged under, and nothing of the key: the accept of a key
    whose lifecycle is not due tells only the request's id."""
    with client.websocket_connect("/ws", headers={"x-api-key": keys.values["valid"]}) as ws:
        assert ws.receive_json()["name"]
        told = {k.decode(): v.decode() for k, v in ws.extra_headers or ()}
    assert list(told) == ["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", told["x-request-id"])

async def _bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app with no framework: reads the key from ``scope["state"]``."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    key = scope.get("state", {}).get("keyturn_key")
    body = json.dumps(key.as_dict() if key else {"ok": True}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_bare_asgi_app_gets_the_key_in_scope_state(keys: Keys) -> None:
    app = KeyturnMiddleware(_bare_app, keys.manager, realm=REALM)
    with TestClient(app) as c:
        ok = c.get("/anything", headers={"authorization": f"Bearer {keys.values['valid']}"})
        assert ok.status_code == 200
        assert ok.json()["id"] == keys.valid_id
        refused = c.get("/anything")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == f'Bearer realm="{REALM}"'


def test_servers_take_the_middleware_for_an_asgi3_app(keys: Keys) -> None:
    """Its ``__call__`` hands back the app's awaitable without being a coroutine function;
    servers must still call it as an ASGI 3 app (one call of three arguments), not as an
    ASGI 2 one (``app(scope)``, then the result with ``receive, send``): uvicorn's
    ``--interface auto``, asgiref's test (daphne's), Starlette's, and the ``inspect`` test
    hypercorn and granian make, which no marker satisfies on Python 3.11."""
    import inspect

    from asgiref.compatibility import is_double_callable
    from starlette._utils import is_async_callable
    from uvicorn.config import Config

    app = KeyturnMiddleware(_bare_app, keys.manager)
    assert inspect.iscoroutinefunction(app.__call__)
    assert not is_double_callable(app)
    assert is_async_callable(app)
    config = Config(app, interface="auto", proxy_headers=False)
    config.load()
    assert config.interface == "asgi3" and config.loaded_app is app
    # Through the attribute the test reads, too, it answers as the app does.
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:  # pragma: no cover - the refusal reads no body
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    asyncio.run(app.__call__(scope, receive, send))
    assert sent[0]["status"] == 401


def test_without_rules_every_path_needs_a_key(keys: Keys) -> None:
    with TestClient(KeyturnMiddleware(_bare_app, keys.manager)) as c:
        for path in ("/", "/health", "/docs"):
            assert c.get(path).status_code == 401
        assert c.get("/", headers={"x-api-key": keys.values["valid"]}).status_code == 200


def test_method_rules_and_dot_segments(keys: Keys) -> None:
    app = KeyturnMiddleware(
        _bare_app,
        keys.manager,
        open_paths=["/health"],
        scopes={"POST /items": ["items:write"], "/items": ["items:read"]},
    )
    auth = {"x-api-key": keys.values["valid"]}  # holds items:read only
    with TestClient(app) as c:
        assert c.get("/items", headers=auth).status_code == 200
        post = c.post("/items", headers=auth)
        assert post.status_code == 403
        assert 'scope="items:write"' in post.headers["www-authenticate"]
        # An open prefix does not open what a dot segment leads out of it to.
        sneaky = c.get("/health/../items/1", headers={"x-api-key": keys.values["other"]})
        assert sneaky.status_code == 200
        assert c.get("/health/../admin").status_code == 401


def test_cache_miss_reads_the_store_off_the_event_loop(tmp_path: Path) -> None:
    manager = KeyManager(f"sqlite:///{tmp_path / 'k.db'}")
    key = manager.create_key("fresh").key
    manager.cache.clear()
    reads: list[int] = []
    find = manager.store.find_by_hash

    def spying_find(key_hash: str) -> Any:
        reads.append(threading.get_ident())
        return find(key_hash)

    manager.store.find_by_hash = spying_find  # type: ignore[method-assign]
    loop_threads: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        loop_threads.append(threading.get_ident())
        await _bare_app(scope, receive, send)

    with TestClient(KeyturnMiddleware(app, manager)) as c:
        assert c.get("/", headers={"x-api-key": key}).status_code == 200
        assert c.get("/", headers={"x-api-key": key}).status_code == 200  # cached now
    assert len(reads) == 1
    assert reads[0] != loop_threads[-1]
    manager.close()


def test_a_store_opened_from_a_url_is_closed_at_shutdown(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    with KeyManager(url) as setup:
        issued = setup.create_key("used", scopes=["items:read"])
    app = starlette_app(url)
    with TestClient(app) as c:
        assert c.get("/items", headers={"x-api-key": issued.key}).status_code == 200
    # Closing flushed the batched last-used time to the store.
    with KeyManager(url) as after:
        assert after.get(issued.record.id).last_used_at is not None


def test_websocket_without_denial_extension_is_closed_with_policy_violation(keys: Keys) -> None:
    import asyncio

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    scope = {"type": "websocket", "path": "/ws", "headers": [], "query_string": b""}
    asyncio.run(KeyturnMiddleware(_bare_app, keys.manager)(scope, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "missing_credentials"}]


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


@pytest.mark.parametrize("keyturn_first", [True, False])
def test_cors_preflights_reach_corsmiddleware_in_either_order(
    keys: Keys, keyturn_first: bool
) -> None:
    """A browser sends a preflight without the key; CORSMiddleware answers it itself."""
    stack = [
        Middleware(KeyturnMiddleware, keys=keys.manager, realm=REALM),
        Middleware(CORSMiddleware, allow_origins=["https://app.example"], allow_methods=["*"]),
    ]
    app = Starlette(routes=[Route("/items", whoami, methods=["GET", "POST", "OPTIONS"])],
                    middleware=stack if keyturn_first else stack[::-1])
    with asgi_server(app) as url, httpx.Client(base_url=url) as http:
        preflight = http.options("/items", headers=PREFLIGHT)
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        # Not a preflight (no Access-Control-Request-Method): it needs a key like any request,
        # and never reaches the route's OPTIONS handler without one.
        assert http.options("/items", headers={"Origin": "https://app.example"}).status_code == 401
        assert http.post("/items", headers={"Origin": "https://app.example"}).status_code == 401


def test_without_corsmiddleware_a_preflight_needs_a_key(keys: Keys) -> None:
    app = Starlette(routes=[Route("/items", whoami, methods=["GET", "OPTIONS"])],
                    middleware=[Middleware(KeyturnMiddleware, keys=keys.manager)])
    with asgi_server(app) as url:
        assert httpx.options(f"{url}/items", headers=PREFLIGHT).status_code == 401


@pytest.mark.parametrize("trusted", [False, True], ids=["no-proxy", "trusted-proxy"])
def test_the_log_holds_each_requests_user_agent_read_with_its_key(
    tmp_path: Path, trusted: bool
) -> None:
    """The middleware leaves the user agent to the core, which finds it in its look through
    the headers for the key: a cached key's accepted request (the short way), its first
    (a store read), a refusal and a request without one each log their own; of two, the
    first. Fails when the short way or the long way leaves it out."""
    url = f"sqlite:///{tmp_path / 'agents.db'}"
    with KeyManager(url) as maker:
        key = maker.create_key("agents", scopes=["items:read"]).key
    proxies = ["127.0.0.1"] if trusted else []
    with KeyManager(url, verifier=Verifier(trusted_proxies=proxies)) as manager:
        app = KeyturnMiddleware(_hello, manager)
        bearer = ("authorization", f"Bearer {key}")
        sent = {
            "first/1": [bearer, ("user-agent", "first/1")],  # a miss: the store read
            "cached/2": [("user-agent", "cached/2"), bearer],  # before the key, cached
            "cached/3": [bearer, ("user-agent", "cached/3"), ("user-agent", "other/9")],
            "": [bearer],
            "refused/4": [("authorization", "Bearer kt_live_0"), ("user-agent", "refused/4")],
        }
        answered = {}
        with asgi_server(app) as base, httpx.Client() as client:
            del client.headers["user-agent"]
            for agent, headers in sent.items():
                r = client.get(f"{base}/items", headers=headers)
                assert r.status_code == (401 if agent == "refused/4" else 200), r.text
                answered[r.headers["x-request-id"]] = agent
        manager.verifications.flush()
        logged = {
            v.request_id: v.user_agent
            for v in manager.store.verifications(VerificationFilter())
        }
    assert logged == answered


async def _hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})
