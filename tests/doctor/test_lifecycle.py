"""The doctor reads what an accepting server says of the key's future (a loopback server).

A real HTTP server on 127.0.0.1 answers with ``Keyturn-Key-Expires`` and
``Keyturn-Key-Rotated-Until`` as a keyturn deployment (or a proxy in front of one) sends them;
the checkup runs at a fixed ``now`` so each sentence can be asserted exactly. The same
reading serves ``explain_response`` for a response a program already has.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from keyturn.doctor import diagnose, explain_response
from keyturn.doctor.report import Report
from tests.doctor.apis import Api, Reply, Respond, Seen

Serve = Callable[[Respond], Api]
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
KEY = "kt_live_" + "A" * 30


def answering(status: int, *headers: tuple[str, str]) -> Respond:
    def respond(seen: Seen) -> Reply:
        return Reply(status, {"ok": status < 400}, [*headers])

    return respond


def checkup(serve: Serve, status: int, *headers: tuple[str, str]) -> Report:
    api = serve(answering(status, *headers))
    return diagnose(api.url("/v1/things"), key=KEY, now=NOW)


def found(report: Report, code: str) -> str:
    return next(f.detail for f in report.findings if f.code == code)


def test_an_expiry_five_days_away_is_a_warning_with_the_date(serve: Serve) -> None:
    report = checkup(serve, 200, ("Keyturn-Key-Expires", "Mon, 07 Dec 2026 12:00:00 GMT"))
    assert report.ok  # a warning: the key works today
    assert found(report, "key_expiry_near") == (
        "the server says this key expires in 5 days 3 hours (2026-12-07, 2026-12-07 12:00:00 UTC)"
    )
    assert next(f for f in report.findings if f.code == "key_expiry_near").severity == "warning"


def test_the_time_left_is_not_said_a_whole_day_short(serve: Serve) -> None:
    """A key made for 5 days a second ago has 4 days 23 hours 59 minutes left: "expires in
    4 days" (whole days, rounded down) told its holder a day less than the truth."""
    report = checkup(serve, 200, ("Keyturn-Key-Expires", "Mon, 07 Dec 2026 08:59:59 GMT"))
    assert "expires in 4 days 23 hours (2026-12-07" in found(report, "key_expiry_near")
    report = checkup(serve, 200, ("Keyturn-Key-Rotated-Until", "Wed, 02 Dec 2026 09:14:59 GMT"))
    assert "(in 14 minutes 59 seconds)" in found(report, "key_successor_exists")


def test_an_expiry_months_away_is_information(serve: Serve) -> None:
    report = checkup(serve, 200, ("Keyturn-Key-Expires", "Sun, 28 Feb 2027 00:00:00 GMT"))
    assert "expires in 87 days 15 hours (2027-02-28" in found(report, "key_expiry_announced")
    assert "key_expiry_near" not in report.codes


def test_a_rotated_key_is_told_to_switch_before_its_grace_ends(serve: Serve) -> None:
    report = checkup(
        serve, 200,
        ("Keyturn-Key-Expires", "Sun, 28 Feb 2027 00:00:00 GMT"),
        ("Keyturn-Key-Rotated-Until", "Wed, 02 Dec 2026 21:00:00 GMT"),
    )
    assert found(report, "key_successor_exists") == (
        "the server says this key was rotated: switch to its successor before "
        "2026-12-02 21:00:00 UTC (in 12 hours); after that this key is refused"
    )
    # The expiry comes after the grace period's end: only the earlier moment matters.
    assert not {"key_expiry_near", "key_expiry_announced"} & set(report.codes)


def test_an_expiry_before_the_grace_ends_is_the_deadline(serve: Serve) -> None:
    report = checkup(
        serve, 200,
        ("Keyturn-Key-Expires", "Thu, 03 Dec 2026 09:00:00 GMT"),
        ("Keyturn-Key-Rotated-Until", "Sat, 05 Dec 2026 09:00:00 GMT"),
    )
    assert "before 2026-12-03 09:00:00 UTC (in 1 day)" in found(report, "key_successor_exists")
    assert "expires in 1 day" in found(report, "key_expiry_near")


def test_a_value_that_is_not_a_date_is_named_not_guessed(serve: Serve) -> None:
    report = checkup(serve, 200, ("Keyturn-Key-Expires", "in five days"))
    assert "Keyturn-Key-Expires: 'in five days' is not an HTTP-date" in found(
        report, "lifecycle_header_unreadable"
    )
    assert not {"key_expiry_near", "key_expiry_announced"} & set(report.codes)


def test_a_refusal_is_not_read_for_lifecycle(serve: Serve) -> None:
    """Whatever a server sends with a 401, the doctor reports the refusal, not a date."""
    report = checkup(serve, 401, ("Keyturn-Key-Expires", "Mon, 07 Dec 2026 12:00:00 GMT"),
                     ("WWW-Authenticate", 'Bearer realm="api", error="invalid_token"'))
    assert not report.ok
    assert "key_expiry_near" not in report.codes


def test_a_response_in_hand_is_read_the_same_way(serve: Serve) -> None:
    api = serve(answering(200, ("Keyturn-Key-Rotated-Until", "Wed, 02 Dec 2026 21:00:00 GMT")))
    response = httpx.get(api.url("/v1/things"), headers={"authorization": f"Bearer {KEY}"})
    report = explain_response(response, now=NOW)
    assert "(in 12 hours)" in found(report, "key_successor_exists")
