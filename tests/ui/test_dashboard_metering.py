"""A metered admin key is charged on the dashboard as on the admin API: every request it
makes there (a page, a change) spends a credit and counts against its rate limits, so
signing in once is no way around them. On SQLite, and on PostgreSQL + Redis.

A session's requests are counted the way the admin API counts its calls: signing in is
one use (the key is verified), the page that hands out the form's CSRF token another, then
each change one more. Past the limit the dashboard answers with its own page: what ran
out and when to try again, never a 500, and nothing changed.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyturn.outcomes import CATALOGUE
from tests.security.conftest import live_on
from tests.service.conftest import Live

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')
CHANGES = 3  # what a key may change after signing in and opening one page
SCOPES = ("roles:read", "roles:write", "orders:read")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def engine_live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    yield from live_on(request.param, request, tmp_path_factory)


def token(page: httpx.Response) -> str:
    match = CSRF_RE.search(page.text)
    assert match, page.text
    return match.group(1)


def signed_in(live: Live, key: str) -> tuple[httpx.Client, str]:
    """A dashboard session of ``key`` (one use of it) and, from one page (another use),
    the session's CSRF token."""
    client = httpx.Client(base_url=live.url, timeout=10, follow_redirects=False)
    form = client.get("/ui/login")
    answer = client.post("/ui/login", data={"csrf": token(form), "key": key})
    assert answer.status_code == 303, answer.text
    page = client.get("/ui/roles")
    assert page.status_code == 200, page.text
    return client, token(page)


def define_roles(live: Live, key: str) -> tuple[list[httpx.Response], list[str]]:
    """``CHANGES + 1`` roles defined through the dashboard by ``key``: the answers, and
    the names of the roles that exist afterwards (as the root key sees them)."""
    client, csrf = signed_in(live, key)
    stem = f"metered-{uuid.uuid4().hex[:8]}"
    role = {"csrf": csrf, "scopes": "orders:read"}
    answers = [
        client.post("/ui/roles", data={**role, "name": f"{stem}-{i}"}) for i in range(CHANGES + 1)
    ]
    client.close()
    listed = live.root.get("/v1/roles")
    assert listed.status_code == 200, listed.text
    body: Any = listed.json()
    roles = body["roles"] if isinstance(body, dict) else body
    return answers, [r["name"] for r in roles if r["name"].startswith(stem)]


def assert_refused_page(answer: httpx.Response, code: str, wait: str, change: bool) -> None:
    """The dashboard's refusal: the catalogue's status and title, when to try again (the
    ``Retry-After`` header and words on the page), a page of the dashboard's own."""
    entry = CATALOGUE[code]
    assert answer.status_code == entry.status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    shown = html.unescape(answer.text)
    assert entry.title in shown
    assert wait in shown.lower()
    assert ("Nothing was changed" in shown) is change


def test_credits_are_spent_by_every_dashboard_request(engine_live: Live) -> None:
    live = engine_live
    key, record = live.make_key(*SCOPES, credits=CHANGES + 2)
    answers, made = define_roles(live, key)
    assert [a.status_code for a in answers[:CHANGES]] == [303] * CHANGES
    assert_refused_page(answers[CHANGES], "usage_exceeded", "credits", True)
    assert "retry-after" not in answers[CHANGES].headers  # never refilled: do not retry
    assert len(made) == CHANGES
    # Spent as the admin API spends them: none left for the API either.
    assert live.client(key).get("/v1/roles").status_code == CATALOGUE["usage_exceeded"].status
    assert live.root.get(f"/v1/keys/{record['id']}").json()["credits"] == 0


def test_rate_limits_count_every_dashboard_request(engine_live: Live) -> None:
    live = engine_live
    key, _ = live.make_key(*SCOPES, rate_limits=[f"{CHANGES + 2}/minute"])
    answers, made = define_roles(live, key)
    assert [a.status_code for a in answers[:CHANGES]] == [303] * CHANGES
    refused = answers[CHANGES]
    assert_refused_page(refused, "rate_limited", "wait", True)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert f"wait {refused.headers['retry-after']} s" in refused.text.lower()
    assert len(made) == CHANGES
    # The same window as the admin API's: the API is refused too.
    assert live.client(key).get("/v1/roles").status_code == CATALOGUE["rate_limited"].status


def test_page_views_are_charged_as_the_admin_apis_reads_are(engine_live: Live) -> None:
    """A page is the admin API's GET of the same thing: one credit each, and a clear page
    (not a sign-in loop, not a 500) once they are gone."""
    live = engine_live
    key, record = live.make_key(*SCOPES, credits=4)
    client, _ = signed_in(live, key)  # two credits
    assert client.get("/ui/roles").status_code == 200
    assert client.get("/ui/roles").status_code == 200
    refused = client.get("/ui/roles")
    client.close()
    assert_refused_page(refused, "usage_exceeded", "credits", False)
    assert live.root.get(f"/v1/keys/{record['id']}").json()["credits"] == 0


def test_an_owners_refilled_credits_run_out_with_a_page_not_a_500(engine_live: Live) -> None:
    """The balance an owner's keys share, refilled daily: spent through the dashboard, the
    page says so and when it comes back (the refusal for an owner's refilled credits had
    no hint, and raised on every face)."""
    live = engine_live
    owner = f"acme-{uuid.uuid4().hex[:8]}"
    put = live.root.put(
        f"/v1/owners/{owner}", json={"credits": 3, "refill": {"interval": "daily", "amount": 3}}
    )
    assert put.status_code == 200, put.text
    key, _ = live.make_key(*SCOPES, owner=owner)
    client, _ = signed_in(live, key)  # two of the owner's credits
    assert client.get("/ui/roles").status_code == 200
    refused = client.get("/ui/roles")
    client.close()
    assert_refused_page(refused, "usage_exceeded", "refilled", False)
    assert owner in html.unescape(refused.text)
    assert 1 <= int(refused.headers["retry-after"]) <= 86_400
    api = live.client(key).get("/v1/roles")  # the admin API: the same refusal
    assert api.status_code == CATALOGUE["usage_exceeded"].status, api.text
    assert api.headers["retry-after"]
