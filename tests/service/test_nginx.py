"""docs/proxies/nginx.conf, for real: nginx in front of an upstream, asking keyturn serve.

nginx runs from the Debian package on loopback with its own prefix in a temporary folder;
the upstream is a small HTTP server that echoes the request it got, so the test sees what
the application behind nginx would see. Under CI the test must run: a missing nginx fails
it (``scripts/services.sh`` installs nginx).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from keyturn._header_spellings import spellings
from keyturn.manager import KeyManager
from tests.conftest import in_ci
from tests.dedicated import free_port, started
from tests.path_cases import ADMIN_FORMS, OFF_WIRE_ADMIN_FORMS, send_raw
from tests.service.conftest import KEY_RE, TLS, ServeProcess

DOCS = Path(__file__).resolve().parents[2] / "docs" / "proxies"
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)

if NGINX is None and not in_ci():
    pytest.skip("nginx is not installed (scripts/services.sh installs it)", allow_module_level=True)


class Echo(BaseHTTPRequestHandler):
    """Answers every request with the method, path, headers and body it received."""

    def _echo(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": self.rfile.read(length).decode() if length else "",
            }
        ).encode()
        # ``x-echo-status`` asks for another status, as an application's own error answer;
        # the application also claims a lifecycle of its own, which nginx must hide.
        self.send_response(int(self.headers.get("x-echo-status") or 200))
        self.send_header("keyturn-key-expires", "Thu, 01 Jan 2099 00:00:00 GMT")
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _echo

    def log_message(self, format: str, *args: object) -> None:
        pass


MAIN_CONF = """\
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/keyturn.conf;
}}
"""


def documented(name: str, *replaced: tuple[str, str]) -> str:
    """The shipped docs/proxies/``name`` with each documented text (found exactly once,
    so the test runs the file as users copy it) replaced by the test's own."""
    site = (DOCS / name).read_text()
    for text, actual in replaced:
        assert site.count(text) == 1, text
        site = site.replace(text, actual)
    return site


def render_site(keyturn: str, app: str, port: int) -> str:
    """docs/proxies/nginx.conf with its three documented addresses replaced."""
    return documented(
        "nginx.conf",
        ("server 127.0.0.1:8080;", f"server {keyturn};"),
        ("server 127.0.0.1:9000;", f"server {app};"),
        ("listen 8000;", f"listen 127.0.0.1:{port};"),
    )


@dataclass
class Stack:
    url: str
    root_key: str = field(repr=False)
    keyturn_url: str = ""
    db: str = ""

    def make_key(self, *scopes: str, **fields: object) -> tuple[str, str]:
        answer = httpx.post(
            f"{self.keyturn_url}/v1/keys",
            json={"name": "nginx test", "scopes": list(scopes), **fields},
            headers={"authorization": f"Bearer {self.root_key}"},
            verify=TLS,  # the parametrized tests make keys by the hundred
        )
        assert answer.status_code == 201, answer.text
        return answer.json()["key"], answer.json()["id"]


def start_nginx(tmp: Path, keyturn: str, app: str) -> tuple[subprocess.Popen[bytes], int]:
    assert NGINX is not None, "nginx must be installed under CI: run scripts/services.sh"
    for _ in range(5):  # a free port can be taken between choosing and binding: retry
        port = free_port()
        (tmp / "keyturn.conf").write_text(render_site(keyturn, app, port))
        for include in ("keyturn-protect.inc", "keyturn-ask.inc"):
            shutil.copy(DOCS / include, tmp / include)
        (tmp / "nginx.conf").write_text(MAIN_CONF.format(tmp=tmp))
        check = subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        process = subprocess.Popen(
            [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if started(process, port, 10):
            return process, port
    raise RuntimeError(f"nginx did not start:\n{(tmp / 'error.log').read_text()}")


Starter = Callable[[Path, str, str], tuple[subprocess.Popen[bytes], int]]


@contextmanager
def proxy_stack(
    tmp: Path, *serve_args: str, env: dict[str, str] | None = None, start: Starter | None = None
) -> Iterator[Stack]:
    """nginx (or the proxy ``start`` runs) with the shipped configuration in front of an
    echoing app, asking a real ``keyturn serve`` (started with ``serve_args``, on a new
    SQLite file) at ``/auth``."""
    start = start or start_nginx
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    app = f"127.0.0.1:{upstream.server_address[1]}"
    db = f"sqlite:///{tmp / 'keyturn.db'}"
    with ServeProcess("--db", db, *serve_args, env=env, cwd=tmp) as keyturn:
        root = KEY_RE.findall(keyturn.stderr)[0]
        proxy, port = start(tmp, keyturn.url.removeprefix("http://"), app)
        try:
            yield Stack(f"http://127.0.0.1:{port}", root, keyturn.url, db)
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)
            upstream.shutdown()
            keyturn.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, protocol: str) -> Iterator[Stack]:
    """On each of uvicorn's HTTP stacks (keyturn serve answers /auth inside each)."""
    rules = ("--rule", "/admin=admin", "--rule", "GET /reports=reports")
    env = {"KEYTURN_HTTP": protocol}
    with proxy_stack(tmp_path_factory.mktemp("nginx"), *rules, env=env) as built:
        yield built


def problem(answer: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith('Bearer realm="api"')
    body: dict[str, object] = answer.json()
    assert body["code"] == code
    return body


def test_missing_key_gets_keyturns_401_through_nginx(stack: Stack) -> None:
    answer = httpx.get(f"{stack.url}/orders")
    problem(answer, 401, "missing_credentials")
    assert answer.headers["www-authenticate"] == 'Bearer realm="api"'


def test_bad_keys_get_their_own_answers(stack: Stack) -> None:
    key, key_id = stack.make_key()
    problem(httpx.get(f"{stack.url}/", headers={"authorization": f"Token {key}"}), 401,
            "unsupported_scheme")
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")
    body = problem(httpx.get(f"{stack.url}/", headers={"authorization": f"Bearer {typo}"}), 401,
                   "checksum_mismatch")
    assert typo not in json.dumps(body)
    # keyturn's 400s, which auth_request alone would turn into a bare 500:
    problem(httpx.get(f"{stack.url}/", headers={"authorization": "Bearer"}), 400,
            "malformed_credentials")
    problem(httpx.get(f"{stack.url}/search?api_key={key}"), 400, "credentials_in_query")
    httpx.post(f"{stack.keyturn_url}/v1/keys/{key_id}/revoke",
               headers={"authorization": f"Bearer {stack.root_key}"})
    problem(httpx.get(f"{stack.url}/", headers={"x-api-key": key}), 401, "key_revoked")


def test_scope_failure_is_403(stack: Stack) -> None:
    key, _ = stack.make_key("api")
    answer = httpx.get(f"{stack.url}/admin/users", headers={"authorization": f"Bearer {key}"})
    body = problem(answer, 403, "insufficient_scope")
    assert body["required_scopes"] == ["admin"]
    assert 'scope="admin"' in answer.headers["www-authenticate"]
    # The client cannot lower the requirement: nginx overwrites the header.
    forged = httpx.get(
        f"{stack.url}/admin/users",
        headers={"authorization": f"Bearer {key}", "X-Keyturn-Required-Scopes": ""},
    )
    assert forged.status_code == 403


def test_good_key_reaches_the_upstream_with_identity_and_without_the_key(stack: Stack) -> None:
    key, key_id = stack.make_key("api", "admin", owner="team-orders")
    answer = httpx.post(
        f"{stack.url}/admin/orders?page=2",
        headers={"authorization": f"Bearer {key}", "X-Keyturn-Key-Id": "key_forged"},
        content=b'{"order": 1}',
    )
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    assert seen["method"] == "POST" and seen["path"] == "/admin/orders?page=2"
    assert seen["body"] == '{"order": 1}'
    headers = seen["headers"]
    assert headers["x-keyturn-key-id"] == key_id
    assert headers["x-keyturn-owner"] == "team-orders"
    assert headers["x-keyturn-scopes"] == "admin api"
    assert "authorization" not in headers and "x-api-key" not in headers
    assert key not in json.dumps(seen)
    # Nor a URI named in a header some frameworks route on instead of the request line.
    forged = {"authorization": f"Bearer {key}", "X-Original-URL": "/x", "X-Rewrite-URL": "/x"}
    headers = httpx.get(f"{stack.url}/admin/orders", headers=forged).json()["headers"]
    assert "x-original-url" not in headers and "x-rewrite-url" not in headers
    assert "x-keyturn-required-scopes" not in headers


def test_the_client_sees_the_keys_lifecycle_and_the_application_does_not_need_it(
    stack: Stack,
) -> None:
    """keyturn's Keyturn-Key-* answer headers reach the client's response through nginx."""
    key, key_id = stack.make_key("api", expires_in=5 * 86400)
    root = {"authorization": f"Bearer {stack.root_key}"}
    rotated = httpx.post(f"{stack.keyturn_url}/v1/keys/{key_id}/rotate",
                         json={"grace_seconds": 7200}, headers=root)
    assert rotated.status_code == 201
    shown = httpx.get(f"{stack.keyturn_url}/v1/keys/{key_id}", headers=root).json()
    answer = httpx.get(f"{stack.url}/orders", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    for header, stored in (("keyturn-key-expires", "expires_at"),
                          ("keyturn-key-rotated-until", "grace_until")):
        assert answer.headers.get_list(header) == [answer.headers[header]]  # once
        moment = datetime.fromisoformat(shown[stored]).replace(microsecond=0)
        assert parsedate_to_datetime(answer.headers[header]) == moment
    # An application's own error answer for an accepted request carries them too.
    missing = httpx.get(f"{stack.url}/orders", headers={"authorization": f"Bearer {key}",
                                                        "x-echo-status": "404"})
    assert "keyturn-key-expires" in missing.headers
    # A refusal carries none: the same key where its scopes fall short.
    refused = httpx.get(f"{stack.url}/admin/x", headers={"authorization": f"Bearer {key}"})
    assert refused.status_code == 403
    assert not [h for h in refused.headers if h.lower().startswith("keyturn-key-")]
    # A key with nothing to tell gets no empty headers.
    lasting, _ = stack.make_key("api", expires_in=None)
    plain = httpx.get(f"{stack.url}/orders", headers={"authorization": f"Bearer {lasting}"})
    assert plain.status_code == 200
    assert not [h for h in plain.headers if h.lower().startswith("keyturn-key-")]


def test_metered_refusal_is_429_with_its_headers(stack: Stack) -> None:
    """auth_request turns a 429 into a 500; the config's error page passes keyturn's answer."""
    with KeyManager(stack.db) as manager:
        key = manager.create_key("no credits left", credits=0).key
    answer = httpx.get(f"{stack.url}/orders", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "usage_exceeded"
    assert answer.headers["ratelimit-remaining"] == "0"
    assert "www-authenticate" not in answer.headers


def test_api_key_header_is_stripped_too(stack: Stack) -> None:
    key, key_id = stack.make_key()
    answer = httpx.get(f"{stack.url}/anything", headers={"x-api-key": key})
    assert answer.status_code == 200
    headers = answer.json()["headers"]
    assert headers["x-keyturn-key-id"] == key_id
    assert "x-api-key" not in headers and "x-keyturn-owner" not in headers
    assert key not in answer.text


def test_nginx_config_in_docs_names_what_the_test_replaces() -> None:
    """The test edits only addresses; everything else in the documented file is used as is."""
    site = (DOCS / "nginx.conf").read_text()
    assert re.search(r"auth_request_set|include keyturn-protect\.inc", site)
    assert "error_page" in (DOCS / "keyturn-protect.inc").read_text()


@pytest.mark.parametrize("path", [*ADMIN_FORMS, *OFF_WIRE_ADMIN_FORMS])
def test_no_form_of_a_protected_path_gets_through_without_its_scope(
    stack: Stack, path: str
) -> None:
    """Each of these reaches /admin's handlers in some upstream. nginx refuses the ones an
    upstream could read differently from nginx (400, saying why), and keyturn's rule refuses
    the rest (403): the application never sees them without the scope."""
    key, _ = stack.make_key("api")
    answer = send_raw(stack.url, "GET", path, {"Authorization": f"Bearer {key}"})
    assert answer.status in (400, 403), (answer.status, answer.body[:200])
    if answer.status == 400:  # this config's explanation, or nginx refusing it itself
        assert b"plain form" in answer.body or b"<h1>400 Bad Request</h1>" in answer.body
    else:
        assert json.loads(answer.body)["code"] == "insufficient_scope"
    admin, _ = stack.make_key("api", "admin")
    passed = send_raw(stack.url, "GET", path, {"Authorization": f"Bearer {admin}"})
    if passed.status == 200:  # the application got exactly the URI keyturn judged
        judged = urlsplit(path).path if "://" in path else path.strip()  # as nginx reads it
        assert json.loads(passed.body)["path"] == judged


@pytest.mark.parametrize(
    "path", ["/orders/caf%C3%A9", "/orders/a%20b", "/orders/v1.2/x", "/Orders/7?q=%2e%2e"]
)
def test_ordinary_uris_reach_the_application_exactly_as_sent(stack: Stack, path: str) -> None:
    key, _ = stack.make_key("api")
    answer = send_raw(stack.url, "GET", path, {"Authorization": f"Bearer {key}"})
    assert answer.status == 200, answer.body[:200]
    assert json.loads(answer.body)["path"] == path


def test_head_needs_what_get_needs(stack: Stack) -> None:
    key, _ = stack.make_key("api")
    assert send_raw(stack.url, "HEAD", "/reports/2024", {"X-Api-Key": key}).status == 403
    reader, _ = stack.make_key("reports")
    assert send_raw(stack.url, "HEAD", "/reports/2024", {"X-Api-Key": reader}).status == 200


def test_a_key_with_a_huge_identity_still_gets_through(stack: Stack) -> None:
    """Identity headers past nginx's 4 KB buffer were a 502 for every request with the key."""
    scopes = ["api", *(f"scope:{i:03}:" + "x" * 100 for i in range(63))]
    with KeyManager(stack.db) as manager:
        issued = manager.create_key("huge", scopes=scopes)
        # Longer than the admin layer allows today: a record from before that rule.
        manager.store.update(issued.record.id, {"owner": "o" * 5000}, "test", "key.update")
        # In a rotation's grace period: both lifecycle headers join the identity's.
        manager.rotate(issued.record.id, grace=timedelta(hours=1))
        key = issued.key
    answer = httpx.get(f"{stack.url}/orders", headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["keyturn-key-expires"] and answer.headers["keyturn-key-rotated-until"]
    headers = answer.json()["headers"]
    assert headers["x-keyturn-truncated"] == "owner scopes"
    assert headers["x-keyturn-scopes"].startswith("api scope:000:")
    assert "x-keyturn-owner" not in headers  # nginx sends no header for an empty value


def test_every_proxy_config_copies_every_identity_header() -> None:
    """A header a config does not copy could reach the application forged by a client."""
    configs = {
        name: (DOCS / name).read_text().lower()
        for name in ("keyturn-protect.inc", "traefik-dynamic.yml", "Caddyfile", "envoy.yaml")
    }
    for header in ("key-id", "owner", "scopes", "truncated"):
        for name, text in configs.items():
            assert f"x-keyturn-{header}" in text, (name, header)


def test_a_forged_identity_header_under_another_spelling_stays_at_nginx(stack: Stack) -> None:
    """PHP, Rack and uWSGI read ``X_Keyturn_Owner`` as ``X-Keyturn-Owner``: nginx drops a
    header named with '_' (``underscores_in_headers`` off, its default; keep it so)."""
    key, key_id = stack.make_key("api")
    forged = {"X_Keyturn_Owner": "someone-else", "x-keyturn_key_id": "key_forged"}
    answer = httpx.get(f"{stack.url}/orders", headers={"authorization": f"Bearer {key}", **forged})
    assert answer.status_code == 200, answer.text
    seen = answer.json()["headers"]
    assert not [h for h in seen if "_" in h] and seen["x-keyturn-key-id"] == key_id


def test_every_proxy_config_drops_identity_headers_under_other_spellings() -> None:
    """What a CGI-style upstream reads as an identity header, a client cannot send it:
    nginx drops names with '_' by itself, the Caddyfile drops every ``X?Keyturn*``
    (run for real: tests/service/test_caddy.py), Envoy drops names with '_', and Traefik,
    which can only remove named headers, names each spelling."""
    assert "underscores_in_headers" not in (DOCS / "nginx.conf").read_text()
    caddy = (DOCS / "Caddyfile").read_text()
    assert "request_header -X-Keyturn*\n" in caddy and "request_header -X_Keyturn*\n" in caddy
    envoy = (DOCS / "envoy.yaml").read_text()
    assert "headers_with_underscores_action: DROP_HEADER" in envoy
    traefik = (DOCS / "traefik-dynamic.yml").read_text()
    for header in ("Keyturn-Key-Id", "Keyturn-Owner", "Keyturn-Scopes", "Keyturn-Truncated",
                   "Forwarded-For", "Real-Ip"):  # fmt: skip
        for spelling in spellings(f"X-{header}") - {f"X-{header}"}:
            assert f'          {spelling}: ""\n' in traefik, spelling


def test_every_proxy_config_that_can_passes_the_lifecycle_to_the_client() -> None:
    """Traefik's forwardAuth copies auth headers onto the request only (its config says so,
    and docs/serve.md); the others add them to the client's response."""
    passes = {
        "keyturn-protect.inc": "add_header {}",
        "Caddyfile": " {} {{rp.header.{}}}",  # run for real: tests/service/test_caddy.py
        "envoy.yaml": "- exact: {}",
    }
    for name, form in passes.items():
        text = (DOCS / name).read_text()
        for header in ("Keyturn-Key-Expires", "Keyturn-Key-Rotated-Until"):
            wanted = form.format(header, header)
            if name == "envoy.yaml":
                wanted = wanted.lower()
            assert wanted in text, (name, header)
    assert "allowed_client_headers_on_success" in (DOCS / "envoy.yaml").read_text()
    assert "cannot add them to the client's response" in (DOCS / "traefik-dynamic.yml").read_text()
