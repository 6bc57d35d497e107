"""Signed webhooks, end to end: ``keyturn serve`` posts key events to a real receiver on
loopback, and the Standard Webhooks reference library verifies every signature."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import standardwebhooks

from keyturn._bootstrap import ensure_root_key
from keyturn.compose import build_manager
from keyturn.config import Settings

from .conftest import Live, ServeProcess, start_live
from .receiver import Receiver


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A service whose webhooks may post to loopback (where the receivers are)."""
    yield from start_live(tmp_path_factory.mktemp("hooks"), webhook_allow_private=True)


def subscribe(live: Live, url: str, events: list[str] | None = None) -> dict[str, str]:
    body: dict[str, object] = {"url": url, "description": "test receiver"}
    if events is not None:
        body["events"] = events
    answer = live.root.post("/v1/webhooks", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def about(receiver: Receiver, key_id: str) -> list[dict[str, object]]:
    return [r.json for r in receiver.received if r.json["data"]["id"] == key_id]


def test_every_change_arrives_signed_by_the_spec(hooked: Live) -> None:
    with Receiver() as receiver:
        hook = subscribe(hooked, receiver.url)
        assert hook["secret"].startswith("whsec_")
        key, record = hooked.make_key("orders:read")
        key_id = record["id"]
        root = hooked.root
        assert root.patch(f"/v1/keys/{key_id}", json={"name": "renamed"}).status_code == 200
        assert root.post(f"/v1/keys/{key_id}/disable").status_code == 200
        assert root.post(f"/v1/keys/{key_id}/enable").status_code == 200
        rotated = root.post(f"/v1/keys/{key_id}/rotate", json={"grace_seconds": 60})
        assert rotated.status_code == 201
        assert root.post(f"/v1/keys/{key_id}/revoke").status_code == 200
        receiver.wait_for(7)
        verifier = standardwebhooks.Webhook(hook["secret"])
        for delivery in receiver.received:
            payload = verifier.verify(delivery.body, delivery.headers)
            assert payload == json.loads(delivery.body)
            assert delivery.headers["content-type"] == "application/json"
            assert delivery.headers["webhook-id"].startswith("msg_")
        types = [e["type"] for e in about(receiver, key_id)]
        assert types == [
            "key.created",
            "key.updated",
            "key.disabled",
            "key.enabled",
            "key.rotated",
            "key.revoked",
        ]
        successor = rotated.json()["id"]
        assert [e["type"] for e in about(receiver, successor)] == ["key.created"]
        # The data is the key's public view: never the key, never its hash.
        everything = b"".join(r.body for r in receiver.received)
        assert key.encode() not in everything
        assert rotated.json()["key"].encode() not in everything
        assert b"key_hash" not in everything
        first = about(receiver, key_id)[0]
        assert set(first) == {"type", "timestamp", "data"}
        assert first["data"]["key"] == hooked.root.get(f"/v1/keys/{key_id}").json()["key"]


def test_a_webhook_gets_only_the_events_it_asked_for(hooked: Live) -> None:
    with Receiver() as receiver:
        subscribe(hooked, receiver.url, ["key.revoked"])
        _, record = hooked.make_key()
        hooked.root.post(f"/v1/keys/{record['id']}/disable")
        hooked.root.post(f"/v1/keys/{record['id']}/revoke")
        receiver.wait_for(1)
        time.sleep(1.0)  # nothing else comes
        assert receiver.types() == ["key.revoked"]


def test_a_receiver_that_was_down_gets_every_event_when_back(hooked: Live) -> None:
    with Receiver() as receiver:
        hook = subscribe(hooked, receiver.url)
        receiver.down()
        ids = [hooked.make_key()[1]["id"] for _ in range(3)]
        deliveries = hooked.root.get(f"/v1/webhooks/{hook['id']}/deliveries")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the first attempts fail
            log = hooked.root.get(f"/v1/webhooks/{hook['id']}/deliveries").json()["deliveries"]
            if len(log) == 3 and all(d["attempts"] >= 1 for d in log):
                break
            time.sleep(0.1)
        assert [d["status"] for d in log] == ["pending"] * 3
        assert all(d["last_error"] and d["next_attempt_at"] for d in log)
        receiver.up()
        receiver.wait_for(3, timeout=20)  # the first retry comes within 5 s
        assert sorted(r.json["data"]["id"] for r in receiver.received) == sorted(ids)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            deliveries = hooked.root.get(f"/v1/webhooks/{hook['id']}/deliveries")
            if all(d["status"] == "delivered" for d in deliveries.json()["deliveries"]):
                break
            time.sleep(0.1)
        log = deliveries.json()["deliveries"]
        assert [d["status"] for d in log] == ["delivered"] * 3
        assert all(d["attempts"] >= 2 and d["last_status"] == 200 for d in log)
        # Every attempt of one event carries the same webhook-id and body.
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 3


def test_an_error_status_is_retried(hooked: Live) -> None:
    with Receiver() as receiver:
        receiver.status = 500
        subscribe(hooked, receiver.url, ["key.created"])
        hooked.make_key()
        receiver.wait_for(1)
        receiver.status = 204
        attempts = receiver.wait_for(2, timeout=20)
        assert attempts[0].body == attempts[1].body
        assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]


def test_the_api_lists_and_deletes_webhooks_and_never_shows_a_secret_again(hooked: Live) -> None:
    with Receiver() as receiver:
        hook = subscribe(hooked, receiver.url, ["key.revoked", "key.created"])
        listed = hooked.root.get("/v1/webhooks").json()["webhooks"]
        mine = next(w for w in listed if w["id"] == hook["id"])
        assert mine["events"] == ["key.revoked", "key.created"]
        assert "secret" not in mine and hook["secret"] not in json.dumps(listed)
        assert hooked.root.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
        assert hooked.root.delete(f"/v1/webhooks/{hook['id']}").status_code == 404
        assert hooked.root.get(f"/v1/webhooks/{hook['id']}/deliveries").status_code == 404
        audit = hooked.root.get("/v1/audit", params={"action": "webhook.create"}).json()
        assert any(e["details"]["webhook"] == hook["id"] for e in audit["events"])


def test_webhook_scopes(hooked: Live) -> None:
    reader, _ = hooked.make_key("webhooks:read")
    writer, _ = hooked.make_key("webhooks:read", "webhooks:write", "keys:read")
    keys_admin, _ = hooked.make_key("keys:read", "keys:write")
    body = {"url": "http://127.0.0.1:9/hook"}
    assert hooked.client(reader).get("/v1/webhooks").status_code == 200
    refused = hooked.client(reader).post("/v1/webhooks", json=body)
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert hooked.client(keys_admin).get("/v1/webhooks").status_code == 403
    made = hooked.client(writer).post("/v1/webhooks", json={**body, "events": ["key.created"]})
    assert made.status_code == 201
    assert hooked.client(None).get("/v1/webhooks").status_code == 401
    assert hooked.client(writer).delete(f"/v1/webhooks/{made.json()['id']}").status_code == 204


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://224.0.0.1/hook",
        # IPv6 forms carrying a private IPv4 address: compatible, translated, NAT64, 6to4
        "http://[::127.0.0.1]/hook",
        "http://[::ffff:0:7f00:1]/hook",
        "http://[64:ff9b::a00:1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b:1::a00:1]/hook",
        "http://[2002:a9fe:a9fe::1]/hook",
        "http://[fec0::1]/hook",
        "http://[::]/hook",
        "http://0/hook",
        "http://127.1/hook",
        "http://0177.0.0.1/hook",
        "http://1.1.1.1:0/hook",
        "http://\u24dbocalhost/hook",
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "gopher://example.com/",
        "https://user:secret@example.com/hook",
        "https://example.com/hook#part",
        "https:///nohost",
        "not a url",
        "http://exa mple.com/",
        "",
    ],
)
def test_webhook_urls_keyturn_refuses(live: Live, url: str) -> None:
    """By default, nothing on the deployment's own network, and only http(s)."""
    answer = live.root.post("/v1/webhooks", json={"url": url})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_webhook_requests_keyturn_refuses(live: Live) -> None:
    root = live.root
    for body in (
        {"url": "https://example.com/", "events": ["key.nope"]},
        {"url": "https://example.com/", "events": []},
        {"url": "https://example.com/", "events": "*"},
        {"url": "https://example.com/", "secret": "whsec_mine"},
        {"events": ["*"]},
    ):
        answer = root.post("/v1/webhooks", json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert root.delete("/v1/webhooks/wh_nothing").status_code == 404


def test_kill_9_between_a_change_and_its_delivery_loses_nothing(tmp_path: Path) -> None:
    """The event is committed with the change; a killed server's successor delivers it."""
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    settings = Settings(database_url=db)
    with build_manager(settings) as manager:
        root = ensure_root_key(manager)
    assert root is not None
    env = {"KEYTURN_DATABASE_URL": db, "KEYTURN_WEBHOOK_ALLOW_PRIVATE": "true"}
    auth = {"authorization": f"Bearer {root.key}"}
    with Receiver() as receiver:
        receiver.down()  # nothing can be delivered before the kill
        first = ServeProcess(env=env, cwd=tmp_path)
        try:
            api = httpx.Client(base_url=first.url, headers=auth, timeout=10)
            hook = api.post("/v1/webhooks", json={"url": receiver.url}).json()
            made = [
                api.post("/v1/keys", json={"name": f"k{i}"}).json()["id"] for i in range(5)
            ]
            assert api.post(f"/v1/keys/{made[0]}/revoke").status_code == 200
            api.close()
        finally:
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait()
            first.__exit__()
        receiver.up()
        with ServeProcess(env=env, cwd=tmp_path) as second:
            receiver.wait_for(6, timeout=30)
            verifier = standardwebhooks.Webhook(hook["secret"])
            for delivery in receiver.received:
                verifier.verify(delivery.body, delivery.headers)
            got = sorted((r.json["type"], r.json["data"]["id"]) for r in receiver.received)
            assert got == sorted(
                [("key.created", k) for k in made] + [("key.revoked", made[0])]
            )
            second.stop()


def test_failed_deliveries_show_in_metrics(tmp_path: Path) -> None:
    lives = start_live(tmp_path, webhook_allow_private=True)
    live = next(lives)
    try:
        metrics = live.client().get("/metrics").text
        assert 'keyturn_webhook_deliveries{status="failed"}' in metrics
    finally:
        lives.close()
