"""Several real ``keyturn serve`` processes sharing one store (and one Redis).

Each module gets its own PostgreSQL schema and Redis key prefix, and its processes are
killed at the end whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from keyturn import KeyManager
from tests.conftest import REDIS_URL, pg_schema, redis_keyspace
from tests.service.conftest import TLS, ServeProcess

BOUND = 1.0  # the default propagation bound: the cache TTL of `keyturn serve`


@dataclass
class Cluster:
    """Instances sharing ``db_url`` (and Redis, when ``redis_prefix`` is set)."""

    db_url: str
    workdir: Path
    redis_prefix: str | None = None
    admin_key: str = ""
    instances: list[ServeProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # more settings, as KEYTURN_*

    def start(self) -> ServeProcess:
        env = {"KEYTURN_DATABASE_URL": self.db_url, "KEYTURN_ACCESS_LOG": "false", **self.env}
        args: list[str] = []
        if self.redis_prefix is not None:
            args = ["--redis", REDIS_URL]
            env["KEYTURN_REDIS_PREFIX"] = self.redis_prefix
        instance = ServeProcess(*args, env=env, cwd=self.workdir)
        self.instances.append(instance)
        return instance

    def admin(self, instance: ServeProcess) -> httpx.Client:
        return httpx.Client(
            base_url=instance.url,
            headers={"Authorization": f"Bearer {self.admin_key}"},
            timeout=30,
            verify=TLS,  # one client a call: no CA bundle loaded for each
        )

    def kill(self, instance: ServeProcess) -> None:
        instance.process.send_signal(signal.SIGKILL)
        instance.process.wait(timeout=30)

    def close(self) -> None:
        for instance in self.instances:
            with_timeout_kill(instance.process)
            instance.__exit__()


def with_timeout_kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_admin_key(db_url: str) -> str:
    with KeyManager(db_url) as manager:
        return manager.create_key("scale-admin", scopes=["*"], expires_in=None).key


@pytest.fixture(scope="module")
def pg_module_url(pg_database: str) -> Iterator[str]:
    """A schema of this module's own in the session's database."""
    with pg_schema(pg_database, "m") as url:
        yield url


@pytest.fixture(scope="module")
def redis_module_prefix() -> Iterator[str]:
    with redis_keyspace(f"scale-{os.getpid()}") as prefix:
        yield prefix


@pytest.fixture(scope="module")
def pg_pair(
    pg_module_url: str, redis_module_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Two instances sharing PostgreSQL and Redis."""
    with two_instances(pg_module_url, tmp_path_factory.mktemp("pair"), redis_module_prefix) as c:
        yield c


@contextmanager
def two_instances(url: str, folder: Path, redis_prefix: str | None = None) -> Iterator[Cluster]:
    """Two instances sharing the store at ``url`` (and Redis, with a prefix), stopped after."""
    cluster = Cluster(url, folder, redis_prefix)
    cluster.admin_key = make_admin_key(url)
    try:
        cluster.start()
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def poll_until_rejected(
    url: str, key: str, *, timeout: float = 10.0
) -> tuple[float, float, list[int]]:
    """Ask ``/auth`` with ``key`` in a tight loop until it is refused: when the last accepted
    request was sent, when the first refusal arrived, and the statuses of 20 requests after
    it."""
    headers = {"Authorization": f"Bearer {key}"}
    last_accepted = time.monotonic()
    with httpx.Client(base_url=url, timeout=10) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = time.monotonic()
            status = client.get("/auth", headers=headers).status_code
            if status != 204:
                received = time.monotonic()
                after = [client.get("/auth", headers=headers).status_code for _ in range(20)]
                return last_accepted, received, [status, *after]
            last_accepted = sent
            time.sleep(0.002)
    raise AssertionError(f"{url} still accepts the key after {timeout} s")
