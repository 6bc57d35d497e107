"""Redis on a Unix socket (`unix:///run/redis/redis.sock`), as a Redis beside the service on
the same host is often configured: `--redis unix://...` was refused as "not a Redis URL"
although redis-py opens it.

A Redis server of this test's own listens on a socket in the test's folder (no TCP port);
the shared one on 6379 has no socket.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from keyturn.config import SettingsError, load_settings
from tests.service.conftest import KEY_RE, ServeProcess, run_cli

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_socket(tmp_path: Path) -> Iterator[Path]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed (scripts/services.sh installs it)")
    sock = tmp_path / "redis.sock"
    process = subprocess.Popen(
        [server, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not create its socket"
            time.sleep(0.05)
        yield sock
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_counts_rate_limits_in_redis_on_a_unix_socket(
    tmp_path: Path, redis_socket: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'keyturn.db'}"
    made = run_cli("keys", "create", "--name", "metered", "--rate-limit", "1/minute",
                   "--db", db, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    key = KEY_RE.findall(made.stdout)[0]
    url = f"unix://{redis_socket}?db=0"
    with ServeProcess("--db", db, "--redis", url, cwd=tmp_path) as server:
        ready = httpx.get(f"{server.url}/readyz")
        first = httpx.get(f"{server.url}/auth", headers={"x-api-key": key})
        second = httpx.get(f"{server.url}/auth", headers={"x-api-key": key})
    assert ready.status_code == 200, ready.text
    assert "rate_limits" in ready.json()["checks"]
    assert (first.status_code, second.status_code) == (204, 429)
    assert second.json()["code"] == "rate_limited"


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "localhost:6379", "unix"])
def test_a_url_redis_does_not_open_names_the_forms_it_does(url: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"KEYTURN_REDIS_URL": url})
    message = refused.value.message
    assert message.startswith("KEYTURN_REDIS_URL: expected a Redis URL")
    assert all(form in message for form in ("redis://", "rediss://", "unix://"))
