"""Every outcome end to end through the real ``keyturn`` command, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from keyturn import KeyManager
from keyturn._ratelimit import RateLimiter
from keyturn.outcomes import CATALOGUE
from keyturn.record import utcnow
from tests.conftest import REDIS_URL
from tests.core.rfc6750 import parse_challenge

KEYTURN = [sys.executable, "-m", "keyturn"]


def run(
    *args: str, db: str, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KEYTURN_DATABASE_URL": db, "NO_COLOR": "1", **(env or {})}
    result = subprocess.run([*KEYTURN, *args], capture_output=True, text=True, env=env, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def header_pairs(args: list[str]) -> list[tuple[str, str]]:
    """The ``-H 'Name: value'`` arguments of a case as header pairs."""
    values = [args[i + 1] for i, flag in enumerate(args) if flag == "-H"]
    return [(name, value.strip()) for name, _, value in (v.partition(":") for v in values)]


def create(db: str, *args: str) -> dict[str, Any]:
    out = run("keys", "create", "--format", "json", *args, db=db, check=True)
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Keys in every state, made through the library (the command under test is
    ``keyturn check``; ``test_key_lifecycle_through_the_cli`` makes keys with the CLI)."""
    db = f"sqlite:///{tmp_path_factory.mktemp('cli') / 'k.db'}"
    with KeyManager(db) as manager:
        create = manager.create_key
        live = create("live", scopes=["read"])
        expiring = create("short")  # then made to have expired a moment ago
        manager.update(expiring.record.id, expires_at=utcnow() - timedelta(seconds=1))
        revoked = create("gone")
        manager.revoke(revoked.record.id)
        disabled = create("off")
        manager.disable(disabled.record.id)
        rotated = create("old")
        manager.rotate(rotated.record.id, grace=timedelta(0))  # no grace: it stops now
        spent = create("spent", credits=0)
        limited = create("limited", rate_limits=["1/hour"])
        office = create("office", allowed_ips=["192.0.2.0/24"])
    with KeyManager(f"sqlite:///{tmp_path_factory.mktemp('other') / 'x.db'}") as other:
        stranger = other.create_key("x")
    key = live.key
    typo = key[:-1] + ("A" if key[-1] != "A" else "B")
    return {
        "db": db,
        "keys": [
            k.key
            for k in (live, expiring, revoked, disabled, rotated, stranger, spent, limited, office)
        ],
        "cases": {
            "valid": (["-H", f"Authorization: Bearer {key}", "--scope", "read"], ""),
            "missing_credentials": (["-H", "Accept: */*"], ""),
            "unsupported_scheme": (["-H", f"Authorization: Token {key}"], ""),
            "malformed_credentials": (["-H", f"Authorization: Bearer Bearer {key}"], ""),
            "conflicting_credentials": (
                ["-H", f"Authorization: Bearer {key}", "-H", f"x-api-key: {stranger.key}"],
                "",
            ),
            "credentials_in_query": ([], f"api_key={key}"),
            "malformed_key": (["-H", f"x-api-key: {key[:-4]}"], ""),
            "checksum_mismatch": (["-H", f"x-api-key: {typo}"], ""),
            "unknown_key": (["-H", f"Authorization: Bearer {stranger.key}"], ""),
            "key_expired": (["-H", f"Authorization: Bearer {expiring.key}"], ""),
            "key_revoked": (["-H", f"Authorization: Bearer {revoked.key}"], ""),
            "key_disabled": (["-H", f"Authorization: Bearer {disabled.key}"], ""),
            "key_rotated": (["-H", f"Authorization: Bearer {rotated.key}"], ""),
            "insufficient_scope": (
                ["-H", f"Authorization: Bearer {key}", "--scope", "read", "--scope", "admin"],
                "",
            ),
            "usage_exceeded": (["-H", f"Authorization: Bearer {spent.key}"], ""),
            # Counted in Redis (as the servers count it), so one earlier check used it up.
            "rate_limited": (["-H", f"Authorization: Bearer {limited.key}"], ""),
            "ip_not_allowed": (
                ["-H", f"Authorization: Bearer {office.key}", "--ip", "198.51.100.1"],
                "",
            ),
        },
    }


def test_the_table_covers_every_outcome(world: dict[str, Any]) -> None:
    outcomes = {c for c, o in CATALOGUE.items() if o.kind == "outcome"}
    assert outcomes <= set(world["cases"])


@pytest.mark.parametrize(
    "code",
    [
        "valid",
        "missing_credentials",
        "unsupported_scheme",
        "malformed_credentials",
        "conflicting_credentials",
        "credentials_in_query",
        "malformed_key",
        "checksum_mismatch",
        "unknown_key",
        "key_expired",
        "key_revoked",
        "key_disabled",
        "key_rotated",
        "insufficient_scope",
        "usage_exceeded",
        "rate_limited",
        "ip_not_allowed",
    ],
)
def test_check_reports_each_outcome(
    world: dict[str, Any], code: str, request: pytest.FixtureRequest
) -> None:
    args, query = world["cases"][code]
    extra = ["--query", query] if query else []
    env: dict[str, str] = {}
    if code == "rate_limited":
        env = {
            "KEYTURN_REDIS_URL": REDIS_URL,
            "KEYTURN_REDIS_PREFIX": request.getfixturevalue("redis_prefix"),
        }
        # Use up its 1 request per hour, counted in Redis as the servers count it (a check
        # is not a use, so checking cannot do this).
        limiter = RateLimiter(REDIS_URL, key_prefix=env["KEYTURN_REDIS_PREFIX"])
        with KeyManager(world["db"], limiter=limiter) as manager:
            assert manager.verify(header_pairs(args)).code == "valid"
    result = run("check", *args, *extra, "--format", "json", db=world["db"], env=env)
    assert result.returncode == (0 if code == "valid" else 1), result.stderr
    out = json.loads(result.stdout)
    assert out["code"] == code
    outcome = CATALOGUE[code]
    assert out["status"] == outcome.status
    if outcome.status == 429:  # not a credentials problem: no challenge, a time to come back
        assert "www-authenticate" not in out["headers"]
        assert out["headers"]["ratelimit-remaining"] == "0"
        assert ("retry-after" in out["headers"]) == (code == "rate_limited")
    elif code != "valid":
        params = parse_challenge(out["headers"]["www-authenticate"])
        if outcome.error:
            assert params["error"] == outcome.error
        if code == "insufficient_scope":
            assert params["scope"] == "read admin"
    if code != "valid":
        assert out["headers"]["content-type"] == "application/problem+json"
        assert out["body"]["code"] == code and out["body"]["hint"]
    # In JSON and in text, the presented keys never come back.
    text = run("check", *args, *extra, db=world["db"], env=env)
    for output in (result.stdout + result.stderr, text.stdout + text.stderr):
        for key in world["keys"]:
            assert key not in output
            assert key[8:38] not in output


def test_text_output_names_the_problem_and_fix(world: dict[str, Any]) -> None:
    args, _ = world["cases"]["unsupported_scheme"]
    result = run("check", *args, db=world["db"])
    assert "unsupported_scheme" in result.stdout
    assert "fix:" in result.stdout and "Bearer" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["keys", "show", "key_nope"], "no key with id"),
        (["keys", "revoke", "key_nope"], "no key with id"),
        (["keys", "create", "--name", "x", "--expires-in", "90 days"], "invalid duration"),
        (["keys", "create", "--name", "x", "--prefix", "Bad-Prefix"], "is not accepted"),
        (["keys", "create", "--name", "x", "--prefix", "acme"], "KEYTURN_PREFIXES"),
        (["keys", "rotate", "key_nope", "--grace", "soon"], "invalid duration"),
        (["keys", "create", "--name", "x", "--scope", "a b"], "invalid scope"),
        (["keys", "create", "--name", "x", "--allow-ip", "10.0.0.0/33"], "not an IP address"),
        (["check", "-H", "Accept: */*", "--ip", "nowhere"], "not an IP address"),
        (["keys", "list", "--db", "sqlite:////proc/nope/k.db"], "does not exist"),
        (["keys", "create", "--name", "x", "--db", "sqlite:////proc/k.db"], "cannot"),
        (["keys", "list", "--db", "oracle://x"], "unsupported database URL"),
        (["check", "-H", "no colon here"], "Name: value"),
        (["explain", "key_expird"], "did you mean key_expired"),
        (["explain"], "--list"),
        (["explain", "key_expired", "--format", "yaml"], "Invalid value for '--format'"),
        (["keys", "list", "--limit", "0"], "Invalid value for '--limit'"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    KeyManager(db).close()
    result = run(*args, db=db)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_key_lifecycle_through_the_cli(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    made = create(db, "--name", "billing", "--scope", "read", "--owner", "ada")
    assert made["key"].startswith("kt_live_") and made["status"] == "active"
    listed = json.loads(run("keys", "list", "--format", "json", db=db, check=True).stdout)
    assert [k["id"] for k in listed["keys"]] == [made["id"]]
    assert made["key"] not in json.dumps(listed)  # only masked keys after creation
    shown = json.loads(
        run("keys", "show", made["id"], "--format", "json", db=db, check=True).stdout
    )
    assert shown["owner"] == "ada" and shown["key"].endswith(made["key"][-4:])
    rotated = json.loads(
        run("keys", "rotate", made["id"], "--format", "json", db=db, check=True).stdout
    )
    assert rotated["replaces"] == made["id"] and rotated["key"] != made["key"]
    text = run("keys", "create", "--name", "t", "--prefix", "kt_test", db=db, check=True).stdout
    assert "only time it is shown" in text and "kt_test_" in text


def test_explain_formats(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    as_json = json.loads(run("explain", "key_expired", "--format", "json", db=db).stdout)
    assert as_json["status"] == 401 and as_json["error"] == "invalid_token"
    markdown = run("explain", "insufficient_scope", "--format", "markdown", db=db).stdout
    assert markdown.startswith("### `insufficient_scope`") and "**Fix:**" in markdown
    listing = json.loads(run("explain", "--list", "--format", "json", db=db).stdout)
    assert {e["code"] for e in listing} == set(CATALOGUE)
