"""Keys restricted by client address, through the library, on both engines."""

from __future__ import annotations

import asyncio

import pytest

from keyturn import Actor, InvalidValue, KeyManager, NotPermitted
from keyturn.admin import KeyChange, NewKey
from keyturn.cache import KeyCache
from keyturn.verifier import Verifier


def bearer(key: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}")]


def asgi(key: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {key}".encode())]


def test_only_listed_addresses_are_accepted(manager: KeyManager) -> None:
    issued = manager.create_key("office", allowed_ips=["203.0.113.0/24", "2001:db8::/32"])
    assert issued.record.allowed_ips == ("203.0.113.0/24", "2001:db8::/32")
    key = issued.key
    assert manager.verify(bearer(key), peer="203.0.113.9").ok
    assert manager.verify(bearer(key), peer="2001:db8::7").ok
    refused = manager.verify(bearer(key), peer="198.51.100.1")
    assert refused.code == "ip_not_allowed"
    assert "198.51.100.1" in refused.detail and "198.51.100.1" in refused.hint
    unknown = manager.verify(bearer(key))
    assert unknown.code == "ip_not_allowed" and "unknown" in unknown.detail
    # Every path: the ASGI fast path (twice, so the second is a cache hit), the bare key.
    for _ in range(2):
        assert manager.verify_asgi(asgi(key), peer="203.0.113.1").ok
        assert manager.verify_asgi(asgi(key), peer="198.51.100.1").code == "ip_not_allowed"
    assert manager.verify_key(key, ip="203.0.113.1").ok
    assert manager.verify_key(key).code == "ip_not_allowed"
    assert manager.check_key(key, ip="198.51.100.1").code == "ip_not_allowed"


def test_async_manager_checks_addresses(manager: KeyManager) -> None:
    from keyturn import AsyncKeyManager

    key = manager.create_key("office", allowed_ips=["203.0.113.0/24"]).key
    keys = AsyncKeyManager(manager)

    async def run() -> list[str]:
        return [
            (await keys.verify_asgi(asgi(key), peer="203.0.113.1")).code,
            (await keys.verify_asgi(asgi(key), peer="198.51.100.1")).code,
            (await keys.verify(bearer(key), peer="198.51.100.1")).code,
            (await keys.verify_key(key, ip="203.0.113.1")).code,
            (await keys.check(bearer(key), peer="198.51.100.1")).code,
        ]

    assert asyncio.run(run()) == ["valid", "ip_not_allowed", "ip_not_allowed", "valid",
                                  "ip_not_allowed"]  # fmt: skip


def test_the_address_is_decided_before_credits_or_limits(manager: KeyManager) -> None:
    issued = manager.create_key(
        "metered", credits=3, rate_limits=["2/minute"], allowed_ips=["203.0.113.0/24"]
    )
    for _ in range(10):
        assert manager.verify(bearer(issued.key), peer="198.51.100.1").code == "ip_not_allowed"
    codes = [manager.verify(bearer(issued.key), peer="203.0.113.1").code for _ in range(3)]
    assert codes == ["valid", "valid", "rate_limited"]
    assert manager.store.credits_left(issued.record.id) == 1


def test_revoked_says_revoked_wherever_it_comes_from(manager: KeyManager) -> None:
    issued = manager.create_key("office", allowed_ips=["203.0.113.0/24"])
    manager.revoke(issued.record.id)
    assert manager.verify(bearer(issued.key), peer="198.51.100.1").code == "key_revoked"


def test_update_rotation_and_clearing(manager: KeyManager) -> None:
    issued = manager.create_key("office")
    key_id = issued.record.id
    assert manager.verify(bearer(issued.key), peer="198.51.100.1").ok
    changed = manager.update(key_id, allowed_ips=["198.51.100.0/24"])
    assert changed.allowed_ips == ("198.51.100.0/24",)
    assert manager.verify(bearer(issued.key), peer="203.0.113.1").code == "ip_not_allowed"
    successor = manager.rotate(key_id)
    assert successor.record.allowed_ips == ("198.51.100.0/24",)
    assert manager.verify(bearer(successor.key), peer="203.0.113.1").code == "ip_not_allowed"
    manager.update(key_id, allowed_ips=[])
    assert manager.verify(bearer(issued.key), peer="203.0.113.1").ok
    assert manager.get(key_id).public()["allowed_ips"] == []
    actions = [e.action for e in manager.audit(key_id=key_id)]
    assert actions.count("key.update") == 2
    update = next(e for e in manager.audit(key_id=key_id) if e.details.get("allowed_ips"))
    assert update.details["allowed_ips"] == ["198.51.100.0/24"]


def test_invalid_lists_are_refused(manager: KeyManager) -> None:
    with pytest.raises(InvalidValue, match="not an IP address") as caught:
        manager.create_key("bad", allowed_ips=["10.0.0.0/8", "10.0.0.256"])
    assert caught.value.field == "allowed_ips"
    issued = manager.create_key("good")
    with pytest.raises(InvalidValue, match="not an IP address"):
        manager.update(issued.record.id, allowed_ips=["localhost"])
    assert manager.get(issued.record.id).allowed_ips == ()


def test_a_restricted_key_hands_out_no_wider_list(manager: KeyManager) -> None:
    writer = manager.create_key(
        "writer", scopes=["keys:write", "keys:read"], allowed_ips=["10.0.0.0/8"]
    )
    actor = Actor.of_key(writer.record)
    with pytest.raises(NotPermitted, match="no address restriction"):
        manager.admin.create(actor, NewKey("open"))
    with pytest.raises(NotPermitted, match=r"192\.168\.0\.0/16"):
        manager.admin.create(actor, NewKey("wide", allowed_ips=["10.1.0.0/16", "192.168.0.0/16"]))
    narrow = manager.admin.create(actor, NewKey("narrow", allowed_ips=["10.1.0.0/16"]))
    with pytest.raises(NotPermitted):
        manager.admin.update(actor, narrow.record.id, KeyChange(allowed_ips=[]))
    other = manager.create_key("unrestricted")
    with pytest.raises(NotPermitted):
        manager.admin.rotate(actor, other.record.id)


def test_trusted_proxies_name_the_client(db_url: str) -> None:
    verifier = Verifier(trusted_proxies=["10.9.0.0/24"])
    with KeyManager(db_url, verifier=verifier, cache=KeyCache()) as manager:
        key = manager.create_key("office", allowed_ips=["203.0.113.0/24"]).key
        forwarded = [*bearer(key), ("X-Forwarded-For", "203.0.113.5")]
        assert manager.verify(forwarded, peer="10.9.0.1").ok
        # The same header from a peer that is not a trusted proxy is ignored.
        assert manager.verify(forwarded, peer="198.51.100.1").code == "ip_not_allowed"
        spoofed = [*bearer(key), ("X-Forwarded-For", "203.0.113.5, 198.51.100.1")]
        assert manager.verify(spoofed, peer="10.9.0.1").code == "ip_not_allowed"
