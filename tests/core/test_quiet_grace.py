"""Usage-aware rotation: the old key works until nobody has used it for a quiet period, at
most a longest grace, on every engine (``store_url`` runs each test on SQLite and
PostgreSQL). The end is the key's ``grace_until``, moved by the store as uses are flushed.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from keyturn import KeyManager
from keyturn.cache import KeyCache
from keyturn.errors import InvalidValue


def bearer(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


@pytest.fixture
def fast(store_url: str) -> KeyManager:
    """Uses reach the store within 0.2 s (a flush interval of 0.1 s, a cache of 0.1 s),
    so the shortest quiet period is 4 x 0.2 s = 0.8 s, rounded up to a second."""
    m = KeyManager(store_url, usage_interval=0.1, cache=KeyCache(ttl=0.1))
    yield m
    m.close()


def test_rotation_with_a_quiet_period_records_both_ends(fast: KeyManager) -> None:
    key = fast.create_key("svc", scopes=["read"])
    new = fast.rotate(key.record.id, quiet=timedelta(minutes=15), grace=timedelta(days=7))
    old = fast.get(key.record.id)
    start = new.record.created_at
    assert old.grace_until == start + timedelta(minutes=15)
    assert old.grace_max == start + timedelta(days=7)
    assert old.public()["grace_until_quiet_seconds"] == 900
    (entry,) = fast.audit(key_id=key.record.id, action="key.rotate")
    assert entry.details["grace_until_quiet_seconds"] == 900
    assert entry.details["grace_max"] == (start + timedelta(days=7)).isoformat()


def test_the_longest_grace_defaults_to_a_week(fast: KeyManager) -> None:
    key = fast.create_key("svc")
    new = fast.rotate(key.record.id, quiet=timedelta(minutes=15))
    assert fast.get(key.record.id).grace_max == new.record.created_at + timedelta(days=7)


def test_a_quiet_period_shorter_than_the_usage_lag_is_refused(store_url: str) -> None:
    with KeyManager(store_url) as m:  # a 5 s flush and a 1 s cache: 24 s at least
        key = m.create_key("svc")
        with pytest.raises(InvalidValue, match=r"at least 24 seconds.*usage_flush_interval"):
            m.rotate(key.record.id, quiet=timedelta(seconds=10))
        with pytest.raises(InvalidValue, match="shorter than the quiet period") as refused:
            m.rotate(key.record.id, quiet=timedelta(minutes=30), grace=timedelta(minutes=10))
        assert refused.value.field == "grace_max"
        assert m.get(key.record.id).replaced_by is None  # refused: nothing changed


def test_each_use_moves_the_end_to_the_last_use_plus_the_quiet_period(fast: KeyManager) -> None:
    key = fast.create_key("svc", scopes=["read"])
    fast.rotate(key.record.id, quiet=timedelta(minutes=15), grace=timedelta(days=7))
    first_end = fast.get(key.record.id).grace_until
    assert first_end is not None
    time.sleep(1.1)
    used = time.time()
    assert fast.verify(bearer(key.key)).code == "valid"
    fast.usage.flush()
    moved = fast.get(key.record.id)
    assert moved.grace_until is not None and moved.last_used_at is not None
    assert moved.grace_until == moved.last_used_at + timedelta(minutes=15)
    assert moved.grace_until > first_end + timedelta(seconds=1)
    assert abs(moved.last_used_at.timestamp() - used) < 1


def test_the_old_key_stops_once_quiet_and_stays_stopped(fast: KeyManager) -> None:
    key = fast.create_key("svc", scopes=["read"])
    new = fast.rotate(key.record.id, quiet=timedelta(seconds=2), grace=timedelta(days=1))
    deadline = time.time() + 6
    while time.time() < deadline:  # used every 0.5 s for 6 s: kept alive past 2 s
        assert fast.verify(bearer(key.key)).code == "valid"
        time.sleep(0.5)
    time.sleep(2.6)  # quiet for longer than the period (and the lag)
    assert fast.verify(bearer(key.key)).code == "key_rotated"
    assert fast.verify(bearer(new.key)).code == "valid"
    ended = fast.get(key.record.id).grace_until
    # A use flushed late (made before the end, by a slow instance) does not revive it.
    assert ended is not None
    fast.store.touch({key.record.id: ended - timedelta(seconds=1)})
    assert fast.get(key.record.id).grace_until == ended
    time.sleep(0.2)
    assert fast.verify(bearer(key.key)).code == "key_rotated"


def test_the_end_never_passes_the_longest_grace(fast: KeyManager) -> None:
    key = fast.create_key("svc", scopes=["read"])
    fast.rotate(key.record.id, quiet=timedelta(seconds=3), grace=timedelta(seconds=4))
    most = fast.get(key.record.id).grace_max
    assert most is not None
    while time.time() < most.timestamp() - 0.3:
        assert fast.verify(bearer(key.key)).code == "valid"
        fast.usage.flush()
        time.sleep(0.3)
    assert fast.get(key.record.id).grace_until == most
    time.sleep(max(0.0, most.timestamp() - time.time()) + 0.3)
    assert fast.verify(bearer(key.key)).code == "key_rotated"


def test_a_check_is_not_a_use_and_does_not_prolong_the_grace(fast: KeyManager) -> None:
    key = fast.create_key("svc", scopes=["read"])
    fast.rotate(key.record.id, quiet=timedelta(minutes=15))
    end = fast.get(key.record.id).grace_until
    time.sleep(1.1)
    assert fast.check(bearer(key.key)).code == "valid"
    fast.usage.flush()
    assert fast.get(key.record.id).grace_until == end


@pytest.mark.parametrize("quiet", [None, timedelta(minutes=15)], ids=["fixed", "quiet"])
def test_no_grace_outlasts_the_old_keys_expiry(fast: KeyManager, quiet: timedelta | None) -> None:
    """A key expiring in 12 hours is refused then, whatever its grace: a 7-day grace stored
    and shown as a week away told operators and clients it kept working past that."""
    key = fast.create_key("svc", expires_in=timedelta(hours=12))
    fast.rotate(key.record.id, quiet=quiet, grace=timedelta(days=7))
    old = fast.get(key.record.id)
    assert old.expires_at is not None
    if quiet is None:
        assert old.grace_until == old.expires_at
    else:  # the quiet end comes first; the latest end is the expiry
        assert old.grace_until is not None and old.grace_until < old.expires_at
        assert old.grace_max == old.expires_at
    shown = old.public()
    assert max(filter(None, (shown["grace_until"], shown["grace_max"]))) == shown["expires_at"]


def test_a_grace_ending_before_the_expiry_is_kept(fast: KeyManager) -> None:
    key = fast.create_key("svc", expires_in=timedelta(days=30))
    new = fast.rotate(key.record.id, quiet=timedelta(minutes=15), grace=timedelta(days=7))
    assert fast.get(key.record.id).grace_max == new.record.created_at + timedelta(days=7)
