"""Leak response: GitHub's secret scanning partner endpoint, with a locally made P-256 key
pair served in GitHub's format on loopback, and the public report endpoint."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyturn.keys import generate_key

from .conftest import Live, start_live
from .receiver import Receiver


class GitHubKeyServer:
    """Serves ``{"public_keys": [...]}`` like GitHub's meta endpoint, counting fetches."""

    def __init__(self) -> None:
        self.private: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.published: list[str] = []
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                body = json.dumps(server.document()).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/meta/public_keys/secret_scanning"

    def new_key(self, publish: bool = True) -> str:
        identifier = hashlib.sha256(str(time.monotonic_ns()).encode()).hexdigest()
        self.private[identifier] = ec.generate_private_key(ec.SECP256R1())
        if publish:
            self.published = [identifier]  # GitHub rotated: only the new key is current
        return identifier

    def document(self) -> dict[str, Any]:
        keys = []
        for identifier in self.published:
            pem = self.private[identifier].public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            keys.append({"key_identifier": identifier, "key": pem.decode(), "is_current": True})
        return {"public_keys": keys}

    def sign(self, identifier: str, body: bytes) -> dict[str, str]:
        signature = self.private[identifier].sign(body, ec.ECDSA(hashes.SHA256()))
        return {
            "Github-Public-Key-Identifier": identifier,
            "Github-Public-Key-Signature": base64.b64encode(signature).decode(),
            "content-type": "application/json",
        }


@pytest.fixture(scope="module")
def github() -> Iterator[GitHubKeyServer]:
    server = GitHubKeyServer()
    server.new_key()
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory, github: GitHubKeyServer) -> Iterator[Live]:
    yield from start_live(
        tmp_path_factory.mktemp("leaks"),
        github_keys_url=github.url,
        webhook_allow_private=True,
    )


def report(tokens: list[str], url: str = "https://github.com/o/r/blob/abc/config.py") -> bytes:
    return json.dumps(
        [{"token": t, "type": "keyturn_api_key", "url": url, "source": "content"} for t in tokens]
    ).encode()


def status_of(live: Live, key_id: str) -> str:
    return str(live.root.get(f"/v1/keys/{key_id}").json()["status"])


def test_a_signed_report_revokes_the_key_with_audit_and_event(
    scanned: Live, github: GitHubKeyServer
) -> None:
    with Receiver() as receiver:
        hook = scanned.root.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["key.leaked"]}
        ).json()
        key, record = scanned.make_key("orders:read")
        stranger = generate_key()  # well-formed, but not this deployment's
        body = report([key, stranger, "not-a-key"])
        identifier = github.published[0]
        answer = scanned.client().post(
            "/v1/leaks/github", content=body, headers=github.sign(identifier, body)
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == [
            {
                "token_hash": hashlib.sha256(t.encode()).hexdigest(),
                "token_type": "keyturn_api_key",
                "label": label,
            }
            for t, label in (
                (key, "true_positive"),
                (stranger, "false_positive"),
                ("not-a-key", "false_positive"),
            )
        ]
        assert key not in answer.text
        assert status_of(scanned, record["id"]) == "revoked"
        refused = scanned.client(key).get("/v1/keys")
        assert refused.status_code == 401 and refused.json()["code"] == "key_revoked"
        audit = scanned.root.get("/v1/audit", params={"key_id": record["id"]}).json()["events"]
        leak = next(e for e in audit if e["action"] == "key.leak")
        assert leak["actor"] == "github-secret-scanning"
        assert leak["details"]["url"] == "https://github.com/o/r/blob/abc/config.py"
        assert leak["details"]["source"] == "content"
        assert leak["details"]["leak_action"] == "revoke"
        (event,) = receiver.wait_for(1)
        assert event.json["type"] == "key.leaked"
        assert event.json["data"]["id"] == record["id"]
        assert event.json["data"]["url"] == "https://github.com/o/r/blob/abc/config.py"
        assert key.encode() not in event.body
        scanned.root.delete(f"/v1/webhooks/{hook['id']}")


@pytest.mark.parametrize(
    "tamper",
    ["no headers", "no signature", "other key", "body changed", "garbage signature", "unknown id"],
)
def test_an_unsigned_or_badly_signed_report_is_401_and_changes_nothing(
    scanned: Live, github: GitHubKeyServer, tamper: str
) -> None:
    key, record = scanned.make_key()
    body = report([key])
    identifier = github.published[0]
    headers = github.sign(identifier, body)
    if tamper == "no headers":
        headers = {"content-type": "application/json"}
    elif tamper == "no signature":
        del headers["Github-Public-Key-Signature"]
    elif tamper == "other key":
        rogue = github.new_key(publish=False)
        headers = {**github.sign(rogue, body), "Github-Public-Key-Identifier": identifier}
    elif tamper == "body changed":
        body = report([key], url="https://elsewhere.example/")
    elif tamper == "garbage signature":
        headers["Github-Public-Key-Signature"] = "%%%not base64%%%"
    elif tamper == "unknown id":
        rogue = github.new_key(publish=False)
        headers = github.sign(rogue, body)
    answer = scanned.client().post("/v1/leaks/github", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "signature_invalid"
    assert status_of(scanned, record["id"]) == "active"
    assert scanned.client(key).get("/v1/keys").status_code == 403  # still works: no scope


def test_github_rotating_its_keys_costs_one_refresh(tmp_path: Path) -> None:
    github = GitHubKeyServer()
    first = github.new_key()
    lives = start_live(tmp_path, github_keys_url=github.url)
    live = next(lives)
    try:
        key, record = live.make_key()
        body = report([generate_key()])
        assert live.client().post(
            "/v1/leaks/github", content=body, headers=github.sign(first, body)
        ).status_code == 200
        assert github.fetches == 1
        assert live.client().post(
            "/v1/leaks/github", content=body, headers=github.sign(first, body)
        ).status_code == 200
        assert github.fetches == 1  # cached
        second = github.new_key()  # GitHub rotates
        body = report([key])
        answer = live.client().post(
            "/v1/leaks/github", content=body, headers=github.sign(second, body)
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()[0]["label"] == "true_positive"
        assert github.fetches == 2  # one refresh for the unknown identifier
        # Made-up identifiers right after cannot make keyturn fetch again.
        for _ in range(5):
            rogue = github.new_key(publish=False)
            assert live.client().post(
                "/v1/leaks/github", content=body, headers=github.sign(rogue, body)
            ).status_code == 401
        assert github.fetches == 2
        assert status_of(live, record["id"]) == "revoked"
    finally:
        lives.close()
        github.httpd.shutdown()


def test_a_key_server_that_fails_keeps_the_last_good_keys(tmp_path: Path) -> None:
    github = GitHubKeyServer()
    identifier = github.new_key()
    lives = start_live(tmp_path, github_keys_url=github.url)
    live = next(lives)
    try:
        body = report([generate_key()])
        sent = live.client().post(
            "/v1/leaks/github", content=body, headers=github.sign(identifier, body)
        )
        assert sent.status_code == 200
        github.httpd.shutdown()
        github.httpd.server_close()
        again = live.client().post(
            "/v1/leaks/github", content=body, headers=github.sign(identifier, body)
        )
        assert again.status_code == 200
    finally:
        lives.close()


@pytest.mark.parametrize(("action", "status"), [("disable", "disabled"), ("notify", "active")])
def test_the_leak_action_setting(
    tmp_path: Path, github: GitHubKeyServer, action: str, status: str
) -> None:
    lives = start_live(tmp_path, github_keys_url=github.url, leak_action=action)
    live = next(lives)
    try:
        key, record = live.make_key()
        body = report([key])
        answer = live.client().post(
            "/v1/leaks/github", content=body, headers=github.sign(github.published[0], body)
        )
        assert answer.json()[0]["label"] == "true_positive"
        assert status_of(live, record["id"]) == status
        audit = live.root.get("/v1/audit", params={"action": "key.leak"}).json()["events"]
        assert audit[0]["details"]["leak_action"] == action
    finally:
        lives.close()


def test_anyone_may_report_a_key_and_learns_nothing(scanned: Live) -> None:
    key, record = scanned.make_key()
    client = scanned.client(**{"x-forwarded-for": "203.0.113.9"})
    answers = [
        client.post("/v1/leaks", json={"key": value, "url": "https://paste.example/x"})
        for value in (key, generate_key(), "kt_live_short", "anything at all")
    ]
    assert {a.status_code for a in answers} == {202}
    assert len({(a.content, a.headers["content-type"]) for a in answers}) == 1
    deadline = time.monotonic() + 5
    while status_of(scanned, record["id"]) != "revoked" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_of(scanned, record["id"]) == "revoked"
    audit = scanned.root.get("/v1/audit", params={"key_id": record["id"]}).json()["events"]
    leak = next(e for e in audit if e["action"] == "key.leak")
    assert leak["actor"] == "leak-report"
    assert leak["details"]["url"] == "https://paste.example/x"


def test_reports_are_throttled_per_client(tmp_path: Path) -> None:
    lives = start_live(tmp_path)
    live = next(lives)
    try:
        client = live.client()
        codes = [
            client.post("/v1/leaks", json={"key": generate_key()}).status_code for _ in range(25)
        ]
        assert codes[:20] == [202] * 20
        assert codes[-1] == 429
        refused = client.post("/v1/leaks", json={"key": generate_key()})
        assert refused.json()["code"] == "reports_throttled"
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        lives.close()


def test_a_report_must_be_a_report(scanned: Live) -> None:
    for body in ({}, {"key": 5}, {"key": "x", "extra": 1}, []):
        assert scanned.client().post("/v1/leaks", json=body).status_code == 422


def test_scan_report_quarantines_a_key_before_the_push(scanned: Live, tmp_path: Path) -> None:
    """A pre-commit scan finds a key and reports it: revoked before any push."""
    from .conftest import run_cli

    key, record = scanned.make_key()
    other, other_record = scanned.make_key()
    (tmp_path / "settings.py").write_text(f'API_KEY = "{key}"\nBROKEN = "{other[:-1]}X"\n')
    done = run_cli("scan", "--report", scanned.url, str(tmp_path / "settings.py"))
    assert done.returncode == 1, done.stderr  # the finding still fails the hook
    assert f"reported 1 keyturn key to {scanned.url}" in done.stderr
    assert key not in done.stdout + done.stderr
    deadline = time.monotonic() + 5
    while status_of(scanned, record["id"]) != "revoked" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_of(scanned, record["id"]) == "revoked"
    assert status_of(scanned, other_record["id"]) == "active"  # a bad checksum is not sent


def test_scan_report_needs_https_off_loopback(tmp_path: Path) -> None:
    from .conftest import run_cli

    done = run_cli("scan", "--report", "http://keys.example.com", str(tmp_path))
    assert done.returncode == 2
    assert "https" in done.stderr
