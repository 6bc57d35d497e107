"""Owner limits across two real ``keyturn serve`` processes sharing PostgreSQL and Redis:
an owner's credits serve exactly N requests and its rate limit admits exactly R per window,
however many keys it has and whichever instance each request hits."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.scale.conftest import Cluster


def hammer_keys(cluster: Cluster, keys: list[str], requests: int) -> Counter[str]:
    """``requests`` concurrent ``/auth`` calls, cycling through ``keys`` and instances."""
    urls = [i.url for i in cluster.instances[:2]]
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    local = threading.local()

    def one(n: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=30)
        key = keys[n % len(keys)]
        answer = client.get(f"{urls[n % 2]}/auth", headers={"Authorization": f"Bearer {key}"})
        code = "valid" if answer.status_code == 204 else answer.json()["code"]
        with lock:
            codes[code] += 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(requests)))
    return codes


def make_keys(admin: httpx.Client, owner: str, count: int) -> list[str]:
    keys = []
    for i in range(count):
        made = admin.post("/v1/keys", json={"name": f"k{i}", "owner": owner})
        assert made.status_code == 201, made.text
        keys.append(made.json()["key"])
    return keys


def test_an_owners_credits_are_exact_across_instances_and_keys(pg_pair: Cluster) -> None:
    a, b = pg_pair.instances[:2]
    with pg_pair.admin(a) as admin:
        keys = make_keys(admin, "acme-credits", 3)
        put = admin.put("/v1/owners/acme-credits", json={"credits": 30})
        assert put.status_code == 200, put.text
    codes = hammer_keys(pg_pair, keys, 90)
    assert codes == {"valid": 30, "usage_exceeded": 60}
    with pg_pair.admin(b) as admin:
        # A key minted now does not escape the limit, on either instance.
        fresh = make_keys(admin, "acme-credits", 1)
        assert hammer_keys(pg_pair, fresh, 4) == {"usage_exceeded": 4}
        shown = admin.get("/v1/owners/acme-credits").json()
        assert shown["credits_left"] == 0 and shown["keys"]["active"] == 4


def test_an_owners_rate_limit_is_exact_across_instances_and_keys(pg_pair: Cluster) -> None:
    a, b = pg_pair.instances[:2]
    with pg_pair.admin(b) as admin:
        keys = make_keys(admin, "acme-burst", 4)
        put = admin.put("/v1/owners/acme-burst", json={"rate_limits": ["20/minute"]})
        assert put.status_code == 200, put.text
    codes = hammer_keys(pg_pair, keys, 70)
    assert codes == {"valid": 20, "rate_limited": 50}
    with httpx.Client(timeout=10) as client:
        refused = client.get(f"{a.url}/auth", headers={"Authorization": f"Bearer {keys[0]}"})
    assert refused.status_code == 429 and "owner" in refused.json()["detail"]
    assert refused.headers["ratelimit-limit"] == "20"


def test_revoking_an_owner_reaches_the_other_instance(pg_pair: Cluster) -> None:
    a, b = pg_pair.instances[:2]
    with pg_pair.admin(a) as admin:
        keys = make_keys(admin, "acme-gone", 3)
    assert hammer_keys(pg_pair, keys, 6) == {"valid": 6}  # cached on both instances
    with pg_pair.admin(b) as admin:
        done = admin.post("/v1/owners/acme-gone/revoke")
        assert done.status_code == 200 and len(done.json()["changed"]) == 3
    time.sleep(1.2)  # the propagation bound
    assert hammer_keys(pg_pair, keys, 6) == {"key_revoked": 6}
