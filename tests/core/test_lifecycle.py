"""Time-driven events and the lifetime policy, on every engine: each occasion is recorded
once, a key unused too long is disabled, and no key outlives the deployment's limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from keyturn import KeyManager
from keyturn._reminders import Reminders
from keyturn._verifications import Seen
from keyturn._webhooks import NewWebhook
from keyturn.actor import Actor
from keyturn.admin import LifetimePolicy
from keyturn.errors import InvalidValue
from keyturn.record import utcnow

DAY = timedelta(days=1)


@pytest.fixture
def manager(db_url: str) -> Iterator[KeyManager]:
    with KeyManager(db_url, allow_private_webhooks=True) as m:
        yield m


def watch(manager: KeyManager) -> str:
    return manager.webhooks.create(
        Actor.operator(), NewWebhook("http://127.0.0.1:9/", ["*"])
    ).webhook.id


def seen(manager: KeyManager, hook: str) -> list[str]:
    manager.store.dispatch(limit=1000)
    return [d.type for d in reversed(manager.store.deliveries(hook, limit=1000))]


def reminders(manager: KeyManager, **options: object) -> Reminders:
    return Reminders(manager.admin, manager.store, **options)  # type: ignore[arg-type]


def test_expiry_reminders_come_once_each(manager: KeyManager) -> None:
    key = manager.create_key("a", expires_in=timedelta(days=40)).record
    hook = watch(manager)
    remind = reminders(manager)
    start = utcnow()
    for offset, expected in (
        (0, []),
        (11, ["key.expiring"]),  # 29 days left: the 30-day reminder
        (12, []),
        (34, ["key.expiring"]),  # 6 days left
        (35, []),
        (39.5, ["key.expiring"]),  # half a day left
        (41, ["key.expired"]),
        (42, []),
    ):
        before = len(seen(manager, hook))
        remind.run_once(start + offset * DAY)
        remind.run_once(start + offset * DAY)  # a second round (or instance) adds nothing
        assert seen(manager, hook)[before:] == expected, offset
    days = [
        c.body for c in manager.store.claim(start + 50 * DAY, 30, limit=100)
        if c.delivery.type == "key.expiring"
    ]
    assert all(f'"days":{d}' in body for d, body in zip((30, 7, 1), days, strict=True))
    assert all(f'"id":"{key.id}"' in body for body in days)


def test_a_key_first_seen_near_its_expiry_gets_the_closest_reminder_only(
    manager: KeyManager,
) -> None:
    manager.create_key("a", expires_in=timedelta(days=5))
    hook = watch(manager)
    reminders(manager).run_once()
    assert seen(manager, hook) == ["key.expiring"]
    (claim,) = manager.store.claim(utcnow(), 30)
    assert '"days":7' in claim.body


def test_grace_ending_and_credits_low(manager: KeyManager) -> None:
    hook = watch(manager)
    old = manager.create_key("a").record
    manager.rotate(old.id, grace=timedelta(hours=12))
    manager.create_key("b", credits=0)
    before = len(seen(manager, hook))
    reminders(manager).run_once()
    reminders(manager).run_once()
    assert sorted(seen(manager, hook)[before:]) == ["key.credits_low", "key.grace_ending"]


def test_grace_ending_comes_before_the_old_key_expires_not_after(manager: KeyManager) -> None:
    """A key expiring in 3 days rotated with a 7-day grace stops in 3 days: the warning
    comes the day before that, naming that end (it came on day 6, days too late)."""
    hook = watch(manager)
    old = manager.create_key("a", expires_in=3 * DAY).record
    manager.rotate(old.id, grace=7 * DAY)
    before = len(seen(manager, hook))
    later = utcnow() + 2.5 * DAY
    reminders(manager).run_once(later)
    assert "key.grace_ending" in seen(manager, hook)[before:]
    (body,) = [c.body for c in manager.store.claim(later, 30, limit=100)
               if c.delivery.type == "key.grace_ending"]  # fmt: skip
    data = json.loads(body)["data"]
    assert data["id"] == old.id and data["grace_until"] == data["expires_at"]


def test_a_key_unused_too_long_is_disabled_with_key_unused(manager: KeyManager) -> None:
    hook = watch(manager)
    idle = manager.create_key("idle", expires_in=None).record
    busy = manager.create_key("busy", expires_in=None).record
    later = utcnow() + 31 * DAY
    manager.store.touch({busy.id: later - DAY})
    before = len(seen(manager, hook))
    remind = reminders(manager, unused_after=30 * DAY)
    remind.run_once(later)
    remind.run_once(later)
    assert seen(manager, hook)[before:] == ["key.unused"]
    assert manager.get(idle.id).disabled
    assert not manager.get(busy.id).disabled
    (entry,) = manager.audit(key_id=idle.id, action="key.disable")
    assert entry.actor == "lifecycle"
    assert entry.details["reason"] == "unused"


def test_max_lifetime_refuses_and_names_the_limit(db_url: str) -> None:
    policy = LifetimePolicy(max_lifetime=timedelta(days=366))
    with KeyManager(db_url, lifetime=policy) as manager:
        with pytest.raises(InvalidValue, match=r"366 days \(max_lifetime\)") as refused:
            manager.create_key("a", expires_in=timedelta(days=400))
        assert refused.value.field == "expires_in"
        with pytest.raises(InvalidValue, match="max_lifetime"):
            manager.create_key("a", expires_in=None)
        key = manager.create_key("a", expires_in=timedelta(days=366)).record
        with pytest.raises(InvalidValue, match="366 days"):
            manager.update(key.id, expires_at=utcnow() + 400 * DAY)
        with pytest.raises(InvalidValue, match="max_lifetime"):
            manager.update(key.id, expires_at=None)
    short = LifetimePolicy(max_lifetime=timedelta(days=30))
    with KeyManager(db_url, lifetime=short) as manager:
        made = manager.create_key("default").record
        assert made.expires_at is not None
        assert made.expires_at - made.created_at <= timedelta(days=30)


def test_require_expiry(db_url: str) -> None:
    with KeyManager(db_url, lifetime=LifetimePolicy(require_expiry=True)) as manager:
        with pytest.raises(InvalidValue, match="require_expiry"):
            manager.create_key("a", expires_in=None)
        key = manager.create_key("a", expires_in=timedelta(days=1000)).record
        with pytest.raises(InvalidValue, match="require_expiry"):
            manager.update(key.id, expires_at=None)


def test_a_usage_aware_grace_warns_of_its_latest_end_once_naming_who_still_uses_it(
    manager: KeyManager,
) -> None:
    hook = watch(manager)
    old = manager.create_key("a", scopes=["read"])
    manager.rotate(old.record.id, quiet=timedelta(minutes=15), grace=timedelta(days=3))
    remind = reminders(manager)
    before = len(seen(manager, hook))
    remind.run_once()  # ends in 15 minutes if nobody uses it: no warning for that
    assert seen(manager, hook)[before:] == []
    headers = [("authorization", f"Bearer {old.key}"), ("user-agent", "client/1.0")]
    # Recorded by the core, with what the face saw of the request.
    seen_by_face = Seen("GET", "/orders", None, "client/1.0")
    manager.verify(headers, scopes=["read"], peer="203.0.113.9", seen=seen_by_face)
    manager.verifications.flush()
    later = utcnow() + timedelta(days=2, hours=1)  # its latest end is within a day
    # In use all along: each flushed use moved its end (tests/core/test_quiet_grace.py).
    manager.store.update(old.record.id, {"grace_until": later + timedelta(minutes=10)},
                         "test", "key.update")  # fmt: skip
    remind.run_once(later)
    remind.run_once(later)
    assert seen(manager, hook)[before:] == ["key.grace_ending"]
    (body,) = [c.body for c in manager.store.claim(later, 30, limit=100)
               if c.delivery.type == "key.grace_ending"]  # fmt: skip
    data = json.loads(body)["data"]
    assert data["grace_until_quiet_seconds"] == 900 and data["grace_max"] is not None
    (caller,) = data["still_used_by"]
    assert caller["client"] == "203.0.113.9" and caller["path"] == "/orders"
