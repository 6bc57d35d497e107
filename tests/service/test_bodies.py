"""Request bodies against a real ``keyturn serve``: the key is checked before a body is read,
bodies are capped per route with a catalogued 413, and nothing unbounded is buffered."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keyturn.outcomes import CATALOGUE
from tests.service.conftest import KEY_RE, ServeProcess
from tests.service.rawhttp import (
    closed_by_server,
    connect,
    head,
    read_answer,
    rss_kib,
    send_forever,
)

MB = 1024 * 1024


@dataclass
class Served:
    process: ServeProcess
    root: str

    @property
    def url(self) -> str:
        return self.process.url

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=20)


def serve(tmp: Path, **env: str) -> Iterator[Served]:
    db = f"sqlite:///{tmp / 'keyturn.db'}"
    env = {"KEYTURN_ACCESS_LOG": "false", **env}
    with ServeProcess("--db", db, env=env, cwd=tmp) as process:
        keys = KEY_RE.findall(process.stderr)
        assert len(keys) == 1, process.stderr
        yield Served(process, keys[0])
        assert process.stop() == 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve(tmp_path_factory.mktemp("bodies"), KEYTURN_READ_TIMEOUT="3")


def assert_catalogued(answer: httpx.Response | object, code: str) -> None:
    status = getattr(answer, "status_code", None) or getattr(answer, "status", None)
    body = answer.json()  # type: ignore[attr-defined]
    assert status == CATALOGUE[code].status
    assert body["code"] == code and body["status"] == status
    assert body["title"] == CATALOGUE[code].title


# -- credentials first ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/keys", "/v1/keys/verify", "/v1/keys/key_0/rotate"])
def test_an_anonymous_body_is_refused_before_it_is_read(served: Served, path: str) -> None:
    """A 100 MB announcement, and only the first kilobyte sent: the 401 comes at once."""
    with connect(served.url) as sock:
        sock.sendall(head("POST", path, {"content-type": "application/json",
                                         "content-length": str(100 * MB)}) + b"{" * 1024)
        answer = read_answer(sock)
    assert answer is not None and answer.status == 401
    assert answer.json()["code"] == "missing_credentials"
    assert answer.headers["www-authenticate"].startswith("Bearer ")


def test_a_chunked_anonymous_body_is_refused_before_it_is_read(served: Served) -> None:
    with connect(served.url) as sock:
        sock.sendall(head("POST", "/v1/keys", {"transfer-encoding": "chunked",
                                               "authorization": "Bearer kt_live_nope"}))
        sock.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")  # and never an end
        answer = read_answer(sock)
        assert answer is not None and answer.status == 401
        assert answer.json()["code"] == "malformed_key"
        # Whatever else it sends is drained a little, then the connection is closed.
        send_forever(sock, b"400\r\n" + b"x" * 1024 + b"\r\n", 8 * MB)
        assert closed_by_server(sock)


def test_a_key_without_the_routes_scope_is_refused_before_the_body(served: Served) -> None:
    with served.client(served.root) as root:
        reader = root.post("/v1/keys", json={"name": "r", "scopes": ["keys:read"]}).json()["key"]
    with connect(served.url) as sock:
        sock.sendall(head("POST", "/v1/keys", {"authorization": f"Bearer {reader}",
                                               "content-length": str(100 * MB)}))
        answer = read_answer(sock)
    assert answer is not None and answer.status == 403
    assert answer.json()["code"] == "insufficient_scope"


def test_expect_100_continue_is_never_invited_without_a_key(served: Served) -> None:
    with connect(served.url) as sock:
        sock.sendall(head("POST", "/v1/keys", {"content-length": str(100 * MB),
                                               "expect": "100-continue"}))
        answer = read_answer(sock)
    assert answer is not None and answer.status == 401  # not "100 Continue"


# -- caps ----------------------------------------------------------------------------------


def test_an_admin_body_over_the_cap_is_a_catalogued_413(served: Served) -> None:
    big = {"name": "big", "scopes": ["api"], "metadata": {"blob": "x" * (100 * 1024)}}
    with served.client(served.root) as root:
        answer = root.post("/v1/keys", json=big)
        assert_catalogued(answer, "body_too_large")
        assert answer.headers["content-type"] == "application/problem+json"
        assert "65536 bytes" in answer.json()["detail"]
        # Under the cap it is an ordinary request again, and nothing was created.
        listed = root.get("/v1/keys", params={"search": "big"}).json()["keys"]
        assert listed == []
        small = {"name": "small", "scopes": ["api"], "metadata": {"blob": "x" * 1000}}
        assert root.post("/v1/keys", json=small).status_code == 201


def test_the_verify_api_takes_small_bodies_only(served: Served) -> None:
    with served.client(served.root) as root:
        answer = root.post("/v1/keys/verify", json={"key": "x" * 10_000})
        assert_catalogued(answer, "body_too_large")
        assert "8192 bytes" in answer.json()["detail"]
        fine = root.post("/v1/keys/verify", json={"key": served.root})
        assert fine.status_code == 200 and fine.json()["valid"] is True


def test_a_declared_length_over_the_cap_is_refused_unread(served: Served) -> None:
    with connect(served.url) as sock:
        sock.sendall(head("PATCH", "/v1/keys/key_0", {"authorization": f"Bearer {served.root}",
                                                      "content-type": "application/json",
                                                      "content-length": str(100 * MB)}))
        answer = read_answer(sock)
    assert answer is not None
    assert answer.status == 413 and answer.json()["code"] == "body_too_large"


def test_an_endless_chunked_body_is_cut_at_the_cap(served: Served) -> None:
    with connect(served.url) as sock:
        sock.sendall(head("POST", "/v1/keys", {"authorization": f"Bearer {served.root}",
                                               "content-type": "application/json",
                                               "transfer-encoding": "chunked"}))
        chunk = b"1000\r\n" + b" " * 4096 + b"\r\n"
        sent = send_forever(sock, chunk, 1 * MB)
        answer = read_answer(sock)
        assert answer is not None and answer.status == 413, sent
        assert closed_by_server(sock)


def test_a_body_that_does_not_arrive_in_time_is_a_408(served: Served) -> None:
    with connect(served.url) as sock:
        sock.sendall(head("POST", "/v1/keys", {"authorization": f"Bearer {served.root}",
                                               "content-type": "application/json",
                                               "content-length": "100"}) + b"{")
        sock.settimeout(15)
        answer = read_answer(sock)  # read_timeout is 3 s here
    assert answer is not None
    assert answer.status == 408 and answer.json()["code"] == "request_timeout"


def test_the_cap_is_a_setting(tmp_path: Path) -> None:
    for served in serve(tmp_path, KEYTURN_MAX_BODY_SIZE="2048"):
        with served.client(served.root) as root:
            body = {"name": "n", "scopes": ["api"], "metadata": {"m": "x" * 3000}}
            answer = root.post("/v1/keys", json=body)
            assert_catalogued(answer, "body_too_large")
            assert "2048 bytes" in answer.json()["detail"]


# -- the attack from the issue, measured -----------------------------------------------------


def _flood(url: str, path: str, headers: dict[str, str], size: int) -> None:
    with connect(url, timeout=30) as sock:
        sock.sendall(head("POST", path, {**headers, "content-length": str(size)}))
        send_forever(sock, b"A" * 65536, size)


@pytest.mark.parametrize("path", ["/v1/keys", "/v1/keys/verify", "/auth", "/ui/login"])
def test_three_anonymous_100_mb_posts_cost_no_memory(served: Served, path: str) -> None:
    with served.client(served.root) as root:
        assert root.get("/auth").status_code == 204  # warm
        before = rss_kib(served.process.process.pid)
        floods = [
            threading.Thread(target=_flood, args=(served.url, path,
                                                  {"content-type": "application/json"}, 100 * MB))
            for _ in range(3)
        ]
        for flood in floods:
            flood.start()
        # /auth keeps answering valid keys meanwhile.
        for _ in range(20):
            assert root.get("/auth").status_code == 204
        for flood in floods:
            flood.join(timeout=60)
        grown = rss_kib(served.process.process.pid) - before
    assert grown < 20 * 1024, f"the server grew by {grown} KiB"


def test_dashboard_sign_in_without_its_session_is_refused_unread(served: Served) -> None:
    with connect(served.url) as sock:
        sock.sendall(head("POST", "/ui/login", {
            "content-type": "application/x-www-form-urlencoded",
            "content-length": str(100 * MB)}))
        answer = read_answer(sock)
    assert answer is not None and answer.status == 403
    assert b"expired" in answer.body


def test_dashboard_sign_in_takes_a_small_form(served: Served) -> None:
    with httpx.Client(base_url=served.url, timeout=20) as browser:
        page = browser.get("/ui/login")
        assert page.status_code == 200
        answer = browser.post("/ui/login", data={"csrf": "x", "key": "k" * 5000})
    assert answer.status_code == 413
    assert "larger than 4 KiB" in answer.text


def test_json_problem_bodies_never_echo_the_body(served: Served) -> None:
    secret = "kt_live_" + "Z" * 36
    with served.client(served.root) as root:
        answer = root.post("/v1/keys/verify", content=json.dumps({"key": secret}) + " " * 9000,
                           headers={"content-type": "application/json"})
    assert answer.status_code == 413 and secret not in answer.text


def test_every_operation_that_may_take_a_body_checks_the_key_first(served: Served) -> None:
    """Driven by the OpenAPI document, so an operation added later is held to it too. An
    operation open to anyone (a leak report) refuses the oversized body unread instead."""
    document = httpx.get(f"{served.url}/openapi.json").json()
    operations = [
        (method.upper(), path.replace("{key_id}", "key_0123456789abcdef"),
         401 if operation.get("security") else 413)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("post", "put", "patch") and path.startswith("/v1/")
    ]
    assert len([op for op in operations if op[2] == 401]) >= 7  # create, verify, update, ...
    for method, path, status in operations:
        with connect(served.url) as sock:
            sock.sendall(head(method, path, {"content-type": "application/json",
                                             "content-length": str(100 * MB)}))
            answer = read_answer(sock)
        assert answer is not None and answer.status == status, (method, path)


def test_every_operation_that_takes_a_body_documents_the_gate_answers(served: Served) -> None:
    """A generated client reads its answers from the document: the gate's 413 (too large)
    and 408 (too slow) are answers of every operation that takes a body, and were listed
    by none (schemathesis sent an over-long ``permissions`` and met an undocumented 413)."""
    document = httpx.get(f"{served.url}/openapi.json").json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch") and path.startswith("/v1/"):
                assert {"408", "413"} <= set(operation["responses"]), (method, path)
