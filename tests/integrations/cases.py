"""The one table of requests every framework integration must answer identically.

Each framework's test module builds the same little app - ``/items`` needs scope
``items:read``, ``/admin`` needs ``admin``, ``/health`` is open; a handler that runs answers
200 with the caller's key as JSON - sends every case through its own test client, and
hands what came back to ``check``. So a difference between frameworks in a status, a
catalogue code or a ``WWW-Authenticate`` header fails a test by name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TypeVar

from keyturn import Actor, KeyManager, generate_key, hash_key
from keyturn.record import KeyRecord

T = TypeVar("T")

REALM = "keyturn-test"
OPEN_PATHS = ["/health"]
PATH_SCOPES = {"/items": ["items:read"], "/admin": ["admin"]}


@dataclass(frozen=True)
class Case:
    id: str
    code: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    query: str = ""
    path: str = "/items"
    error: str | None = None  # the challenge's RFC 6750 error parameter, if any
    challenge_has: tuple[str, ...] = ()  # more fragments the challenge must contain
    challenge: str | None = None  # the exact challenge, where it is fully determined
    quota: bool = False  # a metered refusal: RateLimit headers, and no challenge
    repeat: int = 1  # send it this many times; the last answer is checked


def bearer(label: str) -> tuple[tuple[str, str], ...]:
    return (("Authorization", f"Bearer {{{label}}}"),)


CASES: tuple[Case, ...] = (
    Case(
        "missing",
        "missing_credentials",
        401,
        challenge=f'Bearer realm="{REALM}"',
    ),
    Case(
        "unsupported_scheme_basic",
        "unsupported_scheme",
        401,
        headers=(("Authorization", "Basic dXNlcjpwYXNzd29yZA=="),),
        challenge_has=("'Basic' is not supported",),
    ),
    Case(
        "unsupported_scheme_bare_key",
        "unsupported_scheme",
        401,
        headers=(("Authorization", "{valid}"),),
        challenge_has=("no scheme",),
    ),
    Case(
        "malformed_quoted_key",
        "malformed_credentials",
        400,
        headers=(("Authorization", 'Bearer "{valid}"'),),
        error="invalid_request",
        challenge_has=("wrapped in quotes",),
    ),
    Case(
        "malformed_scheme_in_api_key_header",
        "malformed_credentials",
        400,
        headers=(("X-API-Key", "Bearer {valid}"),),
        error="invalid_request",
    ),
    Case(
        "conflicting_two_keys",
        "conflicting_credentials",
        400,
        headers=(("Authorization", "Bearer {valid}"), ("x-api-key", "{other}")),
        error="invalid_request",
    ),
    Case(
        "key_in_query",
        "credentials_in_query",
        400,
        query="api_key={valid}",
        error="invalid_request",
    ),
    Case(
        "malformed_key_truncated",
        "malformed_key",
        401,
        headers=bearer("truncated"),
        error="invalid_token",
        challenge_has=("cut off",),
    ),
    Case(
        "malformed_key_other_provider",
        "malformed_key",
        401,
        headers=bearer("openai"),
        error="invalid_token",
        challenge_has=("OpenAI",),
    ),
    Case(
        "checksum_mismatch",
        "checksum_mismatch",
        401,
        headers=bearer("typo"),
        error="invalid_token",
    ),
    Case("unknown_key", "unknown_key", 401, headers=bearer("unknown"), error="invalid_token"),
    Case("expired", "key_expired", 401, headers=bearer("expired"), error="invalid_token"),
    Case("revoked", "key_revoked", 401, headers=bearer("revoked"), error="invalid_token"),
    Case(
        "disabled",
        "key_disabled",
        401,
        headers=bearer("disabled"),
        error="invalid_token",
        challenge_has=('error_description="the key is disabled"',),
    ),
    Case("rotated", "key_rotated", 401, headers=bearer("rotated"), error="invalid_token"),
    Case(
        "insufficient_scope",
        "insufficient_scope",
        403,
        headers=bearer("valid"),
        path="/admin",
        error="insufficient_scope",
        challenge_has=('scope="admin"',),
    ),
    Case("credits_used_up", "usage_exceeded", 429, headers=bearer("spent"), quota=True),
    Case(
        "rate_limited",  # a limit of 1 a day: the second request is one too many
        "rate_limited",
        429,
        headers=bearer("limited"),
        quota=True,
        repeat=2,
    ),
    Case("valid_bearer", "valid", 200, headers=bearer("valid")),
    # Expiring in five days: accepted, and the response says when (a 90-day key's does not).
    Case("valid_expiring_soon", "valid", 200, headers=bearer("soon")),
    # A key rotated an hour ago, in its grace period: accepted, and the response says so.
    Case("valid_in_grace", "valid", 200, headers=bearer("retiring")),
    # A scope held through a role counts as the key's own, on every face.
    Case("valid_scope_through_a_role", "valid_role", 200, headers=bearer("roled"), path="/admin"),
    Case("valid_bearer_lowercase", "valid", 200, headers=(("authorization", "bearer {valid}"),)),
    Case("valid_x_api_key", "valid", 200, headers=(("X-API-Key", "{valid}"),)),
    Case(
        "valid_same_key_in_both_headers",  # Swagger UI with both schemes authorised
        "valid",
        200,
        headers=(("Authorization", "Bearer {valid}"), ("x-api-key", "{valid}")),
    ),
    Case("open_path_without_key", "open", 200, path="/health"),
    Case("open_path_ignores_bad_key", "open", 200, path="/health", headers=bearer("typo")),
)


@dataclass
class Keys:
    """Keys in every state, issued into a real SQLite store."""

    manager: KeyManager
    store_url: str
    values: dict[str, str]
    valid_id: str
    ids: dict[str, str] = field(default_factory=dict)  # label -> id, of the accepted keys

    def headers(self, case: Case) -> list[tuple[str, str]]:
        return [(name, value.format(**self.values)) for name, value in case.headers]

    def header_dict(self, case: Case) -> dict[str, str]:
        pairs = self.headers(case)
        assert len({n.lower() for n, _ in pairs}) == len(pairs), "no duplicate names here"
        return dict(pairs)

    def query(self, case: Case) -> str:
        return case.query.format(**self.values)

    def url(self, case: Case) -> str:
        query = self.query(case)
        return f"{case.path}?{query}" if query else case.path

    def secrets(self) -> list[str]:
        """The strings no response may contain: every key sent, and each one's middle."""
        found = []
        for value in self.values.values():
            found.append(value)
            tail = value.rpartition("_")[2]
            if len(tail) > 16:
                found.append(tail[4:-4])
        return found


def issue_keys(db: Path) -> Keys:
    url = f"sqlite:///{db}"
    manager = KeyManager(url)
    valid = manager.create_key(
        "reader", scopes=["items:read"], owner="alice", metadata={"plan": "pro"}
    )
    other = manager.create_key("other", scopes=["items:read"])
    expired = manager.create_key("expired")
    manager.update(expired.record.id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    revoked = manager.create_key("revoked")
    manager.revoke(revoked.record.id)
    disabled = manager.create_key("disabled")
    manager.disable(disabled.record.id)
    rotated = manager.create_key("rotated")
    manager.rotate(rotated.record.id, grace=timedelta(0))
    retiring = manager.create_key(
        "reader", scopes=["items:read"], owner="alice", metadata={"plan": "pro"}
    )
    manager.rotate(retiring.record.id, grace=timedelta(hours=2))
    soon = manager.create_key(
        "reader", scopes=["items:read"], owner="alice", metadata={"plan": "pro"},
        expires_in=timedelta(days=5),
    )
    spent = manager.create_key("spent", scopes=["items:read"], credits=0)
    limited = manager.create_key("limited", scopes=["items:read"], rate_limits=["1/day"])
    manager.roles.put(Actor.operator("test"), "staff", ["admin"])
    roled = manager.create_key("staff member", scopes=["items:read"], roles=["staff"])
    last = valid.key[-1]
    values = {
        "valid": valid.key,
        "other": other.key,
        "expired": expired.key,
        "revoked": revoked.key,
        "disabled": disabled.key,
        "rotated": rotated.key,
        "retiring": retiring.key,
        "soon": soon.key,
        "spent": spent.key,
        "limited": limited.key,
        "roled": roled.key,
        "unknown": generate_key(),
        "typo": valid.key[:-1] + ("A" if last != "A" else "B"),
        "truncated": valid.key[:-5],
        "openai": "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    }
    ids = {
        "valid": valid.record.id,
        "retiring": retiring.record.id,
        "soon": soon.record.id,
        "roled": roled.record.id,
    }
    return Keys(manager, url, values, valid.record.id, ids)


@dataclass
class Observed:
    """What a client saw, whichever framework answered."""

    status: int
    headers: Mapping[str, str]  # names lower-case
    body: bytes
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads(self.body)


def observed(status: int, pairs: Iterable[tuple[str, str]], body: bytes) -> Observed:
    raw = [(k.lower(), v) for k, v in pairs]
    return Observed(status, dict(raw), body, raw)


def check(case: Case, seen: Observed, keys: Keys, *, problem_json: bool = True) -> None:
    """Assert what a user of the API would notice for ``case``."""
    text = seen.body.decode("utf-8", "replace") + repr(seen.raw_headers)
    for secret in keys.secrets():
        assert secret not in text, "a response must never echo a key"
    assert hash_key(keys.values["valid"]) not in text, "nor a key's hash"
    assert seen.status == case.status, (seen.status, seen.body[:300])
    lifecycle = {k: v for k, v in seen.raw_headers if k.startswith("keyturn-key-")}
    if case.code == "open":
        assert seen.json() == {"ok": True}
        assert "www-authenticate" not in seen.headers
        assert lifecycle == {}, "an open path says nothing about a key"
        return
    if case.code == "valid":
        body = seen.json()
        record = keys.manager.get(keys.ids[_label(case)])
        assert body["id"] == record.id
        assert lifecycle == expected_lifecycle(record), lifecycle
        if _label(case) == "soon":  # the one case the expiry is due in
            assert list(lifecycle) == ["keyturn-key-expires"], lifecycle
        assert body["name"] == "reader" and body["owner"] == "alice"
        assert body["scopes"] == ["items:read"] and body["metadata"] == {"plan": "pro"}
        assert "key_hash" not in seen.body.decode()
        assert "www-authenticate" not in seen.headers
        return
    if case.code == "valid_role":
        body = seen.json()
        record = keys.manager.get(keys.ids["roled"])
        assert body["id"] == record.id and body["roles"] == ["staff"]
        assert body["scopes"] == ["admin", "items:read"]  # effective: its own and its role's
        assert lifecycle == expected_lifecycle(record), lifecycle
        return
    assert lifecycle == {}, "a refusal never tells anything about the key"
    body = seen.json()
    assert body["code"] == case.code
    assert body["status"] == case.status
    assert body["type"] == f"urn:keyturn:outcome:{case.code}"
    assert body["title"] and body["detail"] and body["hint"]
    if case.code == "insufficient_scope":
        assert body["required_scopes"] == ["admin"]
    names = [name for name, _ in seen.raw_headers]
    assert names.count("content-type") == 1
    if case.quota:
        # The credentials are fine: no challenge, but when to come back.
        assert "www-authenticate" not in seen.headers
        if case.code == "rate_limited":
            assert int(seen.headers["retry-after"]) > 0
        if problem_json:
            assert seen.headers["ratelimit-remaining"] == "0"
            assert seen.headers["content-type"] == "application/problem+json"
        return
    challenge = seen.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="{REALM}"')
    if case.challenge is not None:
        assert challenge == case.challenge
    if case.error is None:
        assert "error=" not in challenge.replace("error_description=", "")
    else:
        assert f'error="{case.error}"' in challenge
    for fragment in case.challenge_has:
        assert fragment in challenge
    assert names.count("www-authenticate") == 1
    if problem_json:
        assert seen.headers["content-type"] == "application/problem+json"
        assert seen.headers["cache-control"] == "no-store"


def _label(case: Case) -> str:
    """The key a case sends (``{valid}`` in its headers: ``valid``)."""
    found = re.findall(r"\{(\w+)\}", " ".join(v for _, v in case.headers))
    assert len(set(found)) == 1, case
    return str(found[0])


def expected_lifecycle(record: KeyRecord) -> dict[str, str]:
    """The lifecycle headers a client must see for ``record``, as HTTP-dates cut to the
    second (RFC 9110): in a rotation's grace period, its end and the key's expiry; else
    the expiry once it is 30 days away or less; else nothing."""
    expected = {}
    rotated = record.replaced_by is not None and record.grace_until is not None
    if record.expires_at is not None and (
        rotated or record.expires_at - datetime.now(UTC) <= timedelta(days=30)
    ):
        expected["keyturn-key-expires"] = record.expires_at
    if rotated:
        assert record.grace_until is not None
        expected["keyturn-key-rotated-until"] = record.grace_until
    return {
        name: format_datetime(moment.astimezone(UTC).replace(microsecond=0), usegmt=True)
        for name, moment in expected.items()
    }


def last(case: Case, send: Callable[[], T]) -> T:
    """Send ``case`` as often as it says; the last answer is the one to check."""
    for _ in range(case.repeat - 1):
        send()
    return send()


def case_ids(cases: tuple[Case, ...] = CASES) -> list[str]:
    return [c.id for c in cases]
