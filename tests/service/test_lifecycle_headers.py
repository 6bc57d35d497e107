"""The key's lifecycle told to its holder: expiry and rotation, through a real ``keyturn serve``.

A client holding a key that expires in five days, or that was rotated an hour ago, gets
``Keyturn-Key-Expires`` / ``Keyturn-Key-Rotated-Until`` on every accepted ``/auth`` answer
(the expiry from 30 days before it)
and the same facts in the verify API's JSON; ``keyturn doctor``, run as a user would against
that server, turns them into warnings. Refusals carry none of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from keyturn import generate_key
from tests.service.conftest import KEY_RE, ServeProcess, run_cli

DAY = 86400


@dataclass
class Served:
    url: str
    root_key: str = field(repr=False)
    tmp: Path

    def admin(self, method: str, path: str, **body: object) -> dict[str, object]:
        answer = httpx.request(
            method, f"{self.url}{path}", json=body or None,
            headers={"authorization": f"Bearer {self.root_key}"},
        )
        assert answer.is_success, answer.text
        result: dict[str, object] = answer.json()
        return result

    def make_key(self, **fields: object) -> tuple[str, dict[str, object]]:
        record = self.admin("POST", "/v1/keys", name="lifecycle", scopes=["api"], **fields)
        return str(record.pop("key")), record

    def auth(self, key: str | None, **headers: str) -> httpx.Response:
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        return httpx.get(f"{self.url}/auth", headers=headers)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("lifecycle")
    with ServeProcess("--db", f"sqlite:///{tmp / 'keyturn.db'}", cwd=tmp) as process:
        yield Served(process.url, KEY_RE.findall(process.stderr)[0], tmp)
        process.stop()


def when(value: str) -> datetime:
    return parsedate_to_datetime(value)


def seconds(iso: object) -> datetime:
    return datetime.fromisoformat(str(iso)).replace(microsecond=0)


def told(answer: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in answer.headers.items() if k.lower().startswith("keyturn-key-")}


def test_an_accepted_request_says_when_the_key_expires(served: Served) -> None:
    key, record = served.make_key(expires_in=5 * DAY + 3600)
    answer = served.auth(key)
    assert answer.status_code == 204
    assert told(answer).keys() == {"keyturn-key-expires"}
    # An HTTP-date (IMF-fixdate), at or before the stored moment, never after it.
    value = answer.headers["keyturn-key-expires"]
    assert value.endswith(" GMT") and when(value) == seconds(record["expires_at"])


def test_a_key_in_its_grace_period_says_until_when_it_works(served: Served) -> None:
    key, record = served.make_key(expires_in=30 * DAY)
    served.admin("POST", f"/v1/keys/{record['id']}/rotate", grace_seconds=3 * 3600)
    answer = served.auth(key)
    assert answer.status_code == 204
    shown = served.admin("GET", f"/v1/keys/{record['id']}")
    assert when(answer.headers["keyturn-key-rotated-until"]) == seconds(shown["grace_until"])
    assert when(answer.headers["keyturn-key-expires"]) == seconds(record["expires_at"])


def test_the_expiry_is_told_from_30_days_before_it(served: Served) -> None:
    """Further off, nothing is to be done about it: no header on the answers until then."""
    near, record = served.make_key(expires_in=30 * DAY - 60)
    assert when(served.auth(near).headers["keyturn-key-expires"]) == seconds(record["expires_at"])
    far, _ = served.make_key(expires_in=30 * DAY + 60)
    answer = served.auth(far)
    assert answer.status_code == 204 and told(answer) == {}
    default, record = served.make_key()  # the API's default lifetime: 90 days
    answer = served.auth(default)
    assert record["expires_at"] and answer.status_code == 204 and told(answer) == {}


def test_a_key_without_expiry_or_successor_gets_no_lifecycle_headers(served: Served) -> None:
    key, _ = served.make_key(expires_in=None)
    answer = served.auth(key)
    assert answer.status_code == 204 and told(answer) == {}


def test_refusals_tell_nothing_about_the_key(served: Served) -> None:
    """Known keys refused for any reason, with an expiry and a successor to tell of."""
    rotated, record = served.make_key(expires_in=5 * DAY)
    served.admin("POST", f"/v1/keys/{record['id']}/rotate", grace_seconds=3600)
    scoped = served.auth(rotated, **{"x-keyturn-required-scopes": "billing"})
    assert scoped.status_code == 403 and told(scoped) == {}
    revoked, record = served.make_key(expires_in=5 * DAY)
    served.admin("POST", f"/v1/keys/{record['id']}/revoke")
    answer = served.auth(revoked)
    assert answer.status_code == 401 and told(answer) == {}
    assert told(served.auth(generate_key())) == {}


def test_the_verify_api_tells_the_same(served: Served) -> None:
    key, record = served.make_key(expires_in=5 * DAY)
    served.admin("POST", f"/v1/keys/{record['id']}/rotate", grace_seconds=3600)
    result = served.admin("POST", "/v1/keys/verify", key=key)
    assert result["valid"] is True
    shown = served.admin("GET", f"/v1/keys/{record['id']}")
    verified = result["key"]
    assert isinstance(verified, dict)
    assert verified["rotated_until"] == shown["grace_until"]
    assert verified["expires_at"] == record["expires_at"]
    # Not on a refusal: the successor is not news to tell someone asking about a bad key.
    refused = served.admin("POST", "/v1/keys/verify", key=key, scopes=["billing"])
    assert refused["valid"] is False
    assert isinstance(refused["key"], dict) and refused["key"]["rotated_until"] is None


def doctor(served: Served, key: str, *args: str) -> tuple[int, str]:
    done = run_cli("doctor", f"{served.url}/auth", "--key-env", "SERVICE_KEY", *args,
                   env={"SERVICE_KEY": key}, cwd=served.tmp)
    assert key not in done.stdout + done.stderr
    return done.returncode, done.stdout


def test_doctor_warns_of_an_expiry_five_days_away(served: Served) -> None:
    key, record = served.make_key(expires_in=5 * DAY + 3600)
    day = f"{seconds(record['expires_at']):%Y-%m-%d}"
    code, out = doctor(served, key, "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    found = {f["code"]: f for f in report["findings"]}
    assert "auth_ok" in found
    assert found["key_expiry_near"]["severity"] == "warning"
    assert f"expires in 5 days ({day}" in found["key_expiry_near"]["detail"]
    code, text = doctor(served, key)
    assert code == 0 and f"this key expires in 5 days ({day}" in text


def test_doctor_says_switch_to_the_successor_before_the_grace_ends(served: Served) -> None:
    key, record = served.make_key(expires_in=90 * DAY)
    served.admin("POST", f"/v1/keys/{record['id']}/rotate", grace_seconds=6 * 3600)
    ends = seconds(served.admin("GET", f"/v1/keys/{record['id']}")["grace_until"])
    code, out = doctor(served, key, "--format", "json")
    assert code == 0, out
    found = {f["code"]: f for f in json.loads(out)["findings"]}
    detail = found["key_successor_exists"]["detail"]
    assert found["key_successor_exists"]["severity"] == "warning"
    assert f"switch to its successor before {ends:%Y-%m-%d %H:%M:%S} UTC" in detail
    assert "key_expiry_near" not in found  # the grace ends first: that is the news
    code, text = doctor(served, key)
    assert code == 0 and "this key was rotated: switch to its successor before" in text


def test_doctor_is_quiet_about_a_key_far_from_its_end(served: Served) -> None:
    key, _ = served.make_key(expires_in=200 * DAY)
    code, out = doctor(served, key, "--format", "json")
    assert code == 0
    codes = [f["code"] for f in json.loads(out)["findings"]]
    # The server tells the expiry from 30 days before it: nothing to find yet.
    assert "auth_ok" in codes
    assert not {"key_expiry_announced", "key_expiry_near", "key_successor_exists"} & set(codes)


def test_the_dates_are_utc_whatever_the_servers_zone(tmp_path: Path) -> None:
    """A server in another time zone sends the same GMT date (HTTP-dates are always GMT)."""
    with ServeProcess("--db", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path,
                      env={"TZ": "Pacific/Kiritimati"}) as process:
        served = Served(process.url, KEY_RE.findall(process.stderr)[0], tmp_path)
        key, record = served.make_key(expires_in=DAY)
        value = served.auth(key).headers["keyturn-key-expires"]
        process.stop()
    assert value.endswith(" GMT")
    assert when(value) == seconds(record["expires_at"])
    assert when(value).utcoffset() == timedelta(0) == (when(value).astimezone(UTC).utcoffset())
