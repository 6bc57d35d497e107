"""A change to a role reaches every key holding it on another ``keyturn serve`` instance
within the propagation bound: two real processes sharing PostgreSQL and Redis (the change
feed), and two sharing one SQLite file (expiry alone)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.scale.conftest import BOUND, Cluster, make_admin_key

NEEDS_WRITE = {"X-Keyturn-Required-Scopes": "orders:write"}


def poll_until(url: str, key: str, wanted: int, *, timeout: float = 10.0) -> tuple[float, int]:
    """Ask ``/auth`` for ``orders:write`` with ``key`` until the status is ``wanted``: when
    the last request with the old answer was sent, and the statuses of 10 requests after."""
    headers = {"Authorization": f"Bearer {key}", **NEEDS_WRITE}
    last_old = time.monotonic()
    with httpx.Client(base_url=url, timeout=10) as client:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent = time.monotonic()
            if client.get("/auth", headers=headers).status_code == wanted:
                after = {client.get("/auth", headers=headers).status_code for _ in range(10)}
                assert after == {wanted}, after  # and it stays so
                return last_old, wanted
            last_old = sent
            time.sleep(0.002)
    raise AssertionError(f"{url} never answered {wanted} within {timeout} s")


def change_role(cluster: Cluster, scopes: list[str], key: str, wanted: int) -> float:
    """Set the role ``desk`` through the first instance while the second answers from its
    cache; how long after the change was acknowledged the second still gave the old answer
    (negative: it changed before the acknowledgement arrived)."""
    a, b = cluster.instances[:2]
    acknowledged: list[float] = []
    with cluster.admin(a) as admin:

        def put() -> None:
            answer = admin.put("/v1/roles/desk", json={"scopes": scopes})
            assert answer.status_code == 200, answer.text
            acknowledged.append(time.monotonic())

        thread = threading.Thread(target=put)
        thread.start()
        last_old, _ = poll_until(b.url, key, wanted)
        thread.join()
    stale_for = last_old - acknowledged[0]
    assert stale_for < BOUND, stale_for
    return stale_for


def exercise(cluster: Cluster) -> list[float]:
    a, b = cluster.instances[:2]
    with cluster.admin(a) as admin:
        assert admin.put("/v1/roles/desk", json={"scopes": ["orders:read"]}).status_code == 200
        made = admin.post("/v1/keys", json={"name": "clerk", "roles": ["desk"]})
        assert made.status_code == 201, made.text
        key = made.json()["key"]
    headers = {"Authorization": f"Bearer {key}", **NEEDS_WRITE}
    with httpx.Client(timeout=10) as client:
        for _ in range(5):  # cached in b, refused orders:write
            assert client.get(f"{b.url}/auth", headers=headers).status_code == 403
    figures = []
    for _ in range(2):
        # Granted through the role, then taken away again: each seen by b within the bound.
        figures.append(change_role(cluster, ["orders:read", "orders:write"], key, 204))
        figures.append(change_role(cluster, ["orders:read"], key, 403))
    return figures


def test_a_role_change_reaches_the_other_postgresql_instance_within_the_bound(
    pg_pair: Cluster,
) -> None:
    figures = exercise(pg_pair)
    print(f"PostgreSQL + Redis: acknowledged -> last old answer (s): {figures}")


def test_a_role_change_reaches_the_other_sqlite_process_within_the_bound(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    cluster = Cluster(url, tmp_path)
    cluster.admin_key = make_admin_key(url)
    try:
        cluster.start()
        cluster.start()
        figures = exercise(cluster)
        print(f"SQLite: acknowledged -> last old answer (s): {figures}")
    finally:
        cluster.close()
