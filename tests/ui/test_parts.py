"""The dashboard's pure parts: sessions, CSRF, the chart, pasted requests, usage series."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from keyturn._redact import Redactor
from keyturn.ui.chart import build_chart, css_classes, nice_ceiling
from keyturn.ui.csrf import token_matches
from keyturn.ui.diagnose import PasteError, masked_headers, parse_masked, parse_pasted
from keyturn.ui.sessions import SessionStore
from keyturn.ui.usage_data import daily_usage

KEY = "kt_live_" + "a" * 30 + "b" * 6


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sessions_end_after_the_idle_time_and_activity_extends_them() -> None:
    clock = Clock()
    store = SessionStore(60, clock=clock)
    session = store.sign_in(None, "key_1", "hash")
    clock.now += 59
    assert store.get(session.id) is session
    clock.now += 59
    assert store.get(session.id) is session
    clock.now += 60
    assert store.get(session.id) is None
    assert len(store) == 0


def test_sign_in_replaces_the_anonymous_session_and_its_token() -> None:
    store = SessionStore(60, clock=Clock())
    anonymous = store.anonymous()
    signed = store.sign_in(anonymous, "key_1", "hash")
    assert store.get(anonymous.id) is None
    assert signed.id != anonymous.id and signed.csrf != anonymous.csrf
    assert store.drop_key("key_1") == 1
    assert store.get(signed.id) is None


def test_a_flood_of_anonymous_sessions_never_pushes_out_a_signed_in_one() -> None:
    store = SessionStore(60, clock=Clock(), anonymous_limit=10, signed_in_limit=10)
    admin = store.sign_in(None, "key_1", "hash")
    for _ in range(1000):
        store.anonymous()
    assert len(store) == 11
    assert store.get(admin.id) is admin


def test_unknown_and_empty_session_ids() -> None:
    store = SessionStore(60)
    assert store.get(None) is None
    assert store.get("") is None
    assert store.get("nope") is None


def test_csrf_tokens_compare_exactly() -> None:
    assert token_matches("abc", "abc")
    for given in (None, "", "ab", "abcd", "ABC", "ab\u00e9"):
        assert not token_matches("abc", given)


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (2, 2), (3, 5), (7, 10), (11, 20), (99, 100), (101, 200)]
)
def test_axis_maxima_are_round(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling


def test_the_chart_stacks_outcomes_per_day() -> None:
    days = [date(2030, 1, d) for d in (1, 2, 3)]
    chart = build_chart(days, {"valid": [4, 0, 1], "key_revoked": [1, 0, 0], "unused": [0, 0, 0]})
    assert chart.total == 6
    assert [s.outcome for s in chart.series] == ["valid", "key_revoked"]  # zero series dropped
    assert chart.series[0].css == "o-valid"
    assert chart.summary == "6 requests from 2030-01-01 to 2030-01-03: 5 valid, 1 key_revoked."
    first_day = [b for b in chart.bars if b.label.startswith("2030-01-01")]
    assert len(first_day) == 2
    valid, revoked = first_day
    assert valid.y + valid.height == pytest.approx(chart.baseline)  # valid at the bottom
    assert revoked.y + revoked.height == pytest.approx(valid.y)  # stacked on top
    assert revoked.y == pytest.approx(10 + (chart.baseline - 10) * (1 - 5 / 5))  # the top
    assert not [b for b in chart.bars if b.label.startswith("2030-01-02")]
    assert all(b.height > 0 for b in chart.bars)


def test_an_empty_chart_says_so() -> None:
    chart = build_chart([date(2030, 1, 1)], {})
    assert chart.bars == () and chart.total == 0
    assert chart.summary == "No requests recorded from 2030-01-01 to 2030-01-01."
    assert build_chart([], {}).summary == "No days to show."


def test_palette_slots_cycle_and_valid_is_always_green() -> None:
    classes = css_classes(["a", "valid", *"bcdefgh"])
    assert classes["valid"] == "o-valid"
    assert classes["a"] == "o-1" and classes["g"] == "o-1"  # a seventh other: the palette wraps


def test_daily_counts_from_totals_since_each_day() -> None:
    per_day = {
        date(2030, 1, 1): {"valid": 2},
        date(2030, 1, 3): {"valid": 1, "key_expired": 4},
    }

    def usage(key_id: str, since: date | None = None) -> dict[str, int]:
        assert key_id == "key_1"
        totals: dict[str, int] = {}
        for day, counts in per_day.items():
            if since is None or day >= since:
                for outcome, n in counts.items():
                    totals[outcome] = totals.get(outcome, 0) + n
        return totals

    span, counts = daily_usage(usage, "key_1", 3, date(2030, 1, 3))
    assert span == [date(2030, 1, 1), date(2030, 1, 2), date(2030, 1, 3)]
    assert counts == {"key_expired": [0, 0, 4], "valid": [2, 0, 1]}


def test_pasted_requests_as_tools_copy_them() -> None:
    pasted = parse_pasted(
        "GET /v1/orders?page=2&api_key=abc HTTP/1.1\r\n"
        "Host: api.example.com\r\n"
        "> Authorization: Bearer xyz\r\n"
        "-H 'X-Api-Key: k'\r\n"
        ":authority: api.example.com\r\n"
        "\r\n"
        "not a header line\r\n"
        "Bad Name: x\r\n"
    )
    assert pasted.headers == [
        ("Host", "api.example.com"),
        ("Authorization", "Bearer xyz"),
        ("X-Api-Key", "k"),
    ]
    assert pasted.query == "page=2&api_key=abc"
    assert pasted.ignored == [7, 8]
    http2 = parse_pasted(":method: GET\n:path: /a?key=1\nauthorization: Bearer q")
    assert http2.query == "key=1" and http2.headers == [("authorization", "Bearer q")]
    with pytest.raises(PasteError):
        parse_pasted("\n".join(f"X-H{i}: v" for i in range(200)))


def test_credentials_are_masked_before_they_are_shown() -> None:
    shown = masked_headers(
        [
            ("Authorization", f"Bearer {KEY}"),
            ("authorization", "Basic dXNlcjpwYXNzd29yZA=="),
            ("X-Api-Key", "sk-live-0123456789abcdefghij"),
            ("Cookie", "session=0123456789abcdef0123"),
            ("Referer", f"https://example.com/?k={KEY}"),
            ("Accept", "application/json"),
        ],
        ["x-api-key"],
        Redactor(["api_key"]),
    )
    text = repr(shown)
    assert KEY not in text
    assert "dXNlcjpwYXNzd29yZA==" not in text
    assert "0123456789abcdefghij" not in text
    assert "0123456789abcdef0123" not in text
    assert ("Accept", "application/json") in shown
    assert shown[0] == ("Authorization", "Bearer kt_live_aaaa…bbbb")


def test_masked_keys_are_recognised() -> None:
    assert parse_masked("kt_live_4fQz…9aB1") == ("kt_live", "4fQz", "9aB1")
    assert parse_masked(" kt_test_4fQz...9aB1 ") == ("kt_test", "4fQz", "9aB1")
    for text in ("kt_live_4fQz9aB1", "kt_live_4fQ…9aB1", KEY, "…", ""):
        assert parse_masked(text) is None


def test_charging_a_key_for_a_scope_it_lacks_refuses_it_clearly(tmp_path: Path) -> None:
    """Pages check the scope before charging; a page that did not gets keyturn's own
    refusal for the missing scope (a 403 page), never a failed check deep inside."""
    import asyncio
    import time
    from concurrent.futures import ThreadPoolExecutor

    from keyturn import AsyncKeyManager
    from keyturn.ui.admin import Admin, charge
    from keyturn.ui.sessions import Session

    async def scenario() -> list[tuple[bool, str, str]]:
        manager = AsyncKeyManager(f"sqlite:///{tmp_path / 'keyturn.db'}")
        issued = await manager.create_key("reader", scopes=["keys:read"], credits=5)
        admin = Admin(Session("s", "c", time.time(), issued.record.id), issued.record)
        lacking = await charge(manager, admin, "keys:write")
        held = await charge(manager, admin, "keys:read")
        await manager.aclose()
        return [(d.ok, d.code, d.detail) for d in (lacking, held)]

    # A thread of its own: a browser test in the same worker may hold a running loop here.
    with ThreadPoolExecutor(1) as pool:
        lacking, held = pool.submit(asyncio.run, scenario()).result()
    assert lacking == (False, "insufficient_scope", "the key lacks the scope keys:write")
    assert held[:2] == (True, "valid")
