"""Text a client writes - a path, a user agent, a leak report's URL - is
stored and shown again (the verification log, its dashboard page, ``key.canary_used`` and
``key.leaked`` events, the audit log). A key inside it is masked there, in every encoding
the access log already masks (plain, percent-encoded once or twice, JSON-escaped, inside
``Basic`` base64), against a real server on loopback.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from urllib.parse import unquote

import pytest

from tests.service.conftest import Live, start_live
from tests.service.receiver import Receiver
from tests.ui.test_http import signed_in


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(
        tmp_path_factory.mktemp("client-text"),
        webhook_allow_private=True,
        leak_action="notify",  # the reported key keeps working: its value must not spread
    )


def encodings(key: str) -> list[str]:
    """The forms a key travels in, each still the key to anyone who reads it."""
    basic = base64.b64encode(f"user:{key}".encode()).decode()
    return [
        key,
        key.replace("_", "%5F"),
        key.replace("_", "%255F"),
        key.replace("_", "\\u005f"),
        f"Basic {basic}",
    ]


def assert_hidden(text: str, key: str) -> None:
    """Neither the key nor its secret part, however the text is decoded."""
    secret = key.rsplit("_", 1)[1][4:-4]  # what a mask never shows
    decoded = unquote(unquote(text)).replace("\\u005f", "_")
    assert secret not in text and secret not in decoded
    assert base64.b64encode(f"user:{key}".encode()).decode()[8:40] not in text


def logged(live: Live, request_id: str) -> str:
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        found = live.root.get("/v1/verifications", params={"request_id": request_id})
        if found.json()["verifications"]:
            return found.text
        time.sleep(0.1)
    raise AssertionError(f"no verification logged for {request_id}")


@pytest.mark.parametrize("form", range(5))
def test_keys_in_paths_and_user_agents_are_masked_in_the_verification_log(
    live: Live, form: int
) -> None:
    used, _ = live.make_key("orders:read")
    quoted, _ = live.make_key("orders:read")
    value = encodings(quoted)[form]
    for answer in (
        live.client(used).get(
            "/auth",
            headers={
                "X-Forwarded-Uri": f"/orders/{value}/x",
                "User-Agent": f"client {value}",
            },
        ),
        live.root.post(
            "/v1/keys/verify",
            json={"key": used},
            headers={"User-Agent": f"client {value}"},
        ),
    ):
        assert answer.status_code in (200, 204), answer.text
        assert_hidden(logged(live, answer.headers["x-request-id"]), quoted)
    client, _ = signed_in(live)
    page = client.get("/ui/verifications", params={"key_id": ""})
    assert page.status_code == 200
    assert_hidden(page.text, quoted)


def test_keys_in_a_canary_users_request_are_masked_in_its_event(live: Live) -> None:
    decoy, _ = live.make_key("orders:read", canary=True)
    other, _ = live.make_key("orders:read")
    with Receiver() as receiver:
        hook = live.root.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["key.canary_used"]}
        ).json()
        try:
            for value in encodings(other):
                answer = live.client(decoy).get(
                    "/auth",
                    headers={"X-Forwarded-Uri": f"/o/{value}", "User-Agent": f"ua {value}"},
                )
                assert answer.status_code == 401
            events = receiver.wait_for(len(encodings(other)))
        finally:
            live.root.delete(f"/v1/webhooks/{hook['id']}")
    for event in events:
        assert_hidden(event.body.decode(), other)
        assert_hidden(event.body.decode(), decoy)


def test_a_key_in_a_leak_reports_url_is_masked_in_the_audit_log_and_event(live: Live) -> None:
    leaked, record = live.make_key("orders:read")
    with Receiver() as receiver:
        hook = live.root.post(
            "/v1/webhooks", json={"url": receiver.url, "events": ["key.leaked"]}
        ).json()
        try:
            url = f"https://paste.example/raw?api_key={leaked}&x=\u0000"
            answer = live.client().post("/v1/leaks", json={"key": leaked, "url": url})
            assert answer.status_code == 202
            (event,) = receiver.wait_for(1)
        finally:
            live.root.delete(f"/v1/webhooks/{hook['id']}")
    assert_hidden(event.body.decode(), leaked)
    audit = live.root.get("/v1/audit", params={"key_id": record["id"], "action": "key.leak"})
    assert audit.json()["events"], audit.text
    assert_hidden(audit.text, leaked)
    # notify: the key still works, which is why its value must not spread
    assert live.client(leaked).get("/auth").status_code == 204
