"""A portal link acts within what the key that made it holds, for as long as that key works.

A ``portal:write`` key puts into a link's policy only scopes it holds, but the owner acting
through the link was otherwise unbounded: a key expiring in an hour, with 5 credits left,
made a link whose policy (``max_lifetime: null``, ``require_expiry: false``) let the visitor
create keys that never expire and have no allowance at all, and the link and its session
went on working after the key that made it was revoked. So a leaked short-lived backend key
became permanent, unlimited keys. Now the owner acts under the maker's expiry and allowance
as the maker has them at each request, and a link or session whose maker no longer works
opens nothing. Over real HTTP on SQLite and PostgreSQL + Redis.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.service.conftest import Live

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
OPEN_POLICY = {"scopes": ["orders:read"], "max_lifetime": None, "require_expiry": False}


def maker(live: Live, **fields: Any) -> str:
    key, _ = live.make_key("portal:write", "orders:read", name="backend", **fields)
    return key


def form_of(browser: httpx.Client) -> dict[str, Any]:
    page = browser.get("/portal/keys/new")
    match = CSRF_RE.search(page.text)
    assert match, page.text[:300]
    return {"csrf": match.group(1), "name": "k", "scopes": ["orders:read"]}


def link(live: Live, key: str, owner: str) -> httpx.Response:
    return live.client(key).post(
        "/v1/portal/sessions", json={"owner": owner, "policy": OPEN_POLICY}
    )


def enter(live: Live, key: str, owner: str) -> httpx.Client:
    answer = link(live, key, owner)
    assert answer.status_code == 201, answer.text
    browser = httpx.Client(base_url=live.url, timeout=10)
    assert browser.get(answer.json()["url"]).status_code == 200
    return browser


def create(browser: httpx.Client, expires: str) -> httpx.Response:
    return browser.post("/portal/keys/new", data={**form_of(browser), "expires": expires})


def owned(live: Live, owner: str) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = live.root.get("/v1/keys", params={"owner": owner}).json()["keys"]
    return keys


def test_a_short_lived_makers_portal_makes_no_key_outliving_it(engine_live: Live) -> None:
    live = engine_live
    browser = enter(live, maker(live, expires_in=3600), "short-lived-maker")
    for expires in ("never", str(30 * 86400)):
        answer = create(browser, expires)
        assert answer.status_code == 403, (expires, answer.status_code)
        assert "expires on" in answer.text
    assert owned(live, "short-lived-maker") == []
    assert create(browser, "1800").status_code == 201
    [made] = owned(live, "short-lived-maker")
    assert made["expires_at"] is not None


def test_a_metered_makers_portal_makes_no_unlimited_key(engine_live: Live) -> None:
    live = engine_live
    browser = enter(live, maker(live, credits=5), "metered-maker")
    answer = create(browser, "3600")
    assert answer.status_code == 403, answer.status_code
    assert "unlimited credits" in answer.text
    assert owned(live, "metered-maker") == []


def test_a_revoked_makers_links_and_sessions_open_nothing(engine_live: Live) -> None:
    live = engine_live
    key, made = live.make_key("portal:write", "orders:read", name="backend")
    _, record = live.make_key("orders:read", name="customer", owner="revoked-maker")
    browser = enter(live, key, "revoked-maker")
    form = form_of(browser)  # the page loaded before the maker was revoked
    unused = link(live, key, "revoked-maker").json()["url"]
    assert live.root.post(f"/v1/keys/{made['id']}/revoke").status_code == 200
    assert browser.get("/portal").status_code == 401
    posted = browser.post("/portal/keys/new", data={**form, "expires": "3600"})
    assert posted.status_code == 401
    page = browser.get(f"/portal/keys/{record['id']}")
    assert page.status_code == 401 and "customer" not in page.text
    assert httpx.get(unused, timeout=10).status_code == 410
    assert [k["id"] for k in owned(live, "revoked-maker")] == [record["id"]]


def test_a_maker_that_lost_portal_write_opens_nothing(engine_live: Live) -> None:
    live = engine_live
    key, made = live.make_key("portal:write", "orders:read", name="backend")
    browser = enter(live, key, "narrowed-maker")
    assert browser.get("/portal").status_code == 200
    narrowed = live.root.patch(f"/v1/keys/{made['id']}", json={"scopes": ["orders:read"]})
    assert narrowed.status_code == 200, narrowed.text
    assert browser.get("/portal").status_code == 401
