"""What a handler receives for a verified key, whichever framework it runs in."""

from __future__ import annotations

import pytest

from keyturn.integrations import Guard
from tests.integrations.cases import Keys


def test_verified_key_shows_identity_and_never_the_hash(keys: Keys) -> None:
    guard = Guard(keys.manager)
    record = keys.manager.get(keys.valid_id)
    verified = guard.identity(record)
    assert verified.as_dict()["id"] == keys.valid_id
    assert not hasattr(verified, "key_hash")
    assert record.key_hash not in repr(verified) + repr(verified.as_dict())
    assert verified.has_scopes("items:read") and not verified.has_scopes("admin")


def test_handlers_cannot_edit_the_cached_record_through_metadata(keys: Keys) -> None:
    verified = Guard(keys.manager).identity(keys.manager.get(keys.valid_id))
    with pytest.raises(TypeError):
        verified.metadata["plan"] = "free"  # type: ignore[index]


def test_one_verified_key_per_cached_record(keys: Keys) -> None:
    guard = Guard(keys.manager)
    record = keys.manager.get(keys.valid_id)
    assert guard.identity(record) is guard.identity(record)
    reloaded = keys.manager.get(keys.valid_id)  # a fresh record, e.g. after the cache TTL
    assert guard.identity(reloaded) is not guard.identity(record)


def test_a_guard_refuses_what_is_not_a_key_source() -> None:
    with pytest.raises(TypeError, match="KeyManager"):
        Guard(42)  # type: ignore[arg-type]
    guard = Guard("sqlite://")
    assert Guard.of(guard) is guard
    with pytest.raises(TypeError, match="ready Guard"):
        Guard.of(guard, realm="other")
    guard.close()
