"""``keyturn serve`` and ``keyturn init`` as a user runs them: real processes, real SQLite."""

from __future__ import annotations

import json
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from keyturn.cli import main
from keyturn.manager import KeyManager
from tests.service.conftest import KEY_RE, ServeProcess, run_cli


def test_fresh_database_gets_a_root_key_shown_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    with ServeProcess("--db", db, cwd=tmp_path) as first:
        keys = KEY_RE.findall(first.stderr)
        assert len(keys) == 1, first.stderr
        root = keys[0]
        assert "shown only this once" in first.stderr
        with httpx.Client(base_url=first.url, headers={"authorization": f"Bearer {root}"}) as c:
            made = c.post("/v1/keys", json={"name": "web", "scopes": ["api"]})
            assert made.status_code == 201
            assert c.get("/auth").headers["x-keyturn-scopes"] == "*"
        assert first.stop() == 0
        assert root not in first.stdout  # the access log never holds a header's key
        logged = [json.loads(line) for line in first.stdout.splitlines()]
        assert {e["path"] for e in logged} == {"/v1/keys", "/auth"}
    with ServeProcess("--db", db, cwd=tmp_path) as second:
        assert second.stop() == 0
        assert not KEY_RE.search(second.stderr + second.stdout)
        assert "root key" not in second.stderr


def test_init_then_serve(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    made = run_cli("init", "--db", db, "--format", "json")
    assert made.returncode == 0, made.stderr
    shown = json.loads(made.stdout)
    assert shown["created"] is True and shown["scopes"] == ["*"]
    assert KEY_RE.fullmatch(shown["key"])
    again = run_cli("init", "--db", db)
    assert again.returncode == 0
    assert not KEY_RE.search(again.stdout + again.stderr)
    assert "already holds 1 key" in again.stderr
    assert json.loads(run_cli("init", "--db", db, "--format", "json").stdout) == {
        "created": False,
        "keys": 1,
    }
    with ServeProcess("--db", db, cwd=tmp_path) as server:
        assert not KEY_RE.search(server.stderr)
        auth = httpx.get(f"{server.url}/auth", headers={"x-api-key": shown["key"]})
        assert auth.status_code == 204
        server.stop()


def test_init_text_output(tmp_path: Path) -> None:
    made = run_cli("init", "--db", f"sqlite:///{tmp_path / 'k.db'}")
    assert made.returncode == 0
    assert len(KEY_RE.findall(made.stdout)) == 1
    assert "shown only this once" in made.stdout


def test_settings_precedence_in_a_real_process(tmp_path: Path) -> None:
    """File < environment (realm) < flags (rules, and the database over $KEYTURN_DATABASE_URL)."""
    config = tmp_path / "keyturn.toml"
    config.write_text(
        'database_url = "sqlite:////nonexistent/file.db"\nrealm = "from-file"\n'
        '[rules]\n"/admin/" = ["admin"]\n'
    )
    env = {"KEYTURN_REALM": "from-env", "KEYTURN_DATABASE_URL": "sqlite:////nonexistent/e.db"}
    db = f"sqlite:///{tmp_path / 't.db'}"
    with ServeProcess("--config", str(config), "--db", db, "--rule", "/orders=orders",
                      env=env, cwd=tmp_path) as server:
        root = KEY_RE.findall(server.stderr)[0]
        challenge = httpx.get(f"{server.url}/auth").headers["www-authenticate"]
        assert challenge == 'Bearer realm="from-env"'
        bearer = {"authorization": f"Bearer {root}"}
        made = httpx.post(f"{server.url}/v1/keys", json={"name": "k"}, headers=bearer).json()
        key = {"authorization": f"Bearer {made['key']}"}
        assert httpx.get(f"{server.url}/auth", headers={**key, "X-Forwarded-Uri": "/admin/"},
                         ).status_code == 204  # the file's rule was replaced by the flag's
        assert httpx.get(f"{server.url}/auth", headers={**key, "X-Forwarded-Uri": "/orders"},
                         ).status_code == 403
        assert server.stop() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "70000"], "70000"),
        (["serve", "--rule", "no-equals-sign"], "bad --rule"),
        (["serve", "--rule", "admin=x"], "must start with '/'"),
        (["serve", "--config", "/nonexistent/keyturn.toml"], "cannot read config file"),
        (["serve", "--db", "mysql://x"], "unsupported database URL"),
        (["serve", "--db", "sqlite:////nonexistent/dir/k.db"], "does not exist"),
        (["init", "--db", "nonsense"], "expected a database URL"),
        (["init", "--format", "yaml"], "'yaml' is not one of"),
    ],
)
def test_bad_usage_is_a_one_line_exit_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args, env={"KEYTURN_CONFIG": ""})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_bad_environment_is_exit_2() -> None:
    result = CliRunner().invoke(main, ["serve"], env={"KEYTURN_PORT": "eighty"})
    assert result.exit_code == 2
    assert result.output.strip() == "error: KEYTURN_PORT: expected an integer"


def test_help() -> None:
    for command in ("serve", "init"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0
        assert "--db" in result.output and "--config" in result.output
    assert "--rule" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_sigterm_finishes_in_flight_requests_and_flushes_usage(tmp_path: Path) -> None:
    """SIGTERM while a request is half sent: it is still answered, the process exits 0,
    and the last-used time noted in memory (flush interval: an hour) reaches the store."""
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    env = {"KEYTURN_USAGE_FLUSH_INTERVAL": "3600", "KEYTURN_SHUTDOWN_TIMEOUT": "20"}
    with ServeProcess("--db", db, env=env, cwd=tmp_path) as server:
        root = KEY_RE.findall(server.stderr)[0]
        with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {root}"}) as c:
            made = c.post("/v1/keys", json={"name": "used", "scopes": []}).json()
            assert c.get("/auth", headers={"authorization": f"Bearer {made['key']}"}).is_success
        body = json.dumps({"key": made["key"]}).encode()
        host, port = server.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=20) as sock:
            sock.sendall(
                b"POST /v1/keys/verify HTTP/1.1\r\nHost: keyturn\r\n"
                + f"Authorization: Bearer {root}\r\n".encode()
                + b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            # A round trip on another connection: the event loop has read the first one's
            # headers since, so that request is in flight (its body awaited).
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.7)
            assert server.process.poll() is None, "exited with a request in flight"
            sock.sendall(body[10:])
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head, _, payload = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), reply
        assert json.loads(payload)["valid"] is True
        assert server.stop() == 0
        assert "Shutting down" in server.stderr
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{server.url}/healthz")
    with KeyManager(db) as manager:
        assert manager.get(made["id"]).last_used_at is not None
