"""A key pasted where a name, scope, role, owner, id or metadata belongs: a common mistake
(``GET /v1/keys/<the key>`` for its id, a key as a new key's name). Such a value was stored
as text (names, scopes and metadata are shown on pages, in the audit log and in webhooks)
or echoed in the error (``no key with id 'kt_live_...'``, ``body.kt_live_...: Extra inputs
are not permitted``, the verify API's ``the key lacks the scope kt_live_...``). Now every
field that is stored refuses a whole key (422, saying why), and every problem body, the
verify API's ``detail`` and ``missing``, and the outcome pages mask one. Over real HTTP on
SQLite and PostgreSQL + Redis."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from keyturn.keys import holds_key, mask
from tests.service.conftest import Live
from tests.ui.test_http import token


def attempts(key: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("POST", "/v1/keys", {"name": key}),
        ("POST", "/v1/keys", {"name": f"my key is {key}"}),
        ("POST", "/v1/keys", {"name": f"apikey_{key}"}),
        ("POST", "/v1/keys", {"name": "x", "owner": f"x{key}"}),
        ("POST", "/v1/keys", {"name": "x", "scopes": ["a" * 40 + f"_{key}"]}),
        ("POST", "/v1/keys", {"name": "x", "owner": key}),
        ("POST", "/v1/keys", {"name": "x", "scopes": [key]}),
        ("POST", "/v1/keys", {"name": "x", "roles": [key]}),
        ("POST", "/v1/keys", {"name": "x", "metadata": {"k": [key]}}),
        ("POST", "/v1/keys", {"name": "x", "metadata": {key: 1}}),
        ("POST", "/v1/keys", {"name": "x", key: 1}),
        ("PUT", "/v1/roles/pasted", {"scopes": [key]}),
        ("PUT", f"/v1/roles/{key}", {"scopes": ["a"]}),
        ("PUT", "/v1/roles/pasted", {"scopes": ["a"], "description": key}),
        ("GET", f"/v1/keys/{key}", None),
        ("POST", f"/v1/keys/{key}/revoke", None),
        ("GET", f"/v1/owners/{key}", None),
        ("PUT", f"/v1/owners/{key}", {}),
        ("PUT", "/v1/owners/pasted", {"metadata": {"note": key}}),
        ("POST", "/v1/portal/sessions", {"owner": key}),
        ("GET", f"/v1/verifications?request_id={key}", None),
        ("GET", f"/outcomes/{key}", None),
        ("GET", f"/outcomes/{key}.json", None),
        ("GET", f"/outcomes?q={key}", None),
    ]


def test_a_pasted_key_is_neither_stored_nor_echoed(engine_live: Live) -> None:
    live = engine_live
    key, record = live.make_key("orders:read")
    secret = key.rpartition("_")[2]
    for method, path, body in attempts(key):
        answer = live.root.request(method, path, json=body)
        assert secret not in answer.text, (method, path, answer.text[:300])
        assert answer.status_code in (200, 404, 422), (method, path, answer.status_code)
        if answer.status_code == 422 and body is not None and path != "/v1/keys/verify":
            assert answer.json()["code"] in ("invalid_request", "invalid_permissions")
    # The verify API names what a key lacks; a key asked for as a scope comes back masked.
    for body in ({"scopes": [key]}, {"permissions": f"orders:read and {key}"}):
        answer = live.root.post("/v1/keys/verify", json={"key": key, **body})
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text and mask(key) in answer.text
    audit = live.root.get("/v1/audit", params={"limit": 200}).text
    keys = live.root.get("/v1/keys", params={"limit": 200}).text
    assert secret not in audit and secret not in keys
    assert live.root.get(f"/v1/keys/{record['id']}").json()["status"] == "active"


@pytest.mark.parametrize(
    ("text", "held"),
    [("kt_live_" + "A" * 36, False), ("orders:read", False), ("", False)],
)
def test_only_a_whole_key_counts(text: str, held: bool) -> None:
    """Text merely shaped like a key (its checksum wrong) is an ordinary value."""
    assert holds_key(text) is held


def test_the_dashboard_shows_no_pasted_key_back(engine_live: Live) -> None:
    """Its error pages and field errors mask one; a refused form keeps what was typed in its
    fields (the visitor's own text, in the answer to their own post), and nowhere else."""
    live = engine_live
    key, _ = live.make_key("orders:read")
    secret = key.rpartition("_")[2]
    with httpx.Client(base_url=live.url, timeout=10) as browser:
        form = browser.get("/ui/login")
        signed = browser.post("/ui/login", data={"csrf": token(form), "key": live.root_key})
        assert signed.status_code == 303
        csrf = token(browser.get("/ui/keys/new"))
        answers = [
            browser.post("/ui/keys/new", data={"csrf": csrf, "name": "x", **fields})
            for fields in ({"name": key}, {"scopes": key}, {"owner": key}, {"allowed_ips": key})
        ]
        answers += [browser.get(f"/ui/keys/{key}"), browser.get(f"/ui/owners/{key}")]
        for answer in answers:
            assert answer.status_code in (404, 422), answer.status_code
            shown = re.sub(r'value="[^"]*"', "", answer.text)
            assert secret not in shown, shown[:2000]


@pytest.mark.parametrize("glued", ["apikey_", "x", "a" * 40 + "_", "key=", "9"])
def test_a_key_glued_to_other_text_is_still_found(glued: str) -> None:
    """Glued text joins the key-shaped run, and the run read whole has no valid checksum:
    each place the key's prefix could start is tried (the masking of logs found these
    already; the refusal to store them did not)."""
    from keyturn.keys import generate_key

    key = generate_key()
    assert holds_key(glued + key) and holds_key(f"{glued}{key} and more")


def test_a_key_in_a_webhook_or_a_portal_link_is_refused(hooks_live: Live) -> None:
    """A webhook's URL and description (listed to every webhooks:read key, shown on the
    dashboard, kept in the audit log) and a portal link's return URL (the portal's Back
    link, kept with the link) are stored text too."""
    live = hooks_live
    key, _ = live.make_key("orders:read")
    secret = key.rpartition("_")[2]
    hook = "http://127.0.0.1:9/hook"
    for path, body in (
        ("/v1/webhooks", {"url": f"{hook}?token={key}", "events": ["key.created"]}),
        ("/v1/webhooks", {"url": f"{hook}/{key}", "events": ["key.created"]}),
        ("/v1/webhooks", {"url": hook, "events": ["key.created"], "description": f"x{key}"}),
        ("/v1/portal/sessions", {"owner": "pasted", "return_url": f"https://app.example/?k={key}"}),
    ):
        answer = live.root.post(path, json=body)
        assert answer.status_code == 422, (body, answer.status_code)
        assert secret not in answer.text
        assert "never stored as text" in answer.json()["detail"]
    listed = live.root.get("/v1/webhooks").text
    audit = live.root.get("/v1/audit", params={"limit": 200}).text
    assert secret not in listed and secret not in audit


def test_a_webhook_description_is_printable_text(hooks_live: Live) -> None:
    """As a role's description is: no control character (an ESC reaches the operator's
    terminal in ``keyturn webhooks list``; PostgreSQL cannot store a NUL)."""
    for text in ("a\x00b", "a\x1b[2Jb", "a\u009bb"):
        answer = hooks_live.root.post(
            "/v1/webhooks",
            json={"url": "http://127.0.0.1:9/hook", "events": ["key.created"], "description": text},
        )
        assert answer.status_code == 422, (text, answer.status_code, answer.text)


def test_no_piece_of_a_key_sent_as_a_scheme_comes_back(engine_live: Live) -> None:
    """``Authorization: <key> ...`` (a key where the scheme belongs): the refusal named the
    scheme, cut to 20 characters, which were 12 to 20 characters of the key's secret part."""
    live = engine_live
    key, _ = live.make_key("orders:read")
    secret = key.rpartition("_")[2]
    pieces = {secret[i : i + 8] for i in range(len(secret) - 7)}
    for value in (f"{key} x", f"{secret} x", f"Basic{key} x"):
        for path in ("/auth", "/v1/keys"):
            answer = httpx.get(f"{live.url}{path}", headers={"authorization": value}, timeout=10)
            assert answer.status_code == 401, (value, answer.text)
            assert answer.json()["code"] == "unsupported_scheme"
            assert not any(piece in answer.text for piece in pieces), answer.text
    short = httpx.get(f"{live.url}/auth", headers={"authorization": "Token abc"}, timeout=10)
    assert "'Token'" in short.json()["detail"]  # a scheme that is one is still named


def test_a_key_demanded_as_a_scope_on_auth_is_not_echoed(engine_live: Live) -> None:
    """``X-Keyturn-Required-Scopes`` is a header a client can add (proxies pass the client's
    headers on to ``/auth``): a key in it came back whole in the 403's detail, its
    ``required_scopes`` and the ``WWW-Authenticate`` challenge, and was stored whole among
    the scopes the verification log says the request needed."""
    live = engine_live
    key, record = live.make_key("orders:read")
    secret = key.rpartition("_")[2]
    for demanded in (key, f"x{key}", f"orders:read, {key}"):
        answer = httpx.get(
            f"{live.url}/auth",
            headers={"authorization": f"Bearer {key}", "x-keyturn-required-scopes": demanded},
            timeout=10,
        )
        assert answer.status_code == 403, answer.text
        assert secret not in answer.text
        assert secret not in str(answer.headers)
        assert mask(key) in answer.json()["detail"]
    # ... nor stored: the verification log keeps the scopes each request needed.
    deadline = time.monotonic() + 10
    logged: list[dict[str, Any]] = []
    while len(logged) < 3:
        assert time.monotonic() < deadline, "the entries never reached the log"
        time.sleep(0.2)
        found = live.root.get("/v1/verifications", params={"key_id": record["id"]})
        logged = found.json()["verifications"]
    assert secret not in found.text


def test_a_key_given_as_the_method_is_not_logged(engine_live: Live) -> None:
    """``X-Forwarded-Method`` (and the overrides) are headers a client can add: the
    verification log kept the method's first 16 characters, the key's prefix and 8
    characters of its secret."""
    live = engine_live
    key, record = live.make_key("orders:read")
    secret = key.rpartition("_")[2]
    pieces = {secret[i : i + 5] for i in range(len(secret) - 4)}
    for header in ("x-forwarded-method", "x-http-method-override"):
        answer = httpx.get(
            f"{live.url}/auth",
            headers={"authorization": f"Bearer {key}", header: key, "x-forwarded-uri": "/x"},
            timeout=10,
        )
        assert answer.status_code == 204, answer.text
    deadline = time.monotonic() + 10
    methods: list[str] = []
    while len(methods) < 2:
        assert time.monotonic() < deadline, "the entries never reached the log"
        time.sleep(0.2)
        entries = live.root.get("/v1/verifications", params={"key_id": record["id"]}).json()
        methods = [e["method"] for e in entries["verifications"]]
    for method in methods:
        assert not any(piece in method for piece in pieces), method
