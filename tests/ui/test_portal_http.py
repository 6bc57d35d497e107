"""The customer portal over plain HTTP against a real server: isolation between owners, the
policy enforced on the server whatever the form says, CSRF, the link's single use, the
cookie's path and the session's idle timeout.

The browser tests (``test_portal_browser.py``) walk the same pages as a person; these send
what a person's browser never would: forged posts, guessed ids, replayed links.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import Live, start_live

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
KEY_IN_PAGE = re.compile(r'value="(kt_live_[0-9A-Za-z]+)"')
POLICY = {"scopes": ["orders:read", "orders:write"], "max_keys": 3, "max_lifetime": "30d"}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(
        tmp_path_factory.mktemp("portal-http"),
        usage_flush_interval=0.2,
        portal_title="Acme Cloud keys",
        portal_logo_url="https://cdn.acme.example/logo.svg",
    )


def open_link(live: Live, owner: str, **body: Any) -> str:
    answer = live.root.post(
        "/v1/portal/sessions",
        json={"owner": owner, "policy": POLICY, **body},
    )
    assert answer.status_code == 201, answer.text
    url: str = answer.json()["url"]
    return url


@dataclass
class Visit:
    """A browser-like client inside the portal for one owner."""

    client: httpx.Client

    def csrf(self, path: str = "/portal") -> str:
        match = CSRF_RE.search(self.client.get(path).text)
        assert match, "no CSRF token"
        return match.group(1)

    def create(self, **fields: Any) -> httpx.Response:
        data = {"csrf": self.csrf(), "name": "k", "scopes": ["orders:read"], "expires": "86400"}
        data.update(fields)
        return self.client.post("/portal/keys/new", data=data)


def enter(live: Live, owner: str, **body: Any) -> Visit:
    client = httpx.Client(base_url=live.url, timeout=10)
    answer = client.get(open_link(live, owner, **body))
    assert answer.status_code == 200, answer.text
    # A page that moves on from the portal's own site, not a redirect (see test_portal_browser).
    assert '<meta http-equiv="refresh" content="0; url=/portal/">' in answer.text
    assert 'href="/portal/"' in answer.text
    return Visit(client)


def test_a_link_opens_a_session_once_in_a_cookie_of_the_portals_path(live: Live) -> None:
    url = open_link(live, "acme")
    client = httpx.Client(timeout=10)
    first = client.get(url)
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("keyturn_portal=")
    assert "Path=/portal" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    enter_url = f"{live.url}/portal/enter"
    for replay in (url, url[:-1] + "x", enter_url, f"{enter_url}?token=x"):
        again = httpx.get(replay, timeout=10)
        assert again.status_code == 410, replay
        assert "This link does not work" in again.text
        assert "set-cookie" not in again.headers or "Max-Age=0" in again.headers["set-cookie"]
    # The portal's cookie is not a dashboard session.
    dashboard = client.get(f"{live.url}/ui/keys")
    assert dashboard.status_code == 303 and "/ui/login" in dashboard.headers["location"]


def test_without_a_session_every_page_is_a_401(live: Live) -> None:
    for method, path in (
        ("GET", "/portal"),
        ("GET", "/portal/keys/new"),
        ("POST", "/portal/keys/new"),
        ("GET", "/portal/keys/key_0000000000000000"),
        ("POST", "/portal/keys/key_0000000000000000/revoke"),
    ):
        answer = httpx.request(method, f"{live.url}{path}", timeout=10)
        assert answer.status_code == 401, path
        assert "Your session has ended" in answer.text


def test_another_owners_keys_are_not_there(live: Live) -> None:
    theirs, record = live.make_key("orders:read", name="globex-secret-name", owner="globex")
    unowned, plain = live.make_key("orders:read", name="operator-key")
    visit = enter(live, "acme")
    mine = visit.create(name="acme-own")
    assert mine.status_code == 201
    listing = visit.client.get("/portal").text
    assert "acme-own" in listing
    for other in (record, plain):
        assert other["id"] not in listing and other["name"] not in listing
        for path in ("", "/rotate", "/revoke"):
            page = visit.client.get(f"/portal/keys/{other['id']}{path}")
            assert page.status_code == 404, path
            assert other["name"] not in page.text
        token = visit.csrf()
        for verb, data in (("revoke", {}), ("rotate", {"grace_hours": "0"})):
            forged = visit.client.post(
                f"/portal/keys/{other['id']}/{verb}", data={"csrf": token, **data}
            )
            assert forged.status_code == 404, verb
    for key in (theirs, unowned):
        assert live.client(key).get("/auth").status_code == 204
    # A count of other owners' keys shows nowhere either: only acme's one working key.
    assert "You hold 1 working key of at most 3" in visit.client.get("/portal").text


def test_the_policy_holds_against_forged_posts(live: Live) -> None:
    visit = enter(live, "policy-owner")
    refused = {
        "a scope outside the policy": {"scopes": ["admin:all"]},
        "an operation scope": {"scopes": ["keys:write"]},
        "root": {"scopes": ["*"]},
        "no expiry": {"expires": "never"},
        "beyond max_lifetime": {"expires": str(31 * 86400)},
    }
    for why, fields in refused.items():
        answer = visit.create(**fields)
        assert answer.status_code == 403, why
        assert "No key was made" in answer.text
    for why, fields in {"no name": {"name": ""}, "garbage expiry": {"expires": "soon"}}.items():
        assert visit.create(**fields).status_code == 422, why
    made = [visit.create(name=f"k{i}") for i in range(3)]
    assert [m.status_code for m in made] == [201, 201, 201]
    listing = visit.client.get("/portal").text
    assert "Create a key" not in listing and "revoke one you no longer use" in listing
    beyond = visit.create(name="fourth")
    assert beyond.status_code == 403 and "most allowed is 3" in beyond.text
    keys = live.root.get("/v1/keys", params={"owner": "policy-owner"}).json()["keys"]
    assert len(keys) == 3
    assert all(set(k["scopes"]) <= {"orders:read", "orders:write"} for k in keys)


def test_a_post_without_this_sessions_csrf_token_changes_nothing(live: Live) -> None:
    visit = enter(live, "csrf-owner")
    other = enter(live, "csrf-owner")
    created = visit.create(name="target")
    key = KEY_IN_PAGE.search(created.text)
    assert key
    key_id = re.search(r"/portal/keys/(key_[0-9a-f]+)", created.text)
    assert key_id
    for data in ({}, {"csrf": ""}, {"csrf": other.csrf()}, {"csrf": "x" * 43}):
        answer = visit.client.post(f"/portal/keys/{key_id.group(1)}/revoke", data=data)
        assert answer.status_code == 403 and "Form refused" in answer.text
        new = visit.client.post("/portal/keys/new", data={**data, "name": "forged"})
        assert new.status_code == 403
    assert live.client(key.group(1)).get("/auth").status_code == 204
    keys = live.root.get("/v1/keys", params={"owner": "csrf-owner"}).json()["keys"]
    assert [k["name"] for k in keys] == ["target"]


def test_an_operators_wider_key_of_the_owner_can_be_revoked_not_rotated(live: Live) -> None:
    wide, record = live.make_key("admin:all", name="wide", owner="wide-owner")
    visit = enter(live, "wide-owner")
    page = visit.client.get(f"/portal/keys/{record['id']}").text
    assert "Revoke…" in page and "Rotate…" not in page
    token = visit.csrf()
    rotate = visit.client.post(
        f"/portal/keys/{record['id']}/rotate", data={"csrf": token, "grace_hours": "0"}
    )
    assert rotate.status_code == 403
    revoke = visit.client.post(f"/portal/keys/{record['id']}/revoke", data={"csrf": token})
    assert revoke.status_code == 303
    assert live.client(wide).get("/auth").status_code == 401


def test_changes_are_audited_with_the_owner_as_actor(live: Live) -> None:
    visit = enter(live, "audited")
    created = visit.create(name="audited-key")
    key_id = re.search(r"/portal/keys/(key_[0-9a-f]+)", created.text)
    assert key_id
    token = visit.csrf()
    rotated = visit.client.post(
        f"/portal/keys/{key_id.group(1)}/rotate", data={"csrf": token, "grace_hours": "1"}
    )
    assert rotated.status_code == 201 and KEY_IN_PAGE.search(rotated.text)
    revoked = visit.client.post(f"/portal/keys/{key_id.group(1)}/revoke", data={"csrf": token})
    assert revoked.status_code == 303
    events = live.root.get("/v1/audit", params={"actor": "owner:audited"}).json()["events"]
    actions = sorted(e["action"] for e in events)
    assert actions == ["key.create", "key.create", "key.revoke", "key.rotate", "portal.open"]


def test_leaving_ends_the_session_and_goes_back(live: Live) -> None:
    visit = enter(live, "leaver", return_url="https://app.example/settings")
    page = visit.client.get("/portal").text
    assert 'href="https://app.example/settings"' in page
    left = visit.client.post("/portal/logout", data={"csrf": visit.csrf()})
    assert left.status_code == 303 and left.headers["location"] == "https://app.example/settings"
    assert visit.client.get("/portal").status_code == 401


def test_branding_and_security_headers(live: Live) -> None:
    visit = enter(live, "branded")
    answer = visit.client.get("/portal")
    assert "<title>Your keys · Acme Cloud keys</title>" in answer.text
    assert 'src="https://cdn.acme.example/logo.svg"' in answer.text
    csp = answer.headers["content-security-policy"]
    assert "img-src 'self' data: https://cdn.acme.example;" in csp
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["x-frame-options"] == "DENY"
    # The dashboard keeps its own policy: the portal's logo origin is not let in there.
    assert "cdn.acme.example" not in httpx.get(f"{live.url}/ui/login").headers[
        "content-security-policy"
    ]


def test_a_session_ends_after_its_idle_timeout(tmp_path: Path) -> None:
    for idle in start_live(tmp_path, portal_idle_timeout=1):
        visit = enter(idle, "idle")
        assert visit.client.get("/portal").status_code == 200
        time.sleep(1.5)
        assert visit.client.get("/portal").status_code == 401


def test_the_portal_can_be_turned_off(tmp_path: Path) -> None:
    for off in start_live(tmp_path, portal=False):
        url = open_link(off, "acme")
        assert httpx.get(url, timeout=10).status_code == 404
