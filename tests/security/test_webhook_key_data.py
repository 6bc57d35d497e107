"""A webhook receives every key's view, so subscribing needs ``keys:read``.

Every event is about a key and carries what ``GET /v1/keys/{id}`` shows (name, owner,
scopes, metadata, the mask, whether it is a canary), which every face shows only to a key
holding ``keys:read``. A key holding ``webhooks:write`` alone subscribed its own URL and
read all of it as keys were made and changed: the mask of each canary among them, so a
thief could tell which stolen keys were bait. As ``key.grace_ending`` and
``key.canary_used`` ask for ``verifications:read`` (they name clients), every subscription
now asks for ``keys:read``. Over the API, SQLite and PostgreSQL."""

from __future__ import annotations

from tests.service.conftest import Live

URL = "http://127.0.0.1:9/hook"


def test_subscribing_needs_keys_read(hooks_live: Live) -> None:
    live = hooks_live
    hooks_only, _ = live.make_key("webhooks:read", "webhooks:write")
    refused = live.client(hooks_only).post(
        "/v1/webhooks", json={"url": URL, "events": ["key.created"]}
    )
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "insufficient_scope"
    assert "keys:read" in refused.json()["detail"]
    assert live.root.get("/v1/webhooks").json()["webhooks"] == []
    reader, _ = live.make_key("webhooks:write", "keys:read")
    made = live.client(reader).post("/v1/webhooks", json={"url": URL, "events": ["key.created"]})
    assert made.status_code == 201, made.text
    live.root.delete(f"/v1/webhooks/{made.json()['id']}")
