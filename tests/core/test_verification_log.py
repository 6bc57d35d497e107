"""The verification log's queue and its store, on both engines."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyturn import KeyManager
from keyturn._addresses import TrustedProxies
from keyturn._verifications import Entry, Seen, VerificationFilter, VerificationLog
from keyturn.config import SettingsError, load_settings
from keyturn.outcomes import CATALOGUE
from keyturn.record import KeyRecord
from keyturn.verifier import Decision


def entry(outcome: str = "valid", key: KeyRecord | None = None, **fields: Any) -> Entry:
    """An entry as the core queues it: the decision, the request's peer and headers, and
    what the face saw (``Seen``)."""
    values: dict[str, Any] = {
        "at": time.time(), "request_id": "r1", "peer": "203.0.113.9", "headers": (),
        "method": "GET", "path": "/orders", "user_agent": "curl/8",
    }  # fmt: skip
    values.update(fields)
    seen = Seen(values["method"], values["path"], values["request_id"], values["user_agent"])
    decision = Decision(CATALOGUE[outcome], "", "", key)
    return Entry(values["at"], decision, values["peer"], values["headers"], seen)


def test_a_full_queue_drops_and_counts_never_blocks(manager: KeyManager) -> None:
    log = VerificationLog(manager.store, TrustedProxies(), interval=3600, capacity=3)
    for i in range(5):
        log.record(*entry(request_id=f"r{i}"))
    assert log.dropped == 2
    assert log.flush() == 3
    found = manager.store.verifications(VerificationFilter())
    assert [v.request_id for v in found] == ["r2", "r1", "r0"]
    log.close()


def test_entries_are_stored_filtered_and_purged(manager: KeyManager) -> None:
    key = manager.create_key("k", owner="acme")
    log = VerificationLog(manager.store, TrustedProxies(["10.0.0.0/8"]), interval=3600)
    log.record(*entry(key=key.record, request_id="a"))
    log.record(*entry("unknown_key", request_id="b", path="/x?api_key=secret",
                     user_agent="evil\x00agent"))  # fmt: skip
    forwarded = [(b"x-forwarded-for", b"198.51.100.7")]
    log.record(*entry("key_revoked", request_id="c", peer="10.1.2.3", headers=forwarded))
    log.record(*entry("key_revoked", request_id="old", at=time.time() - 7200))
    log.flush()
    store = manager.store
    by_key = store.verifications(VerificationFilter(key_id=key.record.id))
    assert [v.request_id for v in by_key] == ["a"] and by_key[0].key == key.record.masked
    assert [v.request_id for v in store.verifications(VerificationFilter(owner="acme"))] == ["a"]
    b = store.verifications(VerificationFilter(request_id="b"))[0]
    assert b.path == "/x" and "\x00" not in b.user_agent and b.client == "203.0.113.9"
    c = store.verifications(VerificationFilter(request_id="c"))[0]
    assert c.client == "198.51.100.7"  # named by a trusted proxy, worked out when written
    since = datetime.now(UTC) - timedelta(hours=1)
    recent = store.verifications(VerificationFilter(outcome="key_revoked", since=since))
    assert [v.request_id for v in recent] == ["c"]
    store.purge_verifications(since)
    assert len(store.verifications(VerificationFilter(outcome="key_revoked"))) == 1
    page = store.verifications(VerificationFilter(), limit=1)
    assert len(store.verifications(VerificationFilter(), before=page[0].id)) == 2
    log.close()


def test_the_retention_setting() -> None:
    assert load_settings(environ={}).verification_retention == 30 * 86_400
    settings = load_settings(environ={"KEYTURN_VERIFICATION_RETENTION": "12h"})
    assert settings.verification_retention == 12 * 3600
    with pytest.raises(SettingsError, match="KEYTURN_VERIFICATION_RETENTION"):
        load_settings(environ={"KEYTURN_VERIFICATION_RETENTION": "5s"})
    with pytest.raises(SettingsError):
        load_settings(environ={"KEYTURN_VERIFICATION_RETENTION": "forever"})


def test_the_log_can_be_turned_off(db_url: str) -> None:
    with KeyManager(db_url, verification_log=False) as manager:
        manager.verifications.record(*entry())
        assert manager.verifications.flush() == 0
    assert load_settings(environ={"KEYTURN_VERIFICATION_LOG": "off"}).verification_log is False
