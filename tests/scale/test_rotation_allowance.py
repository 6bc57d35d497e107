"""A rotated key and its successors share one allowance while more than one of them works.

Rotation must not be a way to double a key's credits or rate limits: during the grace
overlap, the old and the new key together get what one key would, across a chain of
rotations, whichever of them an admin changes afterwards. Checked through real
``keyturn serve`` processes: on SQLite with the in-memory limiter (one instance), and on
PostgreSQL with Redis, the old key sent to one instance and the new key to another.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scale.conftest import BOUND, Cluster, make_admin_key


@pytest.fixture(scope="module", params=["sqlite-memory", "postgresql-redis"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp(f"allowance-{request.param}")
    if request.param == "sqlite-memory":
        # In-memory rate limits are one instance's own: one instance serves both keys.
        cluster = Cluster(f"sqlite:///{folder / 'keys.db'}", folder)
        count = 1
    else:
        url = request.getfixturevalue("pg_module_url")
        cluster = Cluster(url, folder, request.getfixturevalue("redis_module_prefix"))
        count = 2
    cluster.admin_key = make_admin_key(cluster.db_url)
    try:
        for _ in range(count):
            cluster.start()
        yield cluster
    finally:
        cluster.close()


class Keys:
    """Keys made and rotated through the admin API of the cluster's first instance."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.admin = cluster.admin(cluster.instances[0])

    def make(self, **fields: Any) -> dict[str, Any]:
        made = self.admin.post("/v1/keys", json={"name": "metered", **fields})
        assert made.status_code == 201, made.text
        return made.json()

    def rotate(self, key: dict[str, Any]) -> dict[str, Any]:
        rotated = self.admin.post(f"/v1/keys/{key['id']}/rotate", json={"grace_seconds": 3600})
        assert rotated.status_code == 201, rotated.text
        return rotated.json()

    def auth(self, key: dict[str, Any], instance: int = 0) -> httpx.Response:
        """``/auth`` with ``key``, on one of the instances (the last one if fewer)."""
        server = self.cluster.instances[min(instance, len(self.cluster.instances) - 1)]
        headers = {"Authorization": f"Bearer {key['key']}"}
        return httpx.get(f"{server.url}/auth", headers=headers, timeout=10)

    def spree(self, keys: list[dict[str, Any]], requests: int) -> Counter[str]:
        """``requests`` requests, the keys taking turns, each on its own instance: how
        many were accepted (``ok``) and how many refused, by catalogue code."""
        answers: Counter[str] = Counter()
        turns = itertools.cycle(enumerate(keys))
        for _ in range(requests):
            instance, key = next(turns)
            answer = self.auth(key, instance)
            answers["ok" if answer.status_code == 204 else answer.json()["code"]] += 1
        return answers


@pytest.fixture
def keys(cluster: Cluster) -> Iterator[Keys]:
    made = Keys(cluster)
    with made.admin:
        yield made


def test_credits_are_shared_with_the_successor(keys: Keys) -> None:
    old = keys.make(credits=5)
    assert keys.spree([old], 2) == {"ok": 2}
    new = keys.rotate(old)
    assert new["credits"] == 3
    assert keys.spree([old, new], 10) == {"ok": 3, "usage_exceeded": 7}
    assert keys.admin.get(f"/v1/keys/{new['id']}").json()["credits"] == 0


def test_rate_limits_are_shared_with_the_successor(keys: Keys) -> None:
    # An hour's window: the test cannot straddle two windows.
    old = keys.make(rate_limits=["3/hour"])
    assert keys.spree([old], 2) == {"ok": 2}
    new = keys.rotate(old)
    assert keys.spree([new, old], 6) == {"ok": 1, "rate_limited": 5}


def test_a_chain_of_rotations_shares_one_allowance(keys: Keys) -> None:
    first = keys.make(credits=6, rate_limits=["100/hour"])
    assert keys.spree([first], 1) == {"ok": 1}
    second = keys.rotate(first)
    assert keys.spree([second], 1) == {"ok": 1}
    third = keys.rotate(second)
    assert keys.spree([first, second, third], 9) == {"ok": 4, "usage_exceeded": 5}


def test_credits_left_at_rotation_are_the_successors(keys: Keys) -> None:
    """A key with no credit left cannot be rotated into a fresh allowance."""
    old = keys.make(credits=1)
    assert keys.spree([old], 2) == {"ok": 1, "usage_exceeded": 1}
    new = keys.rotate(old)
    assert keys.spree([new, old], 4) == {"usage_exceeded": 4}


def test_a_change_to_either_key_meters_both(keys: Keys) -> None:
    old = keys.make()
    new = keys.rotate(old)
    limited = keys.admin.patch(
        f"/v1/keys/{new['id']}", json={"rate_limits": ["2/hour"], "credits": 10}
    )
    assert limited.status_code == 200, limited.text
    time.sleep(BOUND + 0.5)  # every instance's cache has seen the change
    assert keys.spree([old, new], 6) == {"ok": 2, "rate_limited": 4}
    # Changed on the old key, the allowance changes for the successor as well.
    more = keys.admin.patch(f"/v1/keys/{old['id']}", json={"rate_limits": [], "credits": 3})
    assert more.status_code == 200, more.text
    time.sleep(BOUND + 0.5)
    assert keys.spree([new, old], 6) == {"ok": 3, "usage_exceeded": 3}
    assert keys.admin.get(f"/v1/keys/{new['id']}").json()["credits"] == 0
