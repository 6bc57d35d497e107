"""Two real ``keyturn serve`` processes, one outbox (PostgreSQL), one loopback receiver.

Both instances run the webhook worker against the same outbox: each event must reach the
receiver once, whichever instance made the change and whichever sends it; and when one
instance is killed (``kill -9``) in the middle of delivering, the other delivers everything
the dead one had claimed, once its lease runs out. The receiver checks every signature with
the Standard Webhooks reference library.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import standardwebhooks

from tests.scale.conftest import Cluster, make_admin_key
from tests.service.conftest import ServeProcess
from tests.service.receiver import Receiver

LEASE = 60.0  # keyturn._delivery.LEASE: how long a dead instance's claims stay locked


@pytest.fixture
def cluster(pg_module_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(pg_module_url, tmp_path_factory.mktemp("outbox"))
    cluster.admin_key = make_admin_key(pg_module_url)
    try:
        yield cluster
    finally:
        cluster.close()


def start(cluster: Cluster) -> ServeProcess:
    instance = ServeProcess(
        env={
            "KEYTURN_DATABASE_URL": cluster.db_url,
            "KEYTURN_ACCESS_LOG": "false",
            "KEYTURN_WEBHOOK_ALLOW_PRIVATE": "true",
        },
        cwd=cluster.workdir,
    )
    cluster.instances.append(instance)
    return instance


def make_events(
    cluster: Cluster, instances: list[ServeProcess], count: int
) -> list[tuple[str, str]]:
    """``count`` changes, made through the instances in turn: (event type, key id) each."""
    made: list[tuple[str, str]] = []
    for i in range(count):
        with cluster.admin(instances[i % len(instances)]) as api:
            answer = api.post("/v1/keys", json={"name": f"outbox {i}"})
            assert answer.status_code == 201, answer.text
            made.append(("key.created", answer.json()["id"]))
    return made


def received(receiver: Receiver, secret: str) -> list[tuple[str, str, str]]:
    """(webhook-id, type, key id) of every post, each signature verified."""
    verifier = standardwebhooks.Webhook(secret)
    seen = []
    for post in receiver.received:
        verifier.verify(post.body, post.headers)
        seen.append((post.headers["webhook-id"], post.json["type"], post.json["data"]["id"]))
    return seen


def subscribe(cluster: Cluster, instance: ServeProcess, receiver: Receiver) -> str:
    with cluster.admin(instance) as api:
        answer = api.post("/v1/webhooks", json={"url": receiver.url})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["secret"])


def test_two_instances_deliver_each_event_once(cluster: Cluster) -> None:
    first, second = start(cluster), start(cluster)
    with Receiver(delay=0.05) as receiver:
        secret = subscribe(cluster, first, receiver)
        made = make_events(cluster, [first, second], 40)
        receiver.wait_for(40, timeout=60)
        time.sleep(2)  # time for a second copy, were there one, to arrive
        seen = received(receiver, secret)
    ids = Counter(webhook_id for webhook_id, _, _ in seen)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    assert sorted((kind, key) for _, kind, key in seen) == sorted(made)


def test_killing_one_instance_mid_delivery_loses_no_event(cluster: Cluster) -> None:
    """The receiver takes 0.3 s a post, so the instance killed is holding claimed
    deliveries it has not sent; the survivor sends them when the lease runs out. An event
    the dead instance was posting at the kill may arrive twice (at least once), with the
    same webhook-id and body, so a receiver that keeps the ids it has seen takes it once."""
    first, second = start(cluster), start(cluster)
    with Receiver(delay=0.3) as receiver:
        secret = subscribe(cluster, first, receiver)
        made = make_events(cluster, [first, second], 30)
        receiver.wait_for(3, timeout=30)  # deliveries are under way
        cluster.kill(first)
        made += make_events(cluster, [second], 5)  # and the survivor goes on changing keys
        receiver.wait_for(len(made), timeout=LEASE + 60)
        time.sleep(2)
        seen = received(receiver, secret)
    assert sorted({(kind, key) for _, kind, key in seen}) == sorted(made)  # none lost
    copies = Counter(webhook_id for webhook_id, _, _ in seen)
    twice = [i for i, n in copies.items() if n > 1]
    assert len(twice) <= 1 and max(copies.values()) <= 2, copies  # only the one in flight
    bodies = {webhook_id: set() for webhook_id in twice}
    for post in receiver.received:
        if post.headers["webhook-id"] in bodies:
            bodies[post.headers["webhook-id"]].add(post.body)
    assert all(len(b) == 1 for b in bodies.values())
