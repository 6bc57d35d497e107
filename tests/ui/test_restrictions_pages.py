"""The dashboard's allowed addresses (key pages) and owner pages, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from keyturn import Actor
from tests.service.conftest import Live, start_live
from tests.ui.test_http import signed_in


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("ui-restrict"))


def test_allowed_addresses_on_create_and_edit(live: Live) -> None:
    client, csrf = signed_in(live)
    made = client.post(
        "/ui/keys/new",
        data={"csrf": csrf, "name": "office", "allowed_ips": "203.0.113.0/24 10.0.0.7/8"},
    )
    assert made.status_code == 201, made.text
    record = next(r for r in live.manager.list_keys() if r.name == "office")
    assert record.allowed_ips == ("203.0.113.0/24", "10.0.0.0/8")
    page = client.get(f"/ui/keys/{record.id}").text
    assert "Allowed addresses" in page and "203.0.113.0/24" in page
    bad = client.post(
        f"/ui/keys/{record.id}/edit",
        data={"csrf": csrf, "name": "office", "owner": "", "scopes": "",
              "allowed_ips": "not-an-address", "expires_at": page_expiry(page)},
    )  # fmt: skip
    assert bad.status_code == 422 and "not an IP address" in bad.text
    cleared = client.post(
        f"/ui/keys/{record.id}/edit",
        data={"csrf": csrf, "name": "office", "owner": "", "scopes": "", "allowed_ips": "",
              "expires_at": page_expiry(page)},
    )  # fmt: skip
    assert cleared.status_code == 303
    assert live.manager.get(record.id).allowed_ips == ()


def page_expiry(page: str) -> str:
    marker = 'name="expires_at" type="datetime-local" value="'
    return page.split(marker, 1)[1].split('"', 1)[0]


def test_the_owner_page_sets_limits_and_revokes_all(live: Live) -> None:
    keys = [live.manager.create_key(f"k{i}", owner="acme corp") for i in range(2)]
    client, csrf = signed_in(live)
    key_page = client.get(f"/ui/keys/{keys[0].record.id}").text
    assert "/ui/owners/acme%20corp" in key_page
    page = client.get("/ui/owners/acme%20corp")
    assert page.status_code == 200 and "Limits shared by all of its keys" in page.text
    saved = client.post(
        "/ui/owners/acme%20corp",
        data={"csrf": csrf, "rate_limits": "50/minute", "credits": "7", "refill": "daily"},
    )
    assert saved.status_code == 303
    owner = live.manager.owners.get(Actor.operator("test"), "acme corp").owner
    assert owner.credits == 7 and owner.rate_limits == ("50/minute",)
    bad = client.post(
        "/ui/owners/acme%20corp",
        data={"csrf": csrf, "rate_limits": "lots", "credits": "", "refill": ""},
    )
    assert bad.status_code == 422
    confirm = client.get("/ui/owners/acme%20corp/revoke")
    assert confirm.status_code == 200 and "for good" in confirm.text
    done = client.post("/ui/owners/acme%20corp/revoke", data={"csrf": csrf})
    assert done.status_code == 303
    assert all(live.manager.get(k.record.id).revoked_at is not None for k in keys)
    assert client.get("/ui/owners/nobody").status_code == 404


def test_why_was_it_rejected_by_request_id(live: Live) -> None:
    import time

    issued = live.manager.create_key("why", scopes=["read"])
    refused = live.client().get(
        "/auth",
        headers={"Authorization": f"Bearer {issued.key}", "X-Keyturn-Required-Scopes": "admin"},
    )
    assert refused.status_code == 403
    rid = refused.headers["x-request-id"]
    client, _ = signed_in(live)
    deadline = time.monotonic() + 2.0
    while True:
        page = client.get("/ui/verifications", params={"request_id": rid})
        assert page.status_code == 200
        if "insufficient_scope" in page.text or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert "insufficient_scope" in page.text and issued.record.masked in page.text
    assert issued.key not in page.text
    assert "Its recent verifications" in client.get(f"/ui/keys/{issued.record.id}").text
    assert client.get("/ui/verifications", params={"key_id": "a b"}).status_code == 400


def test_owners_with_slashes_have_pages_and_actions(live: Live) -> None:
    """The dashboard links an owner as one percent-encoded segment, so ``acme/disable`` is
    an owner, not an action on ``acme``."""
    key = live.manager.create_key("s", owner="acme/disable")
    other = live.manager.create_key("t", owner="acme")
    client, csrf = signed_in(live)
    key_page = client.get(f"/ui/keys/{key.record.id}").text
    assert "/ui/owners/acme%2Fdisable" in key_page
    page = client.get("/ui/owners/acme%2Fdisable")
    assert page.status_code == 200 and "/ui/owners/acme%2Fdisable/disable" in page.text
    saved = client.post(
        "/ui/owners/acme%2Fdisable",
        data={"csrf": csrf, "rate_limits": "", "credits": "5", "refill": ""},
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/ui/owners/acme%2Fdisable"
    assert live.manager.owners.get(Actor.operator("t"), "acme/disable").owner.credits == 5
    done = client.post("/ui/owners/acme%2Fdisable/disable", data={"csrf": csrf})
    assert done.status_code == 303
    assert live.manager.get(key.record.id).disabled
    assert not live.manager.get(other.record.id).disabled


def test_the_rotate_form_takes_a_quiet_period_and_the_page_names_who_still_uses_the_key(
    live: Live,
) -> None:
    issued = live.manager.create_key("quiet", scopes=["orders:read"])
    client, csrf = signed_in(live)
    too_short = client.post(
        f"/ui/keys/{issued.record.id}/rotate",
        data={"csrf": csrf, "grace_hours": "48", "quiet_minutes": "0"},
    )
    assert too_short.status_code == 422 and "quiet period must be at least" in too_short.text
    assert 'id="quiet_minutes-error"' in too_short.text or "quiet_minutes" in too_short.text
    assert live.manager.get(issued.record.id).replaced_by is None
    done = client.post(
        f"/ui/keys/{issued.record.id}/rotate",
        data={"csrf": csrf, "grace_hours": "48", "quiet_minutes": "15"},
    )
    assert done.status_code == 201, done.text
    old = live.manager.get(issued.record.id)
    assert old.grace_quiet_seconds == 900 and old.grace_max is not None
    assert old.grace_until is not None and old.replaced_by is not None
    assert (old.grace_max - old.grace_until).total_seconds() == 47 * 3600 + 45 * 60
    assert live.client(issued.key).get(
        "/auth", headers={"X-Original-URI": "/orders/9"}
    ).status_code == 204
    deadline = time.monotonic() + 3  # the verification log is written every 0.5 s
    while True:
        page = client.get(f"/ui/keys/{issued.record.id}").text
        if "/orders/9" in page or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "Who still uses this key" in page and "until nobody has used it for 900" in page
    assert "GET /orders/9" in page and "127.0.0.1" in page


def test_the_why_page_checks_a_key_restricted_by_address_from_a_given_client(
    live: Live,
) -> None:
    """The verify API takes the client's address (``ip``); the check page had no field for
    it, so a key on an allow-list could only ever be shown refused there."""
    issued = live.manager.create_key("office only", allowed_ips=["203.0.113.0/24"])
    client, csrf = signed_in(live)
    form = client.get("/ui/check").text
    assert 'name="ip"' in form

    def check(**fields: str) -> str:
        answer = client.post("/ui/check", data={"csrf": csrf, **fields})
        assert answer.status_code == 200, answer.text
        return answer.text

    assert "ip_not_allowed" in check(key=issued.key)
    inside = check(key=issued.key, ip="203.0.113.9")
    assert "HTTP 200" in inside and "ip_not_allowed" not in inside
    outside = check(key=issued.key, ip="198.51.100.1")
    assert "ip_not_allowed" in outside and "198.51.100.1" in outside
    pasted = check(headers=f"Authorization: Bearer {issued.key}", ip="203.0.113.10")
    assert "HTTP 200" in pasted
    masked = f"{issued.key[:12]}…{issued.key[-4:]}"
    assert "HTTP 200" in check(key=masked, ip="203.0.113.11")
    bad = client.post("/ui/check", data={"csrf": csrf, "key": issued.key, "ip": "not-an-ip"})
    assert bad.status_code == 400 and "is an IP address" in bad.text
    assert issued.key not in bad.text


def test_the_why_page_checks_a_permission_expression(live: Live) -> None:
    """`keyturn check --permissions` and the verify API's `permissions` had no counterpart
    on the page."""
    issued = live.manager.create_key("reader", scopes=["orders:read"])
    client, csrf = signed_in(live)
    assert 'name="permissions"' in client.get("/ui/check").text

    def check(expression: str) -> httpx.Response:
        return client.post(
            "/ui/check", data={"csrf": csrf, "key": issued.key, "permissions": expression}
        )

    assert "HTTP 200" in check("orders:read or billing:read").text
    unmet = check("orders:read and billing:read")
    assert unmet.status_code == 200 and "insufficient_scope" in unmet.text
    bad = check("orders:read and (")
    assert bad.status_code == 400 and "Permissions:" in bad.text
    assert issued.key not in bad.text
