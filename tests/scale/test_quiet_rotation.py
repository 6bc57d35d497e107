"""Usage-aware rotation across instances: two real ``keyturn serve`` processes sharing one
SQLite file, and two sharing PostgreSQL and Redis (where a live change feed lets cached
records live for minutes, so the end of the grace moved by one instance's uses must be
announced to the other).

The old key works until nobody has used it for the quiet period (uses through either
instance count), and never past the longest grace; once ended it stays ended. Uses reach
the store with the usage flush and every instance within the cache's lifetime, so the
instances are started with a short flush (0.2 s) and cache (0.5 s): the shortest quiet
period is 4 x (0.2 s + 0.5 s) = 2.8 s, and the waits below are a few seconds each.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.scale.conftest import Cluster, make_admin_key
from tests.service.conftest import TLS, run_cli

QUIET = 4
LAG = 0.2 + 0.5  # the usage flush interval plus the cache TTL


@pytest.fixture(scope="module", params=["sqlite", "postgresql-redis"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp(f"quiet-{request.param}")
    env = {"KEYTURN_USAGE_FLUSH_INTERVAL": "0.2", "KEYTURN_CACHE_TTL": "0.5"}
    if request.param == "sqlite":
        cluster = Cluster(f"sqlite:///{folder / 'keys.db'}", folder, env=env)
    else:
        url = request.getfixturevalue("pg_module_url")
        prefix = request.getfixturevalue("redis_module_prefix")
        cluster = Cluster(url, folder, prefix, env=env)
    cluster.admin_key = make_admin_key(cluster.db_url)
    try:
        cluster.start()
        cluster.start()
        yield cluster
    finally:
        cluster.close()


def auth(instance_url: str, key: str, path: str = "/orders/1") -> httpx.Response:
    return httpx.get(
        f"{instance_url}/auth",
        headers={"Authorization": f"Bearer {key}", "X-Original-URI": path},
        timeout=10,
        verify=TLS,
    )


def rotated(cluster: Cluster, body: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """A new key rotated through the first instance: (old record, old key, new key)."""
    admin = cluster.admin(cluster.instances[0])
    made = admin.post("/v1/keys", json={"name": "svc", "scopes": ["orders:read"]})
    assert made.status_code == 201, made.text
    old = made.json()
    new = admin.post(f"/v1/keys/{old['id']}/rotate", json=body)
    assert new.status_code == 201, new.text
    return old, old["key"], new.json()["key"]


def stored(cluster: Cluster, key_id: str) -> dict[str, Any]:
    shown = cluster.admin(cluster.instances[1]).get(f"/v1/keys/{key_id}")
    assert shown.status_code == 200, shown.text
    return shown.json()  # type: ignore[no-any-return]


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_the_old_key_works_while_used_through_either_instance_then_stops_when_quiet(
    cluster: Cluster,
) -> None:
    a, b = (i.url for i in cluster.instances)
    old, old_key, new_key = rotated(
        cluster, {"grace_until_quiet_seconds": QUIET, "grace_max_seconds": 600}
    )
    shown = stored(cluster, old["id"])
    assert shown["status"] == "rotated" and shown["grace_until_quiet_seconds"] == QUIET
    assert auth(a, old_key).status_code == 204  # instance A has it cached now
    started = time.time()
    last_use = started
    while time.time() - started < 2 * QUIET:  # used through B only, for twice the period
        last_use = time.time()
        assert auth(b, old_key, "/orders/2").status_code == 204
        time.sleep(1)
    # A's cached end (started + QUIET) has passed; B's uses moved it, and A knows.
    assert auth(a, old_key).status_code == 204
    last_use = time.time()
    time.sleep(LAG + 0.3)  # every use is in the store now
    end = at(stored(cluster, old["id"])["grace_until"])
    assert last_use + QUIET - LAG <= end <= last_use + QUIET + LAG
    time.sleep(max(0.0, end - time.time()) + LAG)
    for url in (a, b):
        refused = auth(url, old_key)
        assert refused.status_code == 401 and refused.json()["code"] == "key_rotated"
        assert "seconds without a use" in refused.json()["detail"]
        assert auth(url, new_key).status_code == 204
    time.sleep(1)
    assert auth(b, old_key).status_code == 401  # ended stays ended
    assert at(stored(cluster, old["id"])["grace_until"]) == end

    # Who used the old key since the rotation: both paths, from this machine.
    callers = cluster.admin(cluster.instances[0]).get(f"/v1/keys/{old['id']}/callers")
    assert callers.status_code == 200, callers.text
    seen = {(c["client"], c["path"]) for c in callers.json()["callers"]}
    assert {("127.0.0.1", "/orders/1"), ("127.0.0.1", "/orders/2")} <= seen
    shown_cli = run_cli("keys", "show", old["id"], env={"KEYTURN_DATABASE_URL": cluster.db_url})
    assert shown_cli.returncode == 0, shown_cli.stderr
    assert "Still used since the rotation by" in shown_cli.stdout
    assert "/orders/2" in shown_cli.stdout


def test_a_key_in_constant_use_stops_at_the_longest_grace(cluster: Cluster) -> None:
    b = cluster.instances[1].url
    old, old_key, _ = rotated(cluster, {"grace_until_quiet_seconds": QUIET, "grace_max_seconds": 6})
    most = at(stored(cluster, old["id"])["grace_max"])
    first_refusal = None
    while time.time() < most + 3 * LAG:
        answer = auth(b, old_key)
        if answer.status_code != 204:
            first_refusal = time.time()
            assert answer.json()["code"] == "key_rotated"
            assert "the longest it could last" in answer.json()["detail"]
            break
        time.sleep(0.25)
    assert first_refusal is not None, "still accepted past its longest grace"
    assert most - 0.05 <= first_refusal <= most + LAG


def test_a_quiet_period_within_the_lag_is_refused_naming_the_fix(cluster: Cluster) -> None:
    admin = cluster.admin(cluster.instances[0])
    made = admin.post("/v1/keys", json={"name": "svc"}).json()
    refused = admin.post(
        f"/v1/keys/{made['id']}/rotate", json={"grace_until_quiet_seconds": 2}
    )
    assert refused.status_code == 422
    assert "usage_flush_interval" in refused.json()["detail"]
    both = admin.post(
        f"/v1/keys/{made['id']}/rotate",
        json={"grace_seconds": 60, "grace_until_quiet_seconds": 60},
    )
    assert both.status_code == 422 and "grace_max_seconds" in both.json()["detail"]
    assert admin.get(f"/v1/keys/{made['id']}").json()["replaced_by"] is None
