"""PostgreSQL and Redis servers of a test's own, on free loopback ports, to stop and start.

Outage tests must never touch the shared servers (5432, 6379): they start their own from
the installed binaries (PostgreSQL's ``initdb``/``pg_ctl``, ``redis-server``), stop them
to make the outage and start them again on the same port to end it. Without the binaries
the tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import in_ci


def missing(what: str) -> None:
    message = f"{what} is not installed"
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def started(process: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    """Whether ``process`` listens on 127.0.0.1:``port`` within ``timeout`` seconds; when it
    exits first or never listens, it is stopped and the answer is ``False`` (the caller
    may retry on another port: a free port can be taken between choosing and binding)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    process.kill()
    process.wait()
    return False


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else the newest Debian package."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    return Path(versions[-1]) if versions else None


class OwnPostgres:
    """A PostgreSQL cluster in a temporary folder, listening on 127.0.0.1 only.

    PostgreSQL refuses to run as root; as root (containers) it runs as the ``postgres``
    user the package installs.
    """

    def __init__(self) -> None:
        folder = postgres_bin()
        if folder is None or not (folder / "initdb").exists():
            missing("PostgreSQL (initdb, pg_ctl)")
        self.bin = folder
        self.port = free_port()
        self.home = Path(tempfile.mkdtemp(prefix="keyturn-pg-"))
        self.data = self.home / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.home, "postgres")
        self._frozen: list[int] = []
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.home,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c max_connections=40 -c shared_buffers=16MB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.home / "log"), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        """Stop at once (``immediate``: open connections are cut, as in a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def processes(self) -> list[int]:
        """The server's processes: the postmaster and its children."""
        master = int((self.data / "postmaster.pid").read_text().split()[0])
        children = subprocess.run(
            ["pgrep", "-P", str(master)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [master, *map(int, children)]

    def freeze(self) -> None:
        """Stop every process of the server without closing a connection: it accepts and
        holds, but never answers (a hung host, a paused container)."""
        self._frozen = self.processes()
        for pid in self._frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self._frozen = []

    def close(self) -> None:
        self.thaw()
        subprocess.run(
            [*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m",
             "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )  # fmt: skip
        shutil.rmtree(self.home, ignore_errors=True)


class OwnRedis:
    """``redis-server`` on a free port, without persistence; with ``password``, it asks
    every client for it."""

    def __init__(self, password: str | None = None) -> None:
        found = shutil.which("redis-server")
        if found is None:
            missing("redis-server")
        self.binary = found
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self) -> None:
        """Kill it (as in a crash): its counts are gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def close(self) -> None:
        self.stop()
