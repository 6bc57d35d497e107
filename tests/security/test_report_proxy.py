"""``keyturn scan --report`` sends a found key to the deployment's URL and nowhere else.

Its HTTP client took proxies from the environment, as httpx does by default: with
``HTTP_PROXY`` set (common on a developer's machine behind a corporate proxy), a hook
reporting to ``http://127.0.0.1:...`` sent every key it found, in clear, to the proxy. The
doctor and ``--verify`` never read proxy settings or ``~/.netrc``; the reporter now reads
none either. A real service on loopback and a listener standing in for the proxy."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import Live, run_cli, start_live


class Listener:
    """A TCP port that records what anyone sends it, then closes the connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received = b""
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    self.received += conn.recv(65536)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    yield from start_live(tmp_path_factory.mktemp("report"))


def test_a_proxy_in_the_environment_gets_no_key(deployment: Live, tmp_path: Path) -> None:
    proxy = Listener()
    key, record = deployment.make_key()
    (tmp_path / "settings.py").write_text(f'API_KEY = "{key}"\n')
    env = {"HTTP_PROXY": proxy.url, "http_proxy": proxy.url, "ALL_PROXY": proxy.url,
           "HTTPS_PROXY": proxy.url, "NO_PROXY": "", "no_proxy": ""}
    done = run_cli("scan", "--report", deployment.url, str(tmp_path / "settings.py"), env=env)
    assert done.returncode == 1, done.stderr
    assert f"reported 1 keyturn key to {deployment.url}" in done.stderr
    time.sleep(0.2)
    assert key.encode() not in proxy.received
    assert proxy.received == b""
    status = deployment.root.get(f"/v1/keys/{record['id']}").json()["status"]
    assert status == "revoked"
