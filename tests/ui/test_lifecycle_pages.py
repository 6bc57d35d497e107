"""The webhooks, deliveries and canaries pages, in a real Chromium against a real serve.

A webhook is added through the form and its signing secret shown once (a real receiver on
loopback then checks an event's signature with it, through the Standard Webhooks reference
library); the deliveries page shows what was delivered, what is being retried and what
failed; deletion stops it. The canaries page lists a canary made on the new-key form and
each use of it, as the request told it. Every page passes axe-core.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import standardwebhooks
from playwright.sync_api import expect

from keyturn.record import utcnow
from keyturn.store import open_store
from tests.service.receiver import Receiver
from tests.ui.axe import accessible
from tests.ui.conftest import Server, screenshot, sign_in, unique


def add_webhook(page: Any, url: str, *events: str, description: str = "") -> str:
    """Through the form: the secret on the page that answers."""
    page.goto(page.url.split("/ui/")[0] + "/ui/webhooks")
    page.get_by_label("Address").fill(url)
    for kind in events:
        page.get_by_label(kind, exact=True).check()
    if description:
        page.get_by_label("Description").fill(description)
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Webhook added")
    secret = page.get_by_label("The signing secret").input_value()
    assert secret.startswith("whsec_")
    return str(secret)


def test_a_webhook_added_shown_once_delivered_to_and_deleted(page: Any, server: Server) -> None:
    with Receiver() as receiver:
        sign_in(page, server, to="/ui/webhooks")
        accessible(page)
        description = unique("orders")
        secret = add_webhook(page, receiver.url, "key.created", "key.revoked",
                             description=description)
        accessible(page)
        page.get_by_role("link", name="I have stored it").click()
        hook_url = page.url
        assert secret not in page.content()  # shown once: not on its own page
        page.goto(f"{server.url}/ui/webhooks")
        expect(page.get_by_role("cell", name=description)).to_be_visible()
        assert secret not in page.content()

        _, record = server.make_key("orders:read", name=unique("hooked"))
        delivered = receiver.wait_for(1)[0]
        verified = standardwebhooks.Webhook(secret).verify(delivered.body, delivered.headers)
        assert verified["type"] == "key.created" and verified["data"]["id"] == record["id"]

        page.goto(hook_url)
        event_id = delivered.headers["webhook-id"]
        row = page.locator("table.deliveries tbody tr").filter(has_text=event_id)
        expect(row).to_contain_text("delivered")
        expect(row).to_contain_text("HTTP 200")
        accessible(page)
        screenshot(page, "webhook-deliveries")

        page.get_by_role("button", name="Delete the webhook").click()
        expect(page.get_by_role("status")).to_contain_text("Deleted the webhook")
        expect(page.get_by_role("cell", name=description)).to_have_count(0)
        server.make_key(name=unique("after"))
        time.sleep(1.5)  # the worker polls twice a second: nothing more arrives
        assert len(receiver.received) == 1


def test_a_bad_address_is_refused_beside_its_field(page: Any, server: Server) -> None:
    sign_in(page, server, to="/ui/webhooks")
    page.get_by_label("Address").fill("ftp://hooks.example.com/x")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.get_by_role("alert")).to_contain_text("was not added")
    expect(page.locator("#url-error")).to_contain_text("http or https")
    accessible(page)


def test_failed_and_retried_deliveries_stand_out(page: Any, server: Server) -> None:
    with Receiver() as receiver:
        receiver.status = 500
        with server.api() as api:
            hook = api.post("/v1/webhooks", json={"url": receiver.url,
                                                  "events": ["key.created"]}).json()
        server.make_key(name=unique("refused"))
        receiver.wait_for(1)
        server.make_key(name=unique("given-up"))
        receiver.wait_for(2)
        # The second delivery's 24 hours are over: as the worker settles it then.
        store = open_store(server.db_url)
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                pending = [d for d in store.deliveries(hook["id"]) if d.attempts]
                if len(pending) == 2:
                    break
                time.sleep(0.2)
            newest = store.deliveries(hook["id"])[0]
            store.settle(newest.id, status="failed", attempts=newest.attempts + 30,
                         at=utcnow(), next_at=utcnow() + timedelta(seconds=1),
                         last_status=500, last_error="the receiver answered 500")
        finally:
            store.close()
        sign_in(page, server, to=f"/ui/webhooks/{hook['id']}")
        expect(page.get_by_role("status")).to_contain_text("1 delivery failed")
        rows = page.locator("table.deliveries tbody tr")
        expect(rows.filter(has_text="failed")).to_have_count(1)
        expect(rows.filter(has_text="retrying")).to_have_count(1)
        expect(rows.filter(has_text="retrying")).to_contain_text("the receiver answered 500")
        page.get_by_role("link", name="Failed (1)").click()
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("failed")
        accessible(page)
        screenshot(page, "webhook-failed")
        with server.api() as api:
            api.delete(f"/v1/webhooks/{hook['id']}")


def test_a_canary_made_on_the_form_and_its_uses(page: Any, server: Server) -> None:
    sign_in(page, server, to="/ui/keys/new")
    name = unique("decoy")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Canary", exact=False).check()
    page.get_by_role("button", name="Create the key").click()
    canary = page.get_by_label("The new key").input_value()
    # Refused like any unknown key, whoever tries it and however.
    answer = server.auth(canary, **{"user-agent": "curl/8.5.0",
                                    "x-forwarded-uri": "/admin/export?all=1",
                                    "x-forwarded-method": "POST"})
    assert answer.status_code == 401 and answer.json()["code"] == "unknown_key"
    page.goto(f"{server.url}/ui/canaries")
    row = page.locator("table.canaries tbody tr").filter(has_text=name)
    deadline = time.monotonic() + 15
    while "1" not in (row.locator("td").nth(3).text_content() or ""):
        assert time.monotonic() < deadline, "the canary's use is not listed"
        time.sleep(0.3)
        page.reload()
    use = page.locator("table.uses tbody tr").filter(has_text=name).first
    expect(use).to_contain_text("POST /admin/export")
    expect(use).to_contain_text("curl/8.5.0")
    expect(use).to_contain_text("127.0.0.1")
    assert canary not in page.content()
    accessible(page)
    screenshot(page, "canaries")


def test_a_key_with_only_webhook_scopes_signs_in_to_the_webhooks(
    page: Any, server: Server
) -> None:
    key, _ = server.make_key("webhooks:read", name=unique("hook-reader"))
    sign_in(page, server, key=key, to="/ui/webhooks")
    expect(page.get_by_role("heading", level=1)).to_have_text("Webhooks")
    expect(page.get_by_role("button", name="Add webhook")).to_have_count(0)
    expect(page.get_by_role("link", name="Canaries")).to_have_count(0)
    forged = httpx.post(f"{server.url}/ui/webhooks", data={"url": "https://x.example"})
    assert forged.status_code in (303, 403)
