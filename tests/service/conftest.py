"""A real keyturn service on loopback: uvicorn in a thread, or ``keyturn serve`` as a process.

In-thread servers are for the many API and forward-auth tests (one per module, started in a
few milliseconds); the command-line tests start the real process a user would. Every server
listens on port 0, so parallel workers never fight over a port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import httpx
import pytest
import uvicorn

from keyturn._bootstrap import ensure_root_key
from keyturn.app import create_app
from keyturn.compose import build_manager
from keyturn.config import Settings
from keyturn.manager import KeyManager
from keyturn.service.server import uvicorn_config

KEY_RE = re.compile(r"kt_(?:live|test)_[0-9A-Za-z]{36}")
# One TLS context for every test client: httpx.Client builds its own by default (loading
# the CA bundle, ~15 ms of CPU), and the tests make many (one a request, in places).
TLS = httpx.create_ssl_context()


@dataclass
class Live:
    """A running service: its URL, its root key and the manager behind it."""

    url: str
    root_key: str = field(repr=False)
    manager: KeyManager
    settings: Settings
    # uvicorn's HTTP protocol class the server runs (keyturn.service.connections.guarded)
    protocol: type[Any] | None = None
    _clients: list[httpx.Client] = field(default_factory=list)

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        client = httpx.Client(base_url=self.url, headers=headers, timeout=10, verify=TLS)
        self._clients.append(client)
        return client

    @property
    def root(self) -> httpx.Client:
        return self.client(self.root_key)

    def make_key(self, *scopes: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        """A new key made through the API with the root key: (full key, its record)."""
        body = {"name": fields.pop("name", "test key"), "scopes": list(scopes), **fields}
        answer = self.root.post("/v1/keys", json=body)
        assert answer.status_code == 201, answer.text
        record = answer.json()
        return record.pop("key"), record

    def close(self) -> None:
        for client in self._clients:
            client.close()


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1, port chosen by the kernel (or ``port``)."""

    def __init__(self, app: Any, settings: Settings, port: int = 0) -> None:
        self.server = uvicorn.Server(uvicorn_config(app, replace(settings, port=port)))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def start_live(
    tmp: Path, log_stream: TextIO | None = None, port: int = 0, **overrides: Any
) -> Iterator[Live]:
    settings = replace(
        Settings(database_url=f"sqlite:///{tmp / 'keyturn.db'}", log_level="warning"),
        **overrides,
    )
    manager = build_manager(settings)
    issued = ensure_root_key(manager)
    assert issued is not None
    app = create_app(settings, manager, log_stream=log_stream)
    server = ServerThread(app, settings, port)
    with server as url:
        live = Live(url, issued.key, manager, settings, server.server.config.http)
        try:
            yield live
        finally:
            live.close()


# uvicorn's HTTP stacks (Settings.http): what `pip install uvicorn` runs, h11 on asyncio, and
# what `uvicorn[standard]` runs, httptools on uvloop. The forward-auth tests run on both
# (keyturn.service.direct_auth answers /auth inside each).
PROTOCOLS = ("h11", "httptools")


@pytest.fixture(scope="module", params=PROTOCOLS)
def protocol(request: pytest.FixtureRequest) -> str:
    """Each of uvicorn's HTTP protocols in turn, for a module's servers."""
    return str(request.param)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One service per test module, with default settings; tests make their own keys."""
    yield from start_live(tmp_path_factory.mktemp("live"))


# -- the real command ------------------------------------------------------------------


def keyturn_command() -> list[str]:
    """The installed ``keyturn`` script beside this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("keyturn")
    if script.exists():
        return [str(script)]
    found = shutil.which("keyturn")
    return [found] if found else [sys.executable, "-c", "from keyturn.cli import main; main()"]


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*keyturn_command(), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class ServeProcess:
    """``keyturn serve --port 0`` as a child process; learns its port from uvicorn's banner."""

    _RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                 open_files: int | None = None):
        """``open_files``: the child's soft descriptor limit (set in the child alone, so this
        test process, which serves other tests' fixtures meanwhile, keeps its own)."""
        limit = ["prlimit", f"--nofile={open_files}:", "--"] if open_files else []
        self.log = Path(cwd or ".") / f"serve-{id(self)}.err"
        self.out = Path(cwd or ".") / f"serve-{id(self)}.out"
        self._err_handle = self.log.open("w")
        self._out_handle = self.out.open("w")
        self.process = subprocess.Popen(
            [*limit, *keyturn_command(), "serve", "--port", "0", *args],
            stdout=self._out_handle,
            stderr=self._err_handle,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
        self.url = self._wait_for_port()

    def _wait_for_port(self) -> str:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            match = self._RUNNING.search(self.log.read_text())
            if match:
                return f"http://127.0.0.1:{match.group(1)}"
            if self.process.poll() is not None:
                raise RuntimeError(f"keyturn serve exited:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.process.kill()
        raise RuntimeError(f"keyturn serve did not start:\n{self.log.read_text()}")

    @property
    def stderr(self) -> str:
        return self.log.read_text()

    @property
    def stdout(self) -> str:
        return self.out.read_text()

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout=timeout)
        finally:
            self._err_handle.close()
            self._out_handle.close()
        return code

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._err_handle.close()
        self._out_handle.close()
