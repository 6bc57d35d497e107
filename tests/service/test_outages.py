"""Outages of PostgreSQL and Redis, through a real ``keyturn serve``.

Each test starts PostgreSQL and Redis of its own (``tests/dedicated.py``; never the shared
servers), runs ``keyturn serve`` on them, stops one and starts it again. While it is down
every face fails closed and fast: the catalogue's ``503`` problem (``store_unavailable``,
``limiter_unavailable``) with ``Retry-After``, within the documented timeouts, never a hang,
a bare 500 or a traceback; ``/readyz`` names the dependency that is down and ``/healthz``
stays 200. When it is back the service recovers by itself, with no restart.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx
import pytest

from keyturn import KeyManager
from tests.dedicated import OwnPostgres, OwnRedis
from tests.service.conftest import ServeProcess

# The documented bound on an answer during an outage (docs/security.md, "Outages"): the
# store's and Redis's timeouts, with room for a loaded machine. Before, a PostgreSQL
# outage hung requests for 30 s.
PROMPT = 8.0
RECOVERY = 30.0
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Deployment:
    postgres: OwnPostgres
    redis: OwnRedis
    serve: ServeProcess
    root: str
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.serve.url, headers=headers, timeout=60)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    postgres, redis = OwnPostgres(), OwnRedis()
    try:
        postgres.start()
        redis.start()
        with KeyManager(postgres.url) as manager:
            root = manager.create_key("root", scopes=["*"], expires_in=None).key
        env = {
            "KEYTURN_DATABASE_URL": postgres.url,
            "KEYTURN_REDIS_URL": redis.url,
            "KEYTURN_ACCESS_LOG": "false",
        }
        with ServeProcess(env=env, cwd=tmp_path) as serve:
            deployment = Deployment(postgres, redis, serve, root)
            with deployment.client(root) as admin:
                for name, body in {
                    "plain": {},
                    "credits": {"credits": 1000},
                    "limited": {"rate_limits": ["1000/hour"]},
                    "unused": {},
                }.items():
                    made = admin.post("/v1/keys", json={"name": name, **body})
                    assert made.status_code == 201, made.text
                    deployment.keys[name] = made.json()["key"]
            yield deployment
            assert "Traceback" not in serve.stderr, serve.stderr
    finally:
        redis.close()
        postgres.close()


def timed(call: Callable[[], httpx.Response]) -> httpx.Response:
    started = time.monotonic()
    answer = call()
    took = time.monotonic() - started
    assert took < PROMPT, f"{answer.request.method} {answer.request.url.path}: {took:.1f} s"
    return answer


def assert_unavailable(answer: httpx.Response, code: str) -> None:
    """The catalogue's 503: problem+json with its code and a ``Retry-After``."""
    assert answer.status_code == 503, (answer.status_code, answer.text)
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.headers
    assert answer.json()["code"] == code, answer.text
    assert int(answer.headers["retry-after"]) >= 1


def auth(d: Deployment, key: str) -> httpx.Response:
    with d.client(key) as client:
        return client.get("/auth")


def readiness(d: Deployment) -> tuple[int, dict[str, str]]:
    with d.client() as client:
        answer = client.get("/readyz")
    return answer.status_code, answer.json()["checks"]


def sign_in(d: Deployment, browser: httpx.Client | None = None) -> httpx.Response:
    """Sign in with the root key through the dashboard's form (in ``browser``, which keeps
    the session's cookie, or in a client of its own)."""
    if browser is None:
        with d.client() as own:
            return sign_in(d, own)
    form = browser.get("/ui/login")
    token = CSRF.search(form.text)
    assert token is not None, form.text
    return browser.post("/ui/login", data={"csrf": token.group(1), "key": d.root})


def until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + RECOVERY
    while not check():
        assert time.monotonic() < deadline, f"not recovered after {RECOVERY} s: {what}"
        time.sleep(0.25)


def test_a_postgresql_outage_fails_closed_fast_and_recovers(deployment: Deployment) -> None:
    d = deployment
    assert readiness(d) == (200, {"store": "ok", "rate_limits": "ok"})
    signed_in = d.client()
    assert sign_in(d, signed_in).status_code == 303
    with d.client(d.root) as admin:
        links = [
            admin.post(
                "/v1/portal/sessions", json={"owner": "acme", "policy": {"scopes": ["read"]}}
            ).json()["url"]
            for _ in range(2)
        ]
    in_portal = d.client()
    assert in_portal.get(links[0]).status_code == 200  # a page that moves on to /portal/
    d.postgres.stop()
    time.sleep(1.5)  # past the cache's bound: nothing is answered from before the outage
    for name in ("unused", "plain", "credits"):
        assert_unavailable(timed(partial(auth, d, d.keys[name])), "store_unavailable")
    with d.client(d.root) as admin:
        assert_unavailable(timed(lambda: admin.get("/v1/keys")), "store_unavailable")
        assert_unavailable(
            timed(lambda: admin.post("/v1/keys", json={"name": "during"})), "store_unavailable"
        )
        verify = timed(lambda: admin.post("/v1/keys/verify", json={"key": d.keys["plain"]}))
        assert_unavailable(verify, "store_unavailable")
    page = timed(lambda: sign_in(d))
    assert page.status_code == 503 and "retry-after" in page.headers, page.text
    page = timed(lambda: signed_in.get("/ui/keys"))
    assert page.status_code == 503 and "retry-after" in page.headers, page.text
    with d.client() as visitor:
        page = timed(lambda: visitor.get(links[1]))
        assert page.status_code == 503 and "retry-after" in page.headers, page.text
    page = timed(lambda: in_portal.get("/portal"))
    assert page.status_code == 503 and "retry-after" in page.headers, page.text
    status, checks = readiness(d)
    assert status == 503 and checks["store"] != "ok" and checks["rate_limits"] == "ok", checks
    with d.client() as client:
        assert client.get("/healthz").status_code == 200
    # A burst of requests at once is answered as promptly (no queue behind the timeouts).
    with httpx.Client(base_url=d.serve.url, timeout=60) as client:
        started = time.monotonic()
        for _ in range(20):
            client.get("/auth", headers={"Authorization": f"Bearer {d.keys['unused']}"})
        assert time.monotonic() - started < PROMPT * 2

    d.postgres.start()
    until(lambda: auth(d, d.keys["unused"]).status_code == 204, "/auth")
    for name in ("plain", "credits", "limited"):
        assert auth(d, d.keys[name]).status_code == 204, name
    with d.client(d.root) as admin:
        assert admin.get("/v1/keys").status_code == 200
        assert admin.post("/v1/keys", json={"name": "after"}).status_code == 201
    assert sign_in(d).status_code == 303
    assert signed_in.get("/ui/keys").status_code == 200
    assert in_portal.get("/portal").status_code == 200
    signed_in.close()
    in_portal.close()
    until(lambda: readiness(d)[0] == 200, "/readyz")


def test_a_redis_outage_fails_closed_fast_and_recovers(deployment: Deployment) -> None:
    d = deployment
    assert auth(d, d.keys["limited"]).status_code == 204
    d.redis.stop()
    assert_unavailable(timed(lambda: auth(d, d.keys["limited"])), "limiter_unavailable")
    # Keys without rate limits do not need Redis.
    for name in ("plain", "credits", "unused"):
        assert timed(partial(auth, d, d.keys[name])).status_code == 204, name
    status, checks = readiness(d)
    assert status == 503 and checks["rate_limits"] != "ok" and checks["store"] == "ok", checks
    with d.client() as client:
        assert client.get("/healthz").status_code == 200

    d.redis.start()
    until(lambda: auth(d, d.keys["limited"]).status_code == 204, "/auth with rate limits")
    assert readiness(d) == (200, {"store": "ok", "rate_limits": "ok"})


def test_a_postgresql_that_never_answers_is_an_outage_too(deployment: Deployment) -> None:
    """A server that holds its connections without answering (frozen) is cut off by the
    statement deadline (5 s) instead of holding requests without end; later requests are
    refused at once, and the service recovers when the server answers again."""
    d = deployment
    assert auth(d, d.keys["plain"]).status_code == 204
    d.postgres.freeze()
    try:
        time.sleep(1.5)  # past the cache's bound
        for name in ("unused", "plain", "credits", "unused"):
            assert_unavailable(timed(partial(auth, d, d.keys[name])), "store_unavailable")
        with d.client(d.root) as admin:
            assert_unavailable(timed(lambda: admin.get("/v1/keys")), "store_unavailable")
        status, checks = readiness(d)
        assert status == 503 and checks["store"] != "ok", checks
    finally:
        d.postgres.thaw()
    until(lambda: auth(d, d.keys["unused"]).status_code == 204, "/auth")
    until(lambda: readiness(d)[0] == 200, "/readyz")
