"""docs/proxies/Caddyfile, for real: Caddy in front of an echoing upstream, asking a real
``keyturn serve`` (listing Caddy, on 127.0.0.1, in ``trusted_proxies``).

Read, not run, the file used ``forward_auth``'s ``copy_headers`` and ``header ...
{rp.header.*}``: Caddy (2.6, Debian's) sent a header keyturn had not answered with as the
placeholder's literal text, so a key without expiry got ``Keyturn-Key-Expires:
{http.reverse_proxy.header.Keyturn-Key-Expires}`` and the application got such an
``X-Keyturn-Owner``. Under CI the test must run: a missing Caddy fails it
(``scripts/services.sh`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import in_ci
from tests.dedicated import free_port, started
from tests.service.test_nginx import Stack, documented, problem, proxy_stack

CADDY = shutil.which("caddy")

if CADDY is None and not in_ci():
    pytest.skip("Caddy is not installed (scripts/services.sh installs it)", allow_module_level=True)

CLIENT = "127.0.0.5"  # a loopback address of its own, not Caddy's (trusted) 127.0.0.1


def render(keyturn: str, app: str, port: int) -> str:
    """docs/proxies/Caddyfile with its three documented addresses replaced (and Caddy's
    admin endpoint off, so that parallel runs do not share its port)."""
    return documented(
        "Caddyfile",
        ("reverse_proxy 127.0.0.1:8080 {", f"reverse_proxy {keyturn} {{"),
        ("reverse_proxy 127.0.0.1:9000 {", f"reverse_proxy {app} {{"),
        (":8000 {", f"{{\n\tadmin off\n}}\n\nhttp://127.0.0.1:{port} {{"),
    )


def start_caddy(tmp: Path, keyturn: str, app: str) -> tuple[subprocess.Popen[bytes], int]:
    assert CADDY is not None, "Caddy must be installed under CI: run scripts/services.sh"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp), "XDG_DATA_HOME": str(tmp)}
    log = tmp / "caddy.log"
    for _ in range(5):  # a free port can be taken between choosing and binding: retry
        port = free_port()
        (tmp / "Caddyfile").write_text(render(keyturn, app, port))
        with log.open("w") as out:
            process = subprocess.Popen(
                [CADDY, "run", "--config", str(tmp / "Caddyfile"), "--adapter", "caddyfile"],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp,
            )
        if started(process, port, 20):
            return process, port
    raise RuntimeError(f"Caddy did not start:\n{log.read_text()}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"KEYTURN_TRUSTED_PROXIES": "127.0.0.1"}
    tmp = tmp_path_factory.mktemp("caddy")
    with proxy_stack(tmp, "--rule", "/admin=admin", env=env, start=start_caddy) as built:
        yield built


def get(stack: Stack, path: str, key: str | None = None, **headers: str) -> httpx.Response:
    """``GET path`` through Caddy from ``CLIENT``."""
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    with httpx.Client(transport=httpx.HTTPTransport(local_address=CLIENT), timeout=10) as c:
        return c.get(f"{stack.url}{path}", headers=headers)


def lifecycle(answer: httpx.Response) -> list[tuple[str, str]]:
    return [(k, v) for k, v in answer.headers.multi_items() if k.startswith("keyturn-key-")]


def test_refusals_reach_the_client_as_keyturn_answered_them(stack: Stack) -> None:
    problem(get(stack, "/orders"), 401, "missing_credentials")
    key, _ = stack.make_key("api")
    problem(get(stack, "/orders", None, Authorization=f"Token {key}"), 401, "unsupported_scheme")
    answer = get(stack, "/admin/users", key)
    body = problem(answer, 403, "insufficient_scope")
    assert body["required_scopes"] == ["admin"]
    assert 'scope="admin"' in answer.headers["www-authenticate"]
    assert lifecycle(answer) == []
    # The client cannot lower the requirement: Caddy drops the header it sent.
    forged = get(stack, "/admin/users", key, **{"X-Keyturn-Required-Scopes": ""})
    assert forged.status_code == 403


def test_a_key_without_expiry_or_rotation_gets_no_lifecycle_headers(stack: Stack) -> None:
    """docs/serve.md: no header, not an empty one (nor a placeholder's text)."""
    key, key_id = stack.make_key("api", expires_in=None)
    answer = get(stack, "/orders", key, **{"X-Keyturn-Owner": "someone-else"})
    assert answer.status_code == 200, answer.text
    assert lifecycle(answer) == []  # nor the application's own (2099) copy
    seen = answer.json()["headers"]
    assert seen["x-keyturn-key-id"] == key_id and seen["x-keyturn-scopes"] == "api"
    # The key has no owner: the application gets keyturn's empty one, not the client's claim.
    assert not [h for h in seen if h.startswith("x-keyturn-") and "{" in seen[h]]
    assert seen.get("x-keyturn-owner", "") == ""
    assert "authorization" not in seen and key not in answer.text


def test_an_expiring_rotated_key_tells_the_client_both_ends(stack: Stack) -> None:
    key, key_id = stack.make_key("api", owner="team-orders", expires_in=5 * 86400)
    root = {"authorization": f"Bearer {stack.root_key}"}
    rotated = httpx.post(f"{stack.keyturn_url}/v1/keys/{key_id}/rotate",
                         json={"grace_seconds": 7200}, headers=root)  # fmt: skip
    assert rotated.status_code == 201
    shown = httpx.get(f"{stack.keyturn_url}/v1/keys/{key_id}", headers=root).json()
    answer = get(stack, "/orders", key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["headers"]["x-keyturn-owner"] == "team-orders"
    for header, stored in (("keyturn-key-expires", "expires_at"),
                           ("keyturn-key-rotated-until", "grace_until")):  # fmt: skip
        assert answer.headers.get_list(header) == [answer.headers[header]]  # once
        moment = datetime.fromisoformat(shown[stored]).replace(microsecond=0)
        assert parsedate_to_datetime(answer.headers[header]) == moment
    # The application's own error answer to an accepted request carries them too.
    missing = get(stack, "/orders", key, **{"x-echo-status": "404"})
    assert missing.status_code == 404 and len(lifecycle(missing)) == 2


def test_the_client_caddy_saw_is_the_client(stack: Stack) -> None:
    """Caddy replaces a client's X-Forwarded-For: a client cannot claim an allowed address,
    nor take its own away."""
    elsewhere, _ = stack.make_key(allowed_ips=["198.51.100.0/24"])
    claimed = get(stack, "/data", elsewhere, **{"X-Forwarded-For": "198.51.100.7"})
    body = problem(claimed, 403, "ip_not_allowed")
    assert str(body["detail"]).endswith(CLIENT)
    here, _ = stack.make_key(allowed_ips=[CLIENT])
    assert get(stack, "/data", here).status_code == 200
    spoofed = get(stack, "/data", here, **{"X-Forwarded-For": "203.0.113.1"})
    assert spoofed.status_code == 200, spoofed.text


def test_an_identity_header_under_another_spelling_does_not_reach_the_application(
    stack: Stack,
) -> None:
    """PHP, Rack and uWSGI read ``X_Keyturn_Owner`` (any '-' as '_') as ``X-Keyturn-Owner``
    (both are ``HTTP_X_KEYTURN_OWNER``): the Caddyfile dropped only the spelling with '-',
    so a client's ``X_Keyturn_Owner: someone-else`` reached the application beside
    keyturn's own and could be read in its place."""
    key, key_id = stack.make_key("api")
    forged = {
        "X_Keyturn_Owner": "someone-else",
        "x-keyturn_key_id": "key_someone",
        "X_KEYTURN-SCOPES": "admin",
        "x_keyturn_truncated": "scopes",
        "X_Forwarded_For": "203.0.113.9",  # the client address an application may trust
        "x-forwarded_for": "203.0.113.9",
        "X_Real_IP": "203.0.113.9",
    }
    answer = get(stack, "/orders", key, **forged)
    assert answer.status_code == 200, answer.text
    seen = answer.json()["headers"]
    assert sorted(h for h in seen if h.replace("_", "-").startswith("x-keyturn")) == [
        "x-keyturn-key-id", "x-keyturn-owner", "x-keyturn-scopes", "x-keyturn-truncated"
    ]  # fmt: skip
    assert seen["x-keyturn-key-id"] == key_id and seen["x-keyturn-owner"] == ""
    assert not [h for h in seen if "_" in h], seen
