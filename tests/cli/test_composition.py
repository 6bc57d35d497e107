"""One composition root: a setting means the same on the command line as on the server.

Each test runs the real ``keyturn`` command (and, where the point is agreement with the
server, a real ``keyturn serve`` on loopback) the way a user would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from keyturn import KeyManager
from keyturn.admin import IssuedKey
from tests.service.conftest import ServeProcess

KEYTURN = [sys.executable, "-m", "keyturn"]


def run(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    return subprocess.run(
        [*KEYTURN, *args],
        capture_output=True,
        text=True,
        env={**environ, "NO_COLOR": "1", **(env or {})},
        cwd=cwd,
        timeout=60,
    )


def made(*args: str, env: dict[str, str]) -> dict[str, Any]:
    result = run("keys", "create", "--format", "json", *args, env=env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def issued(env: dict[str, str], name: str = "x", **fields: Any) -> IssuedKey:
    """A key made through the library, for a test whose command under test is another."""
    with KeyManager(env["KEYTURN_DATABASE_URL"]) as manager:
        return manager.create_key(name, **fields)


def one_line(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"KEYTURN_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}"}


def test_a_peppered_key_made_by_the_cli_is_accepted_by_serve_and_check(
    tmp_path: Path, env: dict[str, str]
) -> None:
    env = {**env, "KEYTURN_PEPPER": "a-long-server-secret"}
    key = made("--name", "peppered", "--scope", "read", env=env)["key"]
    checked = run("check", "-H", f"Authorization: Bearer {key}", "--format", "json", env=env)
    assert json.loads(checked.stdout)["code"] == "valid", checked.stdout
    unpeppered = {k: v for k, v in env.items() if k != "KEYTURN_PEPPER"}
    refused = run("check", "-H", f"Authorization: Bearer {key}", "--format", "json", env=unpeppered)
    assert json.loads(refused.stdout)["code"] == "unknown_key"
    with ServeProcess(env={**os.environ, **env}, cwd=tmp_path) as server:
        assert httpx.get(f"{server.url}/auth", headers={"x-api-key": key}).status_code == 204


def test_prefixes_are_the_deployments_on_every_face(tmp_path: Path, env: dict[str, str]) -> None:
    refused = run("keys", "create", "--name", "x", "--prefix", "acme", env=env)
    one_line(refused, 2, "acme", "KEYTURN_PREFIXES")
    acme = {**env, "KEYTURN_PREFIXES": "acme,kt_live"}
    key = made("--name", "x", "--prefix", "acme", env=acme)["key"]
    assert key.startswith("acme_")
    default = made("--name", "y", env=acme)["key"]
    assert default.startswith("acme_")  # the first accepted prefix is the default
    with ServeProcess(env={**os.environ, **acme}, cwd=tmp_path) as server:
        assert httpx.get(f"{server.url}/auth", headers={"x-api-key": key}).status_code == 204


def test_check_uses_the_servers_headers_and_realm(env: dict[str, str]) -> None:
    settings = {**env, "KEYTURN_API_KEY_HEADERS": "x-acme-key", "KEYTURN_REALM": "acme"}
    key = issued(env).key
    accepted = run("check", "-H", f"x-acme-key: {key}", "--format", "json", env=settings)
    assert json.loads(accepted.stdout)["code"] == "valid"
    missing = run("check", "-H", f"x-api-key: {key}", "--format", "json", env=settings)
    answer = json.loads(missing.stdout)
    assert answer["code"] == "missing_credentials"
    assert 'realm="acme"' in answer["headers"]["www-authenticate"]


def test_check_is_never_a_use(env: dict[str, str]) -> None:
    key = issued(env, "m", credits=1, rate_limits=["1/hour"])
    for _ in range(3):
        checked = run("check", "-H", f"Authorization: Bearer {key.key}", env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    with KeyManager(env["KEYTURN_DATABASE_URL"]) as manager:
        record = manager.get(key.record.id)
        assert record.credits == 1 and record.last_used_at is None
        assert manager.usage_counts(key.record.id) == {}


def test_rotate_with_no_grace_stops_the_old_key_now(env: dict[str, str]) -> None:
    for grace in ("0", "0s"):
        old = issued(env)
        rotated = run("keys", "rotate", old.record.id, "--grace", grace, "--format", "json",
                      env=env)
        assert rotated.returncode == 0, rotated.stderr
        checked = run("check", "-H", f"x-api-key: {old.key}", "--format", "json", env=env)
        assert json.loads(checked.stdout)["code"] == "key_rotated"


def test_rotating_a_rotated_key_says_what_to_do_instead(env: dict[str, str]) -> None:
    """A newcomer who rotated with the default grace and then wants the old key stopped."""
    with KeyManager(env["KEYTURN_DATABASE_URL"]) as manager:
        old = manager.create_key("x").record
        new = manager.rotate(old.id).record  # the default grace
    again = run("keys", "rotate", old.id, "--grace", "0", env=env)
    one_line(again, 1, "already rotated", f"rotate {new.id}", f"revoke {old.id}")


def test_a_key_in_its_grace_period_shows_as_rotated(env: dict[str, str]) -> None:
    old = issued(env)
    with KeyManager(env["KEYTURN_DATABASE_URL"]) as manager:
        manager.rotate(old.record.id, grace=timedelta(hours=1))
    shown = json.loads(run("keys", "show", old.record.id, "--format", "json", env=env).stdout)
    assert shown["status"] == "rotated"
    text = run("keys", "show", old.record.id, env=env).stdout
    assert "rotated (works until" in text
    listed = run("keys", "list", "--status", "rotated", "--format", "json", env=env)
    assert [k["id"] for k in json.loads(listed.stdout)["keys"]] == [old.record.id]
    checked = run("check", "-H", f"x-api-key: {old.key}", "--format", "json", env=env)
    assert json.loads(checked.stdout)["code"] == "valid"


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["keys", "show", "key_0000000000000000"],
        ["check", "-H", "x-api-key: kt_live_x"],
        ["keys", "revoke", "key_0000000000000000"],
    ],
)
def test_readers_refuse_a_missing_database_in_one_line(tmp_path: Path, args: list[str]) -> None:
    result = run(*args, cwd=tmp_path)
    one_line(result, 2, str(tmp_path / "keyturn.db"), "keyturn init")
    assert not (tmp_path / "keyturn.db").exists()


def test_exit_codes_follow_the_error_classes(env: dict[str, str]) -> None:
    key = issued(env).record
    assert run("keys", "revoke", key.id, env=env).returncode == 0
    one_line(run("keys", "enable", key.id, env=env), 1, "revoked")
    one_line(run("keys", "show", "key_0000000000000000", env=env), 2, "no key with id")
    one_line(run("keys", "create", "--name", "x", "--expires-in", "99999999d", env=env), 2)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections and never says anything (a hung server)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("kind", ["refusing", "unreachable"])
def test_an_unreachable_postgresql_fails_fast_in_one_line(
    kind: str, request: pytest.FixtureRequest
) -> None:
    port = closed_port() if kind == "refusing" else request.getfixturevalue("silent_port")
    url = f"postgresql://keyturn@127.0.0.1:{port}/keyturn"
    started = time.monotonic()
    result = run("keys", "list", "--db", url)
    elapsed = time.monotonic() - started
    one_line(result, 3, "cannot connect to database", f"127.0.0.1:{port}")
    # The bound is 3 s; the process's own start-up on a loaded machine comes on top.
    assert elapsed < 20, elapsed


def test_serve_on_a_busy_ipv6_port_names_it_as_a_url_does(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET6) as busy:
        busy.bind(("::1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = run("serve", "--host", "::1", "--port", str(port), cwd=tmp_path)
    one_line(result, 4, f"[::1]:{port} is already in use")


def test_serve_on_a_busy_port_is_one_line_and_exit_4(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        db = f"sqlite:///{tmp_path / 'k.db'}"
        result = run("serve", "--port", str(port), "--db", db, cwd=tmp_path)
    one_line(result, 4, f"127.0.0.1:{port}", "already in use", "--port")
    assert not (tmp_path / "k.db").exists()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "4 `serve` could not listen on its port" in " ".join(readme.split())


def test_a_bad_database_url_is_a_usage_error_even_on_a_busy_port(tmp_path: Path) -> None:
    """The user's mistake is named first: a port held by a running server must not hide
    that --db is wrong (they would free the port only to meet the real error)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        for db, message in [
            ("mysql://x", "unsupported database URL"),
            (f"sqlite:///{tmp_path / 'no' / 'k.db'}", "does not exist"),
        ]:
            result = run("serve", "--port", str(port), "--db", db, cwd=tmp_path)
            one_line(result, 2, message)


def test_serve_without_its_extra_says_what_to_install(tmp_path: Path) -> None:
    """The server stack is the 'serve' extra (so a pre-commit hook running `keyturn scan`
    does not install it); without it `keyturn serve` says, in one line, what to install."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['fastapi'] = None\n")
    result = run("serve", "--port", "0", env={"PYTHONPATH": str(site)}, cwd=tmp_path)
    one_line(result, 2, "pip install 'keyturn[serve]'")
    assert not (tmp_path / "keyturn.db").exists()


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
@pytest.mark.parametrize(
    "args",
    [["keys", "create", "--name", "x"], ["keys", "list"], ["init"], ["roles", "list"]],
    ids=["keys create", "keys list", "init", "roles list"],
)
def test_a_database_in_memory_is_refused_where_it_would_end_with_the_command(
    tmp_path: Path, url: str, args: list[str]
) -> None:
    """`--db "sqlite:///$DB"` with DB unset: a key shown and lost, an empty list."""
    result = run(*args, "--db", url, cwd=tmp_path)
    one_line(result, 2, "in memory", "sqlite:///keyturn.db")
    assert "kt_" not in result.stdout
    by_env = run(*args, env={"KEYTURN_DATABASE_URL": url}, cwd=tmp_path)
    one_line(by_env, 2, "in memory")


def test_a_bad_database_flag_is_named_as_typed(tmp_path: Path) -> None:
    one_line(run("keys", "list", "--db", "keyturn.db", cwd=tmp_path), 2, "--db:", "sqlite:///")


def test_the_root_key_banner_command_runs_as_printed(tmp_path: Path) -> None:
    """The banner's curl names serve's own address (it said http://HOST:PORT)."""
    port = closed_port()
    with ServeProcess("--port", str(port), "--db", f"sqlite:///{tmp_path / 'k.db'}",
                      cwd=tmp_path) as server:
        banner = server.stderr
        root_key = banner.split("Store it in your secret manager now:", 1)[1].split()[0]
        command = banner.split("Use it to create narrower keys, e.g.\n", 1)[1].split("\n\n")[0]
        assert f"http://127.0.0.1:{port}/v1/keys" in command
        made = subprocess.run(["sh", "-c", f"{command} -s -o /dev/null -w '%{{http_code}}'"],
                              env={**os.environ, "ROOT_KEY": root_key}, capture_output=True,
                              text=True, timeout=30)
        assert made.stdout == "201", made.stdout + made.stderr


def test_serve_with_a_redis_that_does_not_answer_says_what_to_check(tmp_path: Path) -> None:
    port = closed_port()
    result = run("serve", "--port", "0", "--redis", f"redis://127.0.0.1:{port}/0",
                 "--db", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path)
    one_line(result, 3, f"127.0.0.1:{port}", "check that Redis runs there", "KEYTURN_REDIS_URL")


def test_keys_create_on_a_new_database_names_the_file(tmp_path: Path) -> None:
    """Run from another folder than the server's, `keys create` makes a database there,
    whose keys that server refuses: it says so, with the file's absolute path."""
    first = run("keys", "create", "--name", "x", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    path = tmp_path / "keyturn.db"
    assert f"new database '{path}'" in first.stderr
    assert f"--db sqlite:///{path}" in first.stderr
    second = run("keys", "create", "--name", "y", cwd=tmp_path)
    assert second.returncode == 0 and second.stderr == ""


@pytest.mark.parametrize("host", ["0.0.0.0:8080", "localhost:8080", "[::1]"])
def test_serve_with_a_port_or_brackets_in_the_host_says_to_use_port(
    tmp_path: Path, host: str
) -> None:
    result = run("serve", "--host", host, "--db", f"sqlite:///{tmp_path / 'k.db'}", cwd=tmp_path)
    one_line(result, 2, repr(host), "--port")
    assert not (tmp_path / "k.db").exists()


def test_a_redis_url_without_its_scheme_is_named_as_typed(tmp_path: Path) -> None:
    typed = run("serve", "--redis", "127.0.0.1:6379", cwd=tmp_path)
    one_line(typed, 2, "--redis:", "redis://127.0.0.1:6379/0")
    by_env = run("serve", env={"KEYTURN_REDIS_URL": "redis//:hunter2@127.0.0.1"}, cwd=tmp_path)
    one_line(by_env, 2, "KEYTURN_REDIS_URL:")
    assert "hunter2" not in by_env.stderr
    assert not (tmp_path / "keyturn.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "--name", "x", "--scope", "bad scope"],
        ["keys", "create", "--name", "x", "--prefix", "nope"],
        ["keys", "create", "--name", "x", "--rate-limit", "5/fortnight"],
        ["keys", "create", "--name", "x", "--allow-ip", "999.1.1.1"],
        ["init", "--output", "missing-folder/root.key"],
        ["serve", "--port", "0", "--root-key-file", "missing-folder/root.key"],
    ],
    ids=["bad scope", "bad prefix", "bad rate limit", "bad address", "init", "serve"],
)
def test_a_command_that_fails_leaves_no_database_it_created(
    tmp_path: Path, args: list[str]
) -> None:
    """It left an empty keyturn.db, which the next command took for the deployment's."""
    result = run(*args, cwd=tmp_path)
    one_line(result, 2)
    assert list(tmp_path.iterdir()) == []


def test_a_command_that_fails_keeps_a_database_it_did_not_create(tmp_path: Path) -> None:
    issued({"KEYTURN_DATABASE_URL": f"sqlite:///{tmp_path / 'keyturn.db'}"}, "kept")
    one_line(run("keys", "create", "--name", "x", "--scope", "bad scope", cwd=tmp_path), 2)
    listed = run("keys", "list", "--format", "json", cwd=tmp_path)
    assert [k["name"] for k in json.loads(listed.stdout)["keys"]] == ["kept"]


def test_check_with_a_redis_that_does_not_answer_says_what_to_check(tmp_path: Path) -> None:
    """It said only "cannot count rate limits in 'redis://...': ConnectionError"."""
    port = closed_port()
    env = {"KEYTURN_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}"}
    key = issued(env, "metered", rate_limits=["5/minute"]).key
    down = {**env, "KEYTURN_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
    one_line(run("check", "-H", f"x-api-key: {key}", env=down), 3,
             f"127.0.0.1:{port}", "check that Redis runs there")


def test_rotate_says_when_the_old_key_really_stops(env: dict[str, str]) -> None:
    """A key expiring in 12 hours, rotated with a 7-day grace, was said to work "until" a
    week later; it is refused once it expires."""
    soon = issued(env, "short", expires_in=timedelta(hours=12)).record
    quiet = run("keys", "rotate", soon.id, "--grace-until-quiet", "15m", "--grace-max", "7d",
                env=env)
    assert soon.expires_at is not None
    expiry = soon.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    assert quiet.returncode == 0, quiet.stderr
    assert f"at the latest until {expiry} UTC, when it expires" in quiet.stdout
    long = issued(env, "long", expires_in=timedelta(days=90)).record
    plain = run("keys", "rotate", long.id, "--grace", "24h", env=env)
    assert "when it expires" not in plain.stdout and "old key works until " in plain.stdout


@pytest.mark.parametrize(("host", "shown"), [("0.0.0.0", "127.0.0.1"), ("::", "[::1]")])
def test_serve_on_every_interface_prints_addresses_this_machine_can_paste(
    tmp_path: Path, host: str, shown: str
) -> None:
    """The banner said `curl -X POST http://0.0.0.0:8080/v1/keys`, which only Linux
    connects."""
    port = closed_port()
    server = subprocess.Popen(
        [*KEYTURN, "serve", "--host", host, "--port", str(port), "--db",
         f"sqlite:///{tmp_path / 'k.db'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        assert server.stderr is not None
        banner = ""
        while "forward-auth at" not in banner:
            line = server.stderr.readline()
            assert line, banner
            banner += line
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert f"curl -X POST http://{shown}:{port}/v1/keys" in banner
    assert f"forward-auth at http://{shown}:{port}/auth" in banner
