"""The dashboard's allowed addresses (key pages) and owner pages, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

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
