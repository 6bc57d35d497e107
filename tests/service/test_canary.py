"""Canary keys: refused exactly like a key that does not exist, on every face, and every
use is a signed ``key.canary_used`` event naming who used it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import standardwebhooks

from keyturn.compose import build_manager
from keyturn.config import Settings
from keyturn.keys import generate_key

from .conftest import KEY_RE, Live, run_cli, start_live
from .receiver import Receiver

VARYING = {"date", "x-request-id"}


@pytest.fixture(scope="module")
def decoyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("canary"), webhook_allow_private=True)


def comparable(answer: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = sorted((k.lower(), v) for k, v in answer.headers.multi_items())
    return answer.status_code, [h for h in headers if h[0] not in VARYING], answer.content


def canary(live: Live) -> tuple[str, dict[str, object]]:
    return live.make_key("orders:read", name="decoy in old backup", canary=True)


def test_a_canary_is_refused_exactly_like_an_unknown_key(decoyed: Live) -> None:
    key, record = canary(decoyed)
    assert record["canary"] is True
    unknown = generate_key()
    verifier, _ = decoyed.make_key("keys:verify")
    for _ in range(3):  # the first from the store, the others from the cache
        for how in (
            lambda k: decoyed.client(k).get("/auth"),
            lambda k: decoyed.client(**{"x-api-key": k}).get("/auth"),
            lambda k: decoyed.client(k).get("/auth", headers={"X-Original-URI": "/orders/7"}),
            lambda k: decoyed.client(k).get("/v1/keys"),
            lambda k: decoyed.client(k).post("/v1/keys", json={"name": "x"}),
            lambda k: decoyed.client(verifier).post("/v1/keys/verify", json={"key": k}),
        ):
            seen, expected = comparable(how(key)), comparable(how(unknown))
            assert seen == expected
            assert seen[0] in (200, 401)
    assert "unknown_key" in decoyed.client(key).get("/auth").text


def test_every_use_of_a_canary_is_an_event_naming_who(decoyed: Live) -> None:
    with Receiver() as receiver:
        hook = decoyed.root.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["key.canary_used"]}
        ).json()
        key, record = canary(decoyed)
        headers = {
            "X-Forwarded-For": "203.0.113.7, 10.0.0.1",
            "X-Forwarded-Method": "DELETE",
            "X-Forwarded-Uri": "/orders/7?page=2",
            "User-Agent": "curl/8.5.0",
        }
        for _ in range(2):
            assert decoyed.client(key).get("/auth", headers=headers).status_code == 401
        events = receiver.wait_for(2)
        verify = standardwebhooks.Webhook(hook["secret"])
        for event in events:
            verify.verify(event.body, event.headers)
            assert key.encode() not in event.body
            assert event.json["type"] == "key.canary_used"
            assert event.json["data"]["id"] == record["id"]
            assert event.json["data"]["request"] == {
                "client": "127.0.0.1",  # no trusted proxy: the peer, whatever it claims
                "forwarded_for": "203.0.113.7, 10.0.0.1",
                "method": "DELETE",
                "path": "/orders/7",
                "user_agent": "curl/8.5.0",
            }
        # An unknown key raises no alarm.
        decoyed.client(generate_key()).get("/auth", headers=headers)
        decoyed.root.delete(f"/v1/webhooks/{hook['id']}")
        assert len(receiver.received) == 2


def test_a_canary_cannot_be_enabled_into_a_working_key(decoyed: Live) -> None:
    key, record = canary(decoyed)
    root = decoyed.root
    root.post(f"/v1/keys/{record['id']}/disable")
    root.post(f"/v1/keys/{record['id']}/enable")
    rotated = root.post(f"/v1/keys/{record['id']}/rotate", json={"grace_seconds": 0})
    assert rotated.json()["canary"] is True  # its successor is a canary too
    for value in (key, rotated.json()["key"]):
        assert decoyed.client(value).get("/auth").json()["code"] == "unknown_key"


def test_keys_create_canary_on_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    made = run_cli("keys", "create", "--name", "decoy", "--canary", "--db", db, "--format", "json")
    assert made.returncode == 0, made.stderr
    assert KEY_RE.search(made.stdout)
    assert '"canary": true' in made.stdout
    key = KEY_RE.search(made.stdout)
    assert key is not None
    with build_manager(Settings(database_url=db)) as manager:
        assert manager.verify_key(key.group(0)).code == "unknown_key"


def _deliveries(live: Live) -> dict[str, float]:
    """``keyturn_webhook_deliveries`` as anyone who reaches ``/metrics`` reads it."""
    lines = live.client().get("/metrics").text.splitlines()
    return {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in lines
        if line.startswith("keyturn_webhook_deliveries{")
    }


def test_metrics_do_not_tell_a_canary_from_an_unknown_key(tmp_path: Path) -> None:
    """``/metrics`` needs no key, and the port that serves it serves the portal and
    ``/v1/leaks`` to the public too: whoever tries a key must not see the alarm it raised
    in the delivery counts, while the receiver does get it."""
    for live in start_live(tmp_path, webhook_allow_private=True):
        with Receiver() as receiver:
            live.root.post("/v1/webhooks", json={"url": receiver.url, "events": ["*"]})
            key, _ = canary(live)
            receiver.wait_for(1)  # key.created, delivered
            before = _deliveries(live)
            deadline = time.monotonic() + 15
            while sum(before.values()) < 1 and time.monotonic() < deadline:
                time.sleep(0.5)  # the worker counts every few seconds
                before = _deliveries(live)
            assert live.client(key).get("/auth").status_code == 401
            receiver.wait_for(2)  # the alarm reached the deployment's receiver
            time.sleep(6)  # past the next count of deliveries (every 5 s)
            assert _deliveries(live) == before
