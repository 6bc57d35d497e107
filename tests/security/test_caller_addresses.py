"""Who called a key (client addresses, paths) is the verification log's, and reading the log
needs ``verifications:read``. ``GET /v1/keys/{id}/callers``, the least-privilege
suggestions (their ``allowed_ips`` are the callers' addresses), the dashboard's key page
and a webhook receiving ``key.grace_ending`` (its ``still_used_by``) showed them to a key
holding ``keys:read`` (or ``webhooks:write``) alone, while ``GET /v1/verifications``
refused that key. Now every face asks for the log's scope. Over real HTTP, on SQLite and on
PostgreSQL + Redis."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.service.conftest import Live
from tests.ui.test_http import token

CLIENT = "127.0.0.9"


@pytest.fixture(scope="module")
def live(hooks_live: Live) -> Live:
    """Webhooks may post to loopback (no receiver answers: none is needed here)."""
    return hooks_live


def used_after_rotation(live: Live) -> str:
    """A rotated key used once from ``CLIENT`` through ``/auth``, its entry in the log."""
    old, record = live.make_key("orders:read")
    assert live.root.post(f"/v1/keys/{record['id']}/rotate", json={}).status_code == 201
    transport = httpx.HTTPTransport(local_address=CLIENT)
    with httpx.Client(base_url=live.url, transport=transport, timeout=10) as client:
        client.get("/auth", headers={"authorization": f"Bearer {old}"}).raise_for_status()
    deadline = time.monotonic() + 10
    while not live.root.get(f"/v1/keys/{record['id']}/callers").json()["callers"]:
        assert time.monotonic() < deadline, "the use never reached the log"
        time.sleep(0.1)
    return str(record["id"])


def test_the_api_asks_for_the_logs_scope(live: Live) -> None:
    key_id = used_after_rotation(live)
    keys_only, _ = live.make_key("keys:read")
    both, _ = live.make_key("keys:read", "verifications:read")
    for path in (f"/v1/keys/{key_id}/callers", f"/v1/keys/{key_id}/suggestions"):
        refused = live.client(keys_only).get(path)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["code"] == "insufficient_scope"
        assert "verifications:read" in refused.json()["detail"]
        assert CLIENT not in refused.text
        shown = live.client(both).get(path)
        assert shown.status_code == 200, (path, shown.text)
    assert live.client(keys_only).get("/v1/verifications").status_code == 403  # as before
    callers = live.client(both).get(f"/v1/keys/{key_id}/callers").json()["callers"]
    assert [c["client"] for c in callers] == [CLIENT]


def test_the_dashboard_shows_callers_to_log_readers_only(live: Live) -> None:
    key_id = used_after_rotation(live)
    for scopes, shown in ((("keys:read",), False), (("keys:read", "verifications:read"), True)):
        key, _ = live.make_key(*scopes)
        with httpx.Client(base_url=live.url, timeout=10) as browser:
            form = browser.get("/ui/login")
            signed = browser.post("/ui/login", data={"csrf": token(form), "key": key})
            assert signed.status_code == 303, signed.text
            page = browser.get(f"/ui/keys/{key_id}")
            assert page.status_code == 200
            assert (CLIENT in page.text) is shown, scopes
            assert ("Least privilege" in page.text) is shown, scopes
            if not shown:
                assert "verifications:read" in page.text  # says what would show it


def test_webhooks_carrying_callers_ask_for_the_logs_scope(live: Live) -> None:
    hooks_only, _ = live.make_key("webhooks:write", "keys:read")
    both, _ = live.make_key("webhooks:write", "keys:read", "verifications:read")
    url = "http://127.0.0.1:9/hook"
    for events in (None, ["*"], ["key.grace_ending"], ["key.created", "key.grace_ending"],
                   ["key.canary_used"]):
        body = {"url": url} if events is None else {"url": url, "events": events}
        refused = live.client(hooks_only).post("/v1/webhooks", json=body)
        assert refused.status_code == 403, (events, refused.text)
        assert "verifications:read" in refused.json()["detail"]
        made = live.client(both).post("/v1/webhooks", json=body)
        assert made.status_code == 201, (events, made.text)
        live.root.delete(f"/v1/webhooks/{made.json()['id']}")
    body = {"url": url, "events": ["key.created"]}
    other = live.client(hooks_only).post("/v1/webhooks", json=body)
    assert other.status_code == 201, other.text
    live.root.delete(f"/v1/webhooks/{other.json()['id']}")


def test_canary_uses_are_shown_to_log_readers_only(live: Live) -> None:
    """A canary's uses name who tried it (client address, request, user agent): the
    dashboard's canary page listed them to any keys:read key."""
    canary, _ = live.make_key("orders:read", name="bait", canary=True)
    transport = httpx.HTTPTransport(local_address=CLIENT)
    with httpx.Client(base_url=live.url, transport=transport, timeout=10) as client:
        assert client.get("/auth", headers={"authorization": f"Bearer {canary}"}).status_code == 401
    # The log reader first: once its page lists the use, the other's page would too.
    for scopes, shown in ((("keys:read", "verifications:read"), True), (("keys:read",), False)):
        key, _ = live.make_key(*scopes)
        with httpx.Client(base_url=live.url, timeout=10) as browser:
            form = browser.get("/ui/login")
            signed = browser.post("/ui/login", data={"csrf": token(form), "key": key})
            assert signed.status_code == 303, signed.text
            deadline = time.monotonic() + 10
            page = browser.get("/ui/canaries")
            while shown and CLIENT not in page.text:  # the alarm is written off the request
                assert time.monotonic() < deadline, "the use never reached the page"
                time.sleep(0.1)
                page = browser.get("/ui/canaries")
            assert page.status_code == 200
            assert "bait" in page.text
            assert (CLIENT in page.text) is shown, scopes
            if not shown:
                assert "verifications:read" in page.text  # says what would show it
