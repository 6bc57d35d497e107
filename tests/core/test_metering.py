"""Rate limits and usage credits, against every engine (credits) and every limiter storage."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from keyturn import AsyncKeyManager, InvalidValue, KeyManager, render
from keyturn._ratelimit import RateLimiter, normalize_rate_limits
from tests.conftest import REDIS_URL


def bearer(key: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {key}")]


def test_unmetered_keys_keep_the_fast_path_and_metered_keys_leave_it(
    manager: KeyManager,
) -> None:
    plain = manager.create_key("plain").record
    assert not plain.metered and math.isfinite(plain.live_until)
    for metering in ({"rate_limits": ["5/second"]}, {"credits": 3}):
        record = manager.create_key("metered", **metering).record  # type: ignore[arg-type]
        assert record.metered and record.live_until == -math.inf


def test_n_credits_serve_exactly_n_requests_under_concurrency(db_url: str) -> None:
    credits, threads, tries = 30, 6, 10
    managers = [KeyManager(db_url), KeyManager(db_url)]
    issued = managers[0].create_key("metered", credits=credits)
    codes: Counter[str] = Counter()
    lock = threading.Lock()

    def spend(m: KeyManager) -> None:
        for _ in range(tries):
            code = m.verify(bearer(issued.key)).code
            with lock:
                codes[code] += 1

    workers = [threading.Thread(target=spend, args=(managers[i % 2],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert codes == {"valid": credits, "usage_exceeded": threads * tries - credits}
    assert managers[1].get(issued.record.id).credits == 0
    for m in managers:
        m.close()


def test_spent_credits_answer_429_without_a_challenge_and_refill_daily(
    manager: KeyManager,
) -> None:
    issued = manager.create_key("daily", credits=2, refill="daily")
    assert [manager.verify(bearer(issued.key)).code for _ in range(3)] == [
        "valid",
        "valid",
        "usage_exceeded",
    ]
    answer = render(manager.verify(bearer(issued.key)))
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert answer.status == 429 and answer.header("www-authenticate") is None
    assert abs(int(answer.header("retry-after") or 0) - (midnight - now).total_seconds()) < 5
    assert answer.header("ratelimit-remaining") == "0"
    assert answer.body["code"] == "usage_exceeded" and "refilled" in answer.body["hint"]
    tomorrow = now + timedelta(days=1)
    assert manager.verify(bearer(issued.key), now=tomorrow).code == "valid"
    assert manager.get(issued.record.id).credits == 1  # refilled to 2, one spent


def test_credits_without_refill_say_not_to_retry(manager: KeyManager) -> None:
    issued = manager.create_key("once", credits=0)
    decision = manager.verify(bearer(issued.key))
    assert decision.code == "usage_exceeded" and "do not retry" in decision.hint
    answer = render(decision)
    assert answer.header("retry-after") is None and answer.header("ratelimit-reset") is None


def test_a_rate_limit_answers_429_with_ratelimit_headers(manager: KeyManager) -> None:
    issued = manager.create_key("limited", rate_limits=["3 per minute"])
    assert issued.record.rate_limits == ("3/minute",)
    codes = [manager.verify(bearer(issued.key)).code for _ in range(5)]
    assert codes == ["valid"] * 3 + ["rate_limited"] * 2
    answer = render(manager.verify(bearer(issued.key)))
    assert answer.status == 429 and answer.header("www-authenticate") is None
    assert answer.header("ratelimit-limit") == "3"
    assert answer.header("ratelimit-remaining") == "0"
    assert 1 <= int(answer.header("retry-after") or 0) <= 60
    assert answer.header("ratelimit-reset") == answer.header("retry-after")
    assert answer.header("content-type") == "application/problem+json"
    assert "3/minute" in answer.body["detail"]


def test_a_refused_rate_limit_spends_no_credit(manager: KeyManager) -> None:
    issued = manager.create_key("both", rate_limits=["2/minute"], credits=10)
    codes = [manager.verify(bearer(issued.key)).code for _ in range(4)]
    assert codes == ["valid", "valid", "rate_limited", "rate_limited"]
    assert manager.get(issued.record.id).credits == 8


def test_several_limits_are_counted_shortest_window_first() -> None:
    assert normalize_rate_limits(["10000/day", "100/second", "50/5 minutes"]) == (
        "100/second",
        "50/5 minutes",
        "10000/day",
    )
    limiter = RateLimiter()
    hits = [limiter.hit("key_a", ("2/second", "3/day")) for _ in range(3)]
    assert hits[:2] == [None, None]
    assert hits[2] is not None and hits[2].policy == "2/second"


@pytest.mark.parametrize(
    ("written", "stored"),
    [("100 per second", "100/second"), ("3/Hours", "3/hour"), (" 50 / 5 minutes", "50/5 minutes"),
     ("1/1 day", "1/day"), ("7/year", "7/year")],
)
def test_a_rate_limit_is_stored_one_way(written: str, stored: str) -> None:
    assert normalize_rate_limits([written]) == (stored,)


@pytest.mark.parametrize(
    "bad", ["lots", "", "0/second", "1/0 minutes", "5/fortnight", "1/second;2/day", "-1/day"]
)
def test_a_bad_rate_limit_says_how_to_write_one(bad: str) -> None:
    with pytest.raises(InvalidValue, match="rate limit"):
        normalize_rate_limits([bad])


@pytest.mark.redis
def test_a_redis_window_ends_and_a_peek_counts_nothing(redis_prefix: str) -> None:
    limiter = RateLimiter(REDIS_URL, key_prefix=redis_prefix)
    assert limiter.check()
    assert [limiter.peek("key_p", ("1/second",)) for _ in range(3)] == [None] * 3
    assert limiter.hit("key_p", ("1/second",)) is None
    refused = limiter.hit("key_p", ("1/second",))
    assert refused is not None and refused.remaining == 0 and 0 < refused.reset <= 1
    assert limiter.peek("key_p", ("1/second",)) is not None
    time.sleep(refused.reset + 0.05)
    assert limiter.hit("key_p", ("1/second",)) is None


def test_rate_limits_hold_across_managers_sharing_redis(db_url: str, redis_prefix: str) -> None:
    managers = [
        KeyManager(db_url, limiter=RateLimiter(REDIS_URL, key_prefix=redis_prefix))
        for _ in range(2)
    ]
    issued = managers[0].create_key("shared", rate_limits=["7/minute"])
    codes = Counter(managers[i % 2].verify(bearer(issued.key)).code for i in range(20))
    assert codes == {"valid": 7, "rate_limited": 13}
    for m in managers:
        m.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rate_limits": ["lots"]}, "invalid rate limit"),
        ({"rate_limits": ["0/second"]}, "at least 1"),
        ({"credits": -1}, "zero or more"),
        ({"refill": "daily"}, "needs an amount"),
        ({"credits": 5, "refill": "hourly"}, "daily or monthly"),
        ({"refill_amount": 5}, "needs a refill period"),
    ],
)
def test_bad_metering_is_refused_with_a_reason(
    manager: KeyManager, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        manager.create_key("x", **options)  # type: ignore[arg-type]


def test_metering_can_be_changed_and_is_seen_at_once(manager: KeyManager) -> None:
    issued = manager.create_key("x")
    assert manager.verify(bearer(issued.key)).code == "valid"  # cached, unmetered
    manager.update(issued.record.id, credits=1, refill="monthly")
    record = manager.get(issued.record.id)
    assert (record.credits, record.refill, record.refill_amount) == (1, "monthly", 1)
    assert [manager.verify(bearer(issued.key)).code for _ in range(2)] == [
        "valid",
        "usage_exceeded",
    ]
    manager.update(issued.record.id, credits=None, rate_limits=["1/hour"])
    record = manager.get(issued.record.id)
    assert (record.credits, record.refill, record.rate_limits) == (None, None, ("1/hour",))
    assert [manager.verify(bearer(issued.key)).code for _ in range(2)] == [
        "valid",
        "rate_limited",
    ]
    manager.update(issued.record.id, rate_limits=[])
    assert manager.verify(bearer(issued.key)).code == "valid"
    actions = [e.details for e in manager.audit(key_id=issued.record.id, action="key.update")]
    assert {"credits": 1, "refill": "monthly", "refill_amount": 1}.items() <= actions[-1].items()


def test_rotation_carries_the_metering_over(manager: KeyManager) -> None:
    old = manager.create_key("svc", rate_limits=["9/minute"], credits=4, refill="daily")
    new = manager.rotate(old.record.id).record
    assert (new.rate_limits, new.credits, new.refill, new.refill_amount) == (
        ("9/minute",),
        4,
        "daily",
        4,
    )


def test_counts_by_outcome_are_batched_and_flushed(db_url: str) -> None:
    m = KeyManager(db_url, usage_interval=60)
    live = m.create_key("live", scopes=["read"])
    limited = m.create_key("limited", rate_limits=["1/minute"])
    for _ in range(3):
        m.verify(bearer(live.key))
    m.verify(bearer(live.key), scopes=["write"])
    m.verify(bearer(limited.key))
    m.verify(bearer(limited.key))
    assert m.usage_counts(live.record.id) == {}  # nothing written by the verifies
    m.usage.flush(final=True)
    assert m.usage_counts(live.record.id) == {"valid": 3, "insufficient_scope": 1}
    assert m.usage_counts(limited.record.id) == {"valid": 1, "rate_limited": 1}
    m.close()


def test_the_async_manager_meters_off_the_event_loop(db_url: str) -> None:
    async def scenario() -> list[str]:
        am = AsyncKeyManager(db_url)
        issued = await am.create_key("a", credits=2, rate_limits=["100/second"])
        raw = [(b"authorization", f"Bearer {issued.key}".encode())]
        codes = [(await am.verify_asgi(raw)).code for _ in range(3)]
        codes.append((await am.verify_key(issued.key)).code)
        await am.aclose()
        return codes

    assert asyncio.run(scenario()) == ["valid", "valid", "usage_exceeded", "usage_exceeded"]
