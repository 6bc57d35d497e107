"""The admin layer, through the library: grant rules, validation, defaults, checks.

Every test runs on both engines (the store conformance fixture): a rule that holds on
SQLite and breaks on PostgreSQL (a NUL character, a time PostgreSQL stores but Python
cannot read back) is exactly what this suite is for.
"""

from __future__ import annotations

import gc
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone

import pytest

from keyturn import (
    Actor,
    Conflict,
    InvalidValue,
    KeyChange,
    KeyManager,
    NewKey,
    NotPermitted,
    ScopeNotHeld,
)


def bearer(key: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}")]


def limited_writer(manager: KeyManager, **options: object) -> Actor:
    """A ``keys:write`` key that expires in an hour with 5 credits, acting."""
    issued = manager.create_key(
        "writer",
        scopes=["keys:write", "keys:read", "orders:read"],
        expires_in=timedelta(hours=1),
        credits=5,
        **options,  # type: ignore[arg-type]
    )
    return Actor.of_key(issued.record)


# -- grant rules: a key hands out no more than it holds (issue 11, item 9) ---------------


def test_a_key_cannot_extend_its_own_life_or_allowance(manager: KeyManager) -> None:
    writer = limited_writer(manager)
    assert writer.key is not None
    before = manager.get(writer.name)
    for change in (
        KeyChange(expires_at=None),
        KeyChange(expires_at=datetime.now(UTC) + timedelta(days=2)),
        KeyChange(credits=None),
        KeyChange(credits=6),
        KeyChange(credits=5, refill="daily"),
    ):
        with pytest.raises(NotPermitted):
            manager.admin.update(writer, writer.name, change)
    after = manager.get(writer.name)
    assert (after.expires_at, after.credits, after.refill) == (
        before.expires_at,
        before.credits,
        before.refill,
    )
    # Shortening its life and spending less are fine.
    sooner = datetime.now(UTC) + timedelta(minutes=30)
    assert manager.admin.update(writer, writer.name, KeyChange(expires_at=sooner)).credits == 5
    assert manager.admin.update(writer, writer.name, KeyChange(credits=2)).credits == 2


def test_a_key_cannot_grant_a_longer_life_or_looser_allowance(manager: KeyManager) -> None:
    writer = limited_writer(manager)
    refused = [
        NewKey("forever", ["keys:write"], expires_in=None),
        NewKey("later", expires_in=timedelta(days=1)),
        NewKey("unlimited", expires_in=timedelta(minutes=5)),  # no credits: unlimited
        NewKey("more", expires_in=timedelta(minutes=5), credits=6),
        NewKey("refilled", expires_in=timedelta(minutes=5), credits=1, refill="daily"),
    ]
    for new in refused:
        with pytest.raises(NotPermitted):
            manager.admin.create(writer, new)
    assert [k.name for k in manager.list_keys()] == ["writer"]
    # The default lifetime (90 days) is cut short to the writer's own.
    child = manager.admin.create(writer, NewKey("child", ["orders:read"], credits=3)).record
    assert child.expires_at is not None and writer.expires_at is not None
    assert child.expires_at <= writer.expires_at
    assert child.credits == 3


def test_rate_limits_must_be_at_least_as_tight(manager: KeyManager) -> None:
    issued = manager.create_key("w", scopes=["keys:write"], rate_limits=["100/minute"])
    writer = Actor.of_key(issued.record)
    for limits in ([], ["200/minute"], ["2/second"], ["101/hour"]):
        with pytest.raises(NotPermitted, match="100/minute"):
            manager.admin.create(writer, NewKey("x", rate_limits=limits))
    for limits in (["100/minute"], ["1/second"], ["50/minute", "1000/day"], ["1/2 minutes"]):
        assert manager.admin.create(writer, NewKey("ok", rate_limits=limits)).record.rate_limits


def test_rotating_and_enabling_stay_within_the_actor(manager: KeyManager) -> None:
    writer = limited_writer(manager)
    target = manager.create_key("svc", scopes=["orders:read"], expires_in=None, credits=3)
    # A successor would live forever: cut short to the writer's life.
    successor = manager.admin.rotate(writer, target.record.id).record
    assert successor.expires_at is not None and writer.expires_at is not None
    assert successor.expires_at <= writer.expires_at
    # A never-expiring key the writer disabled cannot be brought back by it...
    other = manager.create_key("other", scopes=["orders:read"], expires_in=None, credits=1)
    manager.admin.disable(writer, other.record.id)
    with pytest.raises(NotPermitted):
        manager.admin.enable(writer, other.record.id)
    # ...nor can it rotate a key whose allowance exceeds its own.
    rich = manager.create_key("rich", scopes=["orders:read"], credits=100)
    with pytest.raises(NotPermitted, match="100 credits"):
        manager.admin.rotate(writer, rich.record.id)
    manager.enable(other.record.id)  # the operator can
    assert manager.get(other.record.id).disabled is False


def test_scopes_bound_what_a_key_grants_and_changes(manager: KeyManager) -> None:
    writer = Actor.of_key(manager.create_key("w", scopes=["keys:write", "orders:*"]).record)
    with pytest.raises(ScopeNotHeld) as refused:
        manager.admin.create(writer, NewKey("x", ["billing:read"]))
    assert refused.value.missing == ("billing:read",)
    root = manager.create_key("root", scopes=["*"])
    with pytest.raises(ScopeNotHeld):
        manager.admin.revoke(writer, root.record.id)
    reader = Actor.of_key(manager.create_key("r", scopes=["keys:read"]).record)
    with pytest.raises(ScopeNotHeld, match="keys:write"):
        manager.admin.create(reader, NewKey("x"))


# -- validation: times, text, metadata (issue 11, items 4 and 11) ------------------------


@pytest.mark.parametrize(
    "moment",
    [
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(-timedelta(hours=14))),
        datetime(9999, 6, 1, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(1969, 12, 31, tzinfo=UTC),
        datetime(2030, 1, 1),  # no UTC offset
    ],
)
def test_times_outside_the_range_are_refused_and_change_nothing(
    manager: KeyManager, moment: datetime
) -> None:
    issued = manager.create_key("x", scopes=["read"])
    with pytest.raises(InvalidValue) as refused:
        manager.update(issued.record.id, expires_at=moment)
    assert refused.value.field == "expires_at"
    assert manager.get(issued.record.id).expires_at == issued.record.expires_at
    assert manager.verify(bearer(issued.key)).code == "valid"
    assert [r.id for r in manager.list_keys()] == [issued.record.id]
    manager.revoke(issued.record.id)
    assert manager.verify(bearer(issued.key)).code == "key_revoked"


def test_the_latest_time_rotates_without_overflow(manager: KeyManager) -> None:
    issued = manager.create_key("x")
    latest = datetime(9998, 12, 31, 23, 59, tzinfo=UTC)
    manager.update(issued.record.id, expires_at=latest)
    successor = manager.rotate(issued.record.id)
    assert successor.record.expires_at is not None
    assert manager.verify(bearer(successor.key)).code == "valid"


@pytest.mark.parametrize(
    "metadata",
    [
        {"note": "a\x00b"},
        {"a\x00": "key with a NUL"},
        {"deep": [{"x": ["\x00"]}]},
        {"n": float("nan")},
        {"when": datetime.now(UTC)},
        {"big": "x" * 9000},
    ],
)
def test_metadata_is_refused_alike_on_every_engine(
    manager: KeyManager, metadata: dict[str, object]
) -> None:
    with pytest.raises(InvalidValue) as refused:
        manager.create_key("x", metadata=metadata)
    assert refused.value.field == "metadata"
    key = manager.create_key("y", metadata={"ok": 1})
    with pytest.raises(InvalidValue):
        manager.update(key.record.id, metadata=metadata)
    assert manager.get(key.record.id).metadata == {"ok": 1}


@pytest.mark.parametrize("value", ["", "   ", "a\nb", "a\x00b", "x" * 201])
def test_names_and_owners_are_printable_text(manager: KeyManager, value: str) -> None:
    with pytest.raises(InvalidValue, match="printable"):
        manager.create_key(value)
    with pytest.raises(InvalidValue, match="printable"):
        manager.create_key("x", owner=value)


def test_lookups_with_nul_characters_find_nothing(manager: KeyManager) -> None:
    from keyturn import KeyFilter, KeyNotFound

    manager.create_key("x", owner="ada")
    with pytest.raises(KeyNotFound):
        manager.get("key_\x00")
    assert manager.list_keys(KeyFilter(owner="ada\x00")) == []
    assert manager.list_keys(KeyFilter(search="\x00")) == []
    assert manager.audit(actor="\x00") == []


def test_one_scope_token_rule(manager: KeyManager) -> None:
    manager.create_key("ok", scopes=["s" * 128])
    with pytest.raises(InvalidValue, match="128"):
        manager.create_key("long", scopes=["s" * 129])


def test_prefixes_must_be_accepted(db_url: str) -> None:
    from keyturn import Verifier

    manager = KeyManager(db_url, verifier=Verifier(["acme_live", "acme_test"]))
    try:
        assert manager.create_key("default").key.startswith("acme_live_")
        with pytest.raises(InvalidValue, match="not accepted"):
            manager.create_key("x", prefix="kt_live")
    finally:
        manager.close()
    with pytest.raises(InvalidValue, match="would be refused"):
        KeyManager(db_url, prefix="acme")


def test_state_conflicts(manager: KeyManager) -> None:
    key = manager.create_key("x")
    manager.rotate(key.record.id, grace=timedelta(0))
    with pytest.raises(Conflict, match="already rotated"):
        manager.rotate(key.record.id)


def test_a_zero_grace_stops_the_old_key_at_once(manager: KeyManager) -> None:
    key = manager.create_key("x")
    new = manager.rotate(key.record.id, grace=timedelta(0))
    assert manager.verify(bearer(key.key)).code == "key_rotated"
    assert manager.verify(bearer(new.key)).code == "valid"


def test_a_key_in_its_grace_period_shows_as_rotated(manager: KeyManager) -> None:
    from keyturn import KeyFilter

    key = manager.create_key("x")
    manager.rotate(key.record.id, grace=timedelta(hours=1))
    old = manager.get(key.record.id)
    assert old.status() == "rotated" and old.usable()
    assert manager.verify(bearer(key.key)).code == "valid"
    rotated = manager.list_keys(KeyFilter(status="rotated"))
    assert [r.id for r in rotated] == [key.record.id]


# -- a check is never a use ----------------------------------------------------------------


def test_a_check_is_never_a_use(db_url: str) -> None:
    manager = KeyManager(db_url, usage_interval=60)
    try:
        issued = manager.create_key("m", scopes=["read"], credits=1, rate_limits=["1/hour"])
        for _ in range(5):
            assert manager.check(bearer(issued.key), scopes=["read"]).code == "valid"
            assert manager.check_key(issued.key).code == "valid"
        manager.usage.flush(final=True)
        record = manager.get(issued.record.id)
        assert record.credits == 1 and record.last_used_at is None
        assert manager.usage_counts(issued.record.id) == {}
        # The one real use then spends the credit and the rate limit, and a check sees it.
        assert manager.verify(bearer(issued.key)).code == "valid"
        assert manager.check(bearer(issued.key)).code == "rate_limited"
        assert manager.verify(bearer(issued.key)).code == "rate_limited"
    finally:
        manager.close()


def test_a_check_sees_spent_credits_and_refills(manager: KeyManager) -> None:
    spent = manager.create_key("spent", credits=0)
    assert manager.check(bearer(spent.key)).code == "usage_exceeded"
    daily = manager.create_key("daily", credits=0, refill="daily", refill_amount=3)
    assert manager.check(bearer(daily.key)).code == "usage_exceeded"
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert manager.check(bearer(daily.key), now=tomorrow).code == "valid"
    assert manager.get(daily.record.id).credits == 0


# -- the memo of accepted scope sets is bounded (issue 11, item 17) ----------------------


def test_client_chosen_scopes_cannot_grow_memory(manager: KeyManager) -> None:
    issued = manager.create_key("root", scopes=["*"])
    headers = [(b"authorization", f"Bearer {issued.key}".encode())]
    assert manager.verify_asgi(headers).code == "valid"

    def burst(start: int) -> None:
        for n in range(start, start + 20_000):
            assert manager.verify_asgi(headers, scopes=(f"scope:{n}",)).ok

    burst(0)  # warm up
    manager.verifications.flush()
    # Each snapshot follows a full collection, which also empties the interpreter's free
    # lists: CPython keeps up to 2,000 freed tuples of each length for reuse, and the log's
    # queued entries and written rows are tuples (~400 KB held there, bounded, not kept by
    # keyturn).
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    burst(100_000)
    # The verification log holds each decision until its writer has written it (a queue
    # with a bound of its own, tested apart): what is measured is what stays after that.
    # Closing it waits for a write in progress, then writes the rest.
    manager.verifications.close()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 512 * 1024, f"{grown} bytes kept for 20,000 distinct scope sets"


def test_an_actor_of_a_rotated_key_lives_until_its_grace_ends(manager: KeyManager) -> None:
    key = manager.create_key("w", scopes=["keys:write"], expires_in=None)
    manager.rotate(key.record.id, grace=timedelta(hours=1))
    actor = Actor.of_key(manager.get(key.record.id))
    assert actor.expires_at is not None
    assert actor.expires_at <= datetime.now(UTC) + timedelta(hours=1, seconds=5)
    with pytest.raises(NotPermitted):
        manager.admin.create(actor, NewKey("forever", expires_in=None))


def test_async_twins_answer_as_the_sync_ones(db_url: str) -> None:
    import asyncio

    from keyturn import AsyncKeyManager

    async def scenario() -> list[str]:
        am = AsyncKeyManager(db_url)
        issued = await am.create_key("a", scopes=["read"], credits=2)
        checked = await am.check_key(issued.key)
        await am.update(issued.record.id, name="b")
        rotated = await am.rotate(issued.record.id, grace=timedelta(0))
        listed = await am.list_keys()
        await am.aclose()
        return [checked.code, listed[0].name, rotated.record.name]

    assert asyncio.run(scenario()) == ["valid", "b", "b"]
