"""The dashboard's HTTP contract, without a browser: cookies, headers, CSRF, garbage in.

A real service on loopback (uvicorn in a thread, as the service tests run it), driven by
httpx. These are the properties a browser test would check slowly or not at all: what the
cookie says, that no page ever holds a key it was given, that bad input gets a 4xx.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keyturn.ui.app import COOKIE
from tests.service.conftest import Live, start_live

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("ui-http"), ui_idle_timeout=2.0)


def browser(live: Live, **headers: str) -> httpx.Client:
    return httpx.Client(base_url=live.url, headers=headers, timeout=10, follow_redirects=False)


def token(page: httpx.Response) -> str:
    match = CSRF_RE.search(page.text)
    assert match, page.text
    return match.group(1)


def signed_in(live: Live, key: str | None = None, **headers: str) -> tuple[httpx.Client, str]:
    """A client with a dashboard session, and that session's CSRF token."""
    client = browser(live, **headers)
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": token(form), "key": key or live.root_key})
    assert answer.status_code == 303, answer.text
    page = client.get("/ui/keys")
    assert page.status_code == 200
    return client, token(page)


def test_the_session_cookie(live: Live) -> None:
    client = browser(live)
    form = client.get("/ui/login")
    anonymous = form.cookies[COOKIE]
    answer = client.post("/ui/login", data={"csrf": token(form), "key": live.root_key})
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    session = answer.cookies[COOKIE]
    assert session != anonymous  # a new id at sign-in: no session fixation
    # The cookie is a random id: not the key, not its hash, nothing derived from it.
    record = live.manager.store.list_keys(limit=1000)
    assert live.root_key not in cookie
    assert all(r.key_hash not in cookie for r in record)
    assert len(session) >= 40
    # The anonymous id that came before sign-in no longer opens anything.
    stale = browser(live)
    stale.cookies.set(COOKIE, anonymous)
    assert stale.get("/ui/keys").status_code == 303


def test_secure_cookie_behind_a_trusted_proxy_only(tmp_path: Path, live: Live) -> None:
    # Untrusted: a client saying X-Forwarded-Proto does not make the cookie Secure...
    untrusted = browser(live, **{"x-forwarded-proto": "https"})
    assert "Secure" not in untrusted.get("/ui/login").headers["set-cookie"]
    # ...but behind a proxy configured as trusted, it does.
    for proxied in start_live(tmp_path, trust_forwarded_proto=True):
        client = browser(proxied, **{"x-forwarded-proto": "https"})
        assert "Secure" in client.get("/ui/login").headers["set-cookie"]
        plain = browser(proxied)
        assert "Secure" not in plain.get("/ui/login").headers["set-cookie"]


def test_security_headers_everywhere(live: Live) -> None:
    client, _ = signed_in(live)
    for path in ("/ui/login", "/ui/keys", "/ui/static/style.css", "/ui/nope"):
        answer = client.get(path)
        csp = answer.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
    assert client.get("/ui/keys").headers["cache-control"] == "no-store"
    static = client.get("/ui/static/htmx.min.js")
    assert static.status_code == 200 and "immutable" in static.headers["cache-control"]


def test_sign_in_needs_the_forms_token(live: Live) -> None:
    client = browser(live)
    client.get("/ui/login")
    answer = client.post("/ui/login", data={"key": live.root_key})
    assert answer.status_code == 403
    assert COOKIE not in answer.cookies or answer.cookies[COOKIE]  # a fresh anonymous session
    assert client.get("/ui/keys").status_code == 303  # not signed in
    # Without any session at all (cookies off, or a cross-site post): refused too.
    bare = browser(live).post("/ui/login", data={"csrf": "x", "key": live.root_key})
    assert bare.status_code == 403


def test_a_failed_sign_in_never_echoes_the_key(live: Live) -> None:
    key, record = live.make_key("keys:read", name="to be revoked")
    live.root.post(f"/v1/keys/{record['id']}/revoke")
    client = browser(live)
    answer = client.post("/ui/login", data={"csrf": token(client.get("/ui/login")), "key": key})
    assert answer.status_code == 401
    assert "revoked" in answer.text
    assert key not in answer.text


def test_every_post_needs_the_sessions_token(live: Live) -> None:
    client, csrf = signed_in(live)
    _, record = live.make_key("orders:read", name="kept")
    for data in ({}, {"csrf": ""}, {"csrf": csrf[:-1]}, {"csrf": csrf + "x"}):
        answer = client.post(f"/ui/keys/{record['id']}/revoke", data=data)
        assert answer.status_code == 403, data
    # Another session's valid token is not this session's token.
    _, other = signed_in(live)
    assert client.post(f"/ui/keys/{record['id']}/revoke", data={"csrf": other}).status_code == 403
    assert live.root.get(f"/v1/keys/{record['id']}").json()["status"] == "active"
    # The header form (for script-driven posts) works as the field does.
    answer = client.post(
        f"/ui/keys/{record['id']}/disable",
        content=b"",
        headers={"x-csrf-token": csrf, "content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 303
    assert live.root.get(f"/v1/keys/{record['id']}").json()["status"] == "disabled"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/ui/keys?status=bogus", 400),
        ("/ui/keys?expiring=soon", 400),
        ("/ui/keys?expiring=0", 400),
        ("/ui/keys?expiring=99999999999999999999", 400),
        ("/ui/keys?after=%27%20OR%201=1", 400),
        ("/ui/keys?q=" + "x" * 300, 400),
        ("/ui/keys/key_0000000000000000", 404),
        ("/ui/keys/%00%01", 404),
        ("/ui/keys/" + "k" * 100, 404),
        ("/ui/keys/key_0000000000000000/revoke", 404),
        ("/ui/audit?before=-1", 400),
        ("/ui/audit?before=99999999999999999999999", 400),
        ("/ui/audit?actor=a%0ab", 400),
        ("/ui/verifications?request_id=a%0ab", 400),
        ("/ui/verifications?outcome=" + "x" * 200, 400),
        ("/ui/nothing/here", 404),
        ("/ui/logout", 405),
    ],
)
def test_garbage_in_the_address_is_a_clear_4xx(live: Live, path: str, status: int) -> None:
    client, _ = signed_in(live)
    answer = client.get(path)
    assert answer.status_code == status, answer.text
    assert "<h1>" in answer.text  # a page that says what is wrong, not a bare error


def test_garbage_in_a_form_is_a_clear_4xx(live: Live) -> None:
    client, csrf = signed_in(live)
    _, record = live.make_key("orders:read", name="form target")
    edit = f"/ui/keys/{record['id']}/edit"
    cases = [
        ({"content": b'{"csrf": "x"}', "headers": {"content-type": "application/json"}}, 415),
        ({"data": {"csrf": csrf, "pad": "x" * 70_000}}, 413),
        ({"content": b"csrf=" + csrf.encode() + b"&name=%ff%fe"}, 400),
        ({"content": "&".join(f"f{i}=1" for i in range(500)).encode()}, 400),
        ({"data": {"csrf": csrf, "name": "a\x00b"}}, 400),
    ]
    for kwargs, status in cases:
        headers = {"content-type": "application/x-www-form-urlencoded", **kwargs.pop("headers", {})}
        answer = client.post(edit, headers=headers, **kwargs)  # type: ignore[arg-type]
        assert answer.status_code == status, (kwargs, answer.text[:200])
    new = "/ui/keys/new"
    for data, field in (
        ({"name": "", "expires_days": "30"}, "name"),
        ({"name": "ok", "expires_days": "-4"}, "expires_days"),
        ({"name": "ok", "expires_days": "30", "scopes": 'bad"scope'}, "scopes"),
        ({"name": "ok", "expires_days": "30", "prefix": "evil"}, "prefix"),
        ({"name": "x" * 201, "expires_days": "30"}, "name"),
    ):
        answer = client.post(new, data={"csrf": csrf, **data})
        assert answer.status_code == 422, (data, answer.text[:300])
        assert f'id="{field}-error"' in answer.text, data
    answer = client.post(edit, data={"csrf": csrf, "name": "ok", "expires_at": "tomorrow"})
    assert answer.status_code == 422 and 'id="expires_at-error"' in answer.text
    rotate = f"/ui/keys/{record['id']}/rotate"
    answer = client.post(rotate, data={"csrf": csrf, "grace_hours": "forever"})
    assert answer.status_code == 422 and 'id="grace_hours-error"' in answer.text
    assert live.root.get(f"/v1/keys/{record['id']}").json()["replaced_by"] is None


def test_an_unstorable_expiry_from_the_form_changes_nothing(live: Live) -> None:
    """The dashboard's edit form goes through the admin layer's time range (issue 11,
    item 4): a year-9999 expiry is refused beside its field, and the key works on."""
    client, csrf = signed_in(live)
    key, record = live.make_key("orders:read", name="far future")
    edit = f"/ui/keys/{record['id']}/edit"
    for moment in ("9999-12-31T23:59", "1969-12-31T23:59"):
        answer = client.post(edit, data={"csrf": csrf, "name": "far future", "expires_at": moment})
        assert answer.status_code == 422, answer.text[:300]
        assert 'id="expires_at-error"' in answer.text
    assert live.root.get(f"/v1/keys/{record['id']}").json()["expires_at"] == record["expires_at"]
    assert client.get("/ui/keys").status_code == 200
    assert live.client(key).get("/auth").status_code == 204


def test_the_dashboard_keeps_a_short_lived_admin_within_its_own_bounds(live: Live) -> None:
    """The grant rules are the admin layer's, so the dashboard applies them too (issue 11,
    item 9): a keys:write key that expires in an hour cannot make a key that never does."""
    key, _ = live.make_key("keys:write", "keys:read", expires_in=3600)
    client, csrf = signed_in(live, key)
    answer = client.post(
        "/ui/keys/new", data={"csrf": csrf, "name": "forever", "never": "on", "expires_days": "1"}
    )
    assert answer.status_code == 403 and "no expiry" in answer.text
    longer = client.post("/ui/keys/new", data={"csrf": csrf, "name": "no", "expires_days": "2"})
    assert longer.status_code == 403
    made = client.post("/ui/keys/new", data={"csrf": csrf, "name": "ok", "expires_days": ""})
    assert made.status_code == 201  # the default 90 days, cut short to the admin key's hour


def test_conflicts_are_409(live: Live) -> None:
    client, csrf = signed_in(live)
    _, record = live.make_key("orders:read", name="gone")
    assert client.post(f"/ui/keys/{record['id']}/revoke", data={"csrf": csrf}).status_code == 303
    answer = client.post(f"/ui/keys/{record['id']}/enable", data={"csrf": csrf})
    assert answer.status_code == 409
    assert "revoked" in answer.text


def test_idle_sessions_end(live: Live) -> None:
    client, _ = signed_in(live)  # this module's service signs out after 2 s idle
    time.sleep(1.0)
    assert client.get("/ui/keys").status_code == 200  # activity keeps it alive
    time.sleep(1.0)
    assert client.get("/ui/keys").status_code == 200
    time.sleep(2.2)
    answer = client.get("/ui/keys")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/login")


def test_sign_in_returns_to_the_page_asked_for_but_never_off_site(live: Live) -> None:
    client = browser(live)
    bounce = client.get("/ui/audit?action=key.create")
    assert bounce.headers["location"] == "/ui/login?next=/ui/audit%3Faction%3Dkey.create"
    form = client.get(bounce.headers["location"])
    answer = client.post(
        "/ui/login",
        data={"csrf": token(form), "key": live.root_key, "next": "/ui/audit?action=key.create"},
    )
    assert answer.headers["location"] == "/ui/audit?action=key.create"
    for evil in ("https://evil.example/", "//evil.example/ui/", "/ui/../v1/keys", "/elsewhere"):
        client = browser(live)
        form = client.get("/ui/login", params={"next": evil})
        assert evil not in form.text
        answer = client.post(
            "/ui/login", data={"csrf": token(form), "key": live.root_key, "next": evil}
        )
        assert answer.headers["location"] == "/ui/keys", evil


def test_a_key_typed_into_a_filter_form_or_address_is_never_shown_back(live: Live) -> None:
    """A filter's value goes back into its field, a refused form's into its fields, and a
    signed-out visitor's address into ``next``: a key pasted into any of them was sent
    back whole, in the page or in ``Location``."""
    key, _ = live.make_key("orders:read", name="pasted")
    client, csrf = signed_in(live)
    for page in (f"/ui/keys?q={key}", f"/ui/verifications?key_id={key}",
                 f"/ui/verifications?request_id={key}", f"/ui/verifications?outcome={key}",
                 f"/ui/audit?key_id={key}"):  # fmt: skip
        answer = client.get(page)
        assert answer.status_code == 200, page
        assert key not in answer.text and key[:12] in answer.text, page  # masked, not gone
    refused = client.post("/ui/keys/new", data={"csrf": csrf, "name": key, "scopes": "a"})
    assert refused.status_code == 422 and key not in refused.text
    for target in (f"/ui/keys/{key}", f"/ui/keys?q={key}"):
        bounce = browser(live).get(target)
        assert bounce.status_code == 303 and key not in bounce.headers["location"]
        assert bounce.headers["location"] == "/ui/login"
    form = browser(live).get("/ui/login", params={"next": f"/ui/keys?q={key}"})
    assert key not in form.text


EDIT_FIELDS = ("name", "owner", "scopes", "allowed_ips", "roles", "expires_at")


def shown(page: httpx.Response, field: str) -> str:
    """The value the page put in a form's field (the last one so named: the edit form's)."""
    found = re.findall(rf'id="{field}" name="{field}"[^>]* value="([^"]*)"', page.text)
    assert found, field
    return html.unescape(found[-1])


def test_stored_values_shaped_like_keys_go_through_the_edit_form_unchanged(live: Live) -> None:
    """An owner id such as ``svc_`` and 32 hex digits has the shape of a key. The edit form
    showed it masked, and saving the form (to change the scopes) stored the mask: the key
    moved to an owner that does not exist. What storage holds is shown as it is."""
    owner = "svc_0123456789abcdef0123456789abcdef"
    name = "job_Ab3dEf9hIjK7mNoPqR2tUvWxYz01aB1c"
    _, record = live.make_key("orders:read", name=name, owner=owner)
    client, csrf = signed_in(live)
    page = client.get(f"/ui/keys/{record['id']}")
    assert shown(page, "owner") == owner and shown(page, "name") == name
    form = {field: shown(page, field) for field in EDIT_FIELDS}
    edit = f"/ui/keys/{record['id']}/edit"
    refused = client.post(edit, data={**form, "csrf": csrf, "expires_at": "soon"})
    assert refused.status_code == 422  # refused for another field: the stored ones as they are
    assert shown(refused, "owner") == owner and shown(refused, "name") == name
    saved = client.post(edit, data={**form, "csrf": csrf, "scopes": "orders:read orders:write"})
    assert saved.status_code == 303, saved.text[:300]
    stored = live.root.get(f"/v1/keys/{record['id']}").json()
    assert (stored["owner"], stored["name"]) == (owner, name)
    assert sorted(stored["scopes"]) == ["orders:read", "orders:write"]


def test_a_mask_put_back_in_a_refused_form_is_never_stored(live: Live) -> None:
    """A typed value holding something key-shaped comes back masked when the form is
    refused for another field; sending the form again as shown is refused beside that
    field, not saved with the mask in place of what was typed."""
    client, csrf = signed_in(live)
    typed = "nightly job_Ab3dEf9hIjK7mNoPqR2tUvWxYz01aB1c"
    form = {"csrf": csrf, "name": typed, "scopes": "orders:read", "expires_days": "x"}
    refused = client.post("/ui/keys/new", data=form)
    assert refused.status_code == 422 and typed not in refused.text
    masked = shown(refused, "name")
    assert masked.startswith("nightly job_Ab3d") and "…" in masked
    again = client.post("/ui/keys/new", data={**form, "name": masked, "expires_days": "30"})
    assert again.status_code == 422 and 'id="name-error"' in again.text
    assert "masked value" in again.text
    assert live.root.get("/v1/keys", params={"search": "nightly"}).json()["keys"] == []
    _, record = live.make_key("orders:read", name="plain", owner="team-a")
    edit = f"/ui/keys/{record['id']}/edit"
    page = client.get(f"/ui/keys/{record['id']}")
    fields = {field: shown(page, field) for field in EDIT_FIELDS}
    answer = client.post(edit, data={**fields, "csrf": csrf, "owner": "svc_0123…cdef"})
    assert answer.status_code == 422 and 'id="owner-error"' in answer.text
    assert live.root.get(f"/v1/keys/{record['id']}").json()["owner"] == "team-a"


def test_a_key_typed_into_the_why_pages_other_fields_is_not_shown_back(live: Live) -> None:
    """Scopes, permissions and the client address go back into their fields after a
    check, refused or not: a key pasted into one is masked there."""
    key, _ = live.make_key("orders:read", name="pasted elsewhere")
    client, csrf = signed_in(live)
    for field in ("scopes", "permissions", "ip"):
        for extra in ({}, {"permissions": "a and ("}):
            data = {"csrf": csrf, "headers": "X-Api-Key: junk", **extra, field: key}
            answer = client.post("/ui/check", data=data)
            assert answer.status_code < 500, (field, extra)
            assert key not in answer.text and key[:12] in answer.text, (field, extra)


def test_htmx_requests_are_sent_to_sign_in_as_a_whole_page(live: Live) -> None:
    answer = browser(live, **{"hx-request": "true"}).get("/ui/keys?q=x")
    assert answer.status_code == 200
    assert answer.headers["hx-redirect"] == "/ui/login?next=/ui/keys%3Fq%3Dx"


def test_the_why_page_never_echoes_a_pasted_key(live: Live) -> None:
    key, _ = live.make_key("orders:read", name="pasted")
    client, csrf = signed_in(live)
    pasted = (
        f"GET /orders?api_key={key} HTTP/1.1\n"
        f"Authorization: Bearer {key}\n"
        f"X-Api-Key: {key}\n"
        f"Cookie: session={key}\n"
        "this line is not a header\n"
    )
    answer = client.post("/ui/check", data={"csrf": csrf, "headers": pasted})
    assert answer.status_code == 200
    assert key not in answer.text
    assert "credentials_in_query" in answer.text
    assert "line 5" in answer.text
    answer = client.post("/ui/check", data={"csrf": csrf, "key": key, "scopes": "orders:write"})
    assert key not in answer.text
    assert "insufficient_scope" in answer.text
    answer = client.post(
        "/ui/check", data={"csrf": csrf, "headers": f"Authorization: Bearer {key}"}
    )
    assert "HTTP 200" in answer.text and key not in answer.text
    # A diagnosis is not a use: the key's last-used time did not move.
    assert (
        live.root.get("/v1/keys", params={"search": "pasted"}).json()["keys"][0]["last_used_at"]
        is None
    )
    bad = client.post("/ui/check", data={"csrf": csrf, "headers": "", "key": ""})
    assert bad.status_code == 400
    bad = client.post("/ui/check", data={"csrf": csrf, "headers": "x", "scopes": 'a"b'})
    assert bad.status_code == 400


def test_a_verify_only_key_sees_only_the_why_page(live: Live) -> None:
    verifier, _ = live.make_key("keys:verify", name="helpdesk")
    client, csrf = signed_in_to(live, verifier, "/ui/check")
    assert client.get("/ui/keys").status_code == 403
    assert client.get("/ui/audit").status_code == 403
    key, _ = live.make_key("orders:read", name="helpdesk target")
    answer = client.post("/ui/check", data={"csrf": csrf, "key": key})
    assert "HTTP 200" in answer.text
    masked = f"{key[:12]}…{key[-4:]}"
    answer = client.post("/ui/check", data={"csrf": csrf, "key": masked})
    assert answer.status_code == 403 and "keys:read" in answer.text


def signed_in_to(live: Live, key: str, home: str) -> tuple[httpx.Client, str]:
    client = browser(live)
    answer = client.post("/ui/login", data={"csrf": token(client.get("/ui/login")), "key": key})
    assert answer.headers["location"] == home
    return client, token(client.get(home))


def test_the_dashboard_can_be_turned_off(tmp_path: Path) -> None:
    for off in start_live(tmp_path, ui=False):
        assert httpx.get(f"{off.url}/ui/login").status_code == 404


def test_a_metered_key_shows_its_limits_and_credits(live: Live) -> None:
    issued = live.manager.create_key(
        "metered",
        rate_limits=["100/second", "10000/day"],
        credits=42,
        refill="daily",
        refill_amount=50,
    )
    client, csrf = signed_in(live)
    page = client.get(f"/ui/keys/{issued.record.id}").text
    assert "Rate limits and credits" in page
    assert "100/second" in page and "10000/day" in page
    assert "42" in page and "daily to 50" in page
    checked = client.post("/ui/check", data={"csrf": csrf, "key": issued.key}).text
    assert "This key is metered" in checked and "42 credits left" in checked
    assert live.manager.get(issued.record.id).credits == 42  # the check spent none
    plain = live.manager.create_key("unmetered")
    assert "Rate limits and credits" not in client.get(f"/ui/keys/{plain.record.id}").text
