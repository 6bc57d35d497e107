"""The transactional outbox, on every engine: an event exists exactly when its change
committed, time-driven events are recorded once, and each delivery is claimed by one
worker at a time however many instances share the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from keyturn import KeyManager
from keyturn._events import Event
from keyturn._webhooks import NewWebhook
from keyturn.actor import Actor
from keyturn.admin import NewKey
from keyturn.errors import Conflict
from keyturn.record import utcnow
from keyturn.store import open_store


def subscribe(manager: KeyManager, *events: str) -> str:
    made = manager.webhooks.create(
        Actor.operator(), NewWebhook("http://127.0.0.1:9/hook", events or ("*",))
    )
    return made.webhook.id


@pytest.fixture
def manager(db_url: str) -> Iterator[KeyManager]:
    with KeyManager(db_url, allow_private_webhooks=True) as m:
        yield m


def test_a_change_and_its_event_commit_together(manager: KeyManager) -> None:
    hook = subscribe(manager)
    key = manager.create_key("a").record
    manager.revoke(key.id)
    with pytest.raises(Conflict):
        manager.enable(key.id)  # refused: rolled back, no event
    manager.revoke(key.id)  # changes nothing: no event
    assert manager.store.dispatch() == 2
    types = [c.delivery.type for c in manager.store.claim(utcnow(), 30)]
    assert types == ["key.created", "key.revoked"]
    assert [d.type for d in manager.store.deliveries(hook)] == ["key.revoked", "key.created"]


def test_only_subscribed_webhooks_made_before_the_event_get_it(manager: KeyManager) -> None:
    revoked = subscribe(manager, "key.revoked")
    key = manager.create_key("a").record
    later = subscribe(manager)
    manager.revoke(key.id)
    manager.store.dispatch()
    assert [d.type for d in manager.store.deliveries(revoked)] == ["key.revoked"]
    assert [d.type for d in manager.store.deliveries(later)] == ["key.revoked"]


def test_an_occasion_is_recorded_once(manager: KeyManager) -> None:
    key = manager.create_key("a").record
    event = Event("key.expiring", {"id": key.id}, key.id, once=f"expiring:{key.id}:7")
    again = Event("key.expiring", {"id": key.id}, key.id, once=f"expiring:{key.id}:7")
    assert manager.store.record_events([event]) == 1
    assert manager.store.record_events([again]) == 0


def test_a_claim_is_held_for_its_lease_then_given_up(manager: KeyManager) -> None:
    subscribe(manager)
    manager.create_key("a")
    manager.store.dispatch()
    now = utcnow()
    assert len(manager.store.claim(now, 30)) == 1
    assert manager.store.claim(now, 30) == []  # held by the first worker
    later = now + timedelta(seconds=31)  # that worker died: the lease ran out
    (claim,) = manager.store.claim(later, 30)
    manager.store.settle(
        claim.delivery.id,
        status="delivered",
        attempts=1,
        at=later,
        next_at=later,
        last_status=200,
        last_error=None,
    )
    assert manager.store.claim(later + timedelta(minutes=5), 30) == []
    assert manager.store.delivery_counts() == {"delivered": 1}


def test_instances_sharing_a_store_claim_each_delivery_once(
    manager: KeyManager, db_url: str
) -> None:
    subscribe(manager)
    for i in range(40):
        manager.create_key(f"k{i}")
    others = [open_store(db_url) for _ in range(3)]
    try:
        claimed: list[list[int]] = [[] for _ in others]
        start = threading.Barrier(len(others))

        def work(n: int) -> None:
            start.wait()
            for _ in range(10):
                others[n].dispatch(limit=7)
                claimed[n].extend(c.delivery.id for c in others[n].claim(utcnow(), 60, 5))

        threads = [threading.Thread(target=work, args=(n,)) for n in range(len(others))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = [d for ids in claimed for d in ids]
        assert len(every) == len(set(every)) == 40
    finally:
        for store in others:
            store.close()


def test_a_slow_batch_never_outlasts_its_lease(
    manager: KeyManager, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that claimed a batch for a slow receiver stops starting attempts while one
    could still end after its lease; otherwise another instance takes the rest of the batch
    when the lease runs out and both send it. Here the lease (3 s) covers about seven of
    twenty 0.2 s posts: every event still arrives once, from whichever worker took it. (The
    margin is a second, as the real one is seconds: it covers settling the attempt and a
    thread kept waiting on a loaded machine.)"""
    from keyturn import _delivery
    from tests.service.receiver import Receiver

    monkeypatch.setattr(_delivery, "LEASE", 3.0)
    monkeypatch.setattr(_delivery, "TIMEOUT", 0.6)
    monkeypatch.setattr(_delivery, "LEASE_MARGIN", 1.0)
    with Receiver(delay=0.2) as receiver:
        manager.webhooks.create(Actor.operator(), NewWebhook(receiver.url, ("*",)))
        for i in range(20):
            manager.create_key(f"k{i}")
        stores = [open_store(db_url) for _ in range(2)]
        workers = [_delivery.Deliverer(s, allow_private=True, poll=0.05) for s in stores]
        try:
            for worker in workers:
                worker.start()
            receiver.wait_for(20, timeout=60)
            time.sleep(3.5)  # a duplicate would come when a lease runs out
        finally:
            for worker in workers:
                worker.close()
            for store in stores:
                store.close()
        ids = [r.headers["webhook-id"] for r in receiver.received]
        assert len(ids) == len(set(ids)) == 20


def test_canaries_and_their_uses_are_listed(manager: KeyManager) -> None:
    """What the dashboard's canaries page reads: the canary keys, and each use newest first,
    an owner's key seeing its own canaries' only."""
    from keyturn import _events as events
    from keyturn.errors import NotPermitted
    from keyturn.store.base import KeyFilter

    operator = Actor.operator()
    decoy = manager.admin.create(operator, NewKey("decoy", owner="acme", canary=True)).record
    manager.create_key("real", owner="acme")
    listed = manager.admin.list_keys(operator, KeyFilter(canary=True))
    assert [k.id for k in listed] == [decoy.id]
    for path in ("/first", "/second"):
        seen = {"client": "203.0.113.9", "method": "GET", "path": path, "user_agent": "curl"}
        manager.store.record_events([events.about(events.CANARY_USED, decoy, request=seen)])
    uses = manager.admin.canary_uses(operator)
    assert [u.data["request"]["path"] for u in uses] == ["/second", "/first"]
    assert {u.key_id for u in uses} == {decoy.id} and uses[0].at >= uses[1].at
    owner = Actor("acme's portal", scopes=frozenset({"*"}), owner="acme")
    assert len(manager.admin.canary_uses(owner, decoy.id)) == 2
    with pytest.raises(NotPermitted):
        manager.admin.canary_uses(owner)  # an owner names one of its own canaries
