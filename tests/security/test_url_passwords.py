"""A database or Redis password given in the URL's query is masked like one before the @.

libpq and redis-py both take the password as a query parameter too
(``postgresql://app@db/keys?password=...``, ``redis://cache:6379/0?password=...``, the
only way for a ``unix://`` socket), and every message naming the URL masked only
``user:password@``: a server that could not reach its database or Redis printed the
password on stderr, where log collectors keep it. Over the CLI and ``keyturn serve``,
which print these errors, and ``/readyz``, which answers anyone reaching the port."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from keyturn.store.base import masked_url
from tests.dedicated import OwnRedis
from tests.service.conftest import run_cli, start_live

SECRET = "S3cretPassw0rd"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres@127.0.0.1:1/x?password={SECRET}",
        f"postgresql://postgres@127.0.0.1:1/x?sslmode=disable&password={SECRET}",
        f"postgresql:///x?host=127.0.0.1&port=1&user=postgres&password={SECRET}",
        f"postgresql://postgres@127.0.0.1:1/x?pass%77ord={SECRET}",
        f"postgresql://postgres:{SECRET}@127.0.0.1:1/x?sslpassword={SECRET}",
        # Unencoded, as generated passwords often are: libpq reads # and ? raw in the
        # password, where a URL parser ends the authority early and finds none to mask.
        f"postgresql://postgres:ab#{SECRET}@127.0.0.1:1/x",
        f"postgresql://postgres:ab?{SECRET}@127.0.0.1:1/x",
        f"postgresql://postgres:ab/{SECRET}@127.0.0.1:1/x",
    ],
)
def test_an_unreachable_database_names_no_password(url: str) -> None:
    done = run_cli("keys", "list", "--db", url, timeout=30)
    assert done.returncode != 0
    assert "cannot connect" in done.stderr, done.stderr
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "url",
    [f"redis://127.0.0.1:1/0?password={SECRET}", f"unix:///nowhere/redis.sock?db=0&password={SECRET}"],
)
def test_an_unreachable_redis_names_no_password(url: str, tmp_path: object) -> None:
    done = run_cli(
        "serve", "--port", "0", "--redis", url, "--db", f"sqlite:///{tmp_path}/k.db", timeout=30
    )
    assert done.returncode != 0
    assert "Redis" in done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_the_rest_of_the_url_is_kept() -> None:
    shown = masked_url(f"postgresql://app@db/keys?sslmode=require&password={SECRET}&x=1")
    assert shown == "postgresql://app@db/keys?sslmode=require&password=***&x=1"
    for kept in ("postgresql://app@db/keys?sslmode=require", "postgresql:///keys?host=/run",
                 "postgresql://app@db:5432/keys", "sqlite:///keyturn.db"):
        assert masked_url(kept) == kept
    assert masked_url(f"redis://:{SECRET}@cache:6379/0") == "redis://:***@cache:6379/0"


def test_readyz_names_no_password(tmp_path: Path) -> None:
    """``/readyz`` answers anyone who reaches the port, and during a Redis outage it says
    which storage it cannot reach: the URL's query password was in its answer."""
    redis = OwnRedis(password=SECRET)
    redis.start()
    url = f"{redis.url}?password={SECRET}"
    try:
        for live in start_live(tmp_path, redis_url=url, redis_prefix="url-passwords"):
            assert httpx.get(f"{live.url}/readyz", timeout=10).status_code == 200
            redis.stop()
            answer = httpx.get(f"{live.url}/readyz", timeout=10)
            assert answer.status_code == 503, answer.text
            assert "rate_limits" in answer.json()["checks"]
            assert SECRET not in answer.text
    finally:
        redis.close()


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{SECRET}@[::1/x",
        f"postgresql://postgres:{SECRET}@[]/x",
        f"postgresql://postgres:{SECRET}@127.0.0.1:1/x?nosuch=1",
        f"postgresql://postgres:{SECRET}@127.0.0.1:1/x?port=abc",
    ],
)
def test_a_url_libpq_cannot_read_is_named_without_password(url: str) -> None:
    """libpq's own message about a URL it cannot read quotes the URL whole, password and
    all (``... in URI: "postgresql://postgres:secret@[::1/x"``)."""
    done = run_cli("keys", "list", "--db", url, timeout=30)
    assert done.returncode != 0
    assert "database URL" in done.stderr or "cannot connect" in done.stderr, done.stderr
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://postgres:{SECRET}%zz@127.0.0.1:1/x",
        f"postgresql://postgres@127.0.0.1:1/x?password={SECRET}%zz",
        f"postgresql://postgres@127.0.0.1:1/x?password={SECRET}%00",
        f"postgresql://postgres:{SECRET}%00@127.0.0.1:1/x",
    ],
)
def test_a_password_libpq_cannot_decode_is_not_quoted(url: str) -> None:
    """libpq quotes the password token it cannot decode on its own (``invalid
    percent-encoded token: "..."``), not the URL, so masking the URL in its message missed
    it."""
    from keyturn.errors import InvalidValue
    from keyturn.store import open_store

    with pytest.raises(InvalidValue) as raised:
        open_store(url)
    assert "database URL" in str(raised.value)
    assert SECRET not in str(raised.value)


def test_a_query_password_is_masked_through_a_hash() -> None:
    """libpq keeps a '#' in a query value: ``?password=ab#cd`` is the password ``ab#cd``."""
    shown = masked_url(f"postgresql://app@db/keys?password=ab#{SECRET}")
    assert shown == "postgresql://app@db/keys?password=***"
    shown = masked_url(f"postgresql://app@db/keys?x=1#&password={SECRET}&y=2")
    assert SECRET not in shown and shown.endswith("&y=2")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://127.0.0.1:1/x?application_name=me@host&connect_timeout=1",
        "postgresql://db:5432/keys?options=-c%20x=a:b@c",
        "sqlite:///tmp/a:b@c.db",
        "sqlite:///a:b@c/keys.db",
    ],
)
def test_an_at_sign_outside_the_authority_is_no_password(url: str) -> None:
    """An '@' in a query value or a SQLite path is shown as it is, not read as the end of a
    ``user:password@`` that hid the host and implied a password."""
    assert masked_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:S3cr/et?x=1@127.0.0.1:1/db",
        "postgresql://u:S3cr/et?x=1@127.0.0.1:1/db?application_name=me@host",
        "redis://:S3cr/et?x=1@cache:6379/0",
    ],
)
def test_a_password_with_a_slash_then_a_query_is_masked(url: str) -> None:
    """A password written with a raw '/' and then '?name=' before its '@' (password-manager
    symbol sets): the part before the '/' cannot be a host and port, so it is a user and
    password, masked to its '@' even though no URL parser reads it so."""
    shown = masked_url(url)
    assert "S3cr" not in shown and ":***@" in shown
    assert shown.endswith(url.partition("@")[2])


def test_a_password_with_a_slash_then_a_query_is_not_in_the_store_error() -> None:
    """libpq reads ``u:S3cr/et?x=1@...`` as host ``u``, a port, a path and a query, and its
    message quotes the piece of the password it took for a parameter's name."""
    from keyturn.errors import InvalidValue
    from keyturn.store import open_store

    for piece in ("x", "Hunter2"):
        with pytest.raises(InvalidValue) as raised:
            open_store(f"postgresql://u:S3cr/et?{piece}=1@127.0.0.1:1/db")
        message = str(raised.value)
        assert "unusable database URL 'postgresql://u:***@127.0.0.1:1/db'" in message
        assert "S3cr" not in message and f'"{piece}"' not in message


def test_a_one_letter_password_leaves_the_message_readable() -> None:
    """libpq's message is masked where it quotes a password, not wherever the password's
    letters occur: the password ``a`` made 'connection f***iled ... ***t "127.0.0.1"'."""
    from keyturn.errors import InvalidValue, Unavailable
    from keyturn.store import open_store

    with pytest.raises(Unavailable) as raised:
        open_store("postgresql://postgres:a@127.0.0.1:1/x")
    message = str(raised.value)
    assert "'postgresql://postgres:***@127.0.0.1:1/x'" in message
    assert 'connection failed: connection to server at "127.0.0.1", port 1 failed' in message
    with pytest.raises(InvalidValue) as raised:
        open_store("postgresql://postgres:a%zz@127.0.0.1:1/x")
    assert str(raised.value).endswith('invalid percent-encoded token: "***"')
